//! [`Node`]: one node's protocol, sans-IO. The runtime and the simulator drive this.
//!
//! ```text
//!   handle_datagram(now, from, bytes)     handle_timeout(now)
//!          │ decode, authenticate sender,        │ detector timeouts, lease deadline,
//!          │ refuse stale/replayed               │ heartbeats due
//!          ▼                                      ▼
//!   Link (seq/ack) ──ack──► Gate (leases, epoch) ◄── Detector (phi, floors) ──► peer states
//!          │                        │
//!          ▼                        ▼
//!   poll_transmit()          poll_event() + QuorumGate handles (atomics, watch, broadcast)
//! ```
//!
//! `from` is the peer the transport authenticated (mutual TLS). A datagram whose sender
//! field disagrees with it is dropped, so nothing unauthenticated reaches the detector or
//! the gate. Every refusal is counted in [`Counters`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::num::NonZeroUsize;
use std::time::Duration;

use quorate_detector::{Detector, PartitionView, PeerState, RowTable};
use quorate_gate::{Clock, Epoch, Gate, QuorumEvent, QuorumGate, VoteTable};
use quorate_heartbeat::{
    decode, decode_stream, encode, encode_stream, AckOutcome, ClusterId, Definition, DefinitionDigest,
    Heartbeat, Incarnation, Instant, Leave, Link, Message, NodeId, Refused, Terms,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Config, ConfigError};
use crate::counters::Counters;
use crate::gossip::{Ctx, GossipCounters, Gossiper};
use crate::promises::{required_floor, Ledger, Memory, PeerDefinitions, Promises};

/// Datagrams waiting for the driver before the oldest is dropped. A heartbeat round queues
/// one per peer; a driver that polls after every call never comes near this.
pub const TRANSMIT_QUEUE_MAX: usize = 65_536;

/// Upper bound on the per-link log of send times, whatever the lease and interval.
pub const SENT_LOG_MAX: usize = 4096;

/// How often a peer that runs an unknown definition is asked for it again.
const DEFINITION_RETRY: Duration = Duration::from_secs(1);

/// Heartbeats go out up to this fraction of an interval early, at random, so that nodes
/// started together do not send in lockstep. Early, never late: every timing rule that
/// assumes one heartbeat per interval stays true.
const JITTER_FRACTION: f64 = 0.1;

/// A message for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The peer to send it to.
    pub to: NodeId,
    /// The encoded message.
    pub payload: Vec<u8>,
    /// How to send it.
    pub delivery: Delivery,
}

/// How the driver sends a [`Transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// As an unreliable datagram; dropped rather than queued if it cannot go now.
    Datagram,
    /// As a request on a reliable stream with a short deadline: a direct poll of a
    /// suspect peer, a gossip exchange or a fence query. The peer answers through
    /// [`Node::handle_request`]; hand its reply to [`Node::handle_reply`]. No reply by the
    /// deadline: do nothing.
    Request,
}

/// What a peer's heartbeats say of its terms, as this node honours them.
#[derive(Debug, Clone, Copy, Default)]
struct PeerTerms {
    /// The floor this node keeps for the peer; `None` when its terms cannot be honoured
    /// (it is never acked).
    floor: Option<Duration>,
    /// When this node last asked the peer for its definition.
    asked_definition: Option<Instant>,
}

/// One node's protocol state machine.
#[derive(Debug)]
pub struct Node {
    cluster: ClusterId,
    me: NodeId,
    incarnation: Incarnation,
    interval: Duration,
    links: BTreeMap<NodeId, Link>,
    /// What this node's heartbeats say of its lease, drift and definition.
    terms: Terms,
    drift: f64,
    /// What each peer's heartbeats said of its terms.
    peer_terms: BTreeMap<NodeId, PeerTerms>,
    /// Definitions peers sent, by digest (at most one per peer is referenced).
    definitions: BTreeMap<DefinitionDigest, VoteTable>,
    /// The definition digest each peer was last heard running (in this life or, through
    /// [`Node::remember_definitions`], an earlier one).
    peer_definitions: BTreeMap<NodeId, DefinitionDigest>,
    /// Bumped whenever `peer_definitions` or a definition it names changes, so that
    /// [`Node::poll_persist_definitions`] builds a record only when there is news.
    definitions_version: u64,
    /// The version the data directory holds (see [`Node::handle_definitions_persisted`]).
    definitions_written: Option<u64>,
    ledger: Ledger,
    detector: Detector,
    gate: Gate,
    votes: VoteTable,
    gossip: Option<Gossiper>,
    rng: ChaCha8Rng,
    transmits: VecDeque<Transmit>,
    next_heartbeat: Instant,
    last_now: Instant,
    counters: Counters,
    stopped: bool,
}

