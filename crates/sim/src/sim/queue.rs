//! The event queue: a heap of (real time, seq), ties broken by insertion order so the run
//! is a pure function of the scenario and the seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::wire::Carry;

/// Something that happens at one real instant.
#[derive(Debug)]
pub(super) enum Ev {
    /// A message reaches `to` (`buffered`: it waited in the socket of a paused process).
    Deliver { from: usize, to: usize, payload: Vec<u8>, buffered: bool, carry: Carry },
    /// A node's timer, armed in generation `gen` (a later arming makes it stale).
    Timer { node: usize, gen: u64 },
    /// The scenario's fault of this index.
    Fault(usize),
    /// A checker asked to look at a node now.
    Wake { checker: usize, node: usize },
    /// Every checker looks at every node (large clusters).
    Sweep,
    /// A write of life `incarnation` lands on the node's disk.
    Landed { node: usize, incarnation: u64 },
}

/// An event and when it happens.
#[derive(Debug)]
pub(super) struct Queued {
    /// Real time, ns.
    pub(super) at: u64,
    /// Insertion order: breaks ties in time.
    seq: u64,
    /// What happens.
    pub(super) ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The events still to come.
#[derive(Debug, Default)]
pub(super) struct Queue {
    heap: BinaryHeap<Reverse<Queued>>,
    seq: u64,
}

impl Queue {
    /// Adds `ev` at real time `at`, after every event already queued for that instant.
    pub(super) fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse(Queued { at, seq: self.seq, ev }));
    }

    /// The next event, if it happens no later than real time `end`.
    pub(super) fn pop_until(&mut self, end: u64) -> Option<Queued> {
        if self.heap.peek()?.0.at > end {
            return None;
        }
        self.heap.pop().map(|Reverse(q)| q)
    }
}
