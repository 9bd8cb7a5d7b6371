//! The one status of a node, built from all its parts, and the inspection accessors.

use std::time::Duration;

use quorate_detector::{Detector, PeerState};
use quorate_gate::{Epoch, PeerStatus, QuorumGate, QuorumStatus};
use quorate_gossip::{FenceCounters, GossipCounters, PartitionView, RowTable};
use quorate_heartbeat::{Incarnation, Instant, NodeId, Terms, VoteTable};

use crate::counters::Counters;
use crate::node::Node;

/// When the status is worth publishing again.
#[derive(Debug)]
pub(crate) struct StatusClock {
    every: Duration,
    dirty: bool,
    published: Option<Instant>,
    /// The partition view last published, to notice a change.
    view: Option<PartitionView>,
}

impl StatusClock {
    pub(crate) fn new(every: Duration) -> Self {
        StatusClock { every, dirty: true, published: None, view: None }
    }

    /// Something material changed.
    pub(crate) fn touch(&mut self) {
        self.dirty = true;
    }

    /// Gossip's partition view is `view` now.
    pub(crate) fn saw_view(&mut self, view: &PartitionView) {
        if self.view.as_ref() != Some(view) {
            self.view = Some(view.clone());
            self.dirty = true;
        }
    }

    /// Whether to publish at `now` (and, if so, counts it as published).
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        let due = self.dirty || self.published.is_none_or(|at| now >= at + self.every);
        if due {
            self.dirty = false;
            self.published = Some(now);
        }
        due
    }
}

impl Node {
    /// This node's status at `now`: the gate's leases and epoch, the detector's view of
    /// each peer, gossip's partition view, the peers known fenced and the definitions in
    /// use. What [`Node::poll_status`] hands out.
    pub fn status(&self, now: Instant) -> QuorumStatus {
        let votes = self.gate.votes();
        let peers = votes
            .peers_of(self.me)
            .into_iter()
            .map(|id| PeerStatus {
                id,
                votes: votes.votes(id),
                state: self.detector.state(id).unwrap_or(PeerState::Unknown),
                last_heard: self.detector.last_heard(id),
                lease_until: self.gate.lease_until(id),
            })
            .collect();
        QuorumStatus {
            node: self.me,
            as_of: now,
            writable: self.gate.is_writable(now),
            epoch: self.gate.epoch(),
            deadline: self.gate.deadline(),
            held_votes: self.gate.held_votes(now),
            needed_votes: votes.majority(),
            total_votes: votes.total(),
            tie_breaker: votes.tie_breaker(),
            peers,
            waiting_for: self.gate.waiting_for().collect(),
            partition: self.gossip.as_ref().and_then(|s| s.gossiper.view().cloned()),
            fenced: self.fenced.iter().copied().collect(),
            epochs_exhausted: self.gate.epochs_exhausted(),
            definition: self.terms.definition,
            mismatched: self.definitions.mismatched(),
        }
    }

    /// Whether [`Node::shutdown`] or [`Node::halt`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Another handle on this node's gate.
    pub fn gate(&self) -> QuorumGate {
        self.gate.handle()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// What this node's heartbeats say of its lease, drift bound and quorum definition.
    pub fn terms(&self) -> Terms {
        self.terms
    }

    /// This node's quorum definition (members, votes, resolved tie-breaker).
    pub fn definition(&self) -> &VoteTable {
        self.gate.votes()
    }

    /// The floor this node keeps for `peer` after last contact: its own `down_after_min`,
    /// or more when the peer's lease needs more.
    pub fn floor_for(&self, peer: NodeId) -> Option<Duration> {
        self.detector.floor(peer)
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    /// Whether the gate is writable at local time `now`.
    pub fn is_writable(&self, now: Instant) -> bool {
        self.gate.is_writable(now)
    }

    /// The current fencing epoch.
    pub fn epoch(&self) -> Epoch {
        self.gate.epoch()
    }

    /// What this node's detector thinks of `peer`.
    pub fn peer_state(&self, peer: NodeId) -> Option<PeerState> {
        self.detector.state(peer)
    }

    /// Until when this node holds `peer`'s vote.
    pub fn lease_until(&self, peer: NodeId) -> Option<Instant> {
        self.gate.lease_until(peer)
    }

    /// The detector, for inspection (phi, last heard, floors).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// What this node sent, accepted and dropped.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// What gossip did; `None` when gossip is off.
    pub fn gossip_counters(&self) -> Option<GossipCounters> {
        self.gossip.as_ref().map(|s| s.gossiper.counters())
    }

    /// What fence checks did; `None` when gossip is off.
    pub fn fence_counters(&self) -> Option<FenceCounters> {
        self.gossip.as_ref().map(|s| s.fencer.counters())
    }

    /// The gossip rows this node holds; `None` when gossip is off.
    pub fn rows(&self) -> Option<&RowTable> {
        self.gossip.as_ref().map(|s| s.gossiper.table())
    }

    /// Who hears whom at `now`, from gossip; `None` when gossip is off.
    pub fn partition_view(&self, now: Instant) -> Option<PartitionView> {
        self.gossip.as_ref().map(|s| s.gossiper.view_at(now))
    }

    /// Events dropped because the driver did not poll them.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }
}