impl Node {
    /// A node in its life `incarnation`, started at `now` on `clock` (the clock its gate
    /// handles will read; `now` must come from it). `seed` drives every random choice.
    /// Nothing is kept across restarts ([`Memory::Volatile`]); see [`Node::with_memory`].
    ///
    /// Returns the node and the first handle on its gate. The node starts fenced.
    pub fn new(
        config: Config,
        incarnation: Incarnation,
        clock: Clock,
        now: Instant,
        seed: u64,
    ) -> Result<(Node, QuorumGate), ConfigError> {
        Node::with_memory(config, incarnation, Memory::Volatile, clock, now, seed)
    }

    /// Like [`Node::new`], for a node that keeps its promises in a data directory:
    /// `memory` says what the earlier lives left there. The driver persists whatever
    /// [`Node::poll_persist`] returns and confirms with [`Node::handle_persisted`].
    pub fn with_memory(
        config: Config,
        incarnation: Incarnation,
        memory: Memory,
        clock: Clock,
        now: Instant,
        seed: u64,
    ) -> Result<(Node, QuorumGate), ConfigError> {
        config.validate()?;
        let votes = config.vote_table()?;
        let peers = votes.peers_of(config.me);
        let own_hold = if config.gossip.enabled { config.gossip.fence_hold } else { Duration::ZERO };
        let ledger = Ledger::new(memory, own_hold, now);
        let mut detector = Detector::new(config.detector.clone(), now, peers.iter().copied())
            .map_err(quorate_gate::GateConfigError::from)?;
        detector.raise_start_floor(ledger.start_floor());
        let definition = votes.digest(config.cluster);
        let terms = Terms {
            lease_us: u32::try_from(config.gate.lease.as_micros()).unwrap_or(u32::MAX),
            drift_ppm: (config.gate.max_clock_drift * 1e6).ceil() as u32,
            definition,
        };
        let (mut gate, handle) = Gate::new(
            config.gate.clone(),
            &config.detector,
            votes.clone(),
            config.me,
            incarnation,
            clock,
            now,
        )?;
        gate.set_definition(definition);
        let log_len = sent_log_len(config.gate.lease, config.detector.heartbeat_interval);
        let links = peers.iter().map(|id| (*id, Link::new(log_len))).collect();
        let gossip = config.gossip.enabled.then(|| {
            Gossiper::new(
                config.gossip.clone(),
                config.gate.max_clock_drift,
                config.cluster,
                config.me,
                incarnation,
                &votes,
                now,
            )
        });
        let node = Node {
            cluster: config.cluster,
            me: config.me,
            incarnation,
            interval: config.detector.heartbeat_interval,
            links,
            terms,
            drift: config.gate.max_clock_drift,
            peer_terms: BTreeMap::new(),
            definitions: BTreeMap::new(),
            peer_definitions: BTreeMap::new(),
            definitions_version: 0,
            // Nothing known yet, and nothing to write until something is.
            definitions_written: Some(0),
            ledger,
            detector,
            gate,
            votes,
            gossip,
            rng: ChaCha8Rng::seed_from_u64(seed),
            transmits: VecDeque::new(),
            next_heartbeat: now,
            last_now: now,
            counters: Counters::default(),
            stopped: false,
        };
        Ok((node, handle))
    }

    /// A datagram from the authenticated peer `from` arrived at `now`.
    pub fn handle_datagram(&mut self, now: Instant, from: NodeId, bytes: &[u8]) {
        // If this node was stalled and the driver delivers the backlog before the timer,
        // the detector notices the stall on the first heartbeat (not as silence).
        let now = self.advance(now);
        if self.stopped {
            return;
        }
        let message = match decode(bytes, self.cluster) {
            Ok(m) => m,
            Err(e) => {
                self.counters.dropped.count_decode(&e);
                return;
            }
        };
        match message {
            Message::Heartbeat(hb) => self.on_heartbeat(now, from, &hb),
            Message::Leave(leave) => self.on_leave(now, from, leave),
            // A message kind this node does not handle (added to the format later).
            _ => self.counters.dropped.malformed += 1,
        }
        self.gate.flush_status(now);
    }

