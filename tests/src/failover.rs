//! The failover scenarios: three `quorate-failover` nodes share one directory; the active
//! node appends to the shared log the whole time; the harness cuts it off or pauses it, long
//! enough for a standby to take over, then heals. After the run the checker
//! ([`quorate_failover::check`]) reads the claims, the log and every node's ack log.
//!
//! ```text
//!   start ─► per episode:
//!     BEFORE and RECORDS_BEFORE_MIN appends ─► fault on the holder of the latest claim (split / one-way / SIGSTOP)
//!     ─► HOLD ─► heal (or SIGCONT) ─► settle ─► AFTER ─► episode ends
//!   after every node stopped: claims + log + acks ─► per episode (records in its span) and whole run
//! ```
//!
//! **With the gate** (`failover-*`) every episode must show one writer at every moment
//! ([`quorate_failover::Analysis::one_writer`]), a takeover by another node within
//! [`takeover_bound`] of the fault, the old holder's last decision to write within the
//! fence bound of a network cut, and every acknowledged append in the log.
//!
//! **Without the gate** (`failover-*-no-gate`, the negative control) the same drive must
//! show a split brain: the checker must fire on the real failure. An episode that does not
//! show one is followed by another, at most [`NAIVE_EPISODES_MAX`] in all; the scenario fails
//! only if none does. `QE2E_FAILOVER_EPISODES=N` runs exactly N episodes in every failover
//! scenario (no early stop), for figures such as "k of N".
//!
//! Each scenario prints a line `with quorate: ...` or `without quorate: ...` per episode, the
//! side-by-side comparison the README shows.
//!
//! **The shared directory is on tmpfs** (`/dev/shm`, when the machine has it): on a disk that
//! other processes keep busy, `fdatasync` can take hundreds of milliseconds, so the writer
//! would spend most of its time flushing and a SIGSTOP would mostly land in a flush instead
//! of between a decision to write and the write. tmpfs keeps each node's cycle what the
//! service makes it (the request's work, [`quorate_failover::Settings::pace`]) and the runs
//! comparable. What is checked (who wrote when, in which order, under which claim, and
//! whether every acknowledged append is there) does not depend on the medium; durability
//! across power loss is not tested here.

use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use quorate_failover::shared::{read_acks, ACKS_FILE};
use quorate_failover::{analyse, Ack, Analysis, Claim, How, Record, SharedDir};

use crate::checker::Report;
use crate::cluster::{Cluster, Program, Spec};
use crate::events::Mark;
use crate::faults::{one_way, partition, set};
use crate::scenarios::{finish, settle_after_heal, started, Scenario};
use crate::timing::{secs, us, Timing, HEAL_BOUND, SCHEDULING_MARGIN};

/// Nodes in every failover scenario: the active one and two standbys.
pub const NODES: u64 = 3;
/// How long the active node writes before each fault, at least.
const BEFORE: Duration = Duration::from_millis(1_000);
/// Records the holder must have appended in an episode before its fault, or the episode
/// checks nothing: the harness waits for them after [`BEFORE`], up to [`WRITING_TIMEOUT`].
const RECORDS_BEFORE_MIN: usize = 10;
/// How long a cut or a pause is held: past the takeover (about 1.2 s) and, without the gate,
/// past the old holder's next monitor round (1 s) after it.
const HOLD: Duration = Duration::from_millis(2_500);
/// Quiet time after the heal (the old holder steps down, the new one writes on).
const AFTER: Duration = Duration::from_millis(1_000);
/// How long the holder may take to append [`RECORDS_BEFORE_MIN`] records in an episode.
const WRITING_TIMEOUT: Duration = Duration::from_secs(15);
/// Episodes a scenario without the gate runs at most while none shows a split brain.
pub const NAIVE_EPISODES_MAX: usize = 3;
/// Runs exactly this many episodes in every failover scenario when set.
pub const EPISODES_VAR: &str = "QE2E_FAILOVER_EPISODES";
/// Episodes at most, whatever the variable says.
const EPISODES_MAX: usize = 20;
/// The nodes' gossip round and fence-check timeout: quorate's defaults (the scenario's
/// configs do not set `[gossip]`).
const GOSSIP_INTERVAL: Duration = Duration::from_millis(250);
const FENCE_TIMEOUT: Duration = Duration::from_millis(300);

