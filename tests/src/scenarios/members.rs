//! Online membership changes made with the operator's commands (`quorate members ...`,
//! `quorate config set ...`, run inside the namespace against a member's admin endpoint):
//! a cluster grown from 3 to 5 while a link flaps, a killed key-value node replaced under
//! write load, and unsafe changes refused with nothing changed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::cluster::{CliRun, Operator};
use crate::kv::Attempt;

/// How long one change may take to be in effect (the command's own `--timeout`).
const CHANGE_TIMEOUT: &str = "15s";
/// The harness kills a command that runs longer than this (its `--timeout` plus the
/// request's own 10 s bound, and some).
const CLI_LIMIT: Duration = Duration::from_secs(30);
/// How long a change refused as `pending` or `behind` (the previous one not yet run by
/// every voter, or a peer already ahead) is retried; a flapping link can delay a voter's
/// adoption by a cut or two.
const RETRY_FOR: Duration = Duration::from_secs(15);
/// Pause between two tries of a refused change.
const RETRY_PAUSE: Duration = Duration::from_millis(300);
/// The flapping link never flaps longer than this, whatever the changes take.
const FLAP_MAX: Duration = Duration::from_secs(30);
/// How long a node started again after its removal is watched: past the 1 s down floor and
/// several of the once-a-second answers a former member would get if it were heard.
const WATCH_REMOVED: Duration = Duration::from_secs(3);

/// Flapping before the first change, and between the changes.
const BEFORE_CHANGE: Duration = Duration::from_secs(2);
/// The flapping link of `grow-3-to-5-flapping`: between two of the original nodes.
const FLAP_LINK: (u64, u64) = (1, 2);

/// What one change took: every try (the last one accepted), for the report.
struct Change {
    tries: Vec<CliRun>,
}

impl Change {
    fn accepted(&self) -> &CliRun {
        // `change` returns a `Change` only with at least one try, the last one accepted.
        &self.tries[self.tries.len() - 1]
    }

    fn summary(&self) -> String {
        let last = self.accepted();
        match self.tries.len() {
            1 => last.summary(),
            n => format!("{} (after {} refusals as pending or behind)", last.summary(), n - 1),
        }
    }
}

/// Runs `quorate ARGS` against node `via` until it exits 0; a refusal as `pending` or
/// `behind` is tried again for up to [`RETRY_FOR`], anything else fails. Every try is on
/// the timeline.
/// Runs the command that must be refused as unsafe with the one-step removal as the first
/// step of its route: `Ok` with what it printed, `Err` otherwise.
fn change_refused(c: &mut Cluster, op: &Operator, via: u64, args: &[&str]) -> Result<String, String> {
    let run = op.run(via, args, CLI_LIMIT)?;
    c.record(run.mark());
    let want = ["refused (unsafe)", "1. remove node 3 and set the tie-breaker to none"];
    match run.code {
        Some(1) if want.iter().all(|w| run.stderr.contains(w)) => Ok(run.stderr.trim().replace('\n', " / ")),
        _ => Err(format!("want exit 1 naming {want:?}; {} {}", run.summary(), run.output())),
    }
}

fn change(c: &mut Cluster, op: &Operator, via: u64, args: &[&str]) -> Result<Change, String> {
    let started = Instant::now();
    let mut tries = Vec::new();
    loop {
        let run = op.run(via, args, CLI_LIMIT)?;
        c.record(run.mark());
        let code = run.code;
        let retry = code == Some(1)
            && (run.stderr.contains("refused (pending)") || run.stderr.contains("refused (behind)"));
        let output = run.output();
        tries.push(run);
        match code {
            Some(0) => return Ok(Change { tries }),
            _ if retry && started.elapsed() < RETRY_FOR => sleep(RETRY_PAUSE),
            _ => {
                return Err(format!(
                    "quorate {} via node {via} failed after {} tries ({:?}): {output}",
                    args.join(" "),
                    tries.len(),
                    code
                ))
            }
        }
    }
}

/// Waits until node `id`'s log says it is writable.
fn wait_writable(c: &Cluster, id: u64) -> Result<Log, String> {
    c.wait_until(&format!("node {id} is writable"), START_TIMEOUT, |log| {
        log.writable_at(id, crate::timing::monotonic_us())
    })
}