    /// A request (see [`Delivery::Request`]) from the authenticated peer `from` arrived at
    /// `now`. Returns the reply to send back, if any: for a direct poll a fresh heartbeat
    /// to `from` (carrying this node's ack), for gossip the rows `from` lacks, for a fence
    /// query the answer. `None` for a sender this node does not exchange with, or input
    /// that is refused (and counted).
    pub fn handle_request(&mut self, now: Instant, from: NodeId, bytes: &[u8]) -> Option<Vec<u8>> {
        let now = self.advance(now);
        if self.stopped {
            return None;
        }
        let message = self.decode_from_stream(from, bytes)?;
        let reply = match message {
            Message::Heartbeat(hb) => {
                self.on_heartbeat(now, from, &hb);
                self.poll_reply(now, from)
            }
            Message::Gossip(g) => self.on_gossip(now, from, &g, true),
            Message::FenceQuery(q) => {
                let may_promise = self.ledger.covers_hold();
                match self.gossip.as_mut() {
                    Some(gossip) => gossip.on_fence_query(now, from, &q, &self.detector, may_promise),
                    None => None,
                }
            }
            Message::Definition(d) => {
                self.on_definition(now, from, &d);
                encode_stream(self.cluster, &Message::Definition(self.own_definition())).ok()
            }
            Message::FenceRelease(r) => {
                if let Some(gossip) = self.gossip.as_mut() {
                    gossip.on_fence_release(from, &r);
                }
                None
            }
            _ => {
                self.counters.dropped.malformed += 1;
                None
            }
        };
        self.gate.flush_status(now);
        reply
    }

    /// The reply to one of this node's requests arrived at `now` from `from`.
    pub fn handle_reply(&mut self, now: Instant, from: NodeId, bytes: &[u8]) {
        let now = self.advance(now);
        if self.stopped {
            return;
        }
        let Some(message) = self.decode_from_stream(from, bytes) else { return };
        match message {
            Message::Heartbeat(hb) => self.on_heartbeat(now, from, &hb),
            Message::Gossip(g) => {
                self.on_gossip(now, from, &g, false);
            }
            Message::FenceAnswer(a) => {
                self.with_gossip(|gossip, ctx| gossip.on_fence_answer(now, from, &a, ctx));
            }
            Message::Definition(d) => self.on_definition(now, from, &d),
            _ => self.counters.dropped.malformed += 1,
        }
        self.gate.flush_status(now);
    }

    /// Decodes a stream message and checks that its sender is `from`, a peer this node
    /// exchanges with, in its current life. Refusals are counted.
    fn decode_from_stream(&mut self, from: NodeId, bytes: &[u8]) -> Option<Message> {
        let message = match decode_stream(bytes, self.cluster) {
            Ok(m) => m,
            Err(e) => {
                self.counters.dropped.count_decode(&e);
                return None;
            }
        };
        // Heartbeats are checked where they are handled, like datagrams.
        let who = match &message {
            Message::Gossip(g) => Some((g.from, g.incarnation)),
            Message::FenceQuery(q) | Message::FenceRelease(q) => Some((q.from, q.incarnation)),
            Message::FenceAnswer(a) => Some((a.from, a.incarnation)),
            Message::Definition(d) => Some((d.from, d.incarnation)),
            _ => None,
        };
        let Some((sender, incarnation)) = who else { return Some(message) };
        if sender != from || from == self.me {
            self.counters.dropped.sender_mismatch += 1;
            return None;
        }
        let Some(link) = self.links.get(&from) else {
            self.counters.dropped.unknown_sender += 1;
            return None;
        };
        if link.peer_incarnation().is_some_and(|known| incarnation < known) {
            self.counters.dropped.stale_incarnation += 1;
            return None;
        }
        Some(message)
    }

