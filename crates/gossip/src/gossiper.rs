//! [`Gossiper`]: gossip rounds over the row table, and what fresh rows say of peers.
//!
//! ```text
//!   heartbeat_digest(now, peer)          on_heartbeat_digest(now, from, digest)
//!     digest for an outgoing heartbeat:    the peer holds newer rows ──► Gossip{digest}
//!     when rows changed, while the peer    request (a pull, at most one per interval)
//!     is behind, and every 4 intervals
//!
//!   handle_timeout(now, views, rng)     on_gossip(now, from, gossip, is_request)
//!     round due: refresh own row           merge every delta ──► reply / push
//!     mark who is heard; pull from heard       │
//!     peers whose digests never come           ▼
//!     liveness of peers down here       Accused { peer, accusers } for accused voters
//!            │
//!            ▼
//!   poll_output() ──► Send(request for the driver) | Event(AliveElsewhere /
//!                     DownEverywhere / Accused, for the fence checker), in decided order
//! ```
//!
//! Rows change only when a view changes, and digests ride on heartbeats, so an idle
//! cluster sends no gossip messages at all: a round is local work (nominations, liveness,
//! the partition view) unless a heard peer sends no digests (a build that predates them,
//! or a digest too large for a heartbeat), which is then asked as rounds always did.
//!
//! It decides nothing about writes: rows only inform the partition view, the liveness
//! events and the fence nominations, which the fence checker ([`crate::Fencer`]) verifies
//! directly with the accusers before anything is announced.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use quorate_detector::PeerState;
use quorate_proto::{
    ClusterId, Gossip, Incarnation, Instant, Message, NodeId, RowVersion, Valid, View, VoteTable,
};
use rand::Rng;

use crate::config::GossipConfig;
use crate::rows::{MergeOutcome, RowTable};
use crate::view::{Liveness, PartitionView};
use crate::{encode_counted, Outgoing};

/// Gossip rounds go out up to this fraction of an interval early, at random.
const JITTER_FRACTION: f64 = 0.1;
/// A heartbeat carries the digest at least once per this many intervals, even when
/// nothing changed: it confirms the sender's row current (liveness evidence) and repairs
/// a digest lost on the way.
const DIGEST_EVERY_INTERVALS: u32 = 4;
/// A heard peer whose digest has not arrived for this many intervals is asked in rounds.
const SILENT_AFTER_INTERVALS: u32 = 3 * DIGEST_EVERY_INTERVALS;
/// Digests of more rows than this stay off heartbeats (40 rows of at most 21 bytes keep a
/// heartbeat far below the datagram limit); such clusters gossip in rounds.
pub const HEARTBEAT_DIGEST_ROWS_MAX: usize = 40;

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
    /// [`crate::MergeCounters`] for the split.
    pub rows_refused: u64,
    /// Messages that could not be encoded within the stream limit (a digest of a very
    /// large cluster); the message is skipped.
    pub encode_failures: u64,
    /// Heartbeats that carried this node's digest.
    pub heartbeat_digests: u64,
    /// Requests sent because a peer's digest named newer rows.
    pub pulls: u64,
    /// Requests sent by rounds, to heard peers whose digests did not arrive.
    pub round_requests: u64,
}

/// What this node knows of one peer's rows and what it last told it.
#[derive(Debug, Clone, Default)]
struct PeerSync {
    /// The peer's last digest (from a heartbeat or a gossip message), and when it arrived.
    theirs: Option<(Instant, Vec<RowVersion>)>,
    /// When this node last put its digest on a heartbeat to the peer, and the table's
    /// generation then.
    sent: Option<(Instant, u64)>,
    /// When this node last asked the peer for rows.
    pulled: Option<Instant>,
}

/// One output of the gossiper, in the order it was decided: a request to send or an event.
/// One queue for both keeps a step's messages in the order the protocol made them (a
/// round's requests before the fence queries its nominations start; a merge's queries
/// before the push that follows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipOutput {
    /// A request for the driver.
    Send(Outgoing),
    /// Something for the node around it.
    Event(GossipEvent),
}

