//! Figures from one or many runs: fence latency, false fences per node-hour, heal and
//! rejoin times, load per node, simulated node-hours.

use std::fmt::Write as _;

use crate::clock::{fmt_ms, SEC};

/// Nanoseconds in an hour.
const HOUR: u64 = 3_600 * SEC;

/// Figures accumulated over runs. Merge with [`Stats::merge`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Runs merged.
    pub runs: u64,
    /// Runs that broke an invariant.
    pub violations: u64,
    /// Events processed.
    pub events: u64,
    /// Simulated real time, ns, summed over runs.
    pub sim_ns: u64,
    /// Time voters were live (not crashed), ns.
    pub voter_node_ns: u64,
    /// Time observers were live, ns.
    pub observer_node_ns: u64,
    /// Datagrams voters sent.
    pub voter_msgs: u64,
    /// Payload bytes voters sent.
    pub voter_bytes: u64,
    /// Datagrams observers sent.
    pub observer_msgs: u64,
    /// Payload bytes observers sent.
    pub observer_bytes: u64,
    /// Cut-to-fence latencies of voters, ns.
    pub fence_voter: Vec<u64>,
    /// Cut-to-fence latencies of observers, ns.
    pub fence_observer: Vec<u64>,
    /// Time from "every live node can reach a quorum again" to "every running node is
    /// writable", ns, per heal.
    pub heal: Vec<u64>,
    /// Per node: time from regaining a quorum's reach to being writable, ns.
    pub rejoin: Vec<u64>,
    /// Fences of nodes connected to a quorum (any loss) after warm-up.
    pub loss_fences: u64,
    /// Node time spent connected to a quorum, ns.
    pub connected_node_ns: u64,
    /// `PeerFenced` events announced (each checked by the `fenced-sound` checker).
    pub peer_fenced: u64,
    /// Peers announced fenced that were writable again before a quorum heard them after
    /// the announcement (G7's second half, counted by `fenced-sound`).
    pub early_rejoins: u64,
    /// Cues that fired (faults timed from protocol messages).
    pub cues_fired: u64,
    /// Changes of definition while running: proposed, refused, adopted.
    pub changes: Changes,
}

/// Online changes of definition in a run ([`crate::Fault::Propose`], [`crate::Fault::Adopt`],
/// and definitions the hosts followed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Changes proposed on a running node (`Node::propose`).
    pub proposed: u64,
    /// Proposals accepted: a new version, persisted and adopted by its proposer.
    pub accepted: u64,
    /// Refused: the previous change still under way (`ProposeError::Pending`).
    pub refused_pending: u64,
    /// Refused: not a safe successor (`ProposeError::Unsafe`).
    pub refused_unsafe: u64,
    /// Refused: a peer runs a later version (`ProposeError::Behind`).
    pub refused_behind: u64,
    /// Refused: the change does not apply (`ProposeError::Change`: the last voter, the
    /// tie-breaker removed, ...).
    pub refused_change: u64,
    /// Definitions adopted by running nodes (proposers, followers and scenario steps).
    pub adopted: u64,
    /// Of those, adopted as a fresh start (not the next version or not a safe successor).
    pub fresh_starts: u64,
    /// Nodes that adopted a definition that removed them, and left.
    pub removed: u64,
    /// Members added by a change, whose host the operator then starts.
    pub members_started: u64,
    /// Restarts refused because the node's disk records a definition that removed it.
    pub restarts_refused: u64,
    /// Of the changes proposed, timing preset changes (`Node::propose_timing`).
    pub timing_proposed: u64,
    /// Of those, accepted.
    pub timing_accepted: u64,
    /// Running nodes switched to another preset (`Node::set_timing`) on adopting a
    /// definition that names it.
    pub timing_switches: u64,
}

impl Changes {
    fn merge(&mut self, o: &Changes) {
        self.proposed += o.proposed;
        self.accepted += o.accepted;
        self.refused_pending += o.refused_pending;
        self.refused_unsafe += o.refused_unsafe;
        self.refused_behind += o.refused_behind;
        self.refused_change += o.refused_change;
        self.adopted += o.adopted;
        self.fresh_starts += o.fresh_starts;
        self.removed += o.removed;
        self.members_started += o.members_started;
        self.restarts_refused += o.restarts_refused;
        self.timing_proposed += o.timing_proposed;
        self.timing_accepted += o.timing_accepted;
        self.timing_switches += o.timing_switches;
    }
}

impl std::fmt::Display for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "changes proposed {} (accepted {}; refused: pending {}, unsafe {}, behind {}, change {}); \
             adopted {} ({} as fresh starts); removed {}; added members started {}; restarts of removed nodes refused {}; \
             timing changes proposed {} (accepted {}), switches {}",
            self.proposed,
            self.accepted,
            self.refused_pending,
            self.refused_unsafe,
            self.refused_behind,
            self.refused_change,
            self.adopted,
            self.fresh_starts,
            self.removed,
            self.members_started,
            self.restarts_refused,
            self.timing_proposed,
            self.timing_accepted,
            self.timing_switches
        )
    }
}

impl Stats {
    /// Adds `other`'s figures to these.
    pub fn merge(&mut self, other: &Stats) {
        self.runs += other.runs;
        self.violations += other.violations;
        self.events += other.events;
        self.sim_ns += other.sim_ns;
        self.voter_node_ns += other.voter_node_ns;
        self.observer_node_ns += other.observer_node_ns;
        self.voter_msgs += other.voter_msgs;
        self.voter_bytes += other.voter_bytes;
        self.observer_msgs += other.observer_msgs;
        self.observer_bytes += other.observer_bytes;
        self.fence_voter.extend_from_slice(&other.fence_voter);
        self.fence_observer.extend_from_slice(&other.fence_observer);
        self.heal.extend_from_slice(&other.heal);
        self.rejoin.extend_from_slice(&other.rejoin);
        self.loss_fences += other.loss_fences;
        self.connected_node_ns += other.connected_node_ns;
        self.peer_fenced += other.peer_fenced;
        self.early_rejoins += other.early_rejoins;
        self.cues_fired += other.cues_fired;
        self.changes.merge(&other.changes);
    }