/// Cuts and reopens the link `a` - `b` on `plan`, once through, then again from the start
/// until `stop` is set; never longer than [`FLAP_MAX`]; always ends with the link open.
/// Returns each (cut, reopen).
fn flap_link(
    op: &Operator,
    (a, b): (u64, u64),
    plan: &[(Duration, Duration)],
    stop: &AtomicBool,
) -> Result<Vec<(Mark, Mark)>, String> {
    let started = Instant::now();
    let mut cuts = Vec::new();
    for (i, &(cut_for, open_for)) in plan.iter().cycle().enumerate() {
        if (i >= plan.len() && stop.load(Ordering::Relaxed)) || started.elapsed() >= FLAP_MAX {
            break;
        }
        let cut = op.faults(&partition(&[a], &[b]), &format!("flap: cut link {a} - {b}"));
        sleep(cut_for);
        let open = op.faults(&[], "flap: reopen");
        cuts.push((cut?, open?));
        sleep(open_for);
    }
    Ok(cuts)
}

/// Each node's `/status`: the version it runs, its definition's digest and members (the
/// part after `runs definition`), and no peer on another definition. All the same.
fn same_definition(c: &Cluster, ids: &[u64], version: u64) -> Result<String, String> {
    let mut seen: Option<String> = None;
    for &id in ids {
        let s = c.status(id)?;
        let runs = s["definition"].as_str().and_then(|d| d.split_once("runs definition ")).map(|(_, d)| d);
        let mismatched = s["mismatched_peers"].as_array().map_or(0, Vec::len);
        if s["definition_version"].as_u64() != Some(version) || mismatched > 0 {
            return Err(format!(
                "node {id} runs version {} ({}), {mismatched} peers on another definition; want version {version}",
                s["definition_version"], s["definition"]
            ));
        }
        match (&seen, runs) {
            (_, None) => return Err(format!("node {id}: no definition in /status: {}", s["definition"])),
            (None, Some(d)) => seen = Some(d.to_owned()),
            (Some(first), Some(d)) if first != d => {
                return Err(format!("node {id} runs {d}, node {} runs {first}", ids[0]))
            }
            _ => {}
        }
    }
    Ok(format!("{} all run version {version}: {}", set(ids), seen.unwrap_or_default()))
}

/// Node `id` became writable only after the change that added it was sent (`accepted`
/// began), and was never fenced from its first `quorum_gained` to `end`.
fn joined_once_added(log: &Log, id: u64, accepted: &CliRun, end: u64) -> Result<String, String> {
    let Some(first) = log.events.iter().find(|e| e.node == id && e.kind == Kind::QuorumGained) else {
        return Err(format!("node {id} was never writable"));
    };
    if first.at_us < accepted.at_us {
        return Err(format!(
            "node {id} was writable {} before the change that adds it was sent",
            secs(accepted.at_us as i64 - first.at_us as i64)
        ));
    }
    never_fenced(log, &[id], first.at_us, end)?;
    Ok(format!(
        "writable {} after the change was sent (the command returned {} later), never fenced since",
        secs(first.at_us as i64 - accepted.at_us as i64),
        secs(accepted.done_us as i64 - first.at_us as i64)
    ))
}

/// Every `quorum_lost` of `nodes` in `[from, to]` came while their link was cut (from the
/// cut until `HEAL_BOUND` after the reopen): the flap's doing, not the changes'.
fn fenced_only_in_cuts(
    log: &Log,
    nodes: &[u64],
    cuts: &[(Mark, Mark)],
    from: u64,
    to: u64,
) -> Result<String, String> {
    let bound = us(HEAL_BOUND);
    let mut fences = Vec::new();
    for &n in nodes {
        for lost in log.of(n, Kind::QuorumLost, from, to) {
            let in_cut =
                cuts.iter().any(|(cut, open)| lost.at_us >= cut.at_us && lost.at_us <= open.done_us + bound);
            if !in_cut {
                return Err(format!(
                    "node {n} fenced at {} with its link open: {}",
                    secs(lost.at_us as i64 - log.origin_us as i64),
                    lost.why.as_deref().unwrap_or("")
                ));
            }
            fences.push(format!("node {n} at {}", secs(lost.at_us as i64 - log.origin_us as i64)));
        }
    }
    Ok(match fences.is_empty() {
        true => "never fenced".into(),
        false => format!("{} fences, each while their link was cut: {}", fences.len(), fences.join(", ")),
    })
}