/// What the gossiper tells the node around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipEvent {
    /// `peer`, down here, is heard by the members in `via` (their fresh rows say so).
    AliveElsewhere {
        /// The peer.
        peer: NodeId,
        /// Who hears it.
        via: Vec<NodeId>,
        /// When this was concluded.
        at: Instant,
    },
    /// `peer`, down here, is heard by nobody whose fresh row reached this node.
    DownEverywhere {
        /// The peer.
        peer: NodeId,
        /// When this was concluded.
        at: Instant,
    },
    /// Fresh rows of `accusers` (this node among them if it is one) say the voter `peer`
    /// is down: a candidate for a fence check, once the accusers are weighed under the
    /// peer's own definition.
    Accused {
        /// The voter in question.
        peer: NodeId,
        /// Owners whose fresh rows say it is down.
        accusers: Vec<NodeId>,
    },
}

/// Gossip rounds and the row table. See the module docs.
#[derive(Debug)]
pub struct Gossiper {
    config: Valid<GossipConfig>,
    cluster: ClusterId,
    me: NodeId,
    incarnation: Incarnation,
    /// Voters of this node's definition, this node excluded: the peers a round considers
    /// for fence nominations.
    voters: BTreeSet<NodeId>,
    table: RowTable,
    next_round: Instant,
    /// Peers this node considers down (or left), since when.
    down_since: BTreeMap<NodeId, Instant>,
    /// The liveness last announced for each peer that is down here.
    liveness: BTreeMap<NodeId, Liveness>,
    /// The partition view of the last round; `None` before the first.
    view: Option<PartitionView>,
    /// How many rounds changed the partition view.
    view_changes: u64,
    /// Digests exchanged with each member, by member.
    peers: BTreeMap<NodeId, PeerSync>,
    outputs: VecDeque<GossipOutput>,
    counters: GossipCounters,
}

impl Gossiper {
    /// A gossiper for `me` in its life `incarnation`, with the members of `votes` (voters'
    /// rows are gossiped; every member is covered by them), first round at `now`.
    pub fn new(
        config: Valid<GossipConfig>,
        cluster: ClusterId,
        me: NodeId,
        incarnation: Incarnation,
        votes: &VoteTable,
        now: Instant,
    ) -> Self {
        let voters = voters_of(votes);
        let table = RowTable::new(me, incarnation, votes.members().map(|(id, _)| id))
            .with_owners(voters.iter().copied());
        Gossiper {
            config,
            cluster,
            me,
            incarnation,
            voters: voters.into_iter().filter(|&id| id != me).collect(),
            table,
            next_round: now,
            down_since: BTreeMap::new(),
            liveness: BTreeMap::new(),
            view: None,
            view_changes: 0,
            peers: BTreeMap::new(),
            outputs: VecDeque::new(),
            counters: GossipCounters::default(),
        }
    }

    /// This node's definition changed while running to `votes`: the table covers its
    /// members and gossips its voters' rows, and what was kept about peers that are no
    /// longer members is forgotten.
    pub fn set_definition(&mut self, votes: &VoteTable) {
        let voters = voters_of(votes);
        self.table.set_members(votes.members().map(|(id, _)| id), voters.iter().copied());
        let me = self.me;
        self.voters = voters.into_iter().filter(|&id| id != me).collect();
        let members = &self.table.members;
        self.peers.retain(|id, _| members.contains(id));
        self.down_since.retain(|id, _| members.contains(id));
        self.liveness.retain(|id, _| members.contains(id));
    }

    /// Runs `config` from `now` on (the node's timing changed while it runs): rounds at the
    /// new interval (the next one no later than an interval from `now`), rows judged fresh
    /// by the new `fresh_for`. Rows and what was learned of peers are kept. Whether gossip
    /// is on is the node's to keep as it was.
    pub fn set_config(&mut self, now: Instant, config: Valid<GossipConfig>) {
        self.next_round = self.next_round.min(now.saturating_add(config.interval));
        self.config = config;
    }

