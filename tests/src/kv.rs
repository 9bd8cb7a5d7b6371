//! The key-value scenario's load and its checks: writer threads inside the test's network
//! namespace drive `PUT`s against every `quorate-kv` node; after the run, the answers are
//! checked against each node's own database and the nodes' event logs.
//!
//! ```text
//!   writer thread ── setns(/run/netns/qe2e-...) ──► PUT 127.0.0.1:800N/kv/nN-wW-I
//!        sent_us ─► [server: checked_mono_us (read just before permit.check()), committed_mono_us] ─► recv_us
//!   after every node stopped: Store::open(data-N/kv.redb) ─► records ─► checks below
//! ```
//!
//! Every key is written once (node, writer and counter in the name), so a record in a
//! database belongs to exactly one attempt and nothing can hide behind an overwrite. All
//! times are `CLOCK_MONOTONIC` microseconds, the time base of the nodes' event logs and the
//! harness's marks. `checked_mono_us` is read just *before* the server re-checks its permit,
//! and the check passed at or after it, so the node held quorum at some instant at or after
//! `checked_mono_us`: comparing it with a deadline is sound without any slack.
//!
//! The load is bounded: [`WRITERS_PER_NODE`] threads per node, one request at a time each,
//! [`PACE`] between requests, at most [`WRITES_PER_WRITER_MAX`] requests and
//! [`WRITERS_RUN_MAX`] of running each.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use quorate_kv::client::{Client, ClientError};
use quorate_kv::{Durability, Record, Store};

use crate::events::{epoch_text, Kind, Log, Mark};
use crate::faults::{http_port, set};
use crate::timing::{monotonic_us, secs, us, Timing};

/// Writer threads per node.
pub const WRITERS_PER_NODE: u64 = 2;
/// Pause between one writer's requests: ~60 requests per second per writer at most, light
/// enough for 5 nodes and their fsyncs on 2 cores.
pub const PACE: Duration = Duration::from_millis(15);
/// Requests per writer at most.
pub const WRITES_PER_WRITER_MAX: u64 = 4_000;
/// Running time per writer at most, whatever the scenario does.
pub const WRITERS_RUN_MAX: Duration = Duration::from_secs(60);
/// A request without a complete answer within this is an unknown outcome.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a majority node may go without acknowledging a write while the writers run:
/// a stall of a whole lease would mean it was as good as fenced.
pub const ACK_GAP_MAX: Duration = Duration::from_millis(900);
/// Records read back from one database at most (far more than the writers can write).
const RECORDS_MAX: usize = 1_000_000;

/// One request and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The node it was sent to.
    pub node: u64,
    /// The key (unique across the run).
    pub key: String,
    /// The value sent.
    pub value: String,
    /// `CLOCK_MONOTONIC` µs just before the request was sent.
    pub sent_us: u64,
    /// `CLOCK_MONOTONIC` µs just after the answer (or the error) came back.
    pub recv_us: u64,
    /// The answer.
    pub outcome: Outcome,
}

/// What a request's answer said.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 200: committed.
    Acked(Ack),
    /// Any other status: refused, nothing written.
    Refused {
        /// HTTP status.
        status: u16,
        /// The answer's `reason` keyword.
        reason: String,
        /// The answer's `error` text.
        error: String,
    },
    /// A 200 whose body did not carry the acknowledgement's fields.
    Malformed(String),
    /// No complete answer: the write may or may not have committed.
    Unknown(String),
}

/// The fields of a 200 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The fencing epoch stored with the value.
    pub epoch: u64,
    /// The write's place in its database's commit order.
    pub seq: u64,
    /// Server: `CLOCK_MONOTONIC` µs read just before the permit's re-check.
    pub checked_us: u64,
    /// Server: `CLOCK_MONOTONIC` µs read just after the commit.
    pub committed_us: u64,
}

impl Outcome {
    fn of(result: Result<quorate_kv::client::Reply, ClientError>) -> Outcome {
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => return Outcome::Unknown(e.to_string()),
        };
        let v = reply.json();
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        if reply.status != 200 {
            return Outcome::Refused { status: reply.status, reason: text("reason"), error: text("error") };
        }
        let num = |k: &str| v[k].as_u64();
        match (num("epoch"), num("seq"), num("checked_mono_us"), num("committed_mono_us")) {
            (Some(epoch), Some(seq), Some(checked_us), Some(committed_us)) => {
                Outcome::Acked(Ack { epoch, seq, checked_us, committed_us })
            }
            _ => Outcome::Malformed(String::from_utf8_lossy(&reply.body).into_owned()),
        }
    }
}

