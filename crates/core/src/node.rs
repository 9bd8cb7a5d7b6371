//! [`Node`]: one node's protocol, sans-IO. The runtime and the simulator drive this.
//!
//! ```text
//!   handle_datagram(now, from, bytes)     handle_timeout(now)
//!          │ decode, authenticate sender,        │ detector timeouts, lease deadline,
//!          │ refuse stale/replayed               │ heartbeats and gossip rounds due
//!          ▼                                      ▼
//!   Link (seq/ack) ──ack──► Gate (leases, epoch) ◄── Detector (phi, floors) ──► peer states
//!          │ terms                  │                      │
//!          ▼                        │                      ▼
//!   Definitions (floors,            │              Gossiper (rows) ──Accused──► Fencer
//!    peers' definitions)            ▼                                              │
//!                          poll_transmit(), poll_event(), poll_status() ◄──────────┘
//! ```
//!
//! `from` is the peer the transport authenticated (mutual TLS). A datagram whose sender
//! field disagrees with it is dropped, so nothing unauthenticated reaches the detector or
//! the gate. Every refusal is counted in [`Counters`].
//!
//! The parts never call each other: the node carries each output to the next input, in
//! one direction, and every public call ends in [`Node::settle`], which collects what the
//! parts decided into the node's own outputs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::num::NonZeroUsize;
use std::time::Duration;

use quorate_detector::{Detector, PeerState};
use quorate_gate::{Clock, Gate, Publisher, QuorumEvent, QuorumGate, QuorumStatus};
use quorate_gossip::{Fencer, Gossiper};
use quorate_proto::{
    decode, decode_stream, encode, encode_stream, AckOutcome, ClusterId, Heartbeat, Incarnation, Instant,
    Leave, Link, Message, NodeId, Refused, Terms, View,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::announce::Announcements;
use crate::config::{CoreConfigError, ValidConfig};
use crate::counters::Counters;
use crate::definitions::Definitions;
use crate::outputs::{Delivery, Outbox, StatusClock, Transmit};
use crate::promises::{Ledger, Memory};

/// Upper bound on the per-link log of send times, whatever the lease and interval.
pub const SENT_LOG_MAX: usize = 4096;

/// Heartbeats go out up to this fraction of an interval early, at random, so that nodes
/// started together do not send in lockstep. Early, never late: every timing rule that
/// assumes one heartbeat per interval stays true.
const JITTER_FRACTION: f64 = 0.1;

/// Gossip rounds and fence checks, when gossip is on.
#[derive(Debug)]
pub(crate) struct Gossip {
    pub(crate) gossiper: Gossiper,
    pub(crate) fencer: Fencer,
}

/// One node's protocol state machine.
#[derive(Debug)]
pub struct Node {
    pub(crate) cluster: ClusterId,
    pub(crate) me: NodeId,
    pub(crate) incarnation: Incarnation,
    pub(crate) interval: Duration,
    pub(crate) links: BTreeMap<NodeId, Link>,
    /// Until when each peer may hold the vote this node last lent it (the ack's send time
    /// plus the floor kept for the peer): a node does not move two versions past a peer
    /// that may still count its vote (see `Node::adoption_waits_for`).
    pub(crate) lent: BTreeMap<NodeId, Instant>,
    /// Peers that have not confirmed this node's definition yet: heartbeats to them wait.
    pub(crate) announce: Announcements,
    /// When each former member was last sent this node's definition (see
    /// `Node::tell_former_member`).
    pub(crate) former_told: BTreeMap<NodeId, Instant>,
    /// Links of peers that stopped being members in this life, kept so that a peer added
    /// back continues its sequence numbers: a link started afresh would number from 1
    /// again, and an ack the peer still holds for an old number would then name a new
    /// heartbeat it never received.
    pub(crate) former_links: BTreeMap<NodeId, Link>,
    /// What this node's heartbeats say of its lease, drift and definition.
    pub(crate) terms: Terms,
    pub(crate) drift: f64,
    pub(crate) definitions: Definitions,
    pub(crate) ledger: Ledger,
    pub(crate) detector: Detector,
    pub(crate) gate: Gate,
    pub(crate) gossip: Option<Gossip>,
    /// Peers announced fenced and not heard from since.
    pub(crate) fenced: BTreeSet<NodeId>,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) outbox: Outbox,
    pub(crate) events: VecDeque<QuorumEvent>,
    pub(crate) events_dropped: u64,
    pub(crate) status_clock: StatusClock,
    pub(crate) next_heartbeat: Instant,
    pub(crate) last_now: Instant,
    pub(crate) counters: Counters,
    pub(crate) stopped: bool,
}

