//! The part of a node that talks about other nodes: gossip rounds, liveness events and
//! fence checks. [`crate::Node`] owns one [`Gossiper`] when gossip is enabled.
//!
//! ```text
//!   round (every gossip.interval)        merge (rows from any exchange)
//!     refresh own row from detector        RowTable::merge per delta
//!     Gossip{digest} to `fanout` peers        │
//!            │                                ▼
//!            ▼                        liveness: PeerAliveElsewhere / PeerDownEverywhere
//!   partition view ──► gate status     nominations: fresh rows say a quorum of voters
//!                                        consider X down ──► fence check
//!
//!   fence check on X (this node's clock):
//!     q_start: count itself if it considers X down (and withhold acks from X for `hold`)
//!              FenceQuery to every other accuser
//!     answers: "down, and I withhold acks from X for hold_B" from B
//!     conclude when the yes-sayers form a quorum AND every hold_B (1 - rho) > (now - q_start) (1 + rho)
//!              ──► PeerFenced { X }
//! ```
//!
//! Why a concluded check proves X is fenced when the event is emitted: each yes-sayer B
//! answered at some real instant t_B within [q_start, now]. At t_B it considered X down, so
//! by lease safety X held none of its vote then; from t_B it sends X no ack for hold_B of
//! its clock, which covers real time up to the event by the inequality above, so no new
//! lease on B's vote can start before the event. A quorum of voters' votes are missing from
//! X at the event, and the rest is not a quorum: X is not writable. `docs/guarantees.md`
//! states the promise and its assumptions.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use quorate_detector::{Detector, Liveness, PeerState, RowTable};
use quorate_gate::{Gate, QuorumEvent, VoteTable};
use quorate_heartbeat::{
    encode_stream, ClusterId, FenceAnswer, FenceQuery, Gossip, Incarnation, Instant, Link, Message, NodeId,
    View,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::GossipConfig;
use crate::node::{push_transmit, Delivery, Transmit};

/// Gossip rounds go out up to this fraction of an interval early, at random.
const JITTER_FRACTION: f64 = 0.1;

/// What gossip did, for operators and tests. All counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipCounters {
    /// Rounds run.
    pub rounds: u64,
    /// Gossip messages handed to the driver (requests, replies are not counted here).
    pub messages_sent: u64,
    /// Gossip messages received (requests and replies).
    pub messages_received: u64,
    /// Row deltas applied.
    pub rows_applied: u64,
    /// Row deltas not applied (stale, gaps, unknown owners, malformed): see
    /// `quorate_detector::MergeCounters` for the split.
    pub rows_refused: u64,
    /// Messages that could not be encoded within the stream limit (a digest of a very
    /// large cluster); the message is skipped.
    pub encode_failures: u64,
    /// Fence checks started.
    pub fence_checks: u64,
    /// Fence checks that concluded with `PeerFenced`.
    pub fence_confirmed: u64,
    /// Fence checks that ran out of time or answers.
    pub fence_abandoned: u64,
    /// Fence queries this node answered yes (and so withheld acks).
    pub fence_yes_given: u64,
    /// Fence queries this node answered no.
    pub fence_no_given: u64,
    /// Answers that matched no check in flight (late, duplicated or unsolicited).
    pub fence_answers_ignored: u64,
}

#[derive(Debug, Clone)]
struct FenceCheck {
    id: u64,
    started: Instant,
    deadline: Instant,
    asked: BTreeSet<NodeId>,
    yes: BTreeSet<NodeId>,
    min_hold: Duration,
}