impl Attempt {
    /// The acknowledgement, if the write was acknowledged.
    pub fn ack(&self) -> Option<&Ack> {
        match &self.outcome {
            Outcome::Acked(a) => Some(a),
            _ => None,
        }
    }
}

/// The writer threads of one run.
#[derive(Debug)]
pub struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<Vec<Attempt>, String>>>,
}

impl Writers {
    /// Starts [`WRITERS_PER_NODE`] threads per node of `nodes`, each entering the network
    /// namespace at `netns` before it opens a connection.
    pub fn start(netns: &Path, nodes: &[u64]) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for &node in nodes {
            for w in 0..WRITERS_PER_NODE {
                let (stop, netns) = (stop.clone(), netns.to_owned());
                threads.push(std::thread::spawn(move || write_loop(&netns, node, w, &stop)));
            }
        }
        Writers { stop, threads }
    }

    /// Stops every writer after its current request and returns all attempts, in the order
    /// they were sent per writer.
    pub fn finish(mut self) -> Result<Vec<Attempt>, String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        let mut errors = Vec::new();
        for t in std::mem::take(&mut self.threads) {
            match t.join() {
                Ok(Ok(attempts)) => all.extend(attempts),
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push("a writer thread panicked".to_owned()),
            }
        }
        if errors.is_empty() {
            Ok(all)
        } else {
            Err(errors.join("; "))
        }
    }
}

impl Drop for Writers {
    /// A scenario that fails midway drops its writers: they stop after their current
    /// request instead of running on against a namespace that is about to go.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn write_loop(netns: &Path, node: u64, writer: u64, stop: &AtomicBool) -> Result<Vec<Attempt>, String> {
    enter_namespace(netns)?;
    let port = u16::try_from(http_port(node)).map_err(|e| format!("port of node {node}: {e}"))?;
    let mut client = Client::new(SocketAddr::from(([127, 0, 0, 1], port)), CLIENT_TIMEOUT);
    let deadline = Instant::now() + WRITERS_RUN_MAX;
    let mut out = Vec::new();
    for i in 0..WRITES_PER_WRITER_MAX {
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            break;
        }
        let key = format!("n{node}-w{writer}-{i}");
        let value = format!("value {i} from writer {writer} to node {node}");
        let sent_us = monotonic_us();
        let result = client.put(&key, value.as_bytes());
        let recv_us = monotonic_us();
        out.push(Attempt { node, key, value, sent_us, recv_us, outcome: Outcome::of(result) });
        std::thread::sleep(PACE);
    }
    Ok(out)
}

