//! Counters of what a node sent, accepted and dropped, by reason.
//!
//! Every datagram that does not change the node's state is counted under exactly one
//! reason, so an operator can tell an attack (malformed, foreign cluster, bogus acks) from a
//! version skew (unknown version) from ordinary network behaviour (replayed = duplicated or
//! reordered, stale incarnation = delayed packets from before a restart).

use quorate_proto::DecodeError;

/// Datagrams dropped, by reason. All counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Shorter than its own encoding says.
    pub truncated: u64,
    /// Larger than the datagram limit.
    pub oversized: u64,
    /// A format version this build does not read.
    pub unknown_version: u64,
    /// Another cluster's id.
    pub foreign_cluster: u64,
    /// Not a valid message (includes trailing bytes).
    pub malformed: u64,
    /// From a node that is not a configured member.
    pub unknown_sender: u64,
    /// The message's sender differs from the authenticated peer, or is this node.
    pub sender_mismatch: u64,
    /// From an incarnation older than one already heard, or from a life that left.
    pub stale_incarnation: u64,
    /// A sequence number already covered: duplicate, reordered or replayed.
    pub replayed: u64,
}

impl DropCounters {
    /// Sum of all reasons.
    pub fn total(&self) -> u64 {
        self.truncated
            + self.oversized
            + self.unknown_version
            + self.foreign_cluster
            + self.malformed
            + self.unknown_sender
            + self.sender_mismatch
            + self.stale_incarnation
            + self.replayed
    }

    pub(crate) fn count_decode(&mut self, e: &DecodeError) {
        let slot = match e {
            DecodeError::Truncated { .. } => &mut self.truncated,
            DecodeError::Oversized { .. } => &mut self.oversized,
            DecodeError::UnknownVersion { .. } => &mut self.unknown_version,
            DecodeError::ForeignCluster { .. } => &mut self.foreign_cluster,
            _ => &mut self.malformed,
        };
        *slot += 1;
    }
}

/// Everything a node counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Heartbeats handed to the driver to send.
    pub heartbeats_sent: u64,
    /// Direct polls sent to peers that turned suspect.
    pub polls_sent: u64,
    /// Polls from peers answered with a fresh heartbeat.
    pub polls_answered: u64,
    /// Heartbeats accepted as fresh contact.
    pub heartbeats_accepted: u64,
    /// Acks that extended or confirmed a lease.
    pub acks_accepted: u64,
    /// Acks naming another incarnation of this node (sent before the peer heard this life).
    pub acks_stale: u64,
    /// Acks of heartbeats older than the send log keeps.
    pub acks_forgotten: u64,
    /// Acks naming a heartbeat this node never sent: hostile or corrupt, never used.
    pub acks_bogus: u64,
    /// Acks from a peer that runs another quorum definition (not one version apart): never
    /// counted.
    pub acks_mismatched: u64,
    /// Acks this node owed but withheld (after a restart, during a fence hold, to a peer
    /// on another definition or whose terms are refused, or until the data directory
    /// records the floor the ack would owe).
    pub acks_withheld: u64,
    /// Heartbeats whose terms cannot be honoured (drift bound of 50% or more, or a lease
    /// needing a floor above an hour): the peer is heard but never acked.
    pub terms_refused: u64,
    /// Graceful leaves heard from peers.
    pub leaves_heard: u64,
    /// Times a peer was heard in a new incarnation (restarts).
    pub peer_restarts: u64,
    /// Heartbeats held back because the peer had not confirmed this node's definition yet
    /// (see `announce.rs`).
    pub heartbeats_held: u64,
    /// Later definitions adopted while running (see `Node::adopt`).
    pub definitions_adopted: u64,
    /// Of those, the ones adopted as a fresh start (not the next version, or not a safe
    /// successor): leases dropped and acks held until the votes lent had expired.
    pub definitions_skipped: u64,
    /// Timing changes run while the node ran (see `Node::set_timing`).
    pub timing_changes: u64,
    /// Datagrams dropped, by reason.
    pub dropped: DropCounters,
}