/// What the harness does to the active node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Both directions between it and the others.
    Split,
    /// Its outgoing datagrams: it hears everyone, nobody hears it.
    OneWay,
    /// SIGSTOP for [`HOLD`], then SIGCONT.
    Pause,
}

/// Every failover scenario.
pub fn scenarios() -> Vec<Scenario> {
    let spec = |gated| Spec { program: Program::Failover { gated }, ..Spec::lan(NODES) };
    vec![
        Scenario {
            name: "failover-split-3",
            about: "3 quorate-failover nodes on one shared directory: the active one cut off from both \
                    standbys for 2.5 s; one writer at every moment, takeover after PeerFenced",
            spec: spec(true),
            drive: |c| drive(c, Fault::Split, true),
        },
        Scenario {
            name: "failover-one-way-3",
            about: "3 quorate-failover nodes: the active one's outgoing datagrams dropped for 2.5 s (it \
                    hears everyone); one writer at every moment",
            spec: spec(true),
            drive: |c| drive(c, Fault::OneWay, true),
        },
        Scenario {
            name: "failover-pause-3",
            about: "3 quorate-failover nodes: the active one SIGSTOPped for 2.5 s, longer than the \
                    takeover; it wakes fenced and stands by",
            spec: spec(true),
            drive: |c| drive(c, Fault::Pause, true),
        },
        Scenario {
            name: "failover-split-3-no-gate",
            about: "the same cut with --unsafe-no-gate (takeover on a timeout, appends without a permit): \
                    the checker must find a split brain",
            spec: spec(false),
            drive: |c| drive(c, Fault::Split, false),
        },
        Scenario {
            name: "failover-one-way-3-no-gate",
            about: "the one-way cut with --unsafe-no-gate: the checker must find a split brain",
            spec: spec(false),
            drive: |c| drive(c, Fault::OneWay, false),
        },
        Scenario {
            name: "failover-pause-3-no-gate",
            about: "the pause with --unsafe-no-gate: the checker must find a split brain",
            spec: spec(false),
            drive: |c| drive(c, Fault::Pause, false),
        },
    ]
}

/// The takeover's bound, counted from the fault: the standbys call the holder down no sooner
/// than `down_after_min` after they last heard it (1.01 s with the drift bound), the rows
/// saying so reach a fence checker within two gossip rounds, the fence check ends within
/// its timeout, plus [`SCHEDULING_MARGIN`]. (Not `lease x (1 + drift)`: the holder is fenced
/// by then, but its peers may not call it down before their floor, which is longer.)
pub fn takeover_bound(t: Timing) -> Duration {
    t.down_after_min.mul_f64(1.0 + t.max_clock_drift)
        + GOSSIP_INTERVAL * 2
        + FENCE_TIMEOUT
        + SCHEDULING_MARGIN
}

/// One fault and its recovery.
#[derive(Debug, Clone)]
struct Episode {
    /// The holder of the latest claim when the fault began, and its generation.
    holder: u64,
    gen: u64,
    /// Records count from here (the active node's writing before the fault).
    from_us: u64,
    fault: Mark,
    heal: Mark,
    /// Records count until here.
    to_us: u64,
}