/// 3 nodes (strict majority) grow to 5 by `quorate members add`, one node at a time, each
/// started on a file listing the members after its change, while the link between nodes
/// 1 and 2 flaps.
pub(super) fn grow_flapping(c: &mut Cluster) -> Result<Check, String> {
    let (begin, _) = started(c)?;
    let op = c.operator()?;
    let seed = seed();
    let plan = flap_schedule(seed, c.spec().timing.fence_bound());
    let stop = Arc::new(AtomicBool::new(false));
    let flapper = {
        let (op, stop) = (op.clone(), stop.clone());
        std::thread::spawn(move || flap_link(&op, FLAP_LINK, &plan, &stop))
    };
    sleep(BEFORE_CHANGE);
    let steps = (|| {
        c.spawn(4)?;
        let add4 = change(
            c,
            &op,
            1,
            &["members", "add", "--id", "4", "--addr", "127.0.0.1:7004", "--timeout", CHANGE_TIMEOUT],
        )?;
        wait_writable(c, 4)?;
        sleep(BEFORE_CHANGE);
        c.spawn(5)?;
        let add5 = change(
            c,
            &op,
            2,
            &["members", "add", "--id", "5", "--addr", "127.0.0.1:7005", "--timeout", CHANGE_TIMEOUT],
        )?;
        wait_writable(c, 5)?;
        Ok::<_, String>((add4, add5))
    })();
    stop.store(true, Ordering::Relaxed);
    let cuts = flapper.join().map_err(|_| "the flapping thread panicked".to_owned())?;
    for (cut, open) in cuts.iter().flatten() {
        c.record(cut.clone());
        c.record(open.clone());
    }
    let (cuts, (add4, add5)) = (cuts?, steps?);
    let last = c.heal()?;
    settle_after_heal(c, HEAL_BOUND);
    let all = c.spec().ids();
    let versions = same_definition(c, &all, 2);
    let (status, end) = finish(c);
    let bound = c.spec().timing.fence_bound();
    Ok(Box::new(move |log, r| {
        let long = cuts.iter().filter(|(cut, open)| open.at_us.saturating_sub(cut.at_us) > us(bound)).count();
        r.info(
            "flapping link",
            format!("QE2E_SEED={seed}: link {} - {} cut {} times ({long} longer than the fence bound) while the changes ran", FLAP_LINK.0, FLAP_LINK.1, cuts.len()),
        );
        r.info("add node 4", add4.summary());
        r.info("add node 5", add5.summary());
        r.check("one definition on all five at the end", versions);
        r.check("node 3, on no flapping link", never_fenced(log, &[3], begin.at_us, end.at_us));
        r.check("node 4 once added", joined_once_added(log, 4, add4.accepted(), end.at_us));
        r.check("node 5 once added", joined_once_added(log, 5, add5.accepted(), end.at_us));
        r.check(
            &format!("nodes {} and {}", FLAP_LINK.0, FLAP_LINK.1),
            fenced_only_in_cuts(log, &[FLAP_LINK.0, FLAP_LINK.1], &cuts, begin.at_us, end.at_us),
        );
        r.check("heal after the last flap", healed_within(log, &all, &last, HEAL_BOUND));
        r.check("status", status);
    }))
}

/// Node `id` of the nodes that ran a kv writer: the writes it took after `from`.
fn acks_of(attempts: &[Attempt], id: u64, from: u64) -> usize {
    attempts.iter().filter(|a| a.node == id && a.sent_us >= from && a.ack().is_some()).count()
}

