//! The scenarios: each drives a real cluster through faults and returns the checks to run
//! on the complete log once every node has stopped.

use std::thread::sleep;
use std::time::Duration;

use crate::checker::{
    fenced_within, healed_within, never_both_writable, never_fenced, no_peer_down, paused_wakes_fenced,
    rejoined, seen_down, Report,
};
use crate::cluster::{Cluster, Program, Spec, TieBreaker};
use crate::events::{Kind, Log, Mark};
use crate::faults::{groups, one_way, partition, set, Rule};
use crate::flood::{arrived, Flood, FLOOD_PORT};
use crate::kv::{
    acked_writes_stored, epochs_never_backwards, majority_kept_acking, minority_stopped_acking,
    minority_writes_again, read_databases, summary, times_in_order, Writers,
};
use crate::timing::{secs, us, Timing, HEAL_BOUND, REJOIN_BOUND};

/// The checks a scenario leaves to run on the complete log.
pub type Check = Box<dyn FnOnce(&Log, &mut Report)>;

/// One scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its name, for filters: `cargo test -p quorate-e2e --test netns -- NAME`.
    pub name: &'static str,
    /// What it does, in one line.
    pub about: &'static str,
    /// The cluster it starts.
    pub spec: Spec,
    /// Drives the cluster; `Err` is a failure of the scenario itself (a wait timed out).
    pub drive: fn(&mut Cluster) -> Result<Check, String>,
}

/// How long a fresh cluster may take until every node is writable (debug builds, 2 cores).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Quiet time after the cluster is writable, before the first fault.
const SETTLE: Duration = Duration::from_millis(500);
/// How long partitions and one-way cuts are held: well past the 1 s down floor, so the
/// majority also declares the minority down.
const HOLD: Duration = Duration::from_secs(3);
/// Quiet time after the last heal before the checked span ends.
const AFTER: Duration = Duration::from_millis(500);
/// How long the flapping link flaps.
const FLAP_FOR: Duration = Duration::from_secs(10);
/// Each flap cuts the link for a random time in this range (milliseconds): mostly a few
/// hundred, sometimes longer than the lease, so that both "too short to fence" and "must
/// fence" occur.
const FLAP_CUT_MS: (u64, u64) = (100, 1_500);
/// And then reopens it for a random time in this range (milliseconds).
const FLAP_OPEN_MS: (u64, u64) = (100, 400);
/// When no cut drawn from [`FLAP_CUT_MS`] is longer than the fence bound (1.059 s with the
/// LAN timing; it happens in about 2% of seeds), one cut, picked by the seed, is redrawn
/// from this range (milliseconds), so that every run checks fencing at least once. A cut
/// as measured by the harness lasts at least its planned time (the `nft` command adds to
/// it), so a planned cut longer than the bound is a long cut in the check too.
const FLAP_LONG_CUT_MS: (u64, u64) = (1_300, 1_500);
/// The key-value scenario: writes before the cut, and after the heal.
const KV_BEFORE_CUT: Duration = Duration::from_millis(1_500);
const KV_AFTER_HEAL: Duration = Duration::from_millis(1_500);
/// The random loss scenario's rate and length.
const LOSS_PERCENT: u8 = 30;
const LOSS_FOR: Duration = Duration::from_secs(20);
/// The measured drop rate must fall in this band (percent) around [`LOSS_PERCENT`], or the
/// rule did not do what the scenario claims (a rule that never matched is a lossless run).
const LOSS_BAND_PERCENT: (f64, f64) = (25.0, 35.0);
/// Fewest datagrams the loss rule must have seen for its rate to mean something: at 1000
/// datagrams and 30% the standard deviation of the rate is 1.4 points, so the band is 3.5
/// of them wide on each side. 5 nodes heartbeat 4 peers 10 times a second: ~4000 in 20 s.
const LOSS_SEEN_MIN: u64 = 1_000;