    /// Simulated node-hours (live node time).
    pub fn node_hours(&self) -> f64 {
        (self.voter_node_ns + self.observer_node_ns) as f64 / HOUR as f64
    }

    /// False fences (any loss) per connected node-hour.
    pub fn loss_fences_per_node_hour(&self) -> f64 {
        let hours = self.connected_node_ns as f64 / HOUR as f64;
        if hours > 0.0 {
            self.loss_fences as f64 / hours
        } else {
            0.0
        }
    }

    /// (messages/s, bytes/s) per live voter.
    pub fn voter_load(&self) -> (f64, f64) {
        per_second(self.voter_msgs, self.voter_bytes, self.voter_node_ns)
    }

    /// (messages/s, bytes/s) per live observer.
    pub fn observer_load(&self) -> (f64, f64) {
        per_second(self.observer_msgs, self.observer_bytes, self.observer_node_ns)
    }

    /// The figures as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let all_fences: Vec<u64> = self.fence_voter.iter().chain(&self.fence_observer).copied().collect();
        let _ = writeln!(s, "runs {}  violations {}  events {}", self.runs, self.violations, self.events);
        let _ = writeln!(
            s,
            "simulated: {:.1} s of cluster time, {:.3} node-hours ({:.3} connected)",
            self.sim_ns as f64 / SEC as f64,
            self.node_hours(),
            self.connected_node_ns as f64 / HOUR as f64
        );
        let _ = writeln!(s, "fence latency (cut -> fenced), all:       {}", Summary::of(&all_fences));
        let _ = writeln!(s, "fence latency, voters:                    {}", Summary::of(&self.fence_voter));
        let _ =
            writeln!(s, "fence latency, observers:                 {}", Summary::of(&self.fence_observer));
        let _ = writeln!(
            s,
            "false fences (connected to a quorum, after warm-up): {} = {:.3} per node-hour",
            self.loss_fences,
            self.loss_fences_per_node_hour()
        );
        let _ = writeln!(s, "PeerFenced announced (each checked sound): {}", self.peer_fenced);
        let _ =
            writeln!(s, "announced peers writable again before a quorum heard them: {}", self.early_rejoins);
        let _ = writeln!(s, "heal time (network healed -> all writable): {}", Summary::of(&self.heal));
        let _ = writeln!(s, "rejoin time per node:                     {}", Summary::of(&self.rejoin));
        let (vm, vb) = self.voter_load();
        let (om, ob) = self.observer_load();
        let _ = writeln!(s, "load per voter:    {vm:.1} msg/s, {vb:.0} B/s (payload, before QUIC framing)");
        if self.observer_node_ns > 0 {
            let _ = writeln!(s, "load per observer: {om:.1} msg/s, {ob:.0} B/s");
        }
        if self.changes != Changes::default() {
            let _ = writeln!(s, "{}", self.changes);
        }
        s
    }
}

fn per_second(msgs: u64, bytes: u64, ns: u64) -> (f64, f64) {
    if ns == 0 {
        return (0.0, 0.0);
    }
    let secs = ns as f64 / SEC as f64;
    (msgs as f64 / secs, bytes as f64 / secs)
}

/// min / median / p99 / max of a sample of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Sample size.
    pub count: usize,
    /// Smallest, ns.
    pub min: u64,
    /// Median, ns.
    pub median: u64,
    /// 99th percentile (nearest rank), ns.
    pub p99: u64,
    /// Largest, ns.
    pub max: u64,
}

impl Summary {
    /// Summarises `sample` (any order).
    pub fn of(sample: &[u64]) -> Summary {
        let mut v = sample.to_vec();
        v.sort_unstable();
        let rank = |q: f64| -> u64 {
            if v.is_empty() {
                return 0;
            }
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i]
        };
        Summary {
            count: v.len(),
            min: v.first().copied().unwrap_or(0),
            median: rank(0.5),
            p99: rank(0.99),
            max: v.last().copied().unwrap_or(0),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count == 0 {
            return f.write_str("n=0");
        }
        write!(
            f,
            "n={} min {} / median {} / p99 {} / max {} ms",
            self.count,
            fmt_ms(self.min),
            fmt_ms(self.median),
            fmt_ms(self.p99),
            fmt_ms(self.max)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MS;

    #[test]
    fn summary_uses_nearest_rank_percentiles() {
        let sample: Vec<u64> = (1..=100).map(|i| i * MS).collect();
        let s = Summary::of(&sample);
        assert_eq!((s.min, s.median, s.p99, s.max), (MS, 50 * MS, 99 * MS, 100 * MS));
        assert_eq!(Summary::of(&[]).to_string(), "n=0");
    }

    #[test]
    fn merge_adds_counts_and_concatenates_samples() {
        let mut a =
            Stats { runs: 1, voter_msgs: 10, voter_node_ns: SEC, fence_voter: vec![1], ..Stats::default() };
        let b =
            Stats { runs: 1, voter_msgs: 30, voter_node_ns: SEC, fence_voter: vec![2], ..Stats::default() };
        a.merge(&b);
        assert_eq!(a.runs, 2);
        assert_eq!(a.voter_load().0, 20.0);
        assert_eq!(a.fence_voter, vec![1, 2]);
    }
}
