//! Faults: what can go wrong, as data, so a schedule can be generated from a seed, printed
//! in a timeline and replayed.
//!
//! Network faults change the [`Net`]; process faults (crash, shutdown, restart, pause,
//! resume) are applied by the simulator to the node's host. Node numbers are indices
//! `0..n`; they are printed as node ids (`n1` is index 0) everywhere a person reads them.

use std::fmt;

use crate::net::Net;
use crate::setup::Setup;

/// One fault, applied at one instant.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Clean partition: every listed group is cut off from every other, both ways. Nodes
    /// not listed stay with the first group.
    Partition {
        /// The sides; two or more.
        groups: Vec<Vec<usize>>,
    },
    /// `node` reaches every side of the current partition (a node on a network that
    /// routes both ways).
    Bridge {
        /// The bridge node.
        node: usize,
    },
    /// Datagrams from `from` to `to` are dropped; the other direction is untouched.
    CutOneWay {
        /// Sending end.
        from: usize,
        /// Receiving end.
        to: usize,
    },
    /// Undoes a [`Fault::CutOneWay`].
    RestoreOneWay {
        /// Sending end.
        from: usize,
        /// Receiving end.
        to: usize,
    },
    /// Every link touching `node` loses datagrams with probability `loss` (0 ends it).
    NodeLoss {
        /// The node.
        node: usize,
        /// Loss probability.
        loss: f64,
    },
    /// Every link loses datagrams with probability `loss` (0 ends the burst).
    BurstLoss {
        /// Loss probability.
        loss: f64,
    },
    /// The process dies: no timers, no reads, state lost. Datagrams to it are dropped.
    Crash {
        /// The node.
        node: usize,
    },
    /// Graceful shutdown (`Node::shutdown`), then the process exits.
    Shutdown {
        /// The node.
        node: usize,
    },
    /// A crashed or shut-down node starts again with a new, higher incarnation.
    Restart {
        /// The node.
        node: usize,
    },
    /// Like [`Fault::Restart`], with another preset or definition from now on: one step of
    /// a rolling change of configuration.
    RestartAs {
        /// The node.
        node: usize,
        /// What it runs from this start on.
        setup: Setup,
    },
    /// `node` switches to definition `definition` while it runs (`Node::adopt`, the
    /// definition's index as its version), with its preset unchanged: one node's step of
    /// an online membership change, as an operator would hand it over. Nothing happens if
    /// the node already runs that version or a later one (it followed a peer). A node
    /// that is down or paused takes it when it next runs (as a definition it had persisted).
    Adopt {
        /// The node.
        node: usize,
        /// The definition it runs from now on: an index into the scenario's definitions.
        definition: usize,
    },
    /// An operator proposes a random single change (add a member, remove one, change a
    /// member's votes, change the tie-breaker) on a running node, through
    /// `Node::propose`; the node persists and adopts what it accepts, and an added member's
    /// host is started. The change is drawn from `pick` against the definition the node
    /// runs then ([`crate::sim`]'s driver).
    Propose {
        /// The node asked (when it does not run: a running node it has a link with, so on
        /// its side of a partition); `None`: a running member drawn from `pick`.
        node: Option<usize>,
        /// Seeds the choice of node and change.
        pick: u64,
        /// Add a member when a slot is left, rather than a change drawn at random.
        grow: bool,
    },
    /// The process stops running (SIGSTOP, a long GC): no timers, datagrams queue.
    Pause {
        /// The node.
        node: usize,
    },
    /// A paused process runs again: the queued datagrams arrive in one burst.
    Resume {
        /// The node.
        node: usize,
    },
    /// Every partition, cut, bridge and loss burst ends (crashed nodes stay down).
    Heal,
}

/// A message a node sends that can set off faults (see [`Cue`]). Node numbers are indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `from` asks a peer, in a fence check, whether it considers `about` down.
    FenceQuery {
        /// The asker.
        from: usize,
        /// The accused.
        about: usize,
    },
    /// `from` answers a fence query about `about` with "yes, down" (and promises a hold).
    FenceYes {
        /// The node answering.
        from: usize,
        /// The accused.
        about: usize,
    },
}