impl Node {
    /// A node in its life `incarnation`, started at `now` on `clock` (the clock its gate
    /// handles will read; `now` must come from it). `seed` drives every random choice.
    /// Nothing is kept across restarts ([`Memory::Volatile`]); see [`Node::with_memory`].
    ///
    /// Returns the node and the first handle on its gate. The node starts fenced.
    pub fn new(
        config: ValidConfig,
        incarnation: Incarnation,
        clock: Clock,
        now: Instant,
        seed: u64,
    ) -> Result<(Node, QuorumGate), CoreConfigError> {
        Node::with_memory(config, incarnation, Memory::Volatile, clock, now, seed)
    }

    /// Like [`Node::new`], for a node that keeps its promises in a data directory:
    /// `memory` says what the earlier lives left there. The driver persists whatever
    /// [`Node::poll_persist`] returns and confirms with [`Node::handle_persisted`].
    ///
    /// `config` passed its rules ([`crate::Config::check`]); this fails only when the
    /// members are more peers than the detector watches ([`quorate_detector::PEERS_MAX`]).
    pub fn with_memory(
        config: ValidConfig,
        incarnation: Incarnation,
        memory: Memory,
        clock: Clock,
        now: Instant,
        seed: u64,
    ) -> Result<(Node, QuorumGate), CoreConfigError> {
        let ValidConfig {
            cluster,
            me,
            roster,
            detector: detector_config,
            gate: gate_config,
            gossip: gossip_config,
        } = config;
        let peers = roster.votes.peers_of(me);
        let own_hold = if gossip_config.enabled { gossip_config.fence_hold } else { Duration::ZERO };
        let ledger = Ledger::new(memory, own_hold, now);
        let interval = detector_config.heartbeat_interval;
        let mut detector = Detector::new(detector_config, now, peers.iter().copied())?;
        detector.raise_start_floor(ledger.start_floor());
        let definition = roster.digest(cluster);
        let (lease, drift) = (gate_config.lease, gate_config.max_clock_drift);
        let terms = Terms {
            lease_us: u32::try_from(lease.as_micros()).unwrap_or(u32::MAX),
            drift_ppm: (drift * 1e6).ceil() as u32,
            definition,
        };
        let gossip = gossip_config.enabled.then(|| Gossip {
            fencer: Fencer::new(&gossip_config, drift, cluster, me, incarnation),
            gossiper: Gossiper::new(gossip_config, cluster, me, incarnation, &roster.votes, now),
        });
        let (gate, handle) = Gate::new(gate_config, roster.votes.clone(), me, incarnation, clock, now);
        let log_len = sent_log_len(lease, interval);
        let links = peers.iter().map(|id| (*id, Link::new(log_len))).collect();
        let mut node = Node {
            cluster,
            me,
            incarnation,
            interval,
            links,
            former_links: BTreeMap::new(),
            former_told: BTreeMap::new(),
            lent: BTreeMap::new(),
            announce: Announcements::new(interval),
            terms,
            drift,
            definitions: Definitions::new(cluster, me, roster),
            ledger,
            detector,
            gate,
            gossip,
            fenced: BTreeSet::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            events_dropped: 0,
            status_clock: StatusClock::new(interval),
            next_heartbeat: now,
            last_now: now,
            counters: Counters::default(),
            stopped: false,
        };
        // The definition goes out first: heartbeats to a peer wait until it has it.
        for &peer in &peers {
            node.push_definition(peer);
        }
        node.announce.pushed_to_all(now, &peers.iter().copied().collect());
        node.settle(now);
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
        match decode(bytes, self.cluster) {
            Ok(Message::Heartbeat(hb)) => self.on_heartbeat(now, from, &hb),
            Ok(Message::Leave(leave)) => self.on_leave(now, from, leave),
            // A message kind this node does not handle (added to the format later).
            Ok(_) => self.counters.dropped.malformed += 1,
            Err(e) => self.counters.dropped.count_decode(&e),
        }
        self.settle(now);
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
            Message::Gossip(g) => {
                self.gossip.as_mut().and_then(|s| s.gossiper.on_gossip(now, from, &g, true))
            }
            Message::FenceQuery(q) => {
                let may_promise = self.ledger.covers_hold();
                let down =
                    matches!(self.detector.state(q.peer), Some(PeerState::Unreachable | PeerState::Left));
                self.gossip.as_mut().and_then(|s| {
                    let since = down.then(|| s.gossiper.down_since(q.peer).unwrap_or(now));
                    s.fencer.on_query(now, from, &q, since, may_promise)
                })
            }
            Message::Definition(d) => {
                self.on_definition(now, from, &d);
                encode_stream(self.cluster, &self.definition_message()).ok()
            }
            Message::Roster(m) => {
                self.on_roster_message(now, from, &m);
                encode_stream(self.cluster, &self.definition_message()).ok()
            }
            Message::FenceRelease(r) => {
                if let Some(s) = self.gossip.as_mut() {
                    s.fencer.on_release(from, &r);
                }
                None
            }
            _ => {
                self.counters.dropped.malformed += 1;
                None
            }
        };
        self.settle(now);
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
                if let Some(s) = self.gossip.as_mut() {
                    s.gossiper.on_gossip(now, from, &g, false);
                }
            }
            Message::FenceAnswer(a) => {
                let theirs = self.definitions.of(a.peer);
                if let Some(s) = self.gossip.as_mut() {
                    s.fencer.on_answer(now, from, &a, theirs);
                }
            }
            // The answer to a definition this node sent: the peer has it.
            Message::Definition(d) => {
                self.announce.confirmed(from);
                self.on_definition(now, from, &d);
            }
            Message::Roster(m) => {
                self.announce.confirmed(from);
                self.on_roster_message(now, from, &m);
            }
            _ => self.counters.dropped.malformed += 1,
        }
        self.settle(now);
    }

    /// Time passed; do whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        if self.stopped {
            return;
        }
        self.detector.handle_timeout(now);
        self.apply_detector_events(now);
        self.gate.handle_timeout(now);
        self.drain_gate(now);
        for peer in self.announce.due(now) {
            self.push_definition(peer);
        }
        if now >= self.next_heartbeat {
            self.send_heartbeats(now);
        }
        if let Some(s) = self.gossip.as_mut() {
            s.fencer.handle_timeout(now);
            let (detector, links) = (&self.detector, &self.links);
            let views = || {
                let incarnation = |peer| links.get(&peer).and_then(Link::peer_incarnation);
                detector.peers().map(|(peer, p)| (peer, view_of(p.state), incarnation(peer))).collect()
            };
            s.gossiper.handle_timeout(now, views, &mut self.rng);
        }
        self.settle(now);
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
            Message::Roster(r) => Some((r.from, r.incarnation)),
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

    /// The next heartbeat to `peer`, without its ack unless [`Node::may_ack`] allows it.
    fn outgoing_heartbeat(&mut self, now: Instant, peer: NodeId) -> Option<Heartbeat> {
        let may_ack = self.may_ack(now, peer);
        let link = self.links.get_mut(&peer)?;
        let mut hb = link.next_heartbeat(now, self.me, self.incarnation, self.terms);
        if hb.ack.is_some() && may_ack {
            self.lent_to(now, peer);
        }
        if !may_ack && hb.ack.is_some() {
            hb.ack = None;
            self.counters.acks_withheld += 1;
        }
        if let Some(s) = self.gossip.as_mut() {
            hb.digest = s.gossiper.heartbeat_digest(now, peer);
        }
        Some(hb)
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop()
    }

    /// The next event, for the driver to log and to pass to the gate's subscribers
    /// ([`Node::publisher`]).
    pub fn poll_event(&mut self) -> Option<QuorumEvent> {
        self.events.pop_front()
    }

    /// A fresh status snapshot when something material changed since the last one, or a
    /// heartbeat interval passed (lease expiries move on every ack; publishing each of
    /// them would cost more than it tells). The driver passes it to [`Node::publisher`].
    pub fn poll_status(&mut self) -> Option<QuorumStatus> {
        let now = self.last_now;
        self.status_clock.due(now).then(|| self.status(now))
    }

    /// The writer of the gate's status and events, for the driver.
    pub fn publisher(&self) -> Publisher {
        self.gate.publisher()
    }

    /// When to call [`Node::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            // A stopped node sends nothing and decides nothing: no timer to wait for.
            return None;
        }
        let gossip = self.gossip.as_ref().map(|s| s.gossiper.poll_timeout());
        let checks = self.gossip.as_ref().and_then(|s| s.fencer.poll_timeout());
        let announce = self.announce.poll_timeout();
        [
            Some(self.next_heartbeat),
            self.detector.poll_timeout(),
            self.gate.poll_timeout(),
            gossip,
            checks,
            announce,
            self.poll_adopt_wait(),
        ]
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
        self.drain_gate(now);
        if self.stopped {
            return;
        }
        self.stopped = true;
        let leave = Message::Leave(Leave { from: self.me, incarnation: self.incarnation });
        if let Ok(payload) = encode(self.cluster, &leave) {
            for peer in self.links.keys() {
                self.outbox.push(Transmit {
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
        self.drain_gate(now);
        self.stopped = true;
    }

    /// Clamps time that runs backwards (a driver bug or a broken clock) to the last
    /// instant seen: the protocol never sees time go back.
    pub(crate) fn advance(&mut self, now: Instant) -> Instant {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn on_heartbeat(&mut self, now: Instant, from: NodeId, hb: &Heartbeat) {
        if hb.from != from || from == self.me {
            self.counters.dropped.sender_mismatch += 1;
            return;
        }
        let Some(link) = self.links.get_mut(&from) else {
            self.counters.dropped.unknown_sender += 1;
            self.tell_former_member(now, from);
            return;
        };
        match link.on_heartbeat(hb) {
            Ok(received) => {
                if received.new_incarnation {
                    self.definitions.new_life(from);
                }
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
        if let Some(s) = self.gossip.as_mut() {
            s.gossiper.on_heartbeat_digest(now, from, &hb.digest);
        }
        self.announce.heard(now, from, hb.terms.definition == self.terms.definition);
        // The peer's terms first: its floor is raised before anything could ack it.
        let lends = self.on_terms(now, from, &hb.terms);
        self.detector.handle_heartbeat(now, from);
        if self.fenced.remove(&from) {
            self.status_clock.touch();
        }
        self.gate.on_heard(now, from);
        self.drain_gate(now);
        self.apply_detector_events(now);
        match ack {
            // A peer on another definition (not one version apart) lends no vote here, as
            // it gets none.
            Some(AckOutcome::Sent { .. }) if !lends => self.counters.acks_mismatched += 1,
            Some(AckOutcome::Sent { sent_at, .. }) => {
                self.counters.acks_accepted += 1;
                self.gate.on_ack(now, from, sent_at);
                self.drain_gate(now);
            }
            Some(AckOutcome::OtherIncarnation) => self.counters.acks_stale += 1,
            Some(AckOutcome::Forgotten) => self.counters.acks_forgotten += 1,
            Some(AckOutcome::NeverSent) => self.counters.acks_bogus += 1,
            None => {}
        }
    }

    fn on_leave(&mut self, now: Instant, from: NodeId, leave: Leave) {
        if leave.from != from || from == self.me {
            self.counters.dropped.sender_mismatch += 1;
            return;
        }
        let Some(link) = self.links.get_mut(&from) else {
            // A former member that left (told of its removal) holds no vote that counts.
            if self.former_links.get_mut(&from).is_some_and(|l| l.on_leave(leave.incarnation)) {
                self.lent.remove(&from);
                self.counters.leaves_heard += 1;
            } else {
                self.counters.dropped.unknown_sender += 1;
            }
            return;
        };
        if !link.on_leave(leave.incarnation) {
            self.counters.dropped.stale_incarnation += 1;
            return;
        }
        // Its gate is shut for good in that life: no vote lent to it counts any more.
        self.lent.remove(&from);
        self.counters.leaves_heard += 1;
        self.detector.handle_leave(now, from);
        self.apply_detector_events(now);
    }

    pub(crate) fn apply_detector_events(&mut self, now: Instant) {
        while let Some(ev) = self.detector.poll_event() {
            let event = match ev.to {
                PeerState::Reachable => Some(QuorumEvent::PeerUp { peer: ev.peer, at: ev.at }),
                PeerState::Suspect => Some(QuorumEvent::PeerSuspect { peer: ev.peer, at: ev.at }),
                PeerState::Unreachable => Some(QuorumEvent::PeerDown { peer: ev.peer, at: ev.at }),
                PeerState::Left => Some(QuorumEvent::PeerLeft { peer: ev.peer, at: ev.at }),
                PeerState::Unknown => None,
            };
            if let Some(event) = event.filter(|_| ev.from != ev.to) {
                self.push_event(event);
            }
            if let Some(s) = self.gossip.as_mut() {
                s.gossiper.on_peer_state(ev.peer, ev.to, ev.at);
                s.fencer.on_peer_state(ev.peer, ev.to);
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
            if self.announce.holds(now, peer) {
                self.counters.heartbeats_held += 1;
                continue;
            }
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
                self.outbox.push(Transmit { to: peer, payload, delivery });
                match delivery {
                    Delivery::Datagram => self.counters.heartbeats_sent += 1,
                    Delivery::Request => self.counters.polls_sent += 1,
                }
            }
            // A heartbeat is a few dozen bytes plus a digest of at most
            // `HEARTBEAT_DIGEST_ROWS_MAX` rows; failing to encode one is a bug, and
            // skipping it only delays this peer's lease renewal.
            Err(e) => debug_assert!(false, "heartbeat failed to encode: {e}"),
        }
    }
}

/// What a detector state says in a gossip row.
fn view_of(state: PeerState) -> View {
    match state {
        PeerState::Unknown => View::Unknown,
        PeerState::Reachable => View::Heard,
        PeerState::Suspect => View::Suspect,
        PeerState::Unreachable => View::Down,
        PeerState::Left => View::Left,
    }
}

/// Send times to remember per link: twice the heartbeats a lease spans, plus slack for
/// jitter, so any ack that could still extend a lease finds its send time.
pub(crate) fn sent_log_len(lease: Duration, interval: Duration) -> NonZeroUsize {
    let per_lease = lease.as_nanos().div_ceil(interval.as_nanos().max(1));
    let len = usize::try_from(per_lease.saturating_mul(2).saturating_add(8)).unwrap_or(SENT_LOG_MAX);
    NonZeroUsize::new(len.min(SENT_LOG_MAX)).unwrap_or(NonZeroUsize::MIN)
}