    fn poll_reply(&mut self, now: Instant, to: NodeId) -> Option<Vec<u8>> {
        let hb = self.outgoing_heartbeat(now, to)?;
        let reply = encode_stream(self.cluster, &Message::Heartbeat(hb)).ok()?;
        self.counters.polls_answered += 1;
        Some(reply)
    }

    fn on_gossip(
        &mut self,
        now: Instant,
        from: NodeId,
        g: &quorate_heartbeat::Gossip,
        is_request: bool,
    ) -> Option<Vec<u8>> {
        self.with_gossip(|gossip, ctx| gossip.on_gossip(now, from, g, is_request, ctx)).flatten()
    }

    /// Runs `f` on the gossiper with the parts of this node it may use; `None` when gossip
    /// is off.
    fn with_gossip<R>(&mut self, f: impl FnOnce(&mut Gossiper, &mut Ctx<'_>) -> R) -> Option<R> {
        let gossip = self.gossip.as_mut()?;
        let mut ctx = Ctx {
            detector: &self.detector,
            votes: &self.votes,
            gate: &mut self.gate,
            rng: &mut self.rng,
            transmits: &mut self.transmits,
            links: &self.links,
        };
        Some(f(gossip, &mut ctx))
    }

    /// The next heartbeat to `peer`, without its ack unless [`Node::may_ack`] allows it.
    fn outgoing_heartbeat(&mut self, now: Instant, peer: NodeId) -> Option<Heartbeat> {
        let may_ack = self.may_ack(now, peer);
        let link = self.links.get_mut(&peer)?;
        let mut hb = link.next_heartbeat(now, self.me, self.incarnation, self.terms);
        if !may_ack && hb.ack.is_some() {
            hb.ack = None;
            self.counters.acks_withheld += 1;
        }
        Some(hb)
    }

    /// Whether an ack to `peer` may go out at `now`: an ack lends the peer this node's
    /// vote, so it needs every promise around it kept. Not while an earlier life's fence
    /// holds may still bind, nor while a fence-check yes withholds acks from the peer; not
    /// to a peer on another quorum definition; not to a peer whose lease this node's floor
    /// for it cannot cover, or whose floor the data directory does not record yet.
    fn may_ack(&self, now: Instant, peer: NodeId) -> bool {
        if !self.ledger.acks_allowed(now) || self.gossip.as_ref().is_some_and(|g| g.withholds_ack(peer, now))
        {
            return false;
        }
        match self.peer_terms.get(&peer) {
            Some(t) => self.foreign(peer).is_none() && t.floor.is_some_and(|f| self.ledger.covers_floor(f)),
            // Never heard: there is nothing to ack yet.
            None => false,
        }
    }

    /// This node's definition as a message.
    fn own_definition(&self) -> Definition {
        let (members, tie_breaker) = self.votes.parts();
        Definition { from: self.me, incarnation: self.incarnation, members, tie_breaker }
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
        let own = self.terms.definition;
        let mut tables = BTreeMap::new();
        for (members, tie_breaker) in &remembered.tables {
            if let Ok(table) = VoteTable::from_parts(members, *tie_breaker) {
                tables.insert(table.digest(self.cluster), table);
            }
        }
        for &(peer, digest) in &remembered.peers {
            if !self.links.contains_key(&peer) {
                continue;
            }
            self.set_peer_definition(peer, digest);
            if digest == own {
                continue;
            }
            let table = tables.get(&digest).cloned();
            if let Some(t) = &table {
                self.definitions.insert(digest, t.clone());
            }
            self.gate.on_peer_definition(now, peer, Some((digest, table)));
        }
        // What the directory holds is what was read, unless entries were left out above.
        if self.peer_definitions_now() == *remembered {
            self.definitions_written = Some(self.definitions_version);
        }
        self.gate.flush_status(now);
    }

    /// The definitions to keep in the data directory when they differ from what it holds
    /// (a peer heard on a new definition, or a definition received in full); `None` when
    /// it is up to date. Asked again on every call until confirmed with
    /// [`Node::handle_definitions_persisted`]. Nothing waits for this write: it only
    /// protects later lives.
    pub fn poll_persist_definitions(&self) -> Option<PeerDefinitions> {
        (self.definitions_written != Some(self.definitions_version)).then(|| self.peer_definitions_now())
    }

    /// The driver wrote `definitions` (from [`Node::poll_persist_definitions`]) durably.
    /// A record that is no longer current (something changed since it was asked for) is
    /// asked for again.
    pub fn handle_definitions_persisted(&mut self, definitions: PeerDefinitions) {
        if self.peer_definitions_now() == definitions {
            self.definitions_written = Some(self.definitions_version);
        }
    }

    /// The definition `peer` was last heard running, when it is not this node's.
    fn foreign(&self, peer: NodeId) -> Option<DefinitionDigest> {
        self.peer_definitions.get(&peer).copied().filter(|d| *d != self.terms.definition)
    }

    /// Records that `peer` runs `digest`.
    fn set_peer_definition(&mut self, peer: NodeId, digest: DefinitionDigest) {
        if self.peer_definitions.insert(peer, digest) != Some(digest) {
            self.definitions_version += 1;
        }
    }

    fn peer_definitions_now(&self) -> PeerDefinitions {
        let own = self.terms.definition;
        let peers: Vec<(NodeId, DefinitionDigest)> =
            self.peer_definitions.iter().map(|(p, d)| (*p, *d)).collect();
        let digests: BTreeSet<DefinitionDigest> = peers.iter().map(|(_, d)| *d).collect();
        let tables = digests
            .iter()
            .filter_map(|d| if *d == own { Some(&self.votes) } else { self.definitions.get(d) })
            .map(VoteTable::parts)
            .collect();
        PeerDefinitions { peers, tables }
    }

    /// Time passed; do whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        if self.stopped {
            return;
        }
        self.tick(now);
        if now >= self.next_heartbeat {
            self.send_heartbeats(now);
        }
        self.with_gossip(|gossip, ctx| gossip.handle_timeout(now, ctx));
        self.gate.flush_status(now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event (also sent to the gate's subscribers).
    pub fn poll_event(&mut self) -> Option<QuorumEvent> {
        self.gate.poll_event()
    }

    /// When to call [`Node::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            // A stopped node sends nothing and decides nothing: no timer to wait for.
            return None;
        }
        let gossip = self.gossip.as_ref().map(Gossiper::poll_timeout);
        [Some(self.next_heartbeat), self.detector.poll_timeout(), self.gate.poll_timeout(), gossip]
            .into_iter()
            .flatten()
            .min()
    }