/// Faults timed from the first time a node sends a given message, for traces that need a
/// fault at one exact step of the protocol (a crash right after a promise, a pause in the
/// middle of a check) whatever the seed made of the timing before it. Each cue fires once.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// The message.
    pub on: Signal,
    /// Each fault with its delay after the message was sent, ns.
    pub then: Vec<(u64, Fault)>,
}

/// A bug planted in one simulated node on purpose, so that a test can show the checker
/// aimed at it reports the run, by name (never planted outside tests). The node's core is
/// the shipped one; the simulator plants the bug at the node's edge: it rewrites what the
/// core is handed, picks its incarnation, runs its clock, or adds to what it announces.
/// Node numbers are indices; each bug prints (and parses, for `--bug`) with node ids and
/// milliseconds, e.g. `forged-ack:1:5000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// From real time `since` on, every heartbeat `node` is handed acks the latest
    /// heartbeat `node` sent its sender, whether it arrived or not: acks that extend
    /// leases no delivered ack supports.
    ForgedAck {
        /// The node.
        node: usize,
        /// Real time, ns.
        since: u64,
    },
    /// From real time `since` on, `node` is handed every heartbeat without its ack: it
    /// renews no lease, though the network delivers every ack.
    DeafToAcks {
        /// The node.
        node: usize,
        /// Real time, ns.
        since: u64,
    },
    /// Every restart of `node` reuses its previous life's incarnation, so its epochs
    /// repeat those of the earlier life.
    ReusedIncarnation {
        /// The node.
        node: usize,
    },
    /// From real time `since` on, the first time a voter sends `peer` an ack that will
    /// give it a live lease while `peer` cannot write, `node` announces `peer` fenced
    /// without a fence check and with nobody holding acks back: `peer` is writable again
    /// on that ack, though nobody heard it after the announcement.
    PhantomFence {
        /// The announcer.
        node: usize,
        /// The peer announced fenced.
        peer: usize,
        /// Real time, ns.
        since: u64,
    },
    /// `node`'s clock runs `pct` percent slow, far beyond the drift bound (its leases
    /// last that much longer in real time).
    SlowClock {
        /// The node.
        node: usize,
        /// How slow, percent (at most 50).
        pct: u32,
    },
    /// Changes proposed on `node` skip the one-change-at-a-time rule (rule 2 of
    /// `docs/reconfiguration.md`): its driver builds the next version itself and checks
    /// only that it is a safe successor, even while voters of the current version have not
    /// been heard running it or a peer runs a later one.
    HastyProposer {
        /// The node.
        node: usize,
    },
    /// When `node`'s driver switches its core to another timing preset online
    /// (`Node::set_timing`), the simulator keeps judging it by the preset it ran before, as
    /// a ground truth that ignored online timing changes would: after `lan -> wan` its
    /// fence bound is the lan lease while its votes last the wan lease.
    StalePreset {
        /// The node.
        node: usize,
    },
}

impl Bug {
    /// The node the bug is planted in.
    pub fn node(&self) -> usize {
        match *self {
            Bug::ForgedAck { node, .. }
            | Bug::DeafToAcks { node, .. }
            | Bug::ReusedIncarnation { node }
            | Bug::PhantomFence { node, .. }
            | Bug::SlowClock { node, .. }
            | Bug::HastyProposer { node }
            | Bug::StalePreset { node } => node,
        }
    }

    /// The largest node index the bug names.
    pub fn max_node(&self) -> usize {
        match *self {
            Bug::PhantomFence { node, peer, .. } => node.max(peer),
            _ => self.node(),
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns / crate::clock::MS;
        match *self {
            Bug::ForgedAck { node, since } => write!(f, "forged-ack:{}:{}", node + 1, ms(since)),
            Bug::DeafToAcks { node, since } => write!(f, "deaf-to-acks:{}:{}", node + 1, ms(since)),
            Bug::ReusedIncarnation { node } => write!(f, "reused-incarnation:{}", node + 1),
            Bug::PhantomFence { node, peer, since } => {
                write!(f, "phantom-fence:{}:{}:{}", node + 1, peer + 1, ms(since))
            }
            Bug::SlowClock { node, pct } => write!(f, "slow-clock:{}:{pct}", node + 1),
            Bug::HastyProposer { node } => write!(f, "hasty-proposer:{}", node + 1),
            Bug::StalePreset { node } => write!(f, "stale-preset:{}", node + 1),
        }
    }
}

impl std::str::FromStr for Bug {
    type Err = String;