/// 3 quorate-kv nodes under write load; node 3 is killed and replaced by node 4 through
/// the safe sequence (tie-breaker none while all three run, then remove 3, then add 4)
/// while nodes 1 and 2 keep taking writes. Node 3 started again on its old file and data
/// directory must stay out.
///
/// The order is forced. A change is accepted only once every voter was heard running the
/// current version, so after node 3 dies exactly one more change can pass, and it must be
/// the removal: with the tie-breaker still `lowest-id` the removal is unsafe (`{1}` would be
/// a quorum of `{1,2}`), and adding node 4 first would leave `{1,2,3,4}` needing three of
/// four with node 3 gone and every later change refused as pending on it.
pub(super) fn replace_killed_kv(c: &mut Cluster) -> Result<Check, String> {
    let (begin, _) = started(c)?;
    let op = c.operator()?;
    let netns = c.netns_path();
    let writers = Writers::start(&netns, &[1, 2]);
    let doomed = Writers::start(&netns, &[3]);
    let load = c.note("writers started on nodes 1, 2 and 3");
    sleep(KV_BEFORE_CUT);
    // Node 3 dies under the default tie-breaker. Removing it alone is unsafe ({1} would be
    // a quorum of {1,2} beside {2,3}); so is dropping the tie-breaker first, which node 3
    // would never run: the removal drops it in the same step.
    let kill = c.kill(3)?;
    let doomed = doomed.finish();
    sleep(SETTLE);
    let refused = change_refused(c, &op, 2, &["members", "remove", "--id", "3", "--timeout", CHANGE_TIMEOUT]);
    let remove = change(
        c,
        &op,
        2,
        &["members", "remove", "--id", "3", "--tie-breaker", "none", "--timeout", CHANGE_TIMEOUT],
    )?;
    c.spawn(4)?;
    let add = change(
        c,
        &op,
        1,
        &["members", "add", "--id", "4", "--addr", "127.0.0.1:7004", "--timeout", CHANGE_TIMEOUT],
    )?;
    wait_writable(c, 4)?;
    let late = Writers::start(&netns, &[4]);
    let load4 = c.note("writers started on node 4");
    sleep(KV_AFTER_HEAL);
    // Node 3 comes back on its old file and data directory (it was killed before its
    // removal, so they still list it). The members refuse its connections.
    let restart = c.spawn(3)?;
    sleep(WATCH_REMOVED);
    let seen = c.status(3);
    let stopped = c.terminate(3);
    let stop = c.note("writers stop");
    let attempts =
        [writers.finish(), doomed, late.finish()].into_iter().try_fold(Vec::new(), |mut all, a| {
            all.extend(a?);
            Ok::<_, String>(all)
        });
    let versions = same_definition(c, &[1, 2, 4], 2);
    let (status, end) = finish(c);
    let dirs: Vec<_> = c.spec().ids().iter().map(|&id| (id, c.data_dir(id))).collect();
    Ok(Box::new(move |log, r| {
        r.check("removing dead node 3 alone is refused with the one-step route", refused);
        for (what, ch) in [("remove node 3, tie-breaker none", &remove), ("add node 4", &add)] {
            r.info(what, ch.summary());
        }
        r.check("node 1, 2 and 4 on one definition", versions);
        let attempts = match attempts {
            Ok(a) => a,
            Err(e) => return r.check("writers", Err(e)),
        };
        r.info("writes", summary(&attempts, &[1, 2, 3, 4]));
        r.check("answer times", times_in_order(&attempts));
        match read_databases(&dirs) {
            Ok(dbs) => {
                r.check("acknowledged writes in the databases", acked_writes_stored(&attempts, &dbs));
                r.check("stored epochs never go backwards", epochs_never_backwards(&dbs));
            }
            Err(e) => r.check("databases", Err(e)),
        }
        r.check(
            "nodes 1 and 2 kept acknowledging (kill, changes, node 3 back)",
            majority_kept_acking(&attempts, &[1, 2], load.done_us, stop.at_us),
        );
        r.check("nodes 1 and 2", never_fenced(log, &[1, 2], begin.at_us, end.at_us));
        r.check("node 4 once added", joined_once_added(log, 4, add.accepted(), end.at_us));
        r.check(
            &format!("node 4 takes writes ({} acknowledged)", acks_of(&attempts, 4, load4.done_us)),
            majority_kept_acking(&attempts, &[4], load4.done_us, stop.at_us),
        );
        r.info("node 3 killed", format!("at {}", secs(kill.at_us as i64 - log.origin_us as i64)));
        r.check("node 3 started again", stays_out(log, &restart, seen, stopped));
        r.check("status", status);
    }))
}