    /// Leaves gracefully: fences this node's gate for good (handles answer `Stopped`), then
    /// queues a `Leave` to every peer so they need not wait for the down floor. The order
    /// matters: a peer that hears the leave may consider this node gone at once, which is
    /// only safe because the gate is already fenced.
    pub fn shutdown(&mut self, now: Instant) {
        let now = self.advance(now);
        self.gate.shutdown(now);
        if self.stopped {
            return;
        }
        self.stopped = true;
        let leave = Message::Leave(Leave { from: self.me, incarnation: self.incarnation });
        if let Ok(payload) = encode(self.cluster, &leave) {
            for peer in self.links.keys() {
                self.transmits.push_back(Transmit {
                    to: *peer,
                    payload: payload.clone(),
                    delivery: Delivery::Datagram,
                });
            }
        }
    }

    /// Stops abruptly: fences the gate for good but tells nobody, as a crash would. Peers
    /// declare this node down after their floor.
    pub fn halt(&mut self, now: Instant) {
        let now = self.advance(now);
        self.gate.shutdown(now);
        self.stopped = true;
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
        &self.votes
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
        self.gossip.as_ref().map(Gossiper::counters)
    }

    /// The gossip rows this node holds; `None` when gossip is off.
    pub fn rows(&self) -> Option<&RowTable> {
        self.gossip.as_ref().map(Gossiper::table)
    }

    /// Who hears whom at `now`, from gossip; `None` when gossip is off.
    pub fn partition_view(&self, now: Instant) -> Option<PartitionView> {
        let gossip = self.gossip.as_ref()?;
        Some(gossip.view(now))
    }