    /// Parses what [`Bug`]'s `Display` prints.
    fn from_str(s: &str) -> Result<Bug, String> {
        let bad = || {
            format!("unknown bug {s:?} (forged-ack:N:MS, deaf-to-acks:N:MS, reused-incarnation:N, phantom-fence:N:P:MS, slow-clock:N:PCT, hasty-proposer:N, stale-preset:N)")
        };
        let mut parts = s.split(':');
        let kind = parts.next().ok_or_else(bad)?;
        let nums: Vec<u64> = parts.map(|p| p.parse::<u64>().map_err(|_| bad())).collect::<Result<_, _>>()?;
        let index = |k: usize| -> Result<usize, String> {
            let id = *nums.get(k).ok_or_else(bad)?;
            usize::try_from(id.checked_sub(1).ok_or_else(bad)?).map_err(|_| bad())
        };
        let ms = |k: usize| nums.get(k).map(|m| m.saturating_mul(crate::clock::MS)).ok_or_else(bad);
        let bug = match (kind, nums.len()) {
            ("forged-ack", 2) => Bug::ForgedAck { node: index(0)?, since: ms(1)? },
            ("deaf-to-acks", 2) => Bug::DeafToAcks { node: index(0)?, since: ms(1)? },
            ("reused-incarnation", 1) => Bug::ReusedIncarnation { node: index(0)? },
            ("phantom-fence", 3) => Bug::PhantomFence { node: index(0)?, peer: index(1)?, since: ms(2)? },
            ("slow-clock", 2) => {
                Bug::SlowClock { node: index(0)?, pct: u32::try_from(nums[1].min(50)).map_err(|_| bad())? }
            }
            ("hasty-proposer", 1) => Bug::HastyProposer { node: index(0)? },
            ("stale-preset", 1) => Bug::StalePreset { node: index(0)? },
            _ => return Err(bad()),
        };
        Ok(bug)
    }
}

/// A fault and when it happens.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// Real time, ns since the start of the run.
    pub at: u64,
    /// What happens.
    pub fault: Fault,
}

impl Fault {
    /// Applies a network fault to `net`; returns `false` (and changes nothing) for a
    /// process fault, which the simulator applies itself.
    pub fn apply_to_net(&self, net: &mut Net) -> bool {
        match self {
            Fault::Partition { groups } => {
                for (g, members) in groups.iter().enumerate() {
                    for &node in members {
                        net.set_group(node, u16::try_from(g).unwrap_or(u16::MAX));
                    }
                }
            }
            Fault::Bridge { node } => net.set_bridge(*node, true),
            Fault::CutOneWay { from, to } => net.set_one_way(*from, *to, true),
            Fault::RestoreOneWay { from, to } => net.set_one_way(*from, *to, false),
            Fault::NodeLoss { node, loss } => net.set_node_loss(*node, *loss),
            Fault::BurstLoss { loss } => net.set_burst_loss(*loss),
            Fault::Heal => net.heal(),
            Fault::Crash { .. }
            | Fault::Shutdown { .. }
            | Fault::Restart { .. }
            | Fault::RestartAs { .. }
            | Fault::Adopt { .. }
            | Fault::Propose { .. }
            | Fault::Pause { .. }
            | Fault::Resume { .. } => return false,
        }
        true
    }

    /// The largest node index the fault names, to validate a schedule against a cluster.
    pub fn max_node(&self) -> Option<usize> {
        match self {
            Fault::Partition { groups } => groups.iter().flatten().copied().max(),
            Fault::CutOneWay { from, to } | Fault::RestoreOneWay { from, to } => Some(*from.max(to)),
            Fault::Bridge { node }
            | Fault::NodeLoss { node, .. }
            | Fault::Crash { node }
            | Fault::Shutdown { node }
            | Fault::Restart { node }
            | Fault::RestartAs { node, .. }
            | Fault::Adopt { node, .. }
            | Fault::Pause { node }
            | Fault::Resume { node } => Some(*node),
            Fault::Propose { node, .. } => *node,
            Fault::BurstLoss { .. } | Fault::Heal => None,
        }
    }
}