/// Node 3, started again after its removal on a data directory that never heard of it,
/// was never writable in that life: its `/status` shows it fenced on the version it last
/// ran, with no connection to a member; it exits 0 on SIGTERM.
fn stays_out(
    log: &Log,
    restart: &Mark,
    seen: Result<Value, String>,
    stopped: Result<Mark, String>,
) -> Result<String, String> {
    let stopped = stopped?;
    if let Some(g) = log.of(3, Kind::QuorumGained, restart.at_us, stopped.done_us).next() {
        return Err(format!(
            "node 3 became writable {} after it was started again",
            secs(g.at_us as i64 - restart.at_us as i64)
        ));
    }
    let s = seen?;
    let connected: Vec<u64> = s["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["connected"].as_bool() == Some(true))
        .filter_map(|p| p["id"].as_u64())
        .collect();
    if s["writable"].as_bool() != Some(false) || !connected.is_empty() {
        return Err(format!("node 3's /status: writable {}, connected to {connected:?}: {s}", s["writable"]));
    }
    Ok(format!(
        "never writable in {} ({}); on version {}, connected to no member; exit 0 on SIGTERM",
        secs(stopped.at_us as i64 - restart.at_us as i64),
        s["why_not"].as_str().unwrap_or(""),
        s["definition_version"]
    ))
}

/// Unsafe changes a 3-node cluster under the default tie-breaker must refuse: (via node,
/// arguments, what the refusal must say). Each would let a quorum of the new definition
/// miss a quorum of the current one.
const UNSAFE: [(u64, &[&str], &[&str]); 3] = [
    (
        1,
        &["members", "add", "--id", "4", "--addr", "127.0.0.1:7004"],
        &[
            "refused (unsafe): ",
            "safe sequence",
            "1. set the tie-breaker to none (strict majority)",
            "2. add node 4 with 1 vote",
        ],
    ),
    (
        2,
        &["members", "remove", "--id", "3"],
        &["refused (unsafe): ", "safe sequence", "set the tie-breaker to none"],
    ),
    (3, &["members", "set-votes", "--id", "1", "--votes", "2"], &["refused (unsafe): "]),
];

/// What a node's `/status` says about definitions: its version and digest, each peer's
/// version, the peers on other definitions; and whether all of it is version 0 and agrees.
fn definitions_seen(s: &Value) -> (String, bool) {
    let peers = s["peers"].as_array().map(Vec::as_slice).unwrap_or_default();
    let listed: Vec<String> =
        peers.iter().map(|p| format!("{}:v{}", p["id"], p["definition_version"])).collect();
    let all_zero = s["definition_version"].as_u64() == Some(0)
        && !peers.is_empty()
        && peers.iter().all(|p| p["definition_version"].as_u64() == Some(0))
        && s["mismatched_peers"].as_array().is_some_and(Vec::is_empty);
    let text = format!(
        "v{} {}; peers {}; mismatched {}",
        s["definition_version"],
        s["definition"].as_str().unwrap_or("?"),
        listed.join(","),
        s["mismatched_peers"]
    );
    (text, all_zero)
}

/// 3 nodes, default tie-breaker: three unsafe changes are refused with their reason (and the
/// safe sequence), and nothing changes: every node still runs version 0 with the same digest,
/// every peer is heard on version 0, all stay writable.
pub(super) fn refused_unsafe(c: &mut Cluster) -> Result<Check, String> {
    let (begin, _) = started(c)?;
    let op = c.operator()?;
    let ids = c.spec().ids();
    let read = |c: &Cluster| {
        ids.iter().map(|&id| c.status(id).map(|s| definitions_seen(&s))).collect::<Result<Vec<_>, _>>()
    };
    let before = read(c)?;
    let mut runs = Vec::new();
    for (via, args, want) in UNSAFE {
        let run = op.run(via, args, CLI_LIMIT)?;
        c.record(run.mark());
        runs.push((run, want));
    }
    sleep(SETTLE);
    let after = read(c)?;
    let (status, end) = finish(c);
    Ok(Box::new(move |log, r| {
        for (run, want) in &runs {
            let missing: Vec<&&str> = want.iter().filter(|w| !run.stderr.contains(**w)).collect();
            let outcome = match (run.code, missing.is_empty()) {
                (Some(1), true) => Ok(format!("exit 1: {}", run.stderr.trim().replace('\n', " / "))),
                _ => Err(format!("want exit 1 naming {missing:?}; {} {}", run.summary(), run.output())),
            };
            r.check(&format!("quorate {}", run.args.join(" ")), outcome);
        }
        let text = |v: &[(String, bool)]| v.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(" | ");
        let unchanged = match before == after && before.iter().all(|(_, zero)| *zero) {
            true => Ok(text(&before)),
            false => Err(format!("before: {} || after: {}", text(&before), text(&after))),
        };
        r.check("definitions unchanged (version 0, same digests, peers on version 0)", unchanged);
        r.check("all nodes", never_fenced(log, &ids, begin.at_us, end.at_us));
        r.check("status", status);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Action, Event};

    fn ev(node: u64, at_us: u64, kind: Kind) -> Event {
        Event { node, at_us, mono_us: at_us, kind, epoch: Some(1), peer: None, why: None, reason: None }
    }

    fn mark(at_us: u64, done_us: u64, action: Action) -> Mark {
        Mark { at_us, done_us, action, what: "m".into() }
    }

    fn log(events: Vec<Event>) -> Log {
        let marks = (1..=5).map(|n| mark(0, 1, Action::Start(n))).collect();
        Log::new(events, marks, Vec::new(), 0)
    }

    fn run(at_us: u64, done_us: u64) -> CliRun {
        CliRun { args: vec![], code: Some(0), stdout: String::new(), stderr: String::new(), at_us, done_us }
    }

    #[test]
    fn a_fence_with_the_link_open_fails_one_in_a_cut_or_just_after_it_passes() {
        let cuts = vec![(mark(1_000_000, 1_010_000, Action::Note), mark(2_000_000, 2_010_000, Action::Note))];
        let gained = ev(1, 10, Kind::QuorumGained);
        let in_cut = log(vec![gained.clone(), ev(1, 1_900_000, Kind::QuorumLost)]);
        assert!(fenced_only_in_cuts(&in_cut, &[1, 2], &cuts, 0, 9_000_000).is_ok());
        let after_reopen = log(vec![gained.clone(), ev(2, 2_500_000, Kind::QuorumLost)]);
        assert!(fenced_only_in_cuts(&after_reopen, &[1, 2], &cuts, 0, 9_000_000).is_ok());
        let open = log(vec![gained, ev(2, 5_000_000, Kind::QuorumLost)]);
        assert!(fenced_only_in_cuts(&open, &[1, 2], &cuts, 0, 9_000_000).is_err());
    }

    #[test]
    fn a_node_writable_before_it_was_added_or_fenced_after_it_joined_fails() {
        let added = run(1_000_000, 1_500_000);
        let joined = log(vec![ev(4, 1_200_000, Kind::QuorumGained)]);
        assert!(joined_once_added(&joined, 4, &added, 9_000_000).is_ok());
        let early = log(vec![ev(4, 900_000, Kind::QuorumGained)]);
        assert!(joined_once_added(&early, 4, &added, 9_000_000).is_err());
        let fenced = log(vec![ev(4, 1_200_000, Kind::QuorumGained), ev(4, 3_000_000, Kind::QuorumLost)]);
        assert!(joined_once_added(&fenced, 4, &added, 9_000_000).is_err());
        assert!(joined_once_added(&log(vec![]), 4, &added, 9_000_000).is_err(), "never writable");
    }

    #[test]
    fn definitions_agree_only_when_every_version_is_zero_and_nothing_mismatches() {
        let status = |own: u64, peer: u64, mismatched: Value| {
            serde_json::json!({"definition_version": own, "definition": "node 1 runs definition ab (members 1:1)",
                "peers": [{"id": 2, "definition_version": peer}], "mismatched_peers": mismatched})
        };
        assert!(definitions_seen(&status(0, 0, serde_json::json!([]))).1);
        assert!(!definitions_seen(&status(1, 0, serde_json::json!([]))).1);
        assert!(!definitions_seen(&status(0, 1, serde_json::json!([]))).1);
        assert!(!definitions_seen(&status(0, 0, serde_json::json!([2]))).1);
    }

    #[test]
    fn a_removed_node_writable_again_or_connected_fails() {
        let restart = mark(5_000_000, 5_000_100, Action::Start(3));
        let stopped = || Ok(mark(8_000_000, 8_100_000, Action::Stop(3)));
        let fenced = serde_json::json!({"writable": false, "why_not": "x", "definition_version": 1,
            "peers": [{"id": 1, "connected": false}, {"id": 2, "connected": false}]});
        let quiet = log(vec![ev(3, 100, Kind::QuorumGained), ev(3, 3_000_000, Kind::QuorumLost)]);
        assert!(stays_out(&quiet, &restart, Ok(fenced.clone()), stopped()).is_ok());
        let gained = log(vec![ev(3, 6_000_000, Kind::QuorumGained)]);
        assert!(stays_out(&gained, &restart, Ok(fenced.clone()), stopped()).is_err());
        let mut connected = fenced.clone();
        connected["peers"][0]["connected"] = serde_json::json!(true);
        assert!(stays_out(&quiet, &restart, Ok(connected), stopped()).is_err());
        assert!(stays_out(&quiet, &restart, Ok(fenced), Err("did not exit".into())).is_err());
    }
}
