//! Quorum and peer events, and the bounded stream subscribers read them from.
//!
//! Events go out on a bounded broadcast channel. A subscriber that falls more than
//! `event_capacity` events behind does not slow the node down: its next read returns
//! [`RecvError::Lagged`] with the number of events it missed, after which it can read the
//! latest state from `QuorumGate::watch()` or `status()` and carry on.

use quorate_proto::{DefinitionDigest, Instant, NodeId};
use tokio::sync::broadcast;

use crate::status::{Epoch, Why};

/// Something that changed about the cluster as this node sees it. Times are on the node's
/// gate clock.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum QuorumEvent {
    /// The node became writable, under a new epoch.
    QuorumGained {
        /// The new epoch.
        epoch: Epoch,
        /// When the core noticed.
        at: Instant,
        /// Votes held, own included.
        held_votes: u64,
        /// Votes for a strict majority.
        needed_votes: u64,
    },
    /// The node stopped being writable. `at` is when its leases ran out (the gate fenced
    /// itself then, by the clock), which can be earlier than when the core noticed.
    QuorumLost {
        /// The epoch that ended.
        epoch: Epoch,
        /// When the held leases stopped forming a quorum.
        at: Instant,
        /// What was missing when the core noticed.
        why: Why,
    },
    /// A peer is heard again (or for the first time).
    PeerUp {
        /// The peer.
        peer: NodeId,
        /// When.
        at: Instant,
    },
    /// A peer's heartbeats are late enough to suspect it.
    PeerSuspect {
        /// The peer.
        peer: NodeId,
        /// When.
        at: Instant,
    },
    /// This node considers the peer down (past the down floor).
    PeerDown {
        /// The peer.
        peer: NodeId,
        /// When.
        at: Instant,
    },
    /// The peer left gracefully (its gate fenced itself before it said so).
    PeerLeft {
        /// The peer.
        peer: NodeId,
        /// When.
        at: Instant,
    },
    /// Gossip: a peer this node considers down is heard by others (their fresh rows,
    /// known current after this node lost it, say so). It is alive but unreachable from here.
    PeerAliveElsewhere {
        /// The peer.
        peer: NodeId,
        /// The members that hear it.
        via: Vec<NodeId>,
        /// When this node learned it.
        at: Instant,
    },
    /// Gossip: a peer this node considers down is heard by nobody whose fresh row reached
    /// this node: it crashed, or it is cut off from every member this node can learn from.
    PeerDownEverywhere {
        /// The peer.
        peer: NodeId,
        /// When this node learned it.
        at: Instant,
    },
    /// A quorum of voters confirmed, in one fence check, that they consider the peer down
    /// and withhold their acks from it: the peer is not writable now and, while the
    /// partition lasts, stays fenced. Every write it accepts later carries a higher epoch.
    /// See `docs/guarantees.md` for exactly what this promises.
    PeerFenced {
        /// The peer.
        peer: NodeId,
        /// The voters (this node possibly among them) whose answers formed the quorum.
        confirmed_by: Vec<NodeId>,
        /// When the check concluded (this node's gate clock).
        at: Instant,
        /// When this node started the check (same clock): `at - check_started` is how long
        /// the check took, the `quorate_fence_check_seconds` histogram.
        check_started: Instant,
    },
    /// A peer runs another quorum definition (members, votes or tie-breaker) than this
    /// node: neither counts the other's vote, and this node writes only on votes that are
    /// a quorum under both definitions. Emitted when the mismatch is first seen and when
    /// the peer's definition changes again.
    ConfigMismatch {
        /// The peer.
        peer: NodeId,
        /// Digest of this node's definition.
        ours: DefinitionDigest,
        /// Digest of the peer's.
        theirs: DefinitionDigest,
        /// When this node heard it.
        at: Instant,
    },
    /// A peer that ran another definition now runs this node's.
    ConfigMatched {
        /// The peer.
        peer: NodeId,
        /// When this node heard it.
        at: Instant,
    },
}

impl QuorumEvent {
    /// When the event happened, on the node's gate clock.
    pub fn at(&self) -> Instant {
        match self {
            QuorumEvent::QuorumGained { at, .. }
            | QuorumEvent::QuorumLost { at, .. }
            | QuorumEvent::PeerUp { at, .. }
            | QuorumEvent::PeerSuspect { at, .. }
            | QuorumEvent::PeerDown { at, .. }
            | QuorumEvent::PeerLeft { at, .. }
            | QuorumEvent::PeerAliveElsewhere { at, .. }
            | QuorumEvent::PeerDownEverywhere { at, .. }
            | QuorumEvent::PeerFenced { at, .. }
            | QuorumEvent::ConfigMismatch { at, .. }
            | QuorumEvent::ConfigMatched { at, .. } => *at,
        }
    }
}

/// A subscription to a gate's events.
#[derive(Debug)]
pub struct EventStream {
    rx: broadcast::Receiver<QuorumEvent>,
}

/// Why [`EventStream::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The subscriber fell behind and `missed` events were dropped for it. The stream
    /// continues with the oldest event still buffered.
    #[error("fell behind: {missed} events dropped; read the latest status from watch()")]
    Lagged {
        /// Events this subscriber will never see.
        missed: u64,
    },
    /// The node stopped; no more events will come.
    #[error("the node stopped")]
    Closed,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<QuorumEvent>) -> Self {
        EventStream { rx }
    }

    /// Waits for the next event.
    pub async fn recv(&mut self) -> Result<QuorumEvent, RecvError> {
        self.rx.recv().await.map_err(map_recv)
    }

    /// The next event if one is buffered, without waiting. `Ok(None)` when none is.
    pub fn try_recv(&mut self) -> Result<Option<QuorumEvent>, RecvError> {
        match self.rx.try_recv() {
            Ok(ev) => Ok(Some(ev)),
            Err(broadcast::error::TryRecvError::Empty) => Ok(None),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Err(RecvError::Lagged { missed }),
            Err(broadcast::error::TryRecvError::Closed) => Err(RecvError::Closed),
        }
    }
}

fn map_recv(e: broadcast::error::RecvError) -> RecvError {
    match e {
        broadcast::error::RecvError::Lagged(missed) => RecvError::Lagged { missed },
        broadcast::error::RecvError::Closed => RecvError::Closed,
    }
}