/// Every scenario, in the order they run.
pub fn all() -> Vec<Scenario> {
    let mut all = vec![
        Scenario {
            name: "clean-split-5",
            about: "5 nodes, clean partition {1,2} | {3,4,5} for 3 s, then heal; bad datagrams flood \
                    nodes 1 and 3 throughout",
            spec: Spec::lan(5),
            drive: |c| split(c, &[1, 2], &[3, 4, 5], &[1, 3]),
        },
        Scenario {
            name: "kv-writes-split-5",
            about: "5 quorate-kv nodes (redb), 2 writers per node; partition {1,2} | {3,4,5} for 3 s, heal; \
                    answers checked against every node's database",
            spec: Spec { program: Program::Kv, ..Spec::lan(5) },
            drive: |c| kv_split(c, &[1, 2], &[3, 4, 5]),
        },
        Scenario {
            name: "tie-break-4",
            about:
                "4 nodes, tie_breaker = \"lowest-id\", partition {1,2} | {3,4} for 3 s: {1,2} keeps writing",
            spec: Spec { tie_breaker: TieBreaker::LowestId, ..Spec::lan(4) },
            drive: |c| split(c, &[3, 4], &[1, 2], &[]),
        },
        Scenario {
            name: "one-way-cut",
            about:
                "5 nodes, node 5's outgoing datagrams dropped for 3 s, heal, then its incoming ones for 3 s",
            spec: Spec::lan(5),
            drive: one_way_cut,
        },
        Scenario {
            name: "flapping-link",
            about: "5 nodes, link {1,2} | {3,4,5} cut and reopened at random for 10 s (QE2E_SEED replays)",
            spec: Spec::lan(5),
            drive: flapping,
        },
        Scenario {
            name: "random-loss-30",
            about: "5 nodes, 30% of all datagrams dropped at random for 20 s: nobody may fence",
            spec: Spec::lan(5),
            drive: random_loss,
        },
        Scenario {
            name: "pause-majority-node",
            about: "5 nodes, SIGSTOP node 3 for 2 x lease (1.8 s), SIGCONT",
            spec: Spec::lan(5),
            drive: pause,
        },
        Scenario {
            name: "kill-restart",
            about: "3 nodes, SIGKILL node 2, restart it 2 s later",
            spec: Spec::lan(3),
            drive: kill_restart,
        },
        Scenario {
            name: "half-open-dial",
            about: "3 nodes, restart node 3 while node 1's last handshake packets to node 3 are dropped: \
                    node 1's dial completes only on its side; the link must come up on node 3's dial",
            spec: Spec::lan(3),
            drive: crate::dial_race::half_open_dial,
        },
        Scenario {
            name: "mixed-presets",
            about: "3 nodes, node 1 on preset wan (2.5 s lease), 2 and 3 on lan (1 s floor): cut node 1 \
                    off for 5 s; 2 and 3 call it down (and fenced) only after it fenced itself",
            spec: Spec { wan: &[1], ..Spec::lan(3) },
            drive: mixed_presets,
        },
        Scenario {
            name: "mismatched-members",
            about: "a 3 -> 5 rollout half done: 1 and 2 list members 1-3, node 3 and the new 4 and 5 list \
                    1-5; nodes of the two definitions are never writable at once, connected or split \
                    {1,2} | {3,4,5}, and every node that hears the other definition says so",
            spec: Spec {
                members_of: Some(|id| if id <= 2 { 3 } else { 5 }),
                start_later: &[4, 5],
                ..Spec::lan(5)
            },
            drive: mismatched_members,
        },
        Scenario {
            name: "restart-clock-behind",
            about: "3 nodes, SIGKILL node 2 and restart it with its wall clock one hour behind \
                    (libfaketime), after 2 s and again after 0.3 s: it rejoins each time with the \
                    last incarnation + 1 and a higher epoch",
            spec: Spec::lan(3),
            drive: restart_clock_behind,
        },
        Scenario {
            name: "rolling-restart",
            about: "5 nodes, each in turn: SIGTERM, restart, wait until all are writable",
            spec: Spec::lan(5),
            drive: rolling_restart,
        },
    ];
    all.extend(crate::failover::scenarios());
    all
}

/// Waits until every node is writable, lets the cluster settle, and marks the start of
/// the checked span. Returns the mark and when the last node became writable.
pub(crate) fn started(c: &mut Cluster) -> Result<(Mark, u64), String> {
    let ready = c.wait_all_writable(START_TIMEOUT)?;
    sleep(SETTLE);
    Ok((c.note("all nodes writable; checked span begins"), ready))
}

/// Waits for the cluster to heal. A timeout is not an error here: the checks that follow
/// measure the heal against its bound and say what is missing.
pub(crate) fn settle_after_heal(c: &mut Cluster, bound: Duration) {
    let _ = c.wait_all_writable(bound + Duration::from_secs(2));
    sleep(AFTER);
}

/// Ends the checked span after asking every node's `/status`.
pub(crate) fn finish(c: &mut Cluster) -> (Result<String, String>, Mark) {
    let status = c.check_status_all_writable();
    (status, c.note("checked span ends; stopping all nodes"))
}

/// A clean partition, held for [`HOLD`], then healed. With `flood_at` not empty, a flood of
/// bad datagrams ([`crate::flood`]) hits those nodes' QUIC ports from before the cut until
/// after the heal, and every decision must still be the one a quiet run makes (G5).
fn split(
    c: &mut Cluster,
    minority: &'static [u64],
    majority: &'static [u64],
    flood_at: &'static [u64],
) -> Result<Check, String> {
    let (begin, ready) = started(c)?;
    let origin = c.log().origin_us;
    let flood = if flood_at.is_empty() {
        None
    } else {
        c.count_from(FLOOD_PORT, flood_at)?;
        let flood = Flood::start(&c.netns_path(), flood_at);
        c.note(&format!("flood of bad datagrams at {} begins", set(flood_at)));
        sleep(SETTLE);
        Some(flood)
    };
    let cut = c.faults(&partition(minority, majority), &format!("cut {}", groups(minority, majority)))?;
    sleep(HOLD);
    let heal = c.heal()?;
    settle_after_heal(c, HEAL_BOUND);
    let flooded = flood.map(|f| {
        let stats = f.finish();
        c.note("flood ends");
        stats.and_then(|s| c.counted_from().and_then(|counted| arrived(&s, &counted)))
    });
    let (status, end) = finish(c);
    let timing = c.spec().timing;
    let all = c.spec().ids();
    Ok(Box::new(move |log, r| {
        r.info("all writable after start", secs(ready as i64 - origin as i64));
        if let Some(flooded) = flooded {
            r.check(&format!("bad datagrams at {} (G5)", set(flood_at)), flooded);
        }
        r.check(
            &format!("minority {} fenced after the cut", set(minority)),
            fenced_within(log, minority, &cut, heal.at_us, timing.fence_bound()),
        );
        r.check(&format!("majority {}", set(majority)), never_fenced(log, majority, begin.at_us, end.at_us));
        r.check("majority sees the minority down", seen_down(log, majority, minority, &cut, heal.at_us));
        r.check("heal", healed_within(log, &all, &heal, HEAL_BOUND));
        r.check("status", status);
    }))
}

