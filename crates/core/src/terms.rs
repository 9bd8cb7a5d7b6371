//! Cross-node rules in one room: what each peer's heartbeats say of its terms (the floor
//! its lease needs, the definition it runs), when an ack may go out, and what the data
//! directory keeps of both so that a promise outlives a restart. `docs/design.md`
//! ("Rules between nodes") says why each rule is there.

use std::collections::{BTreeMap, BTreeSet};

use quorate_gate::QuorumEvent;
use quorate_proto::{
    encode_stream, Definition, Instant, Message, NodeId, Roster, RosterMessage, Terms, VoteTable,
};

use crate::definitions::Change;
use crate::node::Node;
use crate::promises::{required_floor, PeerDefinitions, Promises};

impl Node {
    /// Whether an ack to `peer` may go out at `now`: an ack lends the peer this node's
    /// vote, so it needs every promise around it kept. Not while an earlier life's fence
    /// holds may still bind, nor while a fence-check yes withholds acks from the peer; not
    /// to a peer on another quorum definition (unless one version apart, see
    /// `docs/reconfiguration.md`); not to a peer whose lease this node's floor
    /// for it cannot cover, or whose floor the data directory does not record yet.
    pub(crate) fn may_ack(&self, now: Instant, peer: NodeId) -> bool {
        if !self.ledger.acks_allowed(now)
            || self.gossip.as_ref().is_some_and(|s| s.fencer.withholds_ack(peer, now))
        {
            return false;
        }
        // A later definition waits to be adopted: no new vote for a peer it would leave two
        // versions behind, so that the wait ends.
        if self.definitions.newer().is_some_and(|r| self.leaves_behind(peer, r.version)) {
            return false;
        }
        match self.definitions.floor(peer) {
            Some(floor) => {
                self.definitions.exchanges_votes(peer) && floor.is_some_and(|f| self.ledger.covers_floor(f))
            }
            // Never heard: there is nothing to ack yet.
            None => false,
        }
    }

    /// Sends `to` this node's definition, as a request (the answer is `to`'s own): when
    /// this node starts or adopts a definition, ahead of the heartbeats that announce it
    /// (see `announce.rs`), and to ask for `to`'s when its heartbeats name one unknown here.
    pub(crate) fn push_definition(&mut self, to: NodeId) {
        if let Ok(payload) = encode_stream(self.cluster, &self.definition_message()) {
            self.outbox.request(to, payload);
        }
    }

    /// This node's definition in the form of version 0, which every build reads.
    pub(crate) fn own_definition(&self) -> Definition {
        let (members, tie_breaker) = self.gate.votes().parts();
        Definition { from: self.me, incarnation: self.incarnation, members, tie_breaker }
    }

    /// This node's definition as sent to a peer: the form an older build reads while the
    /// definition never changed online (version 0), with its version and addresses once it
    /// has.
    pub(crate) fn definition_message(&self) -> Message {
        let roster = self.definitions.roster();
        if roster.version == 0 {
            Message::Definition(self.own_definition())
        } else {
            Message::Roster(roster.to_message(self.me, self.incarnation))
        }
    }

    /// A write the driver must make to the data directory before the node relies on it
    /// (see [`Memory::Durable`]); `None` when the record is up to date or nothing is kept.
    /// Asked again on every call until confirmed, so a failed write is simply retried.
    pub fn poll_persist(&self) -> Option<Promises> {
        self.ledger.poll_persist(self.last_now)
    }

    /// The driver wrote `promises` (from [`Node::poll_persist`]) durably.
    pub fn handle_persisted(&mut self, promises: Promises) {
        self.ledger.persisted(promises);
    }

    /// What the earlier lives heard their peers run, read from the data directory: call
    /// right after [`Node::with_memory`], before the first step. A peer remembered on
    /// another definition counts as running it until it is heard (no votes across, and no
    /// quorum that is not also one under that definition), so a restart in the middle of
    /// a rolling change of the member list does not forget that the change is under way.
    /// Entries for nodes that are not peers in this life's definition are ignored, as are
    /// definitions that fail the checks any peer's definition gets.
    pub fn remember_definitions(&mut self, now: Instant, remembered: &PeerDefinitions) {
        let now = self.advance(now);
        let peers: BTreeSet<NodeId> = self.links.keys().copied().collect();
        let changes = self.definitions.remember(remembered, &peers);
        for (peer, change) in changes {
            self.definition_changed(now, peer, change);
        }
        self.settle(now);
    }

    /// The definitions to keep in the data directory when they differ from what it holds
    /// (a peer heard on a new definition, or a definition received in full); `None` when
    /// it is up to date. Asked again on every call until confirmed with
    /// [`Node::handle_definitions_persisted`]. Nothing waits for this write: it only
    /// protects later lives.
    pub fn poll_persist_definitions(&self) -> Option<PeerDefinitions> {
        self.definitions.poll_persist()
    }

    /// The driver wrote `definitions` (from [`Node::poll_persist_definitions`]) durably.
    /// A record that is no longer current (something changed since it was asked for) is
    /// asked for again.
    pub fn handle_definitions_persisted(&mut self, definitions: PeerDefinitions) {
        self.definitions.persisted(&definitions);
    }

    /// Takes in the terms a fresh heartbeat from `from` carried: raises the detector's
    /// floor for the peer to what its lease needs, and notices a definition other than
    /// this node's. Returns whether the peer's acks count here (see
    /// `Definitions::exchanges_votes`).
    pub(crate) fn on_terms(&mut self, now: Instant, from: NodeId, terms: &Terms) -> bool {
        let floor = required_floor(terms, self.drift);
        match floor {
            Some(f) => {
                self.detector.raise_floor(from, f);
                self.ledger.owe_floor(f);
            }
            None => self.counters.terms_refused += 1,
        }
        let (change, ask) = self.definitions.heard(now, from, floor, terms.definition);
        self.definition_changed(now, from, change);
        if ask {
            self.push_definition(from);
        }
        self.definitions.exchanges_votes(from)
    }

    /// `peer`'s definition changed as `change` says: tell the gate and the subscribers.
    pub(crate) fn definition_changed(&mut self, now: Instant, peer: NodeId, change: Change) {
        let event = match change {
            Change::None => return,
            Change::Mismatch { theirs } => {
                QuorumEvent::ConfigMismatch { peer, ours: self.terms.definition, theirs, at: now }
            }
            Change::Matched => QuorumEvent::ConfigMatched { peer, at: now },
        };
        self.push_event(event);
        self.gate.set_other_definitions(now, self.definitions.others());
        self.drain_gate(now);
    }

    /// A peer sent its definition (as a request or a reply), in the form of version 0.
    pub(crate) fn on_definition(&mut self, now: Instant, from: NodeId, d: &Definition) {
        let Ok(votes) = VoteTable::from_parts(&d.members, d.tie_breaker) else {
            self.counters.dropped.malformed += 1;
            return;
        };
        self.on_roster(now, from, Roster::initial(votes, BTreeMap::new()));
    }

    /// A peer sent its versioned definition.
    pub(crate) fn on_roster_message(&mut self, now: Instant, from: NodeId, m: &RosterMessage) {
        match Roster::from_message(m) {
            Ok(roster) => self.on_roster(now, from, roster),
            Err(_) => self.counters.dropped.malformed += 1,
        }
    }

    fn on_roster(&mut self, now: Instant, from: NodeId, roster: Roster) {
        let (change, new) = self.definitions.received(from, roster);
        self.definition_changed(now, from, change);
        if new {
            self.status_clock.touch();
            self.gate.set_other_definitions(now, self.definitions.others());
            self.drain_gate(now);
        }
    }
}