/// Gossip, liveness and fence-check state. See the module docs.
#[derive(Debug)]
pub(crate) struct Gossiper {
    config: GossipConfig,
    drift: f64,
    cluster: ClusterId,
    me: NodeId,
    incarnation: Incarnation,
    table: RowTable,
    next_round: Instant,
    /// Peers this node considers down (or left), since when.
    down_since: BTreeMap<NodeId, Instant>,
    /// The liveness last announced for each peer that is down here.
    liveness: BTreeMap<NodeId, Liveness>,
    /// Withhold acks from a peer until then, per (peer, asker, check): promised in fence
    /// answers (and by this node for its own checks), released early when the asker says
    /// its check is over.
    holds: BTreeMap<(NodeId, NodeId, u64), Instant>,
    checks: BTreeMap<NodeId, FenceCheck>,
    /// Peers announced fenced and neither heard since nor no longer accused by a quorum.
    announced: BTreeSet<NodeId>,
    next_check: u64,
    counters: GossipCounters,
}

impl Gossiper {
    pub(crate) fn new(
        config: GossipConfig,
        drift: f64,
        cluster: ClusterId,
        me: NodeId,
        incarnation: Incarnation,
        votes: &VoteTable,
        now: Instant,
    ) -> Self {
        let voters = votes.members().filter(|&(_, v)| v > 0).map(|(id, _)| id);
        let table = RowTable::new(me, incarnation, votes.members().map(|(id, _)| id)).with_owners(voters);
        Gossiper {
            config,
            drift,
            cluster,
            me,
            incarnation,
            table,
            next_round: now,
            down_since: BTreeMap::new(),
            liveness: BTreeMap::new(),
            holds: BTreeMap::new(),
            checks: BTreeMap::new(),
            announced: BTreeSet::new(),
            next_check: 1,
            counters: GossipCounters::default(),
        }
    }

    pub(crate) fn counters(&self) -> GossipCounters {
        self.counters
    }

    pub(crate) fn table(&self) -> &RowTable {
        &self.table
    }

    pub(crate) fn view(&self, now: Instant) -> quorate_detector::PartitionView {
        self.table.view(now, self.config.fresh_for, self.config.corroboration)
    }

    /// When [`Gossiper::handle_timeout`] has something to do next.
    pub(crate) fn poll_timeout(&self) -> Instant {
        let checks = self.checks.values().map(|c| c.deadline);
        checks.fold(self.next_round, Instant::min)
    }

    /// Whether acks to `peer` are withheld at `now` (a yes given in a fence check).
    pub(crate) fn withholds_ack(&self, peer: NodeId, now: Instant) -> bool {
        self.holds
            .range((peer, NodeId(0), 0)..=(peer, NodeId(u64::MAX), u64::MAX))
            .any(|(_, &until)| now < until)
    }

    /// The asker `from` says its check `check` about `peer` is over.
    pub(crate) fn on_fence_release(&mut self, from: NodeId, release: &FenceQuery) {
        self.holds.remove(&(release.peer, from, release.check));
    }

    fn hold(&mut self, peer: NodeId, asker: NodeId, check: u64, until: Instant) {
        let hold = self.holds.entry((peer, asker, check)).or_insert(until);
        *hold = (*hold).max(until);
    }

    /// Ends the check on `peer`: releases this node's own hold and tells everyone asked.
    fn finish(&mut self, peer: NodeId, transmits: &mut VecDeque<Transmit>) {
        let Some(check) = self.checks.remove(&peer) else { return };
        self.holds.remove(&(peer, self.me, check.id));
        let release = Message::FenceRelease(FenceQuery {
            from: self.me,
            incarnation: self.incarnation,
            check: check.id,
            peer,
        });
        let me = self.me;
        let to: Vec<NodeId> = check.yes.iter().chain(&check.asked).copied().filter(|&to| to != me).collect();
        self.send(transmits, to, &release);
    }

    /// The detector moved `peer` to `state` at `at`.
    pub(crate) fn on_peer_state(&mut self, peer: NodeId, state: PeerState, at: Instant) {
        match state {
            PeerState::Unreachable | PeerState::Left => {
                self.down_since.entry(peer).or_insert(at);
            }
            PeerState::Reachable | PeerState::Suspect => {
                self.down_since.remove(&peer);
                self.liveness.remove(&peer);
                self.announced.remove(&peer);
            }
            PeerState::Unknown => {}
        }
    }

