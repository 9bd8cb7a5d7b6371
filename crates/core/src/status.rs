//! What a node tells: the events every part decided, collected in one order at the end of
//! each step ([`Node::settle`]); the one status, built from all parts; and the inspection
//! accessors.

use std::time::Duration;

use quorate_detector::{Detector, PeerState};
use quorate_gate::{
    Epoch, GateEvent, PeerStatus, QuorumEvent, QuorumGate, QuorumStatus, Why, EVENT_QUEUE_MAX,
};
use quorate_gossip::{FenceCounters, GossipCounters, GossipEvent, GossipOutput, PartitionView, RowTable};
use quorate_proto::{Incarnation, Instant, NodeId, Terms, VoteTable};

use crate::counters::Counters;
use crate::node::Node;

impl Node {
    /// Ends every step: collects what the parts decided into this node's outputs, in the
    /// order they decided it. Gossip's accusations go to the fence checker, whose
    /// conclusions become events; their messages join the outbox.
    pub(crate) fn settle(&mut self, now: Instant) {
        self.drain_gate(now);
        // The fence checker's messages of this step (releases of checks that expired)
        // were decided before anything gossip decided in it.
        self.drain_fencer();
        while let Some(output) = self.gossip.as_mut().and_then(|s| s.gossiper.poll_output()) {
            match output {
                GossipOutput::Send(out) => self.outbox.request(out.to, out.payload),
                GossipOutput::Event(GossipEvent::AliveElsewhere { peer, via, at }) => {
                    self.push_event(QuorumEvent::PeerAliveElsewhere { peer, via, at })
                }
                GossipOutput::Event(GossipEvent::DownEverywhere { peer, at }) => {
                    self.push_event(QuorumEvent::PeerDownEverywhere { peer, at })
                }
                GossipOutput::Event(GossipEvent::Accused { peer, accusers }) => {
                    let down_here = self.detector.state(peer) == Some(PeerState::Unreachable);
                    let theirs = self.definitions.of(peer);
                    if let Some(s) = self.gossip.as_mut() {
                        s.fencer.consider(now, peer, accusers, theirs, down_here);
                    }
                    self.drain_fencer();
                }
            }
        }
        if let Some(s) = self.gossip.as_ref() {
            self.status_clock.saw_view_changes(s.gossiper.view_changes());
        }
    }

    pub(crate) fn drain_fencer(&mut self) {
        let Some(s) = self.gossip.as_mut() else { return };
        while let Some(out) = s.fencer.poll_transmit() {
            self.outbox.request(out.to, out.payload);
        }
        while let Some(f) = self.gossip.as_mut().and_then(|s| s.fencer.poll_event()) {
            self.fenced.insert(f.peer);
            self.push_event(QuorumEvent::PeerFenced {
                peer: f.peer,
                confirmed_by: f.confirmed_by,
                at: f.at,
                check_started: f.started,
            });
        }
    }

    /// Turns what the lease table decided into events, with the reason a stretch ended.
    pub(crate) fn drain_gate(&mut self, now: Instant) {
        while let Some(event) = self.gate.poll_event() {
            let event = match event {
                GateEvent::Gained { epoch, at, held_votes } => QuorumEvent::QuorumGained {
                    epoch,
                    at,
                    held_votes,
                    needed_votes: self.gate.votes().majority(),
                },
                GateEvent::Lost { epoch, at, stopped: true } => {
                    QuorumEvent::QuorumLost { epoch, at, why: Why::Stopped }
                }
                GateEvent::Lost { epoch, at, stopped: false } => {
                    let why = self.status(now.max(at)).fence_reason();
                    QuorumEvent::QuorumLost { epoch, at, why }
                }
            };
            self.push_event(event);
        }
    }

    pub(crate) fn push_event(&mut self, event: QuorumEvent) {
        if self.events.len() >= EVENT_QUEUE_MAX {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
        self.status_clock.touch();
    }

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
            definition_version: self.definitions.roster().version,
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