/// A rolling lan -> wan change, one node done: node 1 runs `wan`, the others `lan`. Node 1
/// is cut off for longer than its own fence bound; the others must keep the floor its
/// 2.5 s lease needs (2.55 s), not their own 1 s, before they call it down or fenced.
fn mixed_presets(c: &mut Cluster) -> Result<Check, String> {
    let (begin, _) = started(c)?;
    let wan_hold = Duration::from_secs(5);
    let cut = c.faults(&partition(&[1], &[2, 3]), "cut {1} | {2,3}")?;
    sleep(wan_hold);
    let heal = c.heal()?;
    settle_after_heal(c, HEAL_BOUND);
    let (status, end) = finish(c);
    let wan = Timing::WAN;
    let lan_floor_for_wan = wan.lease.mul_f64((1.0 + wan.max_clock_drift) / (1.0 - wan.max_clock_drift));
    Ok(Box::new(move |log, r| {
        r.check(
            "node 1 (wan) fenced after the cut",
            fenced_within(log, &[1], &cut, heal.at_us, wan.fence_bound()),
        );
        r.check("nodes 2 and 3 (lan)", never_fenced(log, &[2, 3], begin.at_us, end.at_us));
        r.check(
            "nodes 2 and 3 call node 1 down no sooner than its lease needs",
            down_no_sooner_than(log, &[2, 3], 1, &cut, lan_floor_for_wan),
        );
        r.check(
            "nodes 2 and 3 announce node 1 fenced",
            announced_fenced(log, &[2, 3], 1, cut.at_us, heal.at_us),
        );
        r.check("heal", healed_within(log, &[1, 2, 3], &heal, HEAL_BOUND));
        r.check("status", status);
    }))
}

/// Nodes 1 and 2 list members 1-3; node 3 and the new nodes 4 and 5 list 1-5 (node 3 was
/// switched first). Nodes 3, 1 and 2 start first and must see the mismatch; then 4 and 5
/// start. At no instant may a node of the old definition and one of the new both write.
fn mismatched_members(c: &mut Cluster) -> Result<Check, String> {
    let begin = c.note("nodes 1-3 started; 4 and 5 not yet");
    let seen = |log: &Log, node: u64, peer: u64| {
        log.events.iter().any(|e| e.node == node && e.kind == Kind::ConfigMismatch && e.peer == Some(peer))
    };
    c.wait_until("nodes 1, 2 and 3 see each other's definition", START_TIMEOUT, |log| {
        seen(log, 1, 3) && seen(log, 2, 3) && seen(log, 3, 1) && seen(log, 3, 2)
    })?;
    let mismatch = c.note("config_mismatch seen on 1, 2 (about 3) and 3 (about 1, 2)");
    sleep(SETTLE);
    c.spawn(4)?;
    c.spawn(5)?;
    // 4 and 5 hear only nodes of their own definition (1 and 2 do not list them): with 3
    // they hold three of five votes.
    c.wait_until("nodes 4 and 5 are writable", START_TIMEOUT, |log| {
        let now = crate::timing::monotonic_us();
        log.writable_at(4, now) && log.writable_at(5, now)
    })?;
    sleep(SETTLE);
    let status = c.status(1).and_then(|s| mismatch_in_status(&s, 3));
    let cut = c.faults(&partition(&[1, 2], &[3, 4, 5]), "cut {1,2} | {3,4,5}")?;
    sleep(HOLD);
    let heal = c.heal()?;
    sleep(HOLD);
    let end = c.note("checked span ends; stopping all nodes");
    Ok(Box::new(move |log, r| {
        r.check(
            "never a node of {1,2} writable with one of {3,4,5}",
            never_both_writable(log, &[1, 2], &[3, 4, 5]),
        );
        r.check(
            "nodes 1, 2 and 3 never writable once they heard the other definition",
            never_writable_after(log, &[(1, 3), (2, 3), (3, 1)], end.at_us),
        );
        r.check("/status of node 1 names node 3's definition", status);
        r.info(
            "span",
            format!(
                "mismatch seen {} after the start; cut at {}, healed at {}",
                secs(mismatch.at_us as i64 - begin.at_us as i64),
                secs(cut.at_us as i64 - begin.at_us as i64),
                secs(heal.at_us as i64 - begin.at_us as i64)
            ),
        );
    }))
}