    /// What gossip did so far.
    pub fn counters(&self) -> GossipCounters {
        self.counters
    }

    /// The rows held.
    pub fn table(&self) -> &RowTable {
        &self.table
    }

    /// Who hears whom, as of the last round; `None` before the first.
    pub fn view(&self) -> Option<&PartitionView> {
        self.view.as_ref()
    }

    /// How many rounds changed the partition view ([`Gossiper::view`]) so far: a reader
    /// that remembers it knows when the view is news.
    pub fn view_changes(&self) -> u64 {
        self.view_changes
    }

    /// Who hears whom at `now`, from the rows as they are.
    pub fn view_at(&self, now: Instant) -> PartitionView {
        self.table.view(now, self.config.fresh_for, self.config.corroboration)
    }

    /// Since when this node considers `peer` down (or left), if it does.
    pub fn down_since(&self, peer: NodeId) -> Option<Instant> {
        self.down_since.get(&peer).copied()
    }

    /// When the next round is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_round
    }

    /// The next output: a request for the driver or an event, in the order decided.
    pub fn poll_output(&mut self) -> Option<GossipOutput> {
        self.outputs.pop_front()
    }

    /// The detector moved `peer` to `state` at `at`.
    pub fn on_peer_state(&mut self, peer: NodeId, state: PeerState, at: Instant) {
        match state {
            PeerState::Unreachable | PeerState::Left => {
                self.down_since.entry(peer).or_insert(at);
            }
            PeerState::Reachable | PeerState::Suspect => {
                self.down_since.remove(&peer);
                self.liveness.remove(&peer);
            }
            PeerState::Unknown => {}
        }
    }

    /// Runs a round if one is due at `now`. `views` says what this node's detector thinks
    /// of each peer it watches (and the incarnation last heard), in id order; it is asked
    /// only when a round runs. `rng` picks the peers and the jitter.
    pub fn handle_timeout<F>(&mut self, now: Instant, views: F, rng: &mut impl Rng)
    where
        F: FnOnce() -> Vec<(NodeId, View, Option<Incarnation>)>,
    {
        if now < self.next_round {
            return;
        }
        self.round(now, views(), rng);
        let early = self.config.interval.mul_f64(rng.random_range(0.0..JITTER_FRACTION));
        self.next_round = now + (self.config.interval - early);
    }

    fn round(&mut self, now: Instant, views: Vec<(NodeId, View, Option<Incarnation>)>, rng: &mut impl Rng) {
        self.counters.rounds += 1;
        let here: BTreeMap<NodeId, View> = views.iter().map(|&(peer, view, _)| (peer, view)).collect();
        let silent_after = self.config.interval * SILENT_AFTER_INTERVALS;
        let mut silent: Vec<NodeId> = views
            .iter()
            .filter(|&&(peer, view, _)| view.hears() && !self.digest_arrived_within(peer, now, silent_after))
            .map(|&(peer, _, _)| peer)
            .collect();
        self.table.refresh_own(views);
        self.table.mark_heard(now);
        let fanout = self.config.fanout.min(silent.len());
        // A partial Fisher-Yates shuffle: `fanout` distinct peers, uniformly.
        for i in 0..fanout {
            let j = rng.random_range(i..silent.len());
            silent.swap(i, j);
        }
        if fanout > 0 {
            self.counters.round_requests += fanout as u64;
            let request = self.request();
            self.send(silent[..fanout].iter().copied(), &request);
        }
        self.announce_liveness(now, &here);
        let voters: Vec<NodeId> = self.voters.iter().copied().collect();
        self.accuse(now, voters);
        let view = self.table.view(now, self.config.fresh_for, self.config.corroboration);
        if self.view.as_ref() != Some(&view) {
            self.view_changes += 1;
            self.view = Some(view);
        }
    }

    fn digest_arrived_within(&self, peer: NodeId, now: Instant, within: std::time::Duration) -> bool {
        self.peers.get(&peer).and_then(|p| p.theirs.as_ref()).is_some_and(|(at, _)| now - *at <= within)
    }

    /// A request for the rows this node lacks: its digest and no rows.
    fn request(&self) -> Message {
        Message::Gossip(Gossip {
            from: self.me,
            incarnation: self.incarnation,
            digest: self.table.digest(),
            rows: Vec::new(),
        })
    }

    /// The digest to put on a heartbeat to `peer` at `now`, or nothing: it goes when the
    /// rows changed since the last one sent to `peer`, while `peer`'s last digest shows it
    /// behind (or none came yet), and every few intervals regardless.
    pub fn heartbeat_digest(&mut self, now: Instant, peer: NodeId) -> Vec<RowVersion> {
        if !self.table.members.contains(&peer) || peer == self.me {
            return Vec::new();
        }
        let rows = self.table.digest_len();
        if rows == 0 || rows > HEARTBEAT_DIGEST_ROWS_MAX {
            return Vec::new();
        }
        let generation = self.table.generation();
        let every = self.config.interval * DIGEST_EVERY_INTERVALS;
        let sync = self.peers.entry(peer).or_default();
        let due = sync.sent.is_none_or(|(at, sent)| sent != generation || now - at >= every);
        let table = &self.table;
        let behind = sync.theirs.as_ref().is_none_or(|(_, theirs)| table.is_ahead_of(theirs));
        if !due && !behind {
            return Vec::new();
        }
        sync.sent = Some((now, generation));
        self.counters.heartbeat_digests += 1;
        self.table.digest()
    }

    /// A heartbeat from `from` (authenticated, accepted) carried `digest` at `now`. If it
    /// names rows newer than those held here, `from` is asked for them (at most once per
    /// interval while a request may still be under way).
    pub fn on_heartbeat_digest(&mut self, now: Instant, from: NodeId, digest: &[RowVersion]) {
        if digest.is_empty() {
            return;
        }
        self.on_digest(now, from, digest);
        let behind = self.table.is_behind(digest);
        let interval = self.config.interval;
        let Some(sync) = self.peers.get_mut(&from) else { return };
        if !behind || sync.pulled.is_some_and(|at| now - at < interval) {
            return;
        }
        sync.pulled = Some(now);
        self.counters.pulls += 1;
        let request = self.request();
        self.send([from], &request);
    }

    /// Keeps `from`'s digest (members' rows only, at most one entry per member) and
    /// confirms `from`'s row current if the digest names the version held here.
    fn on_digest(&mut self, now: Instant, from: NodeId, digest: &[RowVersion]) {
        if from == self.me || !self.table.members.contains(&from) {
            return;
        }
        self.table.confirm(now, from, digest);
        let mut theirs: Vec<RowVersion> =
            digest.iter().filter(|v| self.table.members.contains(&v.owner)).copied().collect();
        theirs.truncate(self.table.members.len());
        self.peers.entry(from).or_default().theirs = Some((now, theirs));
    }

    /// Liveness events for the peers down here whose liveness changed (read from every
    /// fresh row for every such peer, so once a round).
    fn announce_liveness(&mut self, now: Instant, here: &BTreeMap<NodeId, View>) {
        let down: Vec<(NodeId, Instant)> = self.down_since.iter().map(|(&p, &t)| (p, t)).collect();
        for (peer, since) in down {
            let view = here.get(&peer).copied().unwrap_or(View::Unknown);
            let live = self.table.liveness(now, self.config.fresh_for, peer, view, since);
            if self.liveness.get(&peer) == Some(&live) {
                continue;
            }
            let event = match &live {
                Liveness::Indirect { via } => {
                    Some(GossipEvent::AliveElsewhere { peer, via: via.clone(), at: now })
                }
                Liveness::DownEverywhere => Some(GossipEvent::DownEverywhere { peer, at: now }),
                _ => None,
            };
            self.liveness.insert(peer, live);
            self.outputs.extend(event.map(GossipOutput::Event));
        }
    }

    /// Who accuses each of `peers`, for the fence checker.
    fn accuse(&mut self, now: Instant, peers: Vec<NodeId>) {
        for peer in peers {
            let accusers = self.table.accusers(now, self.config.fresh_for, peer);
            self.outputs.push_back(GossipOutput::Event(GossipEvent::Accused { peer, accusers }));
        }
    }

    /// A gossip message from `from` (authenticated) arrived at `now`, as a request
    /// (`is_request`: the encoded answer is returned) or as a reply (anything further goes
    /// out as a new request).
    pub fn on_gossip(
        &mut self,
        now: Instant,
        from: NodeId,
        gossip: &Gossip,
        is_request: bool,
    ) -> Option<Vec<u8>> {
        self.counters.messages_received += 1;
        let mut accused = BTreeSet::new();
        let mut applied = false;
        for delta in &gossip.rows {
            match self.table.merge(now, delta) {
                MergeOutcome::Applied => {
                    applied = true;
                    self.counters.rows_applied += 1;
                    accused.extend(delta.entries.iter().filter(|e| e.view == View::Down).map(|e| e.peer));
                }
                _ => self.counters.rows_refused += 1,
            }
        }
        if !gossip.digest.is_empty() {
            self.on_digest(now, from, &gossip.digest);
        }
        if applied {
            // A row new here counts at once if its owner is heard.
            self.table.mark_heard(now);
        }
        let accused: Vec<NodeId> = accused.into_iter().filter(|p| self.voters.contains(p)).collect();
        self.accuse(now, accused);
        let start = usize::try_from(self.counters.rounds).unwrap_or(0);
        // A request asks for what its digest lacks (an empty digest, from a node that holds
        // no rows yet: everything), unless it is a push (rows, no digest). A reply's digest
        // shows what to push back; the empty reply to a push asks for nothing.
        let push = gossip.digest.is_empty() && !gossip.rows.is_empty();
        let asks = if is_request { !push } else { !gossip.digest.is_empty() };
        let rows = if asks {
            self.table.deltas_for(&gossip.digest, self.config.bytes_max, start)
        } else {
            Vec::new()
        };
        if is_request {
            // Reply: the rows the asker lacks, and this node's digest so it can push back
            // what this node lacks. A push gets an empty reply.
            let digest = if push { Vec::new() } else { self.table.digest() };
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
            self.send([from], &push);
        }
        None
    }

    /// Encodes `message` for a stream; a failure (a digest too large for one message) is
    /// counted and the message skipped.
    fn encode(&mut self, message: &Message) -> Option<Vec<u8>> {
        encode_counted(self.cluster, message, &mut self.counters.encode_failures)
    }

    /// Encodes `message` once and queues it as a request to each of `to`.
    fn send(&mut self, to: impl IntoIterator<Item = NodeId>, message: &Message) {
        let Some(payload) = self.encode(message) else { return };
        for to in to {
            self.counters.messages_sent += 1;
            self.outputs.push_back(GossipOutput::Send(Outgoing { to, payload: payload.clone() }));
        }
    }
}

