//! [`Fencer`]: fence checks, the direct round that turns a gossip nomination into
//! `PeerFenced`, and the ack holds this node promises in them.
//!
//! ```text
//!   consider(now, X, accusers, X's definition, down here?)
//!     nominated when the accusers are a quorum under X's own definition
//!   fence check on X (this node's clock):
//!     q_start: count itself if it considers X down (and withhold acks from X for `hold`)
//!              FenceQuery to every other accuser
//!     answers: "down, and I withhold acks from X for hold_B" from B
//!     conclude when the yes-sayers form a quorum AND every hold_B (1 - rho) > (now - q_start) (1 + rho)
//!              ──► poll_event(): Fenced { X }
//! ```
//!
//! Why a concluded check proves X is fenced when the event is emitted: each yes-sayer B
//! answered at some real instant t_B within [q_start, now]. At t_B it considered X down, so
//! by lease safety X held none of its vote then; from t_B it sends X no ack for hold_B of
//! its clock, which covers real time up to the event by the inequality above, so no new
//! lease on B's vote can start before the event. A quorum of voters' votes are missing from
//! X at the event, and the rest is not a quorum: X is not writable. `docs/guarantees.md`
//! states the promise and its assumptions.
//!
//! The node around it asks [`Fencer::withholds_ack`] before every ack it sends, answers
//! queries through [`Fencer::on_query`] only when its data directory records the hold
//! (`may_promise`), and sends what [`Fencer::poll_transmit`] returns as requests.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use quorate_detector::PeerState;
use quorate_proto::{
    ClusterId, FenceAnswer, FenceQuery, Incarnation, Instant, Message, NodeId, Valid, VoteTable,
};

use crate::config::GossipConfig;
use crate::{encode_counted, Outgoing};

/// What fence checks did, for operators and tests. All counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FenceCounters {
    /// Fence checks started.
    pub checks: u64,
    /// Fence checks that concluded with `PeerFenced`.
    pub confirmed: u64,
    /// Fence checks that ran out of time or answers.
    pub abandoned: u64,
    /// Fence queries this node answered yes (and so withheld acks).
    pub yes_given: u64,
    /// Fence queries this node answered no.
    pub no_given: u64,
    /// Answers that matched no check in flight (late, duplicated or unsolicited).
    pub answers_ignored: u64,
    /// Messages that could not be encoded (never expected: fence messages are small).
    pub encode_failures: u64,
}

/// A fence check concluded: `peer` cannot write from `at` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fenced {
    /// The peer.
    pub peer: NodeId,
    /// The voters whose yes concluded the check, this node among them if it said yes.
    pub confirmed_by: Vec<NodeId>,
    /// When the check concluded.
    pub at: Instant,
    /// When this node started the check (`at - started` is how long it took).
    pub started: Instant,
}

#[derive(Debug, Clone)]
struct Check {
    id: u64,
    started: Instant,
    deadline: Instant,
    asked: BTreeSet<NodeId>,
    yes: BTreeSet<NodeId>,
    min_hold: Duration,
}

/// Fence checks asked and answered by one node. See the module docs.
#[derive(Debug)]
pub struct Fencer {
    hold: Duration,
    timeout: Duration,
    drift: f64,
    cluster: ClusterId,
    me: NodeId,
    incarnation: Incarnation,
    /// Withhold acks from a peer until then, per (peer, asker, check): promised in fence
    /// answers (and by this node for its own checks), released early when the asker says
    /// its check is over.
    holds: BTreeMap<(NodeId, NodeId, u64), Instant>,
    checks: BTreeMap<NodeId, Check>,
    /// Peers announced fenced and neither heard since nor no longer accused by a quorum.
    announced: BTreeSet<NodeId>,
    next_check: u64,
    out: VecDeque<Outgoing>,
    events: VecDeque<Fenced>,
    counters: FenceCounters,
}

impl Fencer {
    /// A fence checker for `me` in its life `incarnation`, with the hold and timeout of
    /// `config` and the drift bound `drift`.
    pub fn new(
        config: &Valid<GossipConfig>,
        drift: f64,
        cluster: ClusterId,
        me: NodeId,
        incarnation: Incarnation,
    ) -> Self {
        Fencer {
            hold: config.fence_hold,
            timeout: config.fence_timeout,
            drift,
            cluster,
            me,
            incarnation,
            holds: BTreeMap::new(),
            checks: BTreeMap::new(),
            announced: BTreeSet::new(),
            next_check: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            counters: FenceCounters::default(),
        }
    }