/// Checks that `node`'s `/status` lists `peer` as running another definition, in words that
/// name both definitions' members.
fn mismatch_in_status(status: &serde_json::Value, peer: u64) -> Result<String, String> {
    let listed =
        status["mismatched_peers"].as_array().is_some_and(|a| a.iter().any(|p| p.as_u64() == Some(peer)));
    let text: Vec<&str> =
        status["mismatched"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
    let own = status["definition"].as_str().unwrap_or("");
    let names = text.iter().any(|t| t.contains(&format!("node {peer} runs definition")) && t.contains("5:1"));
    if listed && names && own.contains("members 1:1,2:1,3:1;") {
        Ok(format!("this node: {own}; {}", text.join("; ")))
    } else {
        Err(format!("mismatched_peers / mismatched / definition not as expected: {status}"))
    }
}

/// Each `(node, peer)`: once `node` logged `config_mismatch` about `peer`, it is never
/// writable again before `end`.
fn never_writable_after(log: &Log, pairs: &[(u64, u64)], end: u64) -> Result<String, String> {
    let mut out = Vec::new();
    for &(node, peer) in pairs {
        let Some(seen) = log
            .events
            .iter()
            .find(|e| e.node == node && e.kind == Kind::ConfigMismatch && e.peer == Some(peer))
            .map(|e| e.at_us)
        else {
            return Err(format!("node {node} never logged config_mismatch about node {peer}"));
        };
        let gained = log
            .events
            .iter()
            .find(|e| e.node == node && e.kind == Kind::QuorumGained && e.at_us > seen && e.at_us < end);
        if let Some(g) = gained {
            return Err(format!(
                "node {node} became writable at {} after seeing the mismatch",
                secs(span(log, g.at_us))
            ));
        }
        // The node fences in the same step that hears the mismatch; its quorum_lost is
        // stamped by its clock a few microseconds later.
        if log.writable_at(node, seen + 1_000) {
            return Err(format!("node {node} still writable 1 ms after seeing the mismatch"));
        }
        out.push(format!("node {node} about {peer}"));
    }
    Ok(out.join(", "))
}

fn span(log: &Log, t: u64) -> i64 {
    t as i64 - log.origin_us as i64
}

/// No node of `observers` calls `target` down sooner than `floor` after the cut.
fn down_no_sooner_than(
    log: &Log,
    observers: &[u64],
    target: u64,
    cut: &Mark,
    floor: Duration,
) -> Result<String, String> {
    let mut out = Vec::new();
    for &o in observers {
        let down = log.events.iter().find(|e| {
            e.node == o && e.kind == Kind::PeerDown && e.peer == Some(target) && e.at_us >= cut.at_us
        });
        let Some(down) = down else { return Err(format!("node {o} never called node {target} down")) };
        let after = Duration::from_micros(down.at_us.saturating_sub(cut.at_us));
        // The last heartbeat node `o` heard may predate the cut by up to one wan interval.
        if after + Timing::WAN.heartbeat_interval < floor {
            return Err(format!(
                "node {o} called node {target} down {} after the cut (floor {floor:?})",
                secs_d(after)
            ));
        }
        out.push(format!("node {o} after {}", secs_d(after)));
    }
    Ok(out.join(", "))
}

/// Some node of `observers` logged `peer_fenced` about `target` within `[from, to]`.
fn announced_fenced(log: &Log, observers: &[u64], target: u64, from: u64, to: u64) -> Result<String, String> {
    let first = log.events.iter().find(|e| {
        observers.contains(&e.node)
            && e.kind == Kind::PeerFenced
            && e.peer == Some(target)
            && e.at_us >= from
            && e.at_us <= to
    });
    match first {
        Some(e) => Ok(format!(
            "node {} at {} after the cut",
            e.node,
            secs_d(Duration::from_micros(e.at_us.saturating_sub(from)))
        )),
        None => Err(format!("no peer_fenced about node {target}")),
    }
}

fn secs_d(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The example key-value service under load through a clean partition: see [`crate::kv`].
fn kv_split(c: &mut Cluster, minority: &'static [u64], majority: &'static [u64]) -> Result<Check, String> {
    let (begin, _) = started(c)?;
    let all = c.spec().ids();
    let writers = Writers::start(&c.netns_path(), &all);
    let load = c.note("writers started");
    sleep(KV_BEFORE_CUT);
    let cut = c.faults(&partition(minority, majority), &format!("cut {}", groups(minority, majority)))?;
    sleep(HOLD);
    let heal = c.heal()?;
    settle_after_heal(c, HEAL_BOUND);
    sleep(KV_AFTER_HEAL);
    let stop = c.note("writers stop");
    let attempts = writers.finish();
    let (status, end) = finish(c);
    let dirs: Vec<_> = all.iter().map(|&id| (id, c.data_dir(id))).collect();
    let timing = c.spec().timing;
    Ok(Box::new(move |log, r| {
        let attempts = match attempts {
            Ok(a) => a,
            Err(e) => return r.check("writers", Err(e)),
        };
        r.info("writes", summary(&attempts, &all));
        r.check("answer times", times_in_order(&attempts));
        // The nodes have exited (the runner stops them before the checks): the files are free.
        match read_databases(&dirs) {
            Ok(dbs) => {
                r.check("acknowledged writes in the databases", acked_writes_stored(&attempts, &dbs));
                r.check("stored epochs never go backwards", epochs_never_backwards(&dbs));
            }
            Err(e) => r.check("databases", Err(e)),
        }
        r.check(
            &format!("minority {} stopped acknowledging", set(minority)),
            minority_stopped_acking(&attempts, log, minority, &cut, &heal, timing),
        );
        r.check(
            &format!("majority {} kept acknowledging", set(majority)),
            majority_kept_acking(&attempts, majority, load.done_us, stop.at_us),
        );
        r.check(
            "minority writes again after the heal",
            minority_writes_again(&attempts, minority, &cut, &heal),
        );
        r.check(
            &format!("minority {} fenced after the cut", set(minority)),
            fenced_within(log, minority, &cut, heal.at_us, timing.fence_bound()),
        );
        r.check(&format!("majority {}", set(majority)), never_fenced(log, majority, begin.at_us, end.at_us));
        r.check("heal", healed_within(log, &all, &heal, HEAL_BOUND));
        r.check("status", status);
    }))
}

fn one_way_cut(c: &mut Cluster) -> Result<Check, String> {
    let (begin, _) = started(c)?;
    let out = c.faults(&one_way(&[5], &[1, 2, 3, 4]), "one-way cut: node 5 -> {1,2,3,4} dropped")?;
    sleep(HOLD);
    let heal_out = c.heal()?;
    settle_after_heal(c, HEAL_BOUND);
    let inbound = c.faults(&one_way(&[1, 2, 3, 4], &[5]), "one-way cut: {1,2,3,4} -> node 5 dropped")?;
    sleep(HOLD);
    let heal_in = c.heal()?;
    settle_after_heal(c, HEAL_BOUND);
    let (status, end) = finish(c);
    let bound = c.spec().timing.fence_bound();
    let all = c.spec().ids();
    let rest = [1, 2, 3, 4];
    Ok(Box::new(move |log, r| {
        r.check(
            "node 5 sending into the void: fenced",
            fenced_within(log, &[5], &out, heal_out.at_us, bound),
        );
        r.check("  the others saw it down", seen_down(log, &rest, &[5], &out, heal_out.at_us));
        r.check("  heal", healed_within(log, &all, &heal_out, HEAL_BOUND));
        r.check("node 5 hearing nothing: fenced", fenced_within(log, &[5], &inbound, heal_in.at_us, bound));
        let view = seen_down(log, &[5], &rest, &inbound, heal_in.at_us);
        r.info("  node 5's own view", view.unwrap_or_else(|e| e));
        r.check("  heal", healed_within(log, &all, &heal_in, HEAL_BOUND));
        r.check("{1,2,3,4} in both phases", never_fenced(log, &rest, begin.at_us, end.at_us));
        r.check("status", status);
    }))
}

fn flapping(c: &mut Cluster) -> Result<Check, String> {
    let (minority, majority): (&[u64], &[u64]) = (&[1, 2], &[3, 4, 5]);
    let seed = seed();
    let plan = flap_schedule(seed, c.spec().timing.fence_bound());
    let (begin, _) = started(c)?;
    let mut cuts = Vec::new();
    for (cut_for, open_for) in plan {
        let cut =
            c.faults(&partition(minority, majority), &format!("flap: cut {}", groups(minority, majority)))?;
        sleep(cut_for);
        let open = c.faults(&[], "flap: reopen")?;
        cuts.push((cut, open));
        sleep(open_for);
    }
    let last = cuts.last().map(|(_, open)| open.clone()).ok_or("no flap happened")?;
    settle_after_heal(c, HEAL_BOUND);
    let (status, end) = finish(c);
    let timing = c.spec().timing;
    let all = c.spec().ids();
    Ok(Box::new(move |log, r| {
        r.info("seed", format!("QE2E_SEED={seed} ({} cuts in {})", cuts.len(), secs(us(FLAP_FOR) as i64)));
        r.check(&format!("majority {}", set(majority)), never_fenced(log, majority, begin.at_us, end.at_us));
        r.check("cuts longer than the fence bound", long_cuts_fenced(log, minority, &cuts, timing));
        r.check("heal after the last flap", healed_within(log, &all, &last, HEAL_BOUND));
        r.check("status", status);
    }))
}

/// The flapping link's plan from `seed`: (cut, reopen) durations drawn from
/// [`FLAP_CUT_MS`] and [`FLAP_OPEN_MS`] until they fill [`FLAP_FOR`], with at least one cut
/// longer than `fence_bound` (see [`FLAP_LONG_CUT_MS`]).
fn flap_schedule(seed: u64, fence_bound: Duration) -> Vec<(Duration, Duration)> {
    let mut rng = SplitMix64(seed);
    let mut plan = Vec::new();
    let mut total = Duration::ZERO;
    // Bounded: every step adds at least FLAP_CUT_MS.0 + FLAP_OPEN_MS.0 (200 ms).
    while total < FLAP_FOR {
        let cut = Duration::from_millis(rng.between(FLAP_CUT_MS));
        let open = Duration::from_millis(rng.between(FLAP_OPEN_MS));
        total += cut + open;
        plan.push((cut, open));
    }
    if !plan.iter().any(|&(cut, _)| cut > fence_bound) {
        // `plan` is not empty: FLAP_FOR > 0. The `max` keeps the cut long should a slower
        // timing put the bound past FLAP_LONG_CUT_MS.
        let i = (rng.next() % plan.len() as u64) as usize;
        plan[i].0 = Duration::from_millis(rng.between(FLAP_LONG_CUT_MS)).max(fence_bound * 5 / 4);
    }
    plan
}

/// In every cut that lasted longer than the fence bound, every minority node was fenced by
/// the bound; for shorter cuts, reports how many fenced anyway (allowed: the lease may run
/// out before a short cut ends). Fails if no cut was long enough to require a fence.
fn long_cuts_fenced(
    log: &Log,
    minority: &[u64],
    cuts: &[(Mark, Mark)],
    timing: Timing,
) -> Result<String, String> {
    let bound = us(timing.fence_bound());
    let mut long = 0;
    let mut fence_times = Vec::new();
    let mut short_fenced = 0;
    for (cut, open) in cuts {
        if open.at_us.saturating_sub(cut.at_us) > bound {
            long += 1;
            let deadline = cut.at_us + bound;
            for &node in minority {
                if log.writable_at(node, deadline) {
                    return Err(format!(
                        "node {node} still writable {} into a {} cut",
                        secs(bound as i64),
                        secs((open.at_us - cut.at_us) as i64)
                    ));
                }
                if let Some(lost) = log.of(node, Kind::QuorumLost, cut.at_us, deadline).next() {
                    fence_times.push(lost.at_us - cut.at_us);
                }
            }
        } else if minority
            .iter()
            .any(|&n| log.of(n, Kind::QuorumLost, cut.at_us, open.at_us).next().is_some())
        {
            short_fenced += 1;
        }
    }
    if long == 0 {
        return Err(format!(
            "none of the {} cuts lasted longer than the fence bound {}: no fence was checked",
            cuts.len(),
            secs(bound as i64)
        ));
    }
    let fence = match (fence_times.iter().min(), fence_times.iter().max()) {
        (Some(&lo), Some(&hi)) => format!("fenced {}-{} after the cut", secs(lo as i64), secs(hi as i64)),
        _ => "no quorum_lost logged".into(),
    };
    Ok(format!(
        "{long} of {} cuts; {fence} (bound {}); shorter cuts that fenced anyway: {short_fenced}",
        cuts.len(),
        secs(bound as i64)
    ))
}

fn random_loss(c: &mut Cluster) -> Result<Check, String> {
    let (begin, _) = started(c)?;
    let loss = c.faults(
        &[Rule::Loss { percent: LOSS_PERCENT }],
        &format!("{LOSS_PERCENT}% random loss on every link"),
    )?;
    sleep(LOSS_FOR);
    let dropped = c.dropped();
    let heal = c.heal()?;
    settle_after_heal(c, HEAL_BOUND);
    let (status, end) = finish(c);
    let all = c.spec().ids();
    Ok(Box::new(move |log, r| {
        r.check("datagrams dropped", loss_in_band(dropped, LOSS_BAND_PERCENT, LOSS_SEEN_MIN));
        let count = |k| all.iter().map(|&n| log.of(n, k, loss.at_us, heal.at_us).count()).sum::<usize>();
        r.info(
            "suspicions during the loss",
            format!("{} peer_suspect, {} peer_down", count(Kind::PeerSuspect), count(Kind::PeerDown)),
        );
        r.check("no false fencing", never_fenced(log, &all, begin.at_us, end.at_us));
        r.check("status", status);
    }))
}

/// The loss rule's counters, `(seen, dropped)`, show a drop rate inside `band` (percent)
/// over at least `seen_min` datagrams: the scenario really was lossy at about its rate.
fn loss_in_band(
    counters: Result<(u64, u64), String>,
    band: (f64, f64),
    seen_min: u64,
) -> Result<String, String> {
    let (seen, lost) = counters.map_err(|e| format!("cannot read the loss rule's counters: {e}"))?;
    if seen < seen_min {
        return Err(format!("the loss rule saw {seen} datagrams, fewer than {seen_min}: no traffic to lose"));
    }
    let pct = lost as f64 * 100.0 / seen as f64;
    let text = format!("{lost} of {seen} ({pct:.1}%, band {:.0}-{:.0}%)", band.0, band.1);
    if (band.0..=band.1).contains(&pct) {
        Ok(text)
    } else {
        Err(format!("{text}: the drop rate is outside the band"))
    }
}

fn pause(c: &mut Cluster) -> Result<Check, String> {
    let node = 3;
    let (begin, _) = started(c)?;
    let timing = c.spec().timing;
    let stop = c.pause(node)?;
    sleep(timing.lease * 2);
    let cont = c.resume(node)?;
    let _ = c.wait_all_writable(HEAL_BOUND + Duration::from_secs(2));
    // Long enough for the woken node to have declared its peers down if it blamed them.
    sleep(timing.down_after_min + AFTER);
    let (status, end) = finish(c);
    let others: Vec<u64> = c.spec().ids().into_iter().filter(|&n| n != node).collect();
    Ok(Box::new(move |log, r| {
        r.check(
            "paused node 3 wakes fenced (G3)",
            paused_wakes_fenced(log, node, &stop, &cont, timing.fence_bound()),
        );
        r.check("the others saw it down", seen_down(log, &others, &[node], &stop, cont.at_us));
        r.check("rejoined after SIGCONT (G4)", rejoined(log, node, &cont, HEAL_BOUND));
        r.check("convicted nobody after waking (G6)", no_peer_down(log, node, cont.at_us, end.at_us));
        r.check(&format!("others {}", set(&others)), never_fenced(log, &others, begin.at_us, end.at_us));
        r.check("status", status);
    }))
}

fn kill_restart(c: &mut Cluster) -> Result<Check, String> {
    let node = 2;
    let (begin, _) = started(c)?;
    let kill = c.kill(node)?;
    sleep(Duration::from_secs(2));
    let start = c.spawn(node)?;
    let _ = c.wait_all_writable(REJOIN_BOUND + Duration::from_secs(2));
    sleep(AFTER);
    let (status, end) = finish(c);
    let others: Vec<u64> = c.spec().ids().into_iter().filter(|&n| n != node).collect();
    Ok(Box::new(move |log, r| {
        r.check("the others saw node 2 down", seen_down(log, &others, &[node], &kill, start.at_us));
        r.check("restarted node 2 rejoined (G4)", rejoined(log, node, &start, REJOIN_BOUND));
        r.check(&format!("others {}", set(&others)), never_fenced(log, &others, begin.at_us, end.at_us));
        r.check("status", status);
    }))
}

/// How far back the restarted node's wall clock is set: a host that booted before NTP
/// synced. Far more than any life of a node in this scenario lasts.
const CLOCK_BEHIND: &str = "-1h";

/// A node whose wall clock is an hour behind its previous life restarts, twice. Before the
/// data directory its incarnation (wall-clock milliseconds) was below the previous one and
/// every peer refused it as stale; now it must take `last + 1` and rejoin. The incarnation
/// being exactly one more than the previous life's (read from the epochs its events carry,
/// `epoch >> 20`) shows both that the clock really was behind in the new process and that
/// the stored incarnation was used.
fn restart_clock_behind(c: &mut Cluster) -> Result<Check, String> {
    let node = 2;
    let lib = libfaketime()?;
    let lib = lib.display().to_string();
    // FAKETIME_DONT_FAKE_MONOTONIC: only the wall clock goes back; the node's timers and
    // the monotonic stamps of its event log stay true.
    let env =
        [("LD_PRELOAD", lib.as_str()), ("FAKETIME", CLOCK_BEHIND), ("FAKETIME_DONT_FAKE_MONOTONIC", "1")];
    let (begin, _) = started(c)?;
    let mut lives = Vec::new();
    // First down long enough for the peers to declare it down (a reboot); then a quick
    // restart, before the down floor, while the peers still hold its previous incarnation.
    for (round, down) in [(1, Duration::from_secs(2)), (2, Duration::from_millis(300))] {
        let kill = c.kill(node)?;
        sleep(down);
        let start = c.spawn_with_env(node, &env)?;
        let _ = c.wait_all_writable(REJOIN_BOUND + Duration::from_secs(2));
        sleep(AFTER);
        lives.push((round, down, kill, start));
    }
    let (status, end) = finish(c);
    let others: Vec<u64> = c.spec().ids().into_iter().filter(|&n| n != node).collect();
    Ok(Box::new(move |log, r| {
        for (round, down, kill, start) in &lives {
            r.info(
                &format!("restart {round}"),
                format!("after {} down, wall clock {CLOCK_BEHIND} (libfaketime)", secs(us(*down) as i64)),
            );
            if *round == 1 {
                r.check("  the others saw node 2 down", seen_down(log, &others, &[node], kill, start.at_us));
            }
            r.check("  rejoined with a higher epoch (G4)", rejoined(log, node, start, REJOIN_BOUND));
            r.check("  incarnation is the last one + 1", one_past_the_last(log, node, start));
        }
        r.check(&format!("others {}", set(&others)), never_fenced(log, &others, begin.at_us, end.at_us));
        r.check("status", status);
    }))
}

/// The life that began at `start` has incarnation (`epoch >> 20`) exactly one more than the
/// previous life's: larger, as G4 needs, and not the wall clock, which was behind.
fn one_past_the_last(log: &Log, node: u64, start: &Mark) -> Result<String, String> {
    let incarnation = |epoch: u64| epoch >> 20;
    let before =
        log.max_epoch_before(node, start.at_us).map(incarnation).ok_or("no epoch before the restart")?;
    let after = log
        .of(node, Kind::QuorumGained, start.at_us, u64::MAX)
        .next()
        .and_then(|e| e.epoch)
        .map(incarnation)
        .ok_or("no quorum_gained after the restart")?;
    match after.checked_sub(before) {
        Some(1) => Ok(format!("{before} -> {after}")),
        Some(0) | None => Err(format!("incarnation {after} is not above the previous life's {before}")),
        Some(d) => Err(format!(
            "incarnation {after} is {d} above the previous life's {before}: the wall clock was not set back \
             (libfaketime not in effect?)"
        )),
    }
}

/// libfaketime's preload library, where Debian, Ubuntu and Fedora install it.
fn libfaketime() -> Result<std::path::PathBuf, String> {
    let mut dirs: Vec<std::path::PathBuf> =
        ["/usr/lib/faketime", "/usr/lib64/faketime", "/usr/local/lib/faketime"].map(Into::into).into();
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.flatten().map(|e| e.path().join("faketime")));
    }
    dirs.into_iter().map(|d| d.join("libfaketime.so.1")).find(|p| p.is_file()).ok_or_else(|| {
        "libfaketime.so.1 not found: install the faketime package (apt-get install faketime)".into()
    })
}