    /// Runs what is due at `now`: a gossip round, expired fence checks.
    pub(crate) fn handle_timeout(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        let expired: Vec<NodeId> =
            self.checks.iter().filter(|(_, c)| now >= c.deadline).map(|(&p, _)| p).collect();
        for peer in expired {
            self.finish(peer, ctx.transmits);
            self.counters.fence_abandoned += 1;
        }
        self.holds.retain(|_, until| now < *until);
        if now < self.next_round {
            return;
        }
        self.round(now, ctx);
        let early = self.config.interval.mul_f64(ctx.rng.random_range(0.0..JITTER_FRACTION));
        self.next_round = now + (self.config.interval - early);
    }

    fn round(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        self.counters.rounds += 1;
        let views: Vec<(NodeId, View, Option<Incarnation>)> = ctx
            .detector
            .peers()
            .map(|(peer, p)| (peer, view_of(p.state), ctx.links.get(&peer).and_then(Link::peer_incarnation)))
            .collect();
        self.table.refresh_own(views);
        let mut peers: Vec<NodeId> = ctx.detector.peers().map(|(peer, _)| peer).collect();
        let fanout = self.config.fanout.min(peers.len());
        // A partial Fisher-Yates shuffle: `fanout` distinct peers, uniformly.
        for i in 0..fanout {
            let j = ctx.rng.random_range(i..peers.len());
            peers.swap(i, j);
        }
        let request = Message::Gossip(Gossip {
            from: self.me,
            incarnation: self.incarnation,
            digest: self.table.digest(),
            rows: Vec::new(),
        });
        self.send(ctx.transmits, peers[..fanout].iter().copied(), &request);
        let all: Vec<NodeId> =
            ctx.votes.members().filter(|&(id, v)| v > 0 && id != self.me).map(|(id, _)| id).collect();
        self.evaluate(now, ctx, &all, true);
        let view = self.table.view(now, self.config.fresh_for, self.config.corroboration);
        ctx.gate.set_partition(Some(view));
    }

    /// A gossip message from `from` (authenticated) arrived at `now`, as a request
    /// (`reply` true: the answer is returned) or as a reply (anything further goes out as
    /// a new request).
    pub(crate) fn on_gossip(
        &mut self,
        now: Instant,
        from: NodeId,
        gossip: &Gossip,
        is_request: bool,
        ctx: &mut Ctx<'_>,
    ) -> Option<Vec<u8>> {
        self.counters.messages_received += 1;
        let mut accused = BTreeSet::new();
        for delta in &gossip.rows {
            match self.table.merge(now, delta) {
                quorate_detector::MergeOutcome::Applied => {
                    self.counters.rows_applied += 1;
                    accused.extend(delta.entries.iter().filter(|e| e.view == View::Down).map(|e| e.peer));
                }
                _ => self.counters.rows_refused += 1,
            }
        }
        let accused: Vec<NodeId> =
            accused.into_iter().filter(|&p| ctx.votes.votes(p) > 0 && p != self.me).collect();
        self.evaluate(now, ctx, &accused, false);
        let start = usize::try_from(self.counters.rounds).unwrap_or(0);
        let rows = if gossip.digest.is_empty() {
            Vec::new()
        } else {
            self.table.deltas_for(&gossip.digest, self.config.bytes_max, start)
        };
        if is_request {
            // Reply: the rows the asker lacks, and this node's digest so it can push back
            // what this node lacks. A push (no digest) gets an empty reply.
            let digest = if gossip.digest.is_empty() { Vec::new() } else { self.table.digest() };
            let reply =
                Message::Gossip(Gossip { from: self.me, incarnation: self.incarnation, digest, rows });
            return self.encode(&reply);
        }
        if !rows.is_empty() {
            let push = Message::Gossip(Gossip {
                from: self.me,
                incarnation: self.incarnation,
                digest: Vec::new(),
                rows,
            });
            self.send(ctx.transmits, [from], &push);
        }
        None
    }

