//! What every checker is and hands back: the [`Invariant`] trait the event loop calls, the
//! [`Out`] it fills (violations, wake-ups, figures), and what a step was ([`Step`]).
//! Checkers read the cluster through [`World`] and never change it.

use quorate_gate::QuorumEvent;

use crate::world::World;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name, e.g. `lease-safety`.
    pub invariant: &'static str,
    /// Real time, ns.
    pub at: u64,
    /// What was seen, with node ids and times.
    pub detail: String,
}

/// A figure a checker measured while checking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// Time from a cut to the node's fence, ns.
    FenceLatency {
        /// Whether the fenced node votes.
        voter: bool,
        /// Latency, ns.
        ns: u64,
    },
    /// Time from regaining a quorum's reach to being writable, ns.
    Rejoin(u64),
    /// A node connected to a quorum (whatever the loss) lost quorum after being writable.
    LossFence,
    /// A peer announced fenced became writable again before a quorum heard it after the
    /// announcement (the second half of G7, counted, not enforced).
    EarlyRejoin,
}

/// What a checker hands back: violations, wake-ups it wants, figures.
#[derive(Debug, Default)]
pub struct Out {
    /// Broken invariants.
    pub violations: Vec<Violation>,
    /// (real time, node) pairs at which [`Invariant::on_wake`] should run.
    pub wakes: Vec<(u64, usize)>,
    /// Figures.
    pub measures: Vec<Measure>,
}

impl Out {
    /// Reports a violation of `invariant` at `at`.
    pub fn violate(&mut self, invariant: &'static str, at: u64, detail: String) {
        self.violations.push(Violation { invariant, at, detail });
    }
}

/// What happened in one step of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A datagram from this sender was handed to the core.
    Datagram {
        /// Sender index.
        from: usize,
    },
    /// The core's timer fired (also used for a graceful shutdown).
    Timer,
    /// A new life started (`Node::new` may already have queued events: a node whose own
    /// votes are a quorum gains it at once).
    Start,
}

/// One step of one node, as the checkers see it.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// The node that stepped.
    pub node: usize,
    /// What the step was.
    pub kind: StepKind,
    /// The events its core emitted in the step.
    pub events: &'a [QuorumEvent],
}

/// One invariant's checker. Every method has a default that does nothing.
pub trait Invariant {
    /// The name printed on failure.
    fn name(&self) -> &'static str;

    /// After a node took a step.
    fn after_step(&mut self, _w: &World, _step: &Step<'_>, _out: &mut Out) {}

    /// After a fault (connectivity or a process state changed; [`World::reach`] is fresh).
    fn after_fault(&mut self, _w: &World, _out: &mut Out) {}

    /// At a wake-up this checker asked for.
    fn on_wake(&mut self, _w: &World, _node: usize, _out: &mut Out) {}

    /// Re-check every node.
    fn sweep(&mut self, _w: &World, _out: &mut Out) {}
}