fn rolling_restart(c: &mut Cluster) -> Result<Check, String> {
    started(c)?;
    let mut rounds = Vec::new();
    for node in c.spec().ids() {
        let term = c.terminate(node)?;
        let start = c.spawn(node)?;
        c.wait_all_writable(REJOIN_BOUND + Duration::from_secs(2))?;
        sleep(Duration::from_millis(300));
        rounds.push((node, term, start));
    }
    let (status, end) = finish(c);
    let all = c.spec().ids();
    Ok(Box::new(move |log, r| {
        for (i, (node, term, start)) in rounds.iter().enumerate() {
            let until = rounds.get(i + 1).map_or(end.at_us, |next| next.1.at_us);
            let others: Vec<u64> = all.iter().copied().filter(|n| n != node).collect();
            r.info(
                &format!("node {node}"),
                format!("SIGTERM to exit {}", secs((term.done_us - term.at_us) as i64)),
            );
            r.check("  rejoined (G4)", rejoined(log, *node, start, REJOIN_BOUND));
            r.check(&format!("  others {}", set(&others)), never_fenced(log, &others, term.at_us, until));
        }
        r.check("status", status);
    }))
}

/// The flapping scenario's seed: `QE2E_SEED` if set, else from the clock.
fn seed() -> u64 {
    std::env::var("QE2E_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    })
}

/// SplitMix64: a small, seedable generator, enough to pick flap durations.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]` (modulo bias is irrelevant here).
    fn between(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_unique() {
        let mut names: Vec<&str> = all().iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all().len());
    }

    #[test]
    fn loss_outside_the_band_or_without_traffic_fails() {
        let band = LOSS_BAND_PERCENT;
        assert!(loss_in_band(Ok((4_000, 1_200)), band, LOSS_SEEN_MIN).is_ok());
        assert!(loss_in_band(Ok((4_000, 0)), band, LOSS_SEEN_MIN).is_err(), "a rule that never matched");
        assert!(loss_in_band(Ok((4_000, 2_000)), band, LOSS_SEEN_MIN).is_err());
        assert!(loss_in_band(Ok((10, 3)), band, LOSS_SEEN_MIN).is_err(), "too few datagrams");
        assert!(loss_in_band(Err("no table".into()), band, LOSS_SEEN_MIN).is_err());
    }

    #[test]
    fn every_flap_schedule_has_a_cut_longer_than_the_fence_bound_and_fills_the_time() {
        let bound = Timing::LAN.fence_bound();
        assert!(Duration::from_millis(FLAP_LONG_CUT_MS.0) > bound);
        let mut redrawn = 0;
        for seed in 0..2_000 {
            let plan = flap_schedule(seed, bound);
            assert_eq!(plan, flap_schedule(seed, bound), "seed {seed} does not replay");
            assert!(plan.iter().any(|&(cut, _)| cut > bound), "seed {seed}: no long cut");
            let total: Duration = plan.iter().map(|&(c, o)| c + o).sum();
            assert!(total >= FLAP_FOR && total < FLAP_FOR + Duration::from_secs(2), "seed {seed}: {total:?}");
            let mut free = SplitMix64(seed);
            let drawn_long = plan.iter().any(|_| {
                let cut = free.between(FLAP_CUT_MS);
                free.between(FLAP_OPEN_MS);
                Duration::from_millis(cut) > bound
            });
            redrawn += u32::from(!drawn_long);
        }
        // The redraw is the exception it is meant to be.
        assert!(redrawn > 0 && redrawn < 200, "{redrawn} of 2000 schedules needed a redrawn cut");
        // With a bound no drawn cut can pass, every schedule gets its long cut by redrawing.
        let huge = Duration::from_millis(FLAP_CUT_MS.1 + 1);
        assert!(flap_schedule(3, huge).iter().any(|&(cut, _)| cut > huge));
    }

    #[test]
    fn flap_durations_stay_in_range_and_replay_from_the_seed() {
        let mut a = SplitMix64(7);
        let mut b = SplitMix64(7);
        for _ in 0..1000 {
            let x = a.between(FLAP_CUT_MS);
            assert!((FLAP_CUT_MS.0..=FLAP_CUT_MS.1).contains(&x));
            assert_eq!(x, b.between(FLAP_CUT_MS));
        }
    }
}