    /// Answers a fence query about `query.peer` from `from` (authenticated). With
    /// `may_promise` false (the data directory does not yet record this life's hold) the
    /// answer is no: a yes is a promise that must survive a crash.
    pub(crate) fn on_fence_query(
        &mut self,
        now: Instant,
        from: NodeId,
        query: &FenceQuery,
        detector: &Detector,
        may_promise: bool,
    ) -> Option<Vec<u8>> {
        let down = may_promise
            && query.peer != self.me
            && matches!(detector.state(query.peer), Some(PeerState::Unreachable | PeerState::Left));
        let (down_for_us, hold_us) = if down {
            let since = self.down_since.get(&query.peer).copied().unwrap_or(now);
            self.hold(query.peer, from, query.check, now + self.config.fence_hold);
            self.counters.fence_yes_given += 1;
            (Some(micros(now - since)), micros(self.config.fence_hold))
        } else {
            self.counters.fence_no_given += 1;
            (None, 0)
        };
        let answer = Message::FenceAnswer(FenceAnswer {
            from: self.me,
            incarnation: self.incarnation,
            check: query.check,
            peer: query.peer,
            down_for_us,
            hold_us,
        });
        self.encode(&answer)
    }

    /// An answer to one of this node's fence checks arrived at `now` from `from`.
    pub(crate) fn on_fence_answer(
        &mut self,
        now: Instant,
        from: NodeId,
        answer: &FenceAnswer,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(check) = self.checks.get_mut(&answer.peer) else {
            self.counters.fence_answers_ignored += 1;
            return;
        };
        if check.id != answer.check || !check.asked.remove(&from) {
            self.counters.fence_answers_ignored += 1;
            return;
        }
        if answer.down_for_us.is_some() && answer.hold_us > 0 {
            check.yes.insert(from);
            check.min_hold = check.min_hold.min(Duration::from_micros(answer.hold_us));
        }
        self.try_conclude(now, answer.peer, ctx);
    }

    /// Fence nominations among `candidates`, and with `liveness` the liveness events for
    /// peers down here (once a round: it reads every row for every peer down here).
    fn evaluate(&mut self, now: Instant, ctx: &mut Ctx<'_>, candidates: &[NodeId], liveness: bool) {
        let fresh_for = self.config.fresh_for;
        let down: Vec<(NodeId, Instant)> =
            if liveness { self.down_since.iter().map(|(&p, &t)| (p, t)).collect() } else { Vec::new() };
        for (peer, since) in down {
            let here = ctx.detector.state(peer).map_or(View::Unknown, view_of);
            let live = self.table.liveness(now, fresh_for, peer, here, since);
            if self.liveness.get(&peer) == Some(&live) {
                continue;
            }
            let event = match &live {
                Liveness::Indirect { via } => {
                    Some(QuorumEvent::PeerAliveElsewhere { peer, via: via.clone(), at: now })
                }
                Liveness::DownEverywhere => Some(QuorumEvent::PeerDownEverywhere { peer, at: now }),
                _ => None,
            };
            self.liveness.insert(peer, live);
            if let Some(event) = event {
                ctx.gate.announce(event);
            }
        }
        for &peer in candidates {
            // A quorum under the accused's own definition must accuse it: that is the
            // quorum whose votes it cannot write without.
            let Some(theirs) = ctx.definition_of(peer) else {
                self.announced.remove(&peer);
                continue;
            };
            let accusers: Vec<NodeId> = self
                .table
                .accusers(now, fresh_for, peer)
                .into_iter()
                .filter(|&a| theirs.votes(a) > 0)
                .collect();
            let nominated = theirs.is_quorum_set(accusers.iter().copied());
            if !nominated {
                self.announced.remove(&peer);
                continue;
            }
            // Only a node that itself considers the peer down checks: rows lag, and right
            // after a heal a stale row must not start checks (and holds) on a peer that
            // this node already hears again.
            let down_here = ctx.detector.state(peer) == Some(PeerState::Unreachable);
            if !down_here || self.announced.contains(&peer) || self.checks.contains_key(&peer) {
                continue;
            }
            self.start_check(now, peer, accusers, ctx);
        }
    }