/// Moves the calling thread (only it) into the network namespace mounted at `path`.
pub(crate) fn enter_namespace(path: &Path) -> Result<(), String> {
    let ns = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    rustix::thread::move_into_link_name_space(ns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
        .map_err(|e| format!("setns {}: {e}", path.display()))
}

/// Every node's database, read after the nodes stopped: records by key.
pub type Databases = BTreeMap<u64, BTreeMap<String, Record>>;

/// Opens each node's `kv.redb` (the process must have exited: redb locks the file) and
/// reads every record.
pub fn read_databases(dirs: &[(u64, PathBuf)]) -> Result<Databases, String> {
    let mut dbs = BTreeMap::new();
    for (node, dir) in dirs {
        let path = dir.join(quorate_kv::cli::DB_FILE);
        let store = Store::open(&path, Durability::Immediate)
            .map_err(|e| format!("node {node}: open {}: {e}", path.display()))?;
        let records = store.records(RECORDS_MAX).map_err(|e| format!("node {node}: read: {e}"))?;
        dbs.insert(*node, records.into_iter().collect());
    }
    Ok(dbs)
}

/// Counts per outcome, for the report.
pub fn summary(attempts: &[Attempt], nodes: &[u64]) -> String {
    let mut parts = Vec::new();
    for &node in nodes {
        let mine: Vec<&Attempt> = attempts.iter().filter(|a| a.node == node).collect();
        let acked = mine.iter().filter(|a| a.ack().is_some()).count();
        let mut refused: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &mine {
            if let Outcome::Refused { reason, .. } = &a.outcome {
                *refused.entry(reason.as_str()).or_default() += 1;
            }
        }
        let unknown = mine.iter().filter(|a| matches!(a.outcome, Outcome::Unknown(_))).count();
        let refused: Vec<String> = refused.iter().map(|(r, n)| format!("{n} {r}")).collect();
        parts.push(format!(
            "node {node}: {acked} acked, refused [{}], {unknown} unknown",
            if refused.is_empty() { "none".to_owned() } else { refused.join(", ") }
        ));
    }
    parts.join("; ")
}

/// Every answer's times are in order on the shared clock: sent <= checked <= committed <=
/// received. (A 200 without the acknowledgement's fields fails here too.)
pub fn times_in_order(attempts: &[Attempt]) -> Result<String, String> {
    let mut acks = 0;
    for a in attempts {
        match &a.outcome {
            Outcome::Acked(ack) => {
                acks += 1;
                if !(a.sent_us <= ack.checked_us
                    && ack.checked_us <= ack.committed_us
                    && ack.committed_us <= a.recv_us)
                {
                    return Err(format!(
                        "{} on node {}: sent {} checked {} committed {} received {} (µs) out of order",
                        a.key, a.node, a.sent_us, ack.checked_us, ack.committed_us, a.recv_us
                    ));
                }
            }
            Outcome::Malformed(body) => {
                return Err(format!("{} on node {}: 200 without fields: {body}", a.key, a.node))
            }
            _ => {}
        }
    }
    Ok(format!("{acks} acknowledgements: sent <= checked <= committed <= received on CLOCK_MONOTONIC"))
}

/// Every acknowledged write is in the database of the node that acknowledged it, with the
/// value, epoch and sequence number of the answer; no refused write is anywhere; a
/// database holds nothing that was not sent to its node.
pub fn acked_writes_stored(attempts: &[Attempt], dbs: &Databases) -> Result<String, String> {
    let (mut acked, mut refused, mut unknown_stored, mut unknown) = (0, 0, 0, 0);
    let sent: BTreeMap<&str, &Attempt> = attempts.iter().map(|a| (a.key.as_str(), a)).collect();
    for a in attempts {
        let db = dbs.get(&a.node).ok_or_else(|| format!("no database of node {}", a.node))?;
        let stored = db.get(&a.key);
        match (&a.outcome, stored) {
            (Outcome::Acked(ack), Some(r)) => {
                if r.value != a.value || r.epoch != ack.epoch || r.seq != ack.seq {
                    return Err(format!(
                        "{} on node {}: acknowledged epoch {} seq {}, stored epoch {} seq {} value {:?}",
                        a.key, a.node, ack.epoch, ack.seq, r.epoch, r.seq, r.value
                    ));
                }
                acked += 1;
            }
            (Outcome::Acked(ack), None) => {
                return Err(format!(
                    "{} acknowledged by node {} (epoch {}, seq {}) is not in its database",
                    a.key, a.node, ack.epoch, ack.seq
                ))
            }
            (Outcome::Refused { status, reason, .. }, Some(r)) => {
                return Err(format!(
                    "{} refused by node {} ({status} {reason}) is in its database (epoch {}, seq {})",
                    a.key, a.node, r.epoch, r.seq
                ))
            }
            (Outcome::Refused { .. }, None) => refused += 1,
            (_, Some(_)) => {
                unknown_stored += 1;
                unknown += 1;
            }
            (_, None) => unknown += 1,
        }
    }
    for (node, db) in dbs {
        if let Some(key) = db.keys().find(|k| sent.get(k.as_str()).is_none_or(|a| a.node != *node)) {
            return Err(format!("node {node}'s database holds {key}, never sent to it"));
        }
    }
    Ok(format!(
        "{acked} acknowledged writes found with their value, epoch and seq; {refused} refused writes absent; \
         {unknown} without an answer ({unknown_stored} of them committed)"
    ))
}

/// In each database, in commit order (seq), epochs never go backwards, and the sequence
/// numbers are exactly 1..=n (no write lost between two committed ones).
pub fn epochs_never_backwards(dbs: &Databases) -> Result<String, String> {
    let mut parts = Vec::new();
    for (node, db) in dbs {
        let mut by_seq: Vec<(&String, &Record)> = db.iter().collect();
        by_seq.sort_by_key(|(_, r)| r.seq);
        let mut epochs = Vec::new();
        for (i, (key, r)) in by_seq.iter().enumerate() {
            if r.seq != i as u64 + 1 {
                return Err(format!("node {node}: record {} has seq {}, expected {}", key, r.seq, i + 1));
            }
            match epochs.last() {
                Some(&last) if r.epoch < last => {
                    return Err(format!(
                        "node {node}: seq {} ({key}) has epoch {} after epoch {last}",
                        r.seq, r.epoch
                    ))
                }
                Some(&last) if r.epoch == last => {}
                _ => epochs.push(r.epoch),
            }
        }
        parts.push(format!("node {node}: {} records, {} epochs", by_seq.len(), epochs.len()));
    }
    Ok(parts.join("; "))
}

/// Between the cut and the heal, no minority node acknowledged a write whose re-check came
/// after `lease x (1 + drift)` from the cut, nor after its own logged fence (`quorum_lost`,
/// stamped with the instant its leases ran out). The cut counts from when the `nft` command
/// returned (the rules were in force from then on; heartbeats sent earlier can lend leases
/// only until their send time + lease). Also requires that each minority node did
/// acknowledge writes before the cut, so that the check is not vacuous.
pub fn minority_stopped_acking(
    attempts: &[Attempt],
    log: &Log,
    minority: &[u64],
    cut: &Mark,
    heal: &Mark,
    timing: Timing,
) -> Result<String, String> {
    let promise = us(timing.fence_promise());
    let limit = cut.done_us + promise;
    let mut parts = Vec::new();
    for &node in minority {
        let acks: Vec<(&Attempt, &Ack)> =
            attempts.iter().filter(|a| a.node == node).filter_map(|a| Some((a, a.ack()?))).collect();
        if !acks.iter().any(|(_, k)| k.checked_us < cut.at_us) {
            return Err(format!(
                "node {node} acknowledged nothing before the cut: the writers did not reach it"
            ));
        }
        let fence = log.of(node, Kind::QuorumLost, cut.at_us, heal.at_us).next().map(|e| e.at_us);
        let during: Vec<&(&Attempt, &Ack)> =
            acks.iter().filter(|(_, k)| k.checked_us >= cut.at_us && k.checked_us < heal.at_us).collect();
        for (a, k) in &during {
            if k.checked_us >= limit {
                return Err(format!(
                    "node {node} acknowledged {} re-checked {} after the cut, past lease x (1 + drift) = {}",
                    a.key,
                    secs(k.checked_us as i64 - cut.done_us as i64),
                    secs(promise as i64)
                ));
            }
            if let Some(f) = fence.filter(|&f| k.checked_us >= f) {
                return Err(format!(
                    "node {node} acknowledged {} re-checked {} after its own logged fence",
                    a.key,
                    secs(k.checked_us as i64 - f as i64)
                ));
            }
        }
        let last = during.iter().map(|(a, k)| (k.checked_us, k.committed_us, a.recv_us)).max();
        parts.push(match last {
            Some((checked, committed, received)) => format!(
                "node {node}: {} acked after the cut, the last re-checked {} after it (committed {}, received {})",
                during.len(),
                secs(checked as i64 - cut.done_us as i64),
                secs(committed as i64 - cut.done_us as i64),
                secs(received as i64 - cut.done_us as i64)
            ),
            None => format!("node {node}: none acked after the cut"),
        });
        if fence.is_none() {
            return Err(format!("node {node} logged no quorum_lost between the cut and the heal"));
        }
    }
    Ok(format!("{} (bound: lease x (1 + drift) = {} after the cut)", parts.join("; "), secs(promise as i64)))
}

/// After the heal every minority node acknowledged writes again, under an epoch above
/// every epoch it acknowledged before the cut (a new stretch of quorum, guarantee G4).
pub fn minority_writes_again(
    attempts: &[Attempt],
    minority: &[u64],
    cut: &Mark,
    heal: &Mark,
) -> Result<String, String> {
    let mut parts = Vec::new();
    for &node in minority {
        let acks = || attempts.iter().filter(|a| a.node == node).filter_map(Attempt::ack);
        let before = acks().filter(|k| k.checked_us < cut.at_us).map(|k| k.epoch).max();
        let Some(first) = acks().filter(|k| k.checked_us > heal.done_us).min_by_key(|k| k.checked_us) else {
            return Err(format!("node {node} acknowledged no write after the heal"));
        };
        if before.is_some_and(|b| first.epoch <= b) {
            return Err(format!(
                "node {node} acknowledged after the heal under epoch {}, not above its epoch {} before the cut",
                epoch_text(first.epoch),
                epoch_text(before.unwrap_or(0))
            ));
        }
        parts.push(format!(
            "node {node} {} after the heal, epoch {} > {}",
            secs(first.checked_us as i64 - heal.done_us as i64),
            epoch_text(first.epoch),
            before.map_or("none".into(), epoch_text)
        ));
    }
    Ok(parts.join("; "))
}

/// Every majority node answered every request sent in `[from, to]` with 200, and never
/// went longer than [`ACK_GAP_MAX`] between two acknowledgements (by the server's check
/// times) from `from` to `to`.
pub fn majority_kept_acking(
    attempts: &[Attempt],
    majority: &[u64],
    from: u64,
    to: u64,
) -> Result<String, String> {
    let mut worst = 0;
    let mut total = 0;
    for &node in majority {
        let mut times = vec![from];
        for a in attempts.iter().filter(|a| a.node == node && a.sent_us >= from && a.recv_us <= to) {
            match &a.outcome {
                Outcome::Acked(k) => times.push(k.checked_us),
                Outcome::Refused { status, error, .. } => {
                    return Err(format!("majority node {node} refused {} ({status}): {error}", a.key))
                }
                Outcome::Malformed(body) => return Err(format!("node {node}: bad answer {body}")),
                Outcome::Unknown(e) => {
                    return Err(format!("majority node {node} did not answer {}: {e}", a.key))
                }
            }
        }
        total += times.len() - 1;
        times.push(to);
        times.sort_unstable();
        let gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        if gap > us(ACK_GAP_MAX) {
            return Err(format!("majority node {node} acknowledged nothing for {}", secs(gap as i64)));
        }
        worst = worst.max(gap);
    }
    Ok(format!(
        "{} acknowledged all {total} writes sent to them in {}; longest gap between acknowledgements {} (bound {})",
        set(majority),
        secs(to as i64 - from as i64),
        secs(worst as i64),
        secs(us(ACK_GAP_MAX) as i64)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Action, Event};

    fn acked(node: u64, key: &str, checked_us: u64, epoch: u64, seq: u64) -> Attempt {
        Attempt {
            node,
            key: key.into(),
            value: format!("v{key}"),
            sent_us: checked_us - 10,
            recv_us: checked_us + 20,
            outcome: Outcome::Acked(Ack { epoch, seq, checked_us, committed_us: checked_us + 5 }),
        }
    }

    fn db(records: &[(&str, u64, u64)]) -> BTreeMap<String, Record> {
        records
            .iter()
            .map(|&(k, epoch, seq)| (k.to_owned(), Record { value: format!("v{k}"), epoch, seq }))
            .collect()
    }

    fn mark(at_us: u64) -> Mark {
        Mark { at_us, done_us: at_us + 1_000, action: Action::Note, what: "m".into() }
    }

    fn log(events: Vec<Event>) -> Log {
        Log::new(events, vec![Mark { action: Action::Start(1), ..mark(0) }], Vec::new(), 0)
    }

    fn lost(node: u64, at_us: u64) -> Event {
        Event {
            node,
            at_us,
            mono_us: at_us,
            kind: Kind::QuorumLost,
            epoch: Some(1),
            peer: None,
            why: None,
            reason: None,
        }
    }

    #[test]
    fn an_acknowledged_write_missing_or_different_in_the_database_fails() {
        let attempts = vec![acked(1, "a", 100, 7, 1), acked(1, "b", 200, 7, 2)];
        let good: Databases = [(1, db(&[("a", 7, 1), ("b", 7, 2)]))].into();
        assert!(acked_writes_stored(&attempts, &good).is_ok());
        let missing: Databases = [(1, db(&[("a", 7, 1)]))].into();
        assert!(acked_writes_stored(&attempts, &missing).is_err());
        let other_epoch: Databases = [(1, db(&[("a", 7, 1), ("b", 6, 2)]))].into();
        assert!(acked_writes_stored(&attempts, &other_epoch).is_err());
        let stray: Databases = [(1, db(&[("a", 7, 1), ("b", 7, 2), ("zz", 7, 3)]))].into();
        assert!(acked_writes_stored(&attempts, &stray).is_err());
    }

    #[test]
    fn a_refused_write_found_in_the_database_fails() {
        let refused = Attempt {
            outcome: Outcome::Refused { status: 503, reason: "not_quorate".into(), error: "x".into() },
            ..acked(1, "r", 100, 0, 0)
        };
        assert!(acked_writes_stored(std::slice::from_ref(&refused), &[(1, db(&[]))].into()).is_ok());
        assert!(acked_writes_stored(&[refused], &[(1, db(&[("r", 7, 1)]))].into()).is_err());
    }

    #[test]
    fn epochs_going_backwards_or_a_gap_in_seq_fail() {
        assert!(epochs_never_backwards(&[(1, db(&[("a", 5, 1), ("b", 5, 2), ("c", 9, 3)]))].into()).is_ok());
        assert!(epochs_never_backwards(&[(1, db(&[("a", 5, 1), ("b", 9, 2), ("c", 5, 3)]))].into()).is_err());
        assert!(epochs_never_backwards(&[(1, db(&[("a", 5, 1), ("c", 5, 3)]))].into()).is_err());
    }

    #[test]
    fn a_minority_ack_past_the_lease_or_its_fence_fails() {
        let timing = Timing::LAN; // promise 909 ms
        let (cut, heal) = (mark(1_000_000), mark(5_000_000));
        let before = acked(1, "a", 900_000, 1, 1);
        let log = log(vec![lost(1, 1_800_000)]);
        let ok = vec![before.clone(), acked(1, "b", 1_700_000, 1, 2)];
        assert!(minority_stopped_acking(&ok, &log, &[1], &cut, &heal, timing).is_ok());
        let after_fence = vec![before.clone(), acked(1, "b", 1_850_000, 1, 2)];
        assert!(minority_stopped_acking(&after_fence, &log, &[1], &cut, &heal, timing).is_err());
        let late_log = self::log(vec![lost(1, 2_500_000)]);
        let past_lease = vec![before.clone(), acked(1, "b", 1_950_000, 1, 2)];
        assert!(minority_stopped_acking(&past_lease, &late_log, &[1], &cut, &heal, timing).is_err());
        // Acks after the heal are fine; no ack before the cut makes the check vacuous: fail.
        let healed = vec![before, acked(1, "c", 5_100_000, 2, 3)];
        assert!(minority_stopped_acking(&healed, &log, &[1], &cut, &heal, timing).is_ok());
        assert!(minority_stopped_acking(&[], &log, &[1], &cut, &heal, timing).is_err());
    }

    #[test]
    fn a_majority_refusal_or_a_long_silence_fails() {
        let steady: Vec<Attempt> = (1..10).map(|i| acked(3, &format!("k{i}"), i * 100_000, 1, i)).collect();
        assert!(majority_kept_acking(&steady, &[3], 50_000, 1_000_000).is_ok());
        let silent: Vec<Attempt> = steady.iter().filter(|a| a.sent_us < 200_000).cloned().collect();
        assert!(majority_kept_acking(&silent, &[3], 50_000, 1_500_000).is_err());
        let mut refused = steady.clone();
        refused[3].outcome =
            Outcome::Refused { status: 503, reason: "not_quorate".into(), error: "x".into() };
        assert!(majority_kept_acking(&refused, &[3], 50_000, 1_000_000).is_err());
    }

    #[test]
    fn answers_out_of_time_order_fail() {
        assert!(times_in_order(&[acked(1, "a", 100, 1, 1)]).is_ok());
        let mut bad = acked(1, "a", 100, 1, 1);
        bad.recv_us = 50;
        assert!(times_in_order(&[bad]).is_err());
    }
}