/// Groups longer than this are abbreviated in timelines (1000-node partitions).
const GROUP_PRINT_MAX: usize = 8;

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { groups } => {
                f.write_str("partition")?;
                for (i, g) in groups.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { " | " })?;
                    write_group(f, g)?;
                }
                Ok(())
            }
            Fault::Bridge { node } => write!(f, "bridge n{}", node + 1),
            Fault::CutOneWay { from, to } => write!(f, "cut n{} -> n{}", from + 1, to + 1),
            Fault::RestoreOneWay { from, to } => write!(f, "restore n{} -> n{}", from + 1, to + 1),
            Fault::NodeLoss { node, loss } => {
                write!(f, "loss {:.0}% on links of n{}", loss * 100.0, node + 1)
            }
            Fault::BurstLoss { loss } => write!(f, "loss burst {:.0}% on every link", loss * 100.0),
            Fault::Crash { node } => write!(f, "crash n{}", node + 1),
            Fault::Shutdown { node } => write!(f, "shutdown n{}", node + 1),
            Fault::Restart { node } => write!(f, "restart n{}", node + 1),
            Fault::RestartAs { node, setup } => write!(f, "restart n{} as {setup}", node + 1),
            Fault::Adopt { node, definition } => write!(f, "n{} adopts definition {definition}", node + 1),
            Fault::Propose { node: Some(node), pick, .. } => {
                write!(f, "change #{pick} proposed on n{}", node + 1)
            }
            Fault::Propose { node: None, pick, .. } => {
                write!(f, "change #{pick} proposed on a running member")
            }
            Fault::Pause { node } => write!(f, "pause n{}", node + 1),
            Fault::Resume { node } => write!(f, "resume n{}", node + 1),
            Fault::Heal => f.write_str("heal network"),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::FenceQuery { from, about } => write!(f, "n{} asks about n{}", from + 1, about + 1),
            Signal::FenceYes { from, about } => write!(f, "n{} says n{} is down", from + 1, about + 1),
        }
    }
}

fn write_group(f: &mut fmt::Formatter<'_>, g: &[usize]) -> fmt::Result {
    f.write_str("{")?;
    for (i, n) in g.iter().take(GROUP_PRINT_MAX).enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "n{}", n + 1)?;
    }
    if g.len() > GROUP_PRINT_MAX {
        write!(f, ",... {} nodes", g.len())?;
    }
    f.write_str("}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NetParams;

    #[test]
    fn partition_prints_node_ids_and_applies_to_the_net() {
        let fault = Fault::Partition { groups: vec![vec![0, 1], vec![2, 3, 4]] };
        assert_eq!(fault.to_string(), "partition {n1,n2} | {n3,n4,n5}");
        let mut net = Net::new(5, NetParams::default(), 0);
        assert!(fault.apply_to_net(&mut net));
        assert!(!net.link_up(1, 2) && net.link_up(2, 4) && net.link_up(0, 1));
        assert_eq!(fault.max_node(), Some(4));
    }

    #[test]
    fn process_faults_leave_the_net_alone() {
        let mut net = Net::new(2, NetParams::default(), 0);
        assert!(!Fault::Crash { node: 1 }.apply_to_net(&mut net));
        assert!(net.is_healed());
        let big = Fault::Partition { groups: vec![(0..20).collect(), vec![20]] };
        assert!(big.to_string().contains("... 20 nodes"));
    }

    #[test]
    fn bugs_print_with_node_ids_and_parse_back() {
        let bugs = [
            Bug::ForgedAck { node: 0, since: 5_000 * crate::clock::MS },
            Bug::DeafToAcks { node: 2, since: 0 },
            Bug::ReusedIncarnation { node: 1 },
            Bug::PhantomFence { node: 1, peer: 0, since: 7 * crate::clock::MS },
            Bug::SlowClock { node: 4, pct: 25 },
            Bug::HastyProposer { node: 2 },
            Bug::StalePreset { node: 1 },
        ];
        for bug in bugs {
            assert_eq!(bug.to_string().parse::<Bug>(), Ok(bug), "{bug}");
        }
        assert_eq!(bugs[0].to_string(), "forged-ack:1:5000");
        assert!("forged-ack:0:5".parse::<Bug>().is_err());
        assert!("slow-clock:1".parse::<Bug>().is_err());
    }
}