    fn start_check(&mut self, now: Instant, peer: NodeId, accusers: Vec<NodeId>, ctx: &mut Ctx<'_>) {
        let id = self.next_check;
        self.next_check += 1;
        self.counters.fence_checks += 1;
        let mut check = FenceCheck {
            id,
            started: now,
            deadline: now + self.config.fence_timeout,
            asked: accusers.iter().copied().filter(|&a| a != self.me).collect(),
            yes: BTreeSet::new(),
            min_hold: Duration::MAX,
        };
        if ctx.detector.state(peer) == Some(PeerState::Unreachable) {
            // This node's own yes, given at q_start, with the same promise it asks of others.
            self.hold(peer, self.me, id, now + self.config.fence_hold);
            check.yes.insert(self.me);
            check.min_hold = self.config.fence_hold;
        }
        let query =
            Message::FenceQuery(FenceQuery { from: self.me, incarnation: self.incarnation, check: id, peer });
        self.send(ctx.transmits, check.asked.iter().copied(), &query);
        self.checks.insert(peer, check);
        self.try_conclude(now, peer, ctx);
    }

    fn try_conclude(&mut self, now: Instant, peer: NodeId, ctx: &mut Ctx<'_>) {
        let Some(check) = self.checks.get(&peer) else { return };
        let elapsed = (now - check.started).as_secs_f64();
        let in_time = check.min_hold.as_secs_f64() * (1.0 - self.drift) > elapsed * (1.0 + self.drift);
        // Confirmed only by a quorum under the accused's definition (unknown: never).
        let confirmed = ctx.definition_of(peer).is_some_and(|t| t.is_quorum_set(check.yes.iter().copied()));
        if confirmed && in_time {
            let confirmed_by = check.yes.iter().copied().collect();
            self.counters.fence_confirmed += 1;
            self.announced.insert(peer);
            // The event first: the holds only have to last until this instant.
            ctx.gate.announce(QuorumEvent::PeerFenced { peer, confirmed_by, at: now });
            self.finish(peer, ctx.transmits);
        } else if check.asked.is_empty() || !in_time {
            self.finish(peer, ctx.transmits);
            self.counters.fence_abandoned += 1;
        }
    }

    /// Encodes `message` for a stream; a failure (a digest too large for one message) is
    /// counted and the message skipped.
    fn encode(&mut self, message: &Message) -> Option<Vec<u8>> {
        let encoded = encode_stream(self.cluster, message);
        if encoded.is_err() {
            self.counters.encode_failures += 1;
        }
        encoded.ok()
    }

    /// Encodes `message` once and queues it as a request to each of `to`.
    fn send(
        &mut self,
        transmits: &mut VecDeque<Transmit>,
        to: impl IntoIterator<Item = NodeId>,
        message: &Message,
    ) {
        let Some(payload) = self.encode(message) else { return };
        for to in to {
            self.counters.messages_sent += 1;
            push_transmit(transmits, Transmit { to, payload: payload.clone(), delivery: Delivery::Request });
        }
    }
}

/// What a gossip step may read and write of the node around it.
pub(crate) struct Ctx<'a> {
    pub(crate) detector: &'a Detector,
    pub(crate) votes: &'a VoteTable,
    pub(crate) gate: &'a mut Gate,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) transmits: &'a mut VecDeque<Transmit>,
    /// The links, for each peer's incarnation as last heard.
    pub(crate) links: &'a BTreeMap<NodeId, Link>,
}

impl Ctx<'_> {
    /// The definition `peer` runs: this node's own, or the other one its heartbeats
    /// announced once it arrived; `None` while that one is unknown.
    fn definition_of(&self, peer: NodeId) -> Option<&VoteTable> {
        match self.gate.foreign_definition(peer) {
            None => Some(self.votes),
            Some((_, table)) => table,
        }
    }
}