    /// Clamps time that runs backwards (a driver bug or a broken clock) to the last
    /// instant seen: the protocol never sees time go back.
    fn advance(&mut self, now: Instant) -> Instant {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn tick(&mut self, now: Instant) {
        self.detector.handle_timeout(now);
        self.apply_detector_events(now);
        self.gate.handle_timeout(now);
    }

    fn on_heartbeat(&mut self, now: Instant, from: NodeId, hb: &Heartbeat) {
        if hb.from != from || from == self.me {
            self.counters.dropped.sender_mismatch += 1;
            return;
        }
        let Some(link) = self.links.get_mut(&from) else {
            self.counters.dropped.unknown_sender += 1;
            return;
        };
        match link.on_heartbeat(hb) {
            Ok(received) => {
                if received.new_incarnation && link.peer_incarnation().is_some() {
                    self.counters.peer_restarts += 1;
                }
            }
            Err(Refused::StaleIncarnation { .. } | Refused::Left { .. }) => {
                self.counters.dropped.stale_incarnation += 1;
                return;
            }
            Err(_) => {
                self.counters.dropped.replayed += 1;
                return;
            }
        }
        self.counters.heartbeats_accepted += 1;
        let ack = hb.ack.map(|ack| link.on_ack(ack, self.incarnation));
        // The peer's terms first: its floor is raised before anything could ack it.
        let foreign = self.on_terms(now, from, &hb.terms);
        self.detector.handle_heartbeat(now, from);
        self.gate.on_heard(now, from);
        self.apply_detector_events(now);
        match ack {
            // A peer on another definition lends no vote here, as it gets none.
            Some(AckOutcome::Sent { .. }) if foreign => self.counters.acks_mismatched += 1,
            Some(AckOutcome::Sent { sent_at, .. }) => {
                self.counters.acks_accepted += 1;
                self.gate.on_ack(now, from, sent_at);
            }
            Some(AckOutcome::OtherIncarnation) => self.counters.acks_stale += 1,
            Some(AckOutcome::Forgotten) => self.counters.acks_forgotten += 1,
            Some(AckOutcome::NeverSent) => self.counters.acks_bogus += 1,
            None => {}
        }
    }

    /// Takes in the terms a fresh heartbeat from `from` carried: raises the detector's
    /// floor for the peer to what its lease needs, and notices a definition other than
    /// this node's. Returns whether the peer runs another definition.
    fn on_terms(&mut self, now: Instant, from: NodeId, terms: &Terms) -> bool {
        let mut entry = self.peer_terms.get(&from).copied().unwrap_or_default();
        match required_floor(terms, self.drift) {
            Some(f) => {
                // Floors only grow within this life: an ack given under an older, longer
                // lease of the peer may still be held.
                entry.floor = Some(entry.floor.map_or(f, |old| old.max(f)));
                self.detector.raise_floor(from, f);
                self.ledger.owe_floor(f);
            }
            None => {
                entry.floor = None;
                self.counters.terms_refused += 1;
            }
        }
        let before = self.foreign(from);
        self.set_peer_definition(from, terms.definition);
        let theirs = self.foreign(from);
        let changed = before != theirs;
        if changed {
            entry.asked_definition = None;
        }
        let ask = theirs.is_some_and(|d| !self.definitions.contains_key(&d))
            && entry.asked_definition.is_none_or(|at| now >= at + DEFINITION_RETRY);
        if ask {
            entry.asked_definition = Some(now);
        }
        self.peer_terms.insert(from, entry);
        if changed {
            let known = theirs.map(|d| (d, self.definitions.get(&d).cloned()));
            self.gate.on_peer_definition(now, from, known);
            self.prune_definitions();
        }
        if ask {
            if let Ok(payload) = encode_stream(self.cluster, &Message::Definition(self.own_definition())) {
                push_transmit(
                    &mut self.transmits,
                    Transmit { to: from, payload, delivery: Delivery::Request },
                );
            }
        }
        theirs.is_some()
    }

    /// A peer sent its definition (as a request or a reply).
    fn on_definition(&mut self, now: Instant, from: NodeId, d: &Definition) {
        let Ok(table) = VoteTable::from_parts(&d.members, d.tie_breaker) else {
            self.counters.dropped.malformed += 1;
            return;
        };
        let digest = table.digest(self.cluster);
        // Only the definition the peer's heartbeats announce counts: a stale or
        // inconsistent one is ignored.
        if self.foreign(from) != Some(digest) {
            return;
        }
        if self.definitions.insert(digest, table).is_none() {
            self.definitions_version += 1;
        }
        // Every peer known to run it (the sender first among them) gets it.
        let runners: Vec<NodeId> =
            self.peer_definitions.iter().filter(|(_, d)| **d == digest).map(|(p, _)| *p).collect();
        for peer in runners {
            let table = self.definitions.get(&digest).cloned();
            self.gate.on_peer_definition(now, peer, Some((digest, table)));
        }
    }

    /// Forgets definitions no peer runs any more (at most one is kept per peer).
    fn prune_definitions(&mut self) {
        let in_use: BTreeSet<DefinitionDigest> = self.peer_definitions.values().copied().collect();
        self.definitions.retain(|d, _| in_use.contains(d));
    }

    fn on_leave(&mut self, now: Instant, from: NodeId, leave: Leave) {
        if leave.from != from || from == self.me {
            self.counters.dropped.sender_mismatch += 1;
            return;
        }
        let Some(link) = self.links.get_mut(&from) else {
            self.counters.dropped.unknown_sender += 1;
            return;
        };
        if !link.on_leave(leave.incarnation) {
            self.counters.dropped.stale_incarnation += 1;
            return;
        }
        self.counters.leaves_heard += 1;
        self.detector.handle_leave(now, from);
        self.apply_detector_events(now);
    }

    fn apply_detector_events(&mut self, now: Instant) {
        while let Some(ev) = self.detector.poll_event() {
            self.gate.on_peer_state(ev.at, ev.peer, ev.to);
            if let Some(gossip) = self.gossip.as_mut() {
                gossip.on_peer_state(ev.peer, ev.to, ev.at);
            }
            if ev.to == PeerState::Suspect {
                // Hybrid push + poll: heartbeats are late, so ask the peer directly over a
                // reliable stream; its reply counts as contact and carries its ack.
                self.send_heartbeat(now, ev.peer, Delivery::Request);
            }
        }
    }

    fn send_heartbeats(&mut self, now: Instant) {
        let peers: Vec<NodeId> = self.links.keys().copied().collect();
        for peer in peers {
            self.send_heartbeat(now, peer, Delivery::Datagram);
        }
        let early = self.interval.mul_f64(self.rng.random_range(0.0..JITTER_FRACTION));
        self.next_heartbeat = now + (self.interval - early);
    }

    fn send_heartbeat(&mut self, now: Instant, peer: NodeId, delivery: Delivery) {
        let Some(hb) = self.outgoing_heartbeat(now, peer) else { return };
        let encoded = match delivery {
            Delivery::Datagram => encode(self.cluster, &Message::Heartbeat(hb)),
            Delivery::Request => encode_stream(self.cluster, &Message::Heartbeat(hb)),
        };
        match encoded {
            Ok(payload) => {
                push_transmit(&mut self.transmits, Transmit { to: peer, payload, delivery });
                match delivery {
                    Delivery::Datagram => self.counters.heartbeats_sent += 1,
                    Delivery::Request => self.counters.polls_sent += 1,
                }
            }
            // A heartbeat with an empty digest is a few dozen bytes; failing to encode
            // one is a bug, and skipping it only delays this peer's lease renewal.
            Err(e) => debug_assert!(false, "heartbeat failed to encode: {e}"),
        }
    }
}

/// Queues `t` for the driver; when the queue is full the oldest goes (the driver is not
/// draining, and the oldest message is the least useful).
pub(crate) fn push_transmit(transmits: &mut VecDeque<Transmit>, t: Transmit) {
    if transmits.len() >= TRANSMIT_QUEUE_MAX {
        transmits.pop_front();
    }
    transmits.push_back(t);
}

/// Send times to remember per link: twice the heartbeats a lease spans, plus slack for
/// jitter, so any ack that could still extend a lease finds its send time.
fn sent_log_len(lease: Duration, interval: Duration) -> NonZeroUsize {
    let per_lease = lease.as_nanos().div_ceil(interval.as_nanos().max(1));
    let len = usize::try_from(per_lease.saturating_mul(2).saturating_add(8)).unwrap_or(SENT_LOG_MAX);
    NonZeroUsize::new(len.min(SENT_LOG_MAX)).unwrap_or(NonZeroUsize::MIN)
}
