//! Faults: what can go wrong, as data, so a schedule can be generated from a seed, printed
//! in a timeline and replayed.
//!
//! Network faults change the [`Net`]; process faults (crash, shutdown, restart, pause,
//! resume) are applied by the simulator to the node's host. Node numbers are indices
//! `0..n`; they are printed as node ids (`n1` is index 0) everywhere a person reads them.

use std::fmt;

use quorate_heartbeat::{decode, decode_stream, encode, encode_stream, ClusterId, Message, Terms};

use crate::host::Carry;
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
            | Fault::Pause { node }
            | Fault::Resume { node } => Some(*node),
            Fault::BurstLoss { .. } | Fault::Heal => None,
        }
    }
}

/// `payload` rewritten, if it is a heartbeat, to carry `terms` instead of the sender's
/// (the `local_only_terms` fault: every receiver sees its own lease, drift and definition).
pub(crate) fn with_terms(payload: &[u8], carry: Carry, terms: Terms, cluster: ClusterId) -> Option<Vec<u8>> {
    let datagram = carry == Carry::Datagram;
    let message = if datagram { decode(payload, cluster) } else { decode_stream(payload, cluster) };
    let Ok(Message::Heartbeat(mut hb)) = message else { return None };
    hb.terms = terms;
    let message = Message::Heartbeat(hb);
    let encoded = if datagram { encode(cluster, &message) } else { encode_stream(cluster, &message) };
    encoded.ok()
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
}