fn view_of(state: PeerState) -> View {
    match state {
        PeerState::Unknown => View::Unknown,
        PeerState::Reachable => View::Heard,
        PeerState::Suspect => View::Suspect,
        PeerState::Unreachable => View::Down,
        PeerState::Left => View::Left,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_detector::DetectorConfig;
    use quorate_gate::{Clock, GateConfig, TieBreaker};
    use quorate_heartbeat::decode_stream;
    use rand::SeedableRng;

    const MS: u64 = 1_000_000;
    const X: NodeId = NodeId(5);

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * MS)
    }

    /// Node 1 of five voters; node 5 (`X`) is heard (`down` false) or down since 0.
    struct Fixture {
        gossip: Gossiper,
        detector: Detector,
        votes: VoteTable,
        gate: Gate,
        rng: ChaCha8Rng,
        transmits: VecDeque<Transmit>,
        links: BTreeMap<NodeId, Link>,
    }

    fn fixture(down: bool) -> Fixture {
        let votes = VoteTable::new((1..=5).map(|i| (NodeId(i), 1)), TieBreaker::LowestId);
        let votes = votes.unwrap_or_else(|e| panic!("{e}"));
        let peers = [NodeId(2), NodeId(3), NodeId(4), X];
        let mut detector =
            Detector::new(DetectorConfig::default(), at(0), peers).unwrap_or_else(|e| panic!("{e}"));
        // Ticks and heartbeats every 100 ms (a detector not ticked for longer sees its own
        // stall and gives every peer a fresh grace period); X goes silent at once if `down`.
        for t in (0..=10_000).step_by(100) {
            for p in peers {
                if p != X || !down || t == 0 {
                    detector.handle_heartbeat(at(t), p);
                }
            }
            detector.handle_timeout(at(t));
        }
        assert_eq!(detector.state(X), Some(if down { PeerState::Unreachable } else { PeerState::Reachable }));
        let (clock, _hand) = Clock::manual(at(10_000));
        let made = Gate::new(
            GateConfig::default(),
            &DetectorConfig::default(),
            votes.clone(),
            NodeId(1),
            Incarnation(1),
            clock,
            at(10_000),
        );
        let (gate, _) = made.unwrap_or_else(|e| panic!("{e}"));
        let gossip = Gossiper::new(
            GossipConfig::default(),
            0.01,
            ClusterId(1),
            NodeId(1),
            Incarnation(1),
            &votes,
            at(0),
        );
        Fixture {
            gossip,
            detector,
            votes,
            gate,
            rng: ChaCha8Rng::seed_from_u64(1),
            transmits: VecDeque::new(),
            links: BTreeMap::new(),
        }
    }

    impl Fixture {
        fn query(&mut self, may_promise: bool) -> Option<FenceAnswer> {
            let q = FenceQuery { from: NodeId(2), incarnation: Incarnation(1), check: 7, peer: X };
            let bytes = self.gossip.on_fence_query(at(10_000), NodeId(2), &q, &self.detector, may_promise)?;
            match decode_stream(&bytes, ClusterId(1)) {
                Ok(Message::FenceAnswer(a)) => Some(a),
                _ => None,
            }
        }

        /// The gossiper and the context it is driven with, borrowed apart.
        fn parts(&mut self) -> (&mut Gossiper, Ctx<'_>) {
            let ctx = Ctx {
                detector: &self.detector,
                votes: &self.votes,
                gate: &mut self.gate,
                rng: &mut self.rng,
                transmits: &mut self.transmits,
                links: &self.links,
            };
            (&mut self.gossip, ctx)
        }

        /// Starts a check on X at `t` (this node's own yes included), asking 2, 3 and 4.
        fn start(&mut self, t: u64) -> u64 {
            let accusers = vec![NodeId(1), NodeId(2), NodeId(3), NodeId(4)];
            let (gossip, mut ctx) = self.parts();
            gossip.start_check(at(t), X, accusers, &mut ctx);
            self.gossip.checks.get(&X).map_or(0, |c| c.id)
        }

        fn answer(&mut self, t: u64, from: u64, check: u64, yes: bool, hold_ms: u64) {
            let a = FenceAnswer {
                from: NodeId(from),
                incarnation: Incarnation(1),
                check,
                peer: X,
                down_for_us: yes.then_some(1_000_000),
                hold_us: hold_ms * 1_000,
            };
            let (gossip, mut ctx) = self.parts();
            gossip.on_fence_answer(at(t), NodeId(from), &a, &mut ctx);
        }

        fn fenced(&mut self) -> bool {
            std::iter::from_fn(|| self.gate.poll_event()).any(|e| matches!(e, QuorumEvent::PeerFenced { .. }))
        }
    }

    #[test]
    fn a_node_that_hears_the_peer_or_cannot_record_its_hold_answers_no() {
        let mut f = fixture(false);
        assert_eq!(f.query(true).map(|a| (a.down_for_us, a.hold_us)), Some((None, 0)));
        let mut f = fixture(true);
        assert_eq!(f.query(false).map(|a| (a.down_for_us, a.hold_us)), Some((None, 0)));
        assert_eq!(f.gossip.counters().fence_no_given, 1);
        let yes = f.query(true);
        assert!(yes.is_some_and(|a| a.down_for_us.is_some() && a.hold_us == 400_000), "{yes:?}");
        assert!(f.gossip.withholds_ack(X, at(10_399)) && !f.gossip.withholds_ack(X, at(10_400)));
        assert_eq!(f.gossip.counters().fence_yes_given, 1);
    }

    #[test]
    fn the_asker_withholds_its_own_acks_from_the_start_of_its_check() {
        let mut f = fixture(true);
        let first = f.start(10_000);
        assert!(f.gossip.withholds_ack(X, at(10_000)));
        assert_eq!(f.gossip.counters().fence_checks, 1);
        f.gossip.finish(X, &mut f.transmits);
        let second = f.start(10_010);
        assert_ne!(first, second, "every check gets its own id");
    }

    #[test]
    fn answers_that_match_no_check_or_no_real_yes_do_not_count() {
        let mut f = fixture(true);
        f.answer(10_000, 2, 1, true, 400);
        assert_eq!(f.gossip.counters().fence_answers_ignored, 1, "no check in flight");
        let id = f.start(10_000);
        f.answer(10_001, 2, id + 1, true, 400);
        assert_eq!(f.gossip.counters().fence_answers_ignored, 2, "another check's id");
        // A "no" that claims a hold, and a yes without one, are not yes-votes.
        f.answer(10_002, 2, id, false, 400);
        f.answer(10_003, 3, id, true, 0);
        assert_eq!(f.gossip.checks.get(&X).map(|c| c.yes.len()), Some(1), "only this node's own yes");
        f.answer(10_004, 3, id, true, 400);
        assert_eq!(f.gossip.counters().fence_answers_ignored, 3, "a second answer from the same node");
        assert!(!f.fenced());
    }

    #[test]
    fn a_yes_whose_hold_cannot_cover_the_check_so_far_does_not_conclude_it() {
        // Yes-sayers 1 (itself), 2 and a third: a quorum of five. The third's hold is
        // 100 ms; at 1% drift it covers 99 ms of its clock, which covers 98.0 ms of the
        // asker's: an answer 97 ms into the check concludes it, one 99 ms in does not, and
        // the check is abandoned at once although node 4 has not answered.
        let mut f = fixture(true);
        let id = f.start(10_000);
        f.answer(10_001, 2, id, true, 400);
        f.answer(10_097, 3, id, true, 100);
        assert!(f.fenced(), "97 ms in, the 100 ms hold still covers the check");
        assert_eq!(f.gossip.counters().fence_confirmed, 1);

        let mut f = fixture(true);
        let id = f.start(10_000);
        f.answer(10_001, 2, id, true, 400);
        f.answer(10_099, 3, id, true, 100);
        assert!(!f.fenced(), "99 ms in, a 100 ms hold no longer covers the check");
        assert!(f.gossip.checks.is_empty(), "abandoned at once");
        assert_eq!(f.gossip.counters().fence_abandoned, 1);
        assert!(!f.gossip.withholds_ack(X, at(10_099)), "its own hold is released with it");
    }
}
