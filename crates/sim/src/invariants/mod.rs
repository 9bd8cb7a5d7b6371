//! The invariants, one checker per file, all checked at every step of the simulation.
//!
//! | checker | invariant |
//! |---|---|
//! | [`lease_safety`] | (a) whenever B considers A down, A does not hold B's vote at that real instant (A's lease, whatever B's own) |
//! | [`fence_bound`] | (b) a node cut off from every quorum of its definition at `c` is not writable from `c + lease (1 + rho)`, its own lease |
//! | [`intersection`] | (c) a writable node holds a quorum of votes under its own definition, and no two writable nodes' voter sets are disjoint; the sets are rebuilt from the acks the wire delivered ([`crate::acks`]), not read from the cores |
//! | [`no_false_fence`] | (d) a node connected to a quorum within the loss bound, once writable, is never fenced (one definition only) |
//! | [`heal`] | (e) a node that can reach a quorum again is writable at the heal bound, also one that was writable at that moment and lost its votes during the warm-up (one definition only) |
//! | [`epoch_monotonic`] | (f) epochs only grow per node id, across restarts too |
//! | [`fenced_sound`] | (g) when a node announces `PeerFenced { peer }`, the peer cannot write at that instant; a peer writable again before a quorum heard it since is counted (not yet enforced) |
//!
//! Each checker is shown firing first, by name, on a bug planted in one node and aimed at
//! it (`tests/planted_bugs.rs`, [`crate::Bug`]).
//!
//! Nodes may run different presets and quorum definitions ([`crate::setup`]), and
//! definitions change while nodes run ([`crate::versions`]): a node is judged under the
//! definition and version it runs at that step. The safety invariants (a, b, c, f, g) are
//! stated per node under its own configuration and hold across any mix. The liveness invariants (d, e) are checked only in runs where every node
//! runs one definition throughout: nodes on different definitions deliberately refuse each
//! other's votes, so a node next to a reachable quorum of its own definition may stay
//! fenced by design. Mixed presets on one definition are checked, with the run's longest
//! heartbeat interval in the bounds.
//!
//! **When each check runs.** A checker sees every step (a datagram delivered, a timer, a
//! resume), every fault, and wake-ups it asked for. A core's state changes only in its own
//! step, and time passing can only fence a node or expire a lease, so each checker looks
//! at the nodes a step can have changed: the stepped node, plus the pairs named by the
//! step's events. On top of that, [`Invariant::sweep`] re-checks every node: after every
//! step in clusters of up to [`crate::sim::SWEEP_EVERY_STEP_MAX`] nodes, and every
//! [`crate::sim::SWEEP_INTERVAL`] of virtual time in larger ones (where a full sweep per
//! step would make the run quadratic).

pub mod checker;
pub mod epoch_monotonic;
pub mod fence_bound;
pub mod fenced_sound;
pub mod heal;
pub mod intersection;
pub mod lease_safety;
pub mod no_false_fence;

pub use checker::{Invariant, Measure, Out, Step, StepKind, Violation};

/// One of each checker, in the order of the table above.
pub fn all(nodes: usize) -> Vec<Box<dyn Invariant>> {
    vec![
        Box::new(lease_safety::LeaseSafety::new(nodes)),
        Box::new(fence_bound::FenceBound::new(nodes)),
        Box::new(intersection::Intersection::new(nodes)),
        Box::new(no_false_fence::NoFalseFence::new(nodes)),
        Box::new(heal::Heal::new(nodes)),
        Box::new(epoch_monotonic::EpochMonotonic::new(nodes)),
        Box::new(fenced_sound::FencedSound::new(nodes)),
    ]
}