fn drive(c: &mut Cluster, fault: Fault, gated: bool) -> Result<crate::scenarios::Check, String> {
    let _ = started(c)?;
    let shared = SharedDir::open(&c.shared_dir()).map_err(|e| e.to_string())?;
    let forced = episodes_forced();
    let count = forced.unwrap_or(if gated { 1 } else { NAIVE_EPISODES_MAX });
    let mut episodes = Vec::new();
    for i in 1..=count {
        let from = c.note(&format!("episode {i}: the active node writes"));
        sleep(BEFORE);
        let latest = wait_writing(&shared, from.at_us)?;
        let holder = latest.node;
        let others: Vec<u64> = c.spec().ids().into_iter().filter(|&n| n != holder).collect();
        let what = |how: &str| format!("episode {i}: {how} active node {holder} (generation {})", latest.gen);
        let fault_mark = match fault {
            Fault::Split => c.faults(&partition(&[holder], &others), &what("cut off"))?,
            Fault::OneWay => {
                c.faults(&one_way(&[holder], &others), &what("drop the outgoing datagrams of"))?
            }
            Fault::Pause => c.pause(holder)?,
        };
        sleep(HOLD);
        let heal = match fault {
            Fault::Pause => c.resume(holder)?,
            _ => c.heal()?,
        };
        settle_after_heal(c, HEAL_BOUND);
        sleep(AFTER);
        let to = c.note(&format!("episode {i} ends"));
        let episode = Episode {
            holder,
            gen: latest.gen,
            from_us: from.at_us,
            fault: fault_mark,
            heal,
            to_us: to.at_us,
        };
        // Without the gate, stop at the first split brain unless a fixed count was asked for.
        let shown = !gated
            && forced.is_none()
            && read_all(&shared, &[]).is_ok_and(|s| s.episode(&episode).split_brain());
        episodes.push(episode);
        if shown {
            break;
        }
    }
    let (status, _) = finish(c);
    let locals: Vec<PathBuf> = c.spec().ids().iter().map(|&id| c.data_dir(id)).collect();
    let timing = c.spec().timing;
    Ok(Box::new(move |_log, r| {
        // The nodes have stopped: every append and acknowledgement is in the files.
        match read_all(&shared, &locals) {
            Ok(state) => judge(&state, &episodes, fault, gated, timing, r),
            Err(e) => r.check("shared directory", Err(e)),
        }
        r.check("status", status);
    }))
}

fn episodes_forced() -> Option<usize> {
    std::env::var(EPISODES_VAR).ok()?.parse::<usize>().ok().map(|n| n.clamp(1, EPISODES_MAX))
}

/// Waits until the holder of the latest claim has appended [`RECORDS_BEFORE_MIN`] records
/// under it since `since_us`; returns the claim.
fn wait_writing(shared: &SharedDir, since_us: u64) -> Result<Claim, String> {
    let deadline = Instant::now() + WRITING_TIMEOUT;
    loop {
        if let (Ok(Some(latest)), Ok(log)) = (shared.latest(), shared.read_log()) {
            let n = log.items.iter().filter(|r| r.gen == latest.gen && r.checked_us >= since_us).count();
            if n >= RECORDS_BEFORE_MIN {
                return Ok(latest);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the active node did not append {RECORDS_BEFORE_MIN} records within {WRITING_TIMEOUT:?}"
            ));
        }
        sleep(Duration::from_millis(50));
    }
}

/// What the nodes left behind.
#[derive(Debug)]
struct State {
    records: Vec<Record>,
    torn: Vec<String>,
    claims: Vec<Claim>,
    acks: Vec<Ack>,
}

fn read_all(shared: &SharedDir, locals: &[PathBuf]) -> Result<State, String> {
    let log = shared.read_log().map_err(|e| e.to_string())?;
    let claims = shared.claims().map_err(|e| e.to_string())?;
    let mut acks = Vec::new();
    for dir in locals {
        acks.extend(read_acks(&dir.join(ACKS_FILE)).map_err(|e| e.to_string())?.items);
    }
    Ok(State { records: log.items, torn: log.bad, claims, acks })
}

impl State {
    /// The checker on the records an episode's writers decided in its span.
    fn episode(&self, e: &Episode) -> Analysis {
        let inside = |r: &Record| r.checked_us >= e.from_us && r.checked_us < e.to_us;
        let records: Vec<Record> = self.records.iter().copied().filter(inside).collect();
        let acks: Vec<Ack> = self.acks.iter().copied().filter(|a| inside(&a.record)).collect();
        analyse(&records, &[], &self.claims, &acks)
    }
}

/// Figures of one takeover, counted from the fault.
#[derive(Debug)]
struct Takeover {
    node: u64,
    gen: u64,
    /// The new holder's first decision to write.
    first_us: u64,
    /// The old holder's last decision to write under its generation.
    old_last_us: u64,
}