/// The members of `votes` that hold votes: the owners of the rows gossip carries.
fn voters_of(votes: &VoteTable) -> BTreeSet<NodeId> {
    votes.members().filter(|&(_, v)| v > 0).map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_proto::{decode_stream, TieBreaker};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const MS: u64 = 1_000_000;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * MS)
    }

    /// Node `me` of five voters and one observer (6).
    fn gossiper(me: u64) -> Gossiper {
        let members = (1..=5).map(|i| (NodeId(i), 1)).chain([(NodeId(6), 0)]);
        let votes = VoteTable::new(members, TieBreaker::LowestId).unwrap_or_else(|e| panic!("{e}"));
        let config = GossipConfig::default().check(0.01).unwrap_or_else(|e| panic!("{e}"));
        Gossiper::new(config, ClusterId(1), NodeId(me), Incarnation(me), &votes, at(0))
    }

    /// What `me` thinks of the others: everyone heard but `down`.
    fn views(me: u64, down: &[u64]) -> Vec<(NodeId, View, Option<Incarnation>)> {
        let view = |p| if down.contains(&p) { View::Down } else { View::Heard };
        (1..=6).filter(|&p| p != me).map(|p| (NodeId(p), view(p), Some(Incarnation(p)))).collect()
    }

    fn events_of(g: &mut Gossiper) -> Vec<GossipEvent> {
        std::iter::from_fn(|| g.poll_output())
            .filter_map(|o| match o {
                GossipOutput::Event(e) => Some(e),
                GossipOutput::Send(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_round_asks_fanout_peers_and_names_the_accused_voters_only_when_due() {
        let mut g = gossiper(1);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        g.handle_timeout(at(0), || views(1, &[5]), &mut rng);
        let outputs: Vec<GossipOutput> = std::iter::from_fn(|| g.poll_output()).collect();
        let asked: Vec<&Outgoing> = outputs
            .iter()
            .filter_map(|o| match o {
                GossipOutput::Send(out) => Some(out),
                GossipOutput::Event(_) => None,
            })
            .collect();
        assert_eq!(asked.len(), 2, "fanout 2");
        assert_ne!(asked[0].to, asked[1].to);
        let request = decode_stream(&asked[0].payload, ClusterId(1));
        assert!(matches!(request, Ok(Message::Gossip(ref m)) if !m.digest.is_empty() && m.rows.is_empty()));
        let accused: Vec<(NodeId, Vec<NodeId>)> = outputs
            .iter()
            .filter_map(|o| match o {
                GossipOutput::Event(GossipEvent::Accused { peer, accusers }) => {
                    Some((*peer, accusers.clone()))
                }
                _ => None,
            })
            .collect();
        let first_event = outputs.iter().position(|o| matches!(o, GossipOutput::Event(_)));
        assert_eq!(first_event, Some(2), "the round's requests come before its nominations");
        // Every voter but itself is weighed each round; only node 5 is accused, by node 1.
        assert_eq!(accused.len(), 4);
        assert!(accused.contains(&(NodeId(5), vec![NodeId(1)])), "{accused:?}");
        assert!(g.view().is_some());
        assert_eq!(g.view_changes(), 1, "the first view is a change");
        // Not due again before the interval (less jitter).
        g.handle_timeout(at(200), || panic!("views are read only when a round runs"), &mut rng);
        assert!(g.poll_output().is_none());
        assert_eq!(g.counters().rounds, 1);
    }

    /// Node 1 (`a`) asks node 2 (`b`) at `ms` and takes in the rows it answers with.
    fn pull(a: &mut Gossiper, b: &mut Gossiper, ms: u64) {
        let ask =
            Gossip { from: NodeId(1), incarnation: Incarnation(1), digest: a.table().digest(), rows: vec![] };
        let reply = b.on_gossip(at(ms), NodeId(1), &ask, true);
        let Some(Ok(Message::Gossip(reply))) = reply.map(|r| decode_stream(&r, ClusterId(1))) else {
            panic!("no gossip reply")
        };
        a.on_gossip(at(ms), NodeId(2), &reply, false);
    }

    #[test]
    fn rows_exchanged_tell_a_peer_alive_elsewhere_from_one_down_everywhere() {
        let (mut a, mut b) = (gossiper(1), gossiper(2));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // Node 1 lost node 5 at 100 ms; node 2 still hears it.
        a.on_peer_state(NodeId(5), PeerState::Unreachable, at(100));
        b.handle_timeout(at(150), || views(2, &[]), &mut rng);
        pull(&mut a, &mut b, 200);
        a.handle_timeout(at(250), || views(1, &[5]), &mut rng);
        let events = events_of(&mut a);
        assert!(
            events.contains(&GossipEvent::AliveElsewhere {
                peer: NodeId(5),
                via: vec![NodeId(2)],
                at: at(250)
            }),
            "{events:?}"
        );
        // Node 2 loses it too, and says so: down everywhere.
        b.handle_timeout(at(400), || views(2, &[5]), &mut rng);
        pull(&mut a, &mut b, 450);
        a.handle_timeout(at(600), || views(1, &[5]), &mut rng);
        let changes = a.view_changes();
        a.handle_timeout(at(900), || views(1, &[5]), &mut rng);
        assert_eq!(a.view_changes(), changes, "a round that leaves the view as it was is no change");
        let events = events_of(&mut a);
        assert!(events.contains(&GossipEvent::DownEverywhere { peer: NodeId(5), at: at(600) }), "{events:?}");
        assert_eq!(a.down_since(NodeId(5)), Some(at(100)));
    }

    /// The requests `from` queued, split into those to `to` and how many went elsewhere.
    fn requests_to(from: &mut Gossiper, to: NodeId) -> (Vec<Gossip>, usize) {
        let mut mine = Vec::new();
        let mut elsewhere = 0;
        while let Some(output) = from.poll_output() {
            let GossipOutput::Send(out) = output else { continue };
            if out.to != to {
                elsewhere += 1;
                continue;
            }
            match decode_stream(&out.payload, ClusterId(1)) {
                Ok(Message::Gossip(g)) => mine.push(g),
                other => panic!("not gossip: {other:?}"),
            }
        }
        (mine, elsewhere)
    }

    /// Carries `a`'s requests to `b` and the replies back, and any pushes they cause, at
    /// `ms`. Returns the messages that went between the two.
    fn exchange(a: &mut Gossiper, b: &mut Gossiper, ms: u64) -> usize {
        let mut messages = 0;
        for _ in 0..4 {
            let (requests, _) = requests_to(a, b.me);
            if requests.is_empty() {
                break;
            }
            for request in requests {
                messages += 1;
                let Some(reply) = b.on_gossip(at(ms), a.me, &request, true) else { continue };
                let Ok(Message::Gossip(reply)) = decode_stream(&reply, ClusterId(1)) else {
                    panic!("bad reply")
                };
                messages += 1;
                a.on_gossip(at(ms), b.me, &reply, false);
            }
        }
        messages
    }

    #[test]
    fn an_idle_pair_exchanges_no_gossip_and_a_change_is_pulled_at_the_next_heartbeat() {
        let (mut a, mut b) = (gossiper(1), gossiper(2));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        a.handle_timeout(at(0), || views(1, &[]), &mut rng);
        b.handle_timeout(at(0), || views(2, &[]), &mut rng);
        // No digest came from anyone yet: the first rounds ask peers as before.
        assert!(requests_to(&mut a, NodeId(0)).1 == 2 && requests_to(&mut b, NodeId(0)).1 == 2);
        // First heartbeats carry digests; each side pulls the other's row once.
        let da = a.heartbeat_digest(at(10), NodeId(2));
        let db = b.heartbeat_digest(at(10), NodeId(1));
        assert!(!da.is_empty() && !db.is_empty());
        b.on_heartbeat_digest(at(11), NodeId(1), &da);
        assert!(exchange(&mut b, &mut a, 11) >= 2, "b pulls a's row and pushes its own");
        a.on_heartbeat_digest(at(12), NodeId(2), &db);
        assert_eq!(exchange(&mut a, &mut b, 12), 0, "the push already brought b's row");
        assert!(a.table().row(NodeId(2)).is_some() && b.table().row(NodeId(1)).is_some());

        // Ten idle seconds: heartbeats every 100 ms, rounds when due.
        let (mut between, mut elsewhere, mut digests) = (0, 0, 0);
        for step in 1..=100u64 {
            let ms = 100 * step;
            a.handle_timeout(at(ms), || views(1, &[]), &mut rng);
            b.handle_timeout(at(ms), || views(2, &[]), &mut rng);
            let da = a.heartbeat_digest(at(ms), NodeId(2));
            let db = b.heartbeat_digest(at(ms), NodeId(1));
            digests += usize::from(!da.is_empty()) + usize::from(!db.is_empty());
            b.on_heartbeat_digest(at(ms + 1), NodeId(1), &da);
            a.on_heartbeat_digest(at(ms + 1), NodeId(2), &db);
            let (to_b, a_elsewhere) = requests_to(&mut a, NodeId(2));
            let (to_a, b_elsewhere) = requests_to(&mut b, NodeId(1));
            between += to_b.len() + to_a.len();
            elsewhere += a_elsewhere + b_elsewhere;
        }
        assert_eq!(between, 0, "in sync and idle: no gossip between the two");
        assert!((18..=22).contains(&digests), "a digest a second each way, not more: {digests}");
        // Nodes 3 to 6 are heard but never send digests: rounds still ask them.
        assert!(elsewhere >= 60, "silent peers are asked in rounds: {elsewhere}");
        assert_eq!(a.counters().pulls + b.counters().pulls, 1);

        // b loses node 5: its next heartbeat carries the new digest and a pulls the change.
        b.handle_timeout(at(10_300), || views(2, &[5]), &mut rng);
        let db = b.heartbeat_digest(at(10_310), NodeId(1));
        assert!(!db.is_empty(), "a changed row goes out on the next heartbeat");
        a.on_heartbeat_digest(at(10_311), NodeId(2), &db);
        assert!(exchange(&mut a, &mut b, 10_311) >= 2);
        let seen = a.table().row(NodeId(2)).and_then(|r| r.entries.get(&NodeId(5))).map(|e| e.view);
        assert_eq!(seen, Some(View::Down));
        // A peer's digest that lags behind keeps this node's digest on every heartbeat.
        let stale =
            b.table().digest().into_iter().map(|v| RowVersion { version: 0, ..v }).collect::<Vec<_>>();
        b.on_heartbeat_digest(at(10_320), NodeId(1), &stale);
        assert!(!b.heartbeat_digest(at(10_330), NodeId(1)).is_empty());
        assert!(!b.heartbeat_digest(at(10_340), NodeId(1)).is_empty());
    }

    #[test]
    fn a_changed_definition_drops_what_concerned_former_members_and_weighs_new_voters() {
        let (mut a, mut b) = (gossiper(1), gossiper(2));
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        b.handle_timeout(at(0), || views(2, &[]), &mut rng);
        a.handle_timeout(at(0), || views(1, &[]), &mut rng);
        pull(&mut a, &mut b, 10);
        assert!(a.table().row(NodeId(2)).is_some());
        let before = a.table().generation();
        // Node 2 and the observer 6 leave; node 7 joins as a voter.
        let members = [1, 3, 4, 5, 7].map(|i| (NodeId(i), 1));
        let votes = VoteTable::new(members, TieBreaker::LowestId).unwrap_or_else(|e| panic!("{e}"));
        a.set_definition(&votes);
        assert!(a.table().generation() > before);
        assert_eq!(a.table().row(NodeId(2)), None, "a former voter's row is dropped");
        let own = a.table().own().entries.keys().copied().collect::<Vec<_>>();
        assert_eq!(own, [3, 4, 5].map(NodeId).to_vec(), "own row: members only (7 not heard yet)");
        assert!(a.table().digest().iter().all(|v| v.owner != NodeId(2)));
        // The next round weighs voters 3, 4, 5 and 7 for nominations, not 2.
        let _ = events_of(&mut a);
        let views7 = || [3, 4, 5, 7].map(|p| (NodeId(p), View::Heard, Some(Incarnation(p)))).to_vec();
        a.handle_timeout(at(300), views7, &mut rng);
        let mut weighed: Vec<NodeId> = events_of(&mut a)
            .into_iter()
            .filter_map(|e| match e {
                GossipEvent::Accused { peer, .. } => Some(peer),
                _ => None,
            })
            .collect();
        weighed.sort();
        assert_eq!(weighed, [3, 4, 5, 7].map(NodeId).to_vec());
        // Rows from the former member are refused.
        let theirs = b.table().deltas_for(&[], usize::MAX, 0);
        let from_two = theirs.iter().find(|d| d.owner == NodeId(2)).unwrap_or_else(|| panic!("no row of 2"));
        let gossip = Gossip {
            from: NodeId(2),
            incarnation: Incarnation(2),
            digest: vec![],
            rows: vec![from_two.clone()],
        };
        a.on_gossip(at(310), NodeId(2), &gossip, false);
        assert_eq!(a.table().row(NodeId(2)), None);
    }
}