    /// Checks started from now on use the hold and timeout of `config` and the drift bound
    /// `drift` (the node's timing changed while it runs). Holds already promised keep
    /// their end, and checks in flight their deadline and the holds they were promised:
    /// the node around it keeps the longest hold it may have promised in its durable
    /// record until those expire.
    pub fn set_config(&mut self, config: &Valid<GossipConfig>, drift: f64) {
        self.hold = config.fence_hold;
        self.timeout = config.fence_timeout;
        self.drift = drift;
    }

    /// The hold each yes promises from now on.
    pub fn promised_hold(&self) -> Duration {
        self.hold
    }

    /// What fence checks did so far.
    pub fn counters(&self) -> FenceCounters {
        self.counters
    }

    /// When [`Fencer::handle_timeout`] has something to do next: the deadline of the
    /// earliest check in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.checks.values().map(|c| c.deadline).min()
    }

    /// The next request for the driver (queries and releases).
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    /// The next concluded check.
    pub fn poll_event(&mut self) -> Option<Fenced> {
        self.events.pop_front()
    }

    /// Whether acks to `peer` are withheld at `now` (a yes given in a fence check).
    pub fn withholds_ack(&self, peer: NodeId, now: Instant) -> bool {
        self.holds
            .range((peer, NodeId(0), 0)..=(peer, NodeId(u64::MAX), u64::MAX))
            .any(|(_, &until)| now < until)
    }

    /// The detector moved `peer` to `state`: a peer heard again is no longer announced.
    pub fn on_peer_state(&mut self, peer: NodeId, state: PeerState) {
        if matches!(state, PeerState::Reachable | PeerState::Suspect) {
            self.announced.remove(&peer);
        }
    }

    /// Expires checks out of time (telling everyone asked) and holds that ended.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<NodeId> =
            self.checks.iter().filter(|(_, c)| now >= c.deadline).map(|(&p, _)| p).collect();
        for peer in expired {
            self.finish(peer);
            self.counters.abandoned += 1;
        }
        self.holds.retain(|_, until| now < *until);
    }

    /// Fresh rows of `accusers` say the voter `peer` is down. `theirs` is the definition
    /// `peer` runs (`None` while unknown: never nominated); `down_here` whether this
    /// node's detector considers it unreachable. Starts a check when a quorum under
    /// `theirs` accuses it, this node agrees, and it is neither announced nor checked now.
    pub fn consider(
        &mut self,
        now: Instant,
        peer: NodeId,
        accusers: Vec<NodeId>,
        theirs: Option<&VoteTable>,
        down_here: bool,
    ) {
        // A quorum under the accused's own definition must accuse it: that is the quorum
        // whose votes it cannot write without.
        let Some(theirs) = theirs else {
            self.announced.remove(&peer);
            return;
        };
        let accusers: Vec<NodeId> = accusers.into_iter().filter(|&a| theirs.votes(a) > 0).collect();
        if !theirs.is_quorum_set(accusers.iter().copied()) {
            self.announced.remove(&peer);
            return;
        }
        // Only a node that itself considers the peer down checks: rows lag, and right
        // after a heal a stale row must not start checks (and holds) on a peer that this
        // node already hears again.
        if !down_here || self.announced.contains(&peer) || self.checks.contains_key(&peer) {
            return;
        }
        self.start(now, peer, accusers, theirs);
    }

    fn start(&mut self, now: Instant, peer: NodeId, accusers: Vec<NodeId>, theirs: &VoteTable) {
        let id = self.next_check;
        self.next_check += 1;
        self.counters.checks += 1;
        // This node's own yes, given at q_start, with the same promise it asks of others.
        self.hold(peer, self.me, id, now + self.hold);
        let check = Check {
            id,
            started: now,
            deadline: now + self.timeout,
            asked: accusers.iter().copied().filter(|&a| a != self.me).collect(),
            yes: BTreeSet::from([self.me]),
            min_hold: self.hold,
        };
        let query =
            Message::FenceQuery(FenceQuery { from: self.me, incarnation: self.incarnation, check: id, peer });
        let asked: Vec<NodeId> = check.asked.iter().copied().collect();
        self.send(asked, &query);
        self.checks.insert(peer, check);
        self.try_conclude(now, peer, Some(theirs));
    }

    /// Answers a fence query from `from` (authenticated). `down_since` is when this node
    /// started to consider the peer in question down, `None` if it does not. With
    /// `may_promise` false (the data directory does not yet record this life's hold) the
    /// answer is no: a yes is a promise that must survive a crash.
    pub fn on_query(
        &mut self,
        now: Instant,
        from: NodeId,
        query: &FenceQuery,
        down_since: Option<Instant>,
        may_promise: bool,
    ) -> Option<Vec<u8>> {
        let down = down_since.filter(|_| may_promise && query.peer != self.me);
        let (down_for_us, hold_us) = match down {
            Some(since) => {
                self.hold(query.peer, from, query.check, now + self.hold);
                self.counters.yes_given += 1;
                (Some(micros(now - since)), micros(self.hold))
            }
            None => {
                self.counters.no_given += 1;
                (None, 0)
            }
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

    /// An answer to one of this node's checks arrived at `now` from `from`; `theirs` is
    /// the definition the peer in question runs.
    pub fn on_answer(
        &mut self,
        now: Instant,
        from: NodeId,
        answer: &FenceAnswer,
        theirs: Option<&VoteTable>,
    ) {
        let Some(check) = self.checks.get_mut(&answer.peer) else {
            self.counters.answers_ignored += 1;
            return;
        };
        if check.id != answer.check || !check.asked.remove(&from) {
            self.counters.answers_ignored += 1;
            return;
        }
        if answer.down_for_us.is_some() && answer.hold_us > 0 {
            check.yes.insert(from);
            check.min_hold = check.min_hold.min(Duration::from_micros(answer.hold_us));
        }
        self.try_conclude(now, answer.peer, theirs);
    }

    /// The asker `from` says its check `release.check` about `release.peer` is over.
    pub fn on_release(&mut self, from: NodeId, release: &FenceQuery) {
        self.holds.remove(&(release.peer, from, release.check));
    }

    fn hold(&mut self, peer: NodeId, asker: NodeId, check: u64, until: Instant) {
        let hold = self.holds.entry((peer, asker, check)).or_insert(until);
        *hold = (*hold).max(until);
    }

    fn try_conclude(&mut self, now: Instant, peer: NodeId, theirs: Option<&VoteTable>) {
        let Some(check) = self.checks.get(&peer) else { return };
        let elapsed = (now - check.started).as_secs_f64();
        let in_time = check.min_hold.as_secs_f64() * (1.0 - self.drift) > elapsed * (1.0 + self.drift);
        // Confirmed only by a quorum under the accused's definition (unknown: never).
        let confirmed = theirs.is_some_and(|t| t.is_quorum_set(check.yes.iter().copied()));
        if confirmed && in_time {
            let confirmed_by = check.yes.iter().copied().collect();
            let started = check.started;
            self.counters.confirmed += 1;
            self.announced.insert(peer);
            // The event first: the holds only have to last until this instant.
            self.events.push_back(Fenced { peer, confirmed_by, at: now, started });
            self.finish(peer);
        } else if check.asked.is_empty() || !in_time {
            self.finish(peer);
            self.counters.abandoned += 1;
        }
    }

    /// Ends the check on `peer`: releases this node's own hold and tells everyone asked.
    fn finish(&mut self, peer: NodeId) {
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
        self.send(to, &release);
    }

    fn encode(&mut self, message: &Message) -> Option<Vec<u8>> {
        encode_counted(self.cluster, message, &mut self.counters.encode_failures)
    }

    fn send(&mut self, to: Vec<NodeId>, message: &Message) {
        let Some(payload) = self.encode(message) else { return };
        for to in to {
            self.out.push_back(Outgoing { to, payload: payload.clone() });
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_proto::{decode_stream, TieBreaker};

    const MS: u64 = 1_000_000;
    const X: NodeId = NodeId(5);

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * MS)
    }

    fn five() -> VoteTable {
        VoteTable::new((1..=5).map(|i| (NodeId(i), 1)), TieBreaker::LowestId)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Node 1 of five voters, 1% drift, default hold (400 ms) and timeout (300 ms).
    fn fencer() -> Fencer {
        let config = GossipConfig::default().check(0.01).unwrap_or_else(|e| panic!("{e}"));
        Fencer::new(&config, 0.01, ClusterId(1), NodeId(1), Incarnation(1))
    }

    /// Asks node 1 about X as node 2 would, with X down here since 9 s (`down`) or not.
    fn query(f: &mut Fencer, down: bool, may_promise: bool) -> Option<FenceAnswer> {
        let q = FenceQuery { from: NodeId(2), incarnation: Incarnation(1), check: 7, peer: X };
        let bytes = f.on_query(at(10_000), NodeId(2), &q, down.then(|| at(9_000)), may_promise)?;
        match decode_stream(&bytes, ClusterId(1)) {
            Ok(Message::FenceAnswer(a)) => Some(a),
            _ => None,
        }
    }

    /// Starts a check on X at `t` (this node's own yes included), asking 2, 3 and 4.
    fn start(f: &mut Fencer, t: u64) -> u64 {
        let accusers = vec![NodeId(1), NodeId(2), NodeId(3), NodeId(4)];
        f.consider(at(t), X, accusers, Some(&five()), true);
        f.checks.get(&X).map_or(0, |c| c.id)
    }

    fn answer(f: &mut Fencer, t: u64, from: u64, check: u64, yes: bool, hold_ms: u64) {
        let a = FenceAnswer {
            from: NodeId(from),
            incarnation: Incarnation(1),
            check,
            peer: X,
            down_for_us: yes.then_some(1_000_000),
            hold_us: hold_ms * 1_000,
        };
        f.on_answer(at(t), NodeId(from), &a, Some(&five()));
    }

    fn fenced(f: &mut Fencer) -> bool {
        std::iter::from_fn(|| f.poll_event()).any(|e| e.peer == X)
    }

    #[test]
    fn a_node_that_hears_the_peer_or_cannot_record_its_hold_answers_no() {
        let mut f = fencer();
        assert_eq!(query(&mut f, false, true).map(|a| (a.down_for_us, a.hold_us)), Some((None, 0)));
        assert_eq!(query(&mut f, true, false).map(|a| (a.down_for_us, a.hold_us)), Some((None, 0)));
        assert_eq!(f.counters().no_given, 2);
        let yes = query(&mut f, true, true);
        assert!(yes.is_some_and(|a| a.down_for_us == Some(1_000_000) && a.hold_us == 400_000), "{yes:?}");
        assert!(f.withholds_ack(X, at(10_399)) && !f.withholds_ack(X, at(10_400)));
        assert!(!f.withholds_ack(NodeId(3), at(10_000)), "only the peer asked about");
        assert_eq!(f.counters().yes_given, 1);
        // The asker ends its check: the hold goes with it.
        f.on_release(
            NodeId(2),
            &FenceQuery { from: NodeId(2), incarnation: Incarnation(1), check: 7, peer: X },
        );
        assert!(!f.withholds_ack(X, at(10_001)));
    }

    #[test]
    fn a_node_never_says_yes_about_itself() {
        let mut f = fencer();
        let q = FenceQuery { from: NodeId(2), incarnation: Incarnation(1), check: 1, peer: NodeId(1) };
        let bytes = f.on_query(at(10), NodeId(2), &q, Some(at(0)), true);
        let answer = bytes.and_then(|b| match decode_stream(&b, ClusterId(1)) {
            Ok(Message::FenceAnswer(a)) => Some(a),
            _ => None,
        });
        assert_eq!(answer.map(|a| a.hold_us), Some(0));
    }

    #[test]
    fn the_asker_withholds_its_own_acks_from_the_start_of_its_check() {
        let mut f = fencer();
        let first = start(&mut f, 10_000);
        assert!(f.withholds_ack(X, at(10_000)));
        assert_eq!(f.counters().checks, 1);
        let asked: Vec<NodeId> = std::iter::from_fn(|| f.poll_transmit()).map(|o| o.to).collect();
        assert_eq!(asked, vec![NodeId(2), NodeId(3), NodeId(4)], "a query to every other accuser");
        f.finish(X);
        assert!(!f.withholds_ack(X, at(10_001)), "its own hold ends with the check");
        let second = start(&mut f, 10_010);
        assert_ne!(first, second, "every check gets its own id");
    }

    #[test]
    fn only_a_quorum_of_accusers_under_the_peers_definition_that_is_down_here_starts_a_check() {
        let mut f = fencer();
        let two = vec![NodeId(1), NodeId(2)];
        f.consider(at(1), X, two, Some(&five()), true);
        assert_eq!(f.counters().checks, 0, "two of five accusers are no quorum");
        let three = vec![NodeId(1), NodeId(2), NodeId(3)];
        f.consider(at(2), X, three.clone(), Some(&five()), false);
        assert_eq!(f.counters().checks, 0, "not down here");
        f.consider(at(3), X, three.clone(), None, true);
        assert_eq!(f.counters().checks, 0, "the peer's definition is unknown");
        // Under a seven-member definition, three accusers are no quorum either.
        let seven = VoteTable::new((1..=7).map(|i| (NodeId(i), 1)), TieBreaker::LowestId);
        let seven = seven.unwrap_or_else(|e| panic!("{e}"));
        f.consider(at(4), X, three.clone(), Some(&seven), true);
        assert_eq!(f.counters().checks, 0, "judged under the accused's definition");
        f.consider(at(5), X, three.clone(), Some(&five()), true);
        assert_eq!(f.counters().checks, 1);
        f.consider(at(6), X, three, Some(&five()), true);
        assert_eq!(f.counters().checks, 1, "one check per peer at a time");
    }

    #[test]
    fn answers_that_match_no_check_or_no_real_yes_do_not_count() {
        let mut f = fencer();
        answer(&mut f, 10_000, 2, 1, true, 400);
        assert_eq!(f.counters().answers_ignored, 1, "no check in flight");
        let id = start(&mut f, 10_000);
        answer(&mut f, 10_001, 2, id + 1, true, 400);
        assert_eq!(f.counters().answers_ignored, 2, "another check's id");
        // A "no" that claims a hold, and a yes without one, are not yes-votes.
        answer(&mut f, 10_002, 2, id, false, 400);
        answer(&mut f, 10_003, 3, id, true, 0);
        assert_eq!(f.checks.get(&X).map(|c| c.yes.len()), Some(1), "only this node's own yes");
        answer(&mut f, 10_004, 3, id, true, 400);
        assert_eq!(f.counters().answers_ignored, 3, "a second answer from the same node");
        assert!(!fenced(&mut f));
    }

    #[test]
    fn a_yes_whose_hold_cannot_cover_the_check_so_far_does_not_conclude_it() {
        // Yes-sayers 1 (itself), 2 and a third: a quorum of five. The third's hold is
        // 100 ms; at 1% drift it covers 99 ms of its clock, which covers 98.0 ms of the
        // asker's: an answer 97 ms into the check concludes it, one 99 ms in does not, and
        // the check is abandoned at once although node 4 has not answered.
        let mut f = fencer();
        let id = start(&mut f, 10_000);
        answer(&mut f, 10_001, 2, id, true, 400);
        answer(&mut f, 10_097, 3, id, true, 100);
        assert!(fenced(&mut f), "97 ms in, the 100 ms hold still covers the check");
        assert_eq!(f.counters().confirmed, 1);

        let mut f = fencer();
        let id = start(&mut f, 10_000);
        answer(&mut f, 10_001, 2, id, true, 400);
        answer(&mut f, 10_099, 3, id, true, 100);
        assert!(!fenced(&mut f), "99 ms in, a 100 ms hold no longer covers the check");
        assert!(f.checks.is_empty(), "abandoned at once");
        assert_eq!(f.counters().abandoned, 1);
        assert!(!f.withholds_ack(X, at(10_099)), "its own hold is released with it");
    }

    #[test]
    fn a_concluded_check_says_when_it_started_and_when_it_ended() {
        let mut f = fencer();
        let id = start(&mut f, 10_000);
        answer(&mut f, 10_040, 2, id, true, 400);
        answer(&mut f, 10_097, 3, id, true, 400);
        let done: Vec<Fenced> = std::iter::from_fn(|| f.poll_event()).collect();
        let took: Vec<(Instant, Instant)> = done.iter().map(|e| (e.started, e.at)).collect();
        assert_eq!(took, vec![(at(10_000), at(10_097))], "from the start of the check to its quorum");
    }

    #[test]
    fn a_check_without_enough_answers_is_abandoned_at_its_deadline_and_released() {
        let mut f = fencer();
        let id = start(&mut f, 10_000);
        answer(&mut f, 10_001, 2, id, true, 400);
        while f.poll_transmit().is_some() {}
        assert_eq!(f.poll_timeout(), Some(at(10_300)));
        f.handle_timeout(at(10_299));
        assert_eq!(f.counters().abandoned, 0);
        f.handle_timeout(at(10_300));
        assert_eq!(f.counters().abandoned, 1);
        let released: Vec<NodeId> = std::iter::from_fn(|| f.poll_transmit()).map(|o| o.to).collect();
        assert_eq!(released, vec![NodeId(2), NodeId(3), NodeId(4)], "everyone asked hears it is over");
        assert!(!fenced(&mut f));
    }

    #[test]
    fn an_announced_peer_is_not_checked_again_until_heard_or_no_longer_accused() {
        let mut f = fencer();
        let id = start(&mut f, 10_000);
        answer(&mut f, 10_001, 2, id, true, 400);
        answer(&mut f, 10_002, 3, id, true, 400);
        assert!(fenced(&mut f));
        start(&mut f, 10_100);
        assert_eq!(f.counters().checks, 1, "announced: no second check");
        f.on_peer_state(X, PeerState::Reachable);
        start(&mut f, 10_200);
        assert_eq!(f.counters().checks, 2, "heard again, then accused again: checked again");
    }

    #[test]
    fn a_hold_outlives_the_timer_until_it_ends() {
        let mut f = fencer();
        assert!(query(&mut f, true, true).is_some_and(|a| a.hold_us > 0));
        // The timer runs in between: a live hold stays, an ended one goes.
        f.handle_timeout(at(10_100));
        assert!(f.withholds_ack(X, at(10_200)), "a hold that has not ended survives the timer");
        f.handle_timeout(at(10_400));
        assert!(!f.withholds_ack(X, at(10_399)), "an ended hold is gone");
    }

    #[test]
    fn observers_among_the_accusers_are_not_asked() {
        let mut f = fencer();
        let members = [(NodeId(1), 1), (NodeId(2), 1), (NodeId(3), 1), (NodeId(4), 0), (X, 1)];
        let theirs = VoteTable::new(members, TieBreaker::LowestId).unwrap_or_else(|e| panic!("{e}"));
        f.consider(at(1), X, vec![NodeId(1), NodeId(2), NodeId(3), NodeId(4)], Some(&theirs), true);
        let asked: Vec<NodeId> = std::iter::from_fn(|| f.poll_transmit()).map(|o| o.to).collect();
        assert_eq!(asked, vec![NodeId(2), NodeId(3)], "the observer lends no vote and is not asked");
    }

    #[test]
    fn without_drift_a_hold_must_strictly_outlast_the_check() {
        let config = GossipConfig::default().check(0.0).unwrap_or_else(|e| panic!("{e}"));
        let mut f = Fencer::new(&config, 0.0, ClusterId(1), NodeId(1), Incarnation(1));
        let id = start(&mut f, 10_000);
        answer(&mut f, 10_001, 2, id, true, 400);
        // A hold of exactly the time the check has run covers nothing after it.
        answer(&mut f, 10_100, 3, id, true, 100);
        assert!(!fenced(&mut f), "a 100 ms hold does not cover a check 100 ms old");
        let mut f = Fencer::new(&config, 0.0, ClusterId(1), NodeId(1), Incarnation(1));
        let id = start(&mut f, 10_000);
        answer(&mut f, 10_001, 2, id, true, 400);
        answer(&mut f, 10_099, 3, id, true, 100);
        assert!(fenced(&mut f), "99 ms in, it does");
    }
}