/// The first claim after `e.gen` taken from the holder by another node, during the fault,
/// and the new holder's first record.
fn takeover(s: &State, e: &Episode) -> Result<Takeover, String> {
    let claim = s
        .claims
        .iter()
        .find(|c| c.gen == e.gen + 1)
        .ok_or_else(|| format!("nobody claimed generation {} after node {}", e.gen + 1, e.holder))?;
    if claim.how != How::Takeover || claim.from != Some(e.holder) || claim.node == e.holder {
        return Err(format!("generation {} is not a takeover from node {}: {claim:?}", claim.gen, e.holder));
    }
    if claim.at_us < e.fault.at_us || claim.at_us > e.heal.at_us {
        return Err(format!(
            "node {} took over {} after the fault, outside the fault",
            claim.node,
            secs(claim.at_us as i64 - e.fault.at_us as i64)
        ));
    }
    let first_us =
        s.records.iter().filter(|r| r.gen == claim.gen).map(|r| r.checked_us).min().ok_or_else(|| {
            format!("node {} took over generation {} but never wrote", claim.node, claim.gen)
        })?;
    let old: Vec<u64> = s.records.iter().filter(|r| r.gen == e.gen).map(|r| r.checked_us).collect();
    let before = old.iter().filter(|&&t| t < e.fault.at_us && t >= e.from_us).count();
    if before < RECORDS_BEFORE_MIN {
        return Err(format!(
            "node {} appended {before} records before the fault, fewer than {RECORDS_BEFORE_MIN}",
            e.holder
        ));
    }
    let old_last_us = old.iter().copied().max().unwrap_or(0);
    Ok(Takeover { node: claim.node, gen: claim.gen, first_us, old_last_us })
}

fn judge(s: &State, episodes: &[Episode], fault: Fault, gated: bool, timing: Timing, r: &mut Report) {
    let whole = analyse(&s.records, &s.torn, &s.claims, &s.acks);
    r.check("every acknowledged append in the log", whole.log_intact());
    let bound = takeover_bound(timing);
    let mut shown = 0;
    for (i, e) in episodes.iter().enumerate() {
        let n = i + 1;
        let a = s.episode(e);
        let since = |t: u64| secs(t as i64 - e.fault.at_us as i64);
        let t = takeover(s, e);
        let taken = match &t {
            Ok(t) => format!(
                "takeover after {} ms (node {}, generation {})",
                (t.first_us - e.fault.at_us) / 1_000,
                t.node,
                t.gen
            ),
            Err(e) => format!("no takeover: {e}"),
        };
        if gated {
            r.check(&format!("episode {n}: one writer at every moment"), a.one_writer());
            let t = t.and_then(|t| {
                let took = t.first_us - e.fault.at_us;
                let old = t.old_last_us as i64 - e.fault.at_us as i64;
                let fence = us(timing.fence_bound()) as i64;
                if took > us(bound) {
                    Err(format!("{taken}: past the bound {}", secs(us(bound) as i64)))
                } else if fault != Fault::Pause && old > fence {
                    Err(format!("node {} decided to write {} after the cut, past the fence bound", e.holder, since(t.old_last_us)))
                } else {
                    Ok(format!(
                        "{taken} (bound {}); node {}'s last decision to write {} after the fault; no writer for {}",
                        secs(us(bound) as i64),
                        e.holder,
                        secs(old),
                        secs(t.first_us as i64 - t.old_last_us as i64)
                    ))
                }
            });
            let line = format!("episode {n}: {}, {taken}", a.headline());
            r.check(&format!("episode {n}: takeover"), t);
            r.info("with quorate", line);
        } else {
            shown += usize::from(a.split_brain());
            r.info("without quorate", format!("episode {n}: {} ({taken})", a.headline()));
        }
    }
    if gated {
        r.check("one writer over the whole run", whole.one_writer());
    } else {
        let outcome = if shown > 0 {
            Ok(format!("{shown} of {} episodes split the brain: {}", episodes.len(), whole.headline()))
        } else {
            Err(format!(
                "no split brain in {} episodes: the negative control did not fire (nodes {} held the role)",
                episodes.len(),
                set(&episodes.iter().map(|e| e.holder).collect::<Vec<_>>())
            ))
        };
        r.check("split brain without the gate (the checker fires on the real failure)", outcome);
    }
}
