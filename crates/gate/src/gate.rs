//! [`Gate`]: the sans-IO state machine that turns acks into vote leases, leases into a
//! quorum deadline, and publishes it to the [`QuorumGate`] handles.
//!
//! ```text
//!   on_ack(now, peer, sent_at) ──► lease[peer] = max(lease, sent_at + lease)
//!   on_heard / on_peer_state  ──► peer table, PeerUp/Suspect/Down events
//!   handle_timeout(now)       ──► notices a deadline that passed: QuorumLost
//!            │
//!            ▼  evaluate(now): deadline = quorum_deadline(leases)
//!   publish (epoch, deadline) to the atomics; QuorumGained with a new epoch after any gap
//! ```
//!
//! Leases only grow (an ack for an older heartbeat, a duplicate or a reordered ack cannot
//! shorten one, and cannot extend one either beyond `a_s + lease` of what the peer heard).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use quorate_detector::{DetectorConfig, PartitionView, PeerState};
use quorate_heartbeat::{DefinitionDigest, Incarnation, Instant, NodeId};
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::config::{GateConfig, GateConfigError};
use crate::events::QuorumEvent;
use crate::handle::{QuorumGate, Shared};
use crate::quorum::VoteTable;
use crate::status::{Epoch, ForeignDefinition, PeerStatus, QuorumStatus, Why};

/// Events kept for `poll_event` before the oldest is dropped (and counted). The driver
/// polls after every call, so this only fills when a driver forgets to.
pub const EVENT_QUEUE_MAX: usize = 4096;

/// The sans-IO quorum gate of one node.
#[derive(Debug)]
pub struct Gate {
    config: GateConfig,
    me: NodeId,
    votes: VoteTable,
    peers: BTreeMap<NodeId, Peer>,
    epoch: Epoch,
    /// The last epoch this life may use: `incarnation x 2^20 + 2^20 - 1`. One more would be
    /// the base of the next incarnation, which a later life may use.
    last_epoch: Epoch,
    /// Whether the core believes the node is in a stretch of quorum (published deadline
    /// was in the future at the last evaluation).
    quorate: bool,
    /// The deadline last published.
    deadline: Instant,
    /// Voters not heard yet, while `wait_for_all` holds the first quorum back.
    waiting_for: BTreeSet<NodeId>,
    /// The latest partition view from gossip, for status snapshots.
    partition: Option<PartitionView>,
    /// Peers announced fenced and not heard from since.
    fenced: BTreeSet<NodeId>,
    /// Digest of this node's definition.
    definition: DefinitionDigest,
    /// Peers last heard running another definition, with that definition once known.
    foreign: BTreeMap<NodeId, (DefinitionDigest, Option<VoteTable>)>,
    shared: Arc<Shared>,
    events_tx: broadcast::Sender<QuorumEvent>,
    events: VecDeque<QuorumEvent>,
    events_dropped: u64,
    status_every: Duration,
    status_dirty: bool,
    status_published: Option<Instant>,
    stopped: bool,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    votes: u32,
    state: PeerState,
    last_heard: Option<Instant>,
    lease_until: Option<Instant>,
}

impl Gate {
    /// A gate for node `me`, fenced until it earns leases. Validates `config` against
    /// `detector` (the lease safety rule) and returns the gate with its first handle.
    ///
    /// `incarnation` seeds the epoch so epochs grow across restarts; `clock` must be the
    /// clock the core is driven with.
    pub fn new(
        config: GateConfig,
        detector: &DetectorConfig,
        votes: VoteTable,
        me: NodeId,
        incarnation: Incarnation,
        clock: Clock,
        now: Instant,
    ) -> Result<(Gate, QuorumGate), GateConfigError> {
        config.validate(detector)?;
        let peers: BTreeMap<NodeId, Peer> = votes
            .peers_of(me)
            .into_iter()
            .map(|id| {
                let votes = votes.votes(id);
                (id, Peer { votes, state: PeerState::Unknown, last_heard: None, lease_until: None })
            })
            .collect();
        let waiting_for = if config.wait_for_all {
            peers.iter().filter(|(_, p)| p.votes > 0).map(|(id, _)| *id).collect()
        } else {
            BTreeSet::new()
        };
        let (events_tx, _) = broadcast::channel(config.event_capacity.get());
        let epoch = Epoch::base(incarnation);
        let last_epoch = Epoch(epoch.0.saturating_add((1 << Epoch::GAIN_BITS) - 1));
        let own_votes = u64::from(votes.votes(me));
        let mut gate = Gate {
            config,
            me,
            votes,
            peers,
            epoch,
            last_epoch,
            quorate: false,
            deadline: Instant::ZERO,
            waiting_for,
            partition: None,
            fenced: BTreeSet::new(),
            definition: DefinitionDigest::default(),
            foreign: BTreeMap::new(),
            shared: Arc::new(Shared::new(clock, epoch, own_votes, placeholder_status(me), &events_tx)),
            events_tx,
            events: VecDeque::new(),
            events_dropped: 0,
            status_every: detector.heartbeat_interval,
            status_dirty: true,
            status_published: None,
            stopped: false,
        };
        gate.evaluate(now);
        gate.flush_status(now);
        let handle = gate.handle();
        Ok((gate, handle))
    }

    /// Another handle on this gate.
    pub fn handle(&self) -> QuorumGate {
        QuorumGate::new(self.shared.clone())
    }

    /// Peer `peer` acked the heartbeat this node sent at `sent_at`: hold its vote until
    /// `sent_at + lease`.
    pub fn on_ack(&mut self, now: Instant, peer: NodeId, sent_at: Instant) {
        let lease = self.config.lease;
        let Some(p) = self.peers.get_mut(&peer) else { return };
        let until = sent_at + lease;
        if p.lease_until.is_none_or(|old| until > old) {
            p.lease_until = Some(until);
            self.evaluate(now);
        }
    }

    /// Names this node's own definition digest (for status and mismatch events).
    pub fn set_definition(&mut self, digest: DefinitionDigest) {
        self.definition = digest;
        self.status_dirty = true;
    }

    /// `peer` was heard at `now` running the definition `theirs`: `None` when it is this
    /// node's own, else its digest and, once the peer sent it, its vote table. While any
    /// peer runs another definition, the node is writable only when the votes it holds
    /// are a quorum under that definition too (an unknown one counts as "not a quorum").
    pub fn on_peer_definition(
        &mut self,
        now: Instant,
        peer: NodeId,
        theirs: Option<(DefinitionDigest, Option<VoteTable>)>,
    ) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        let before = self.foreign.get(&peer).map(|(d, t)| (*d, t.is_some()));
        let after = theirs.as_ref().map(|(d, t)| (*d, t.is_some()));
        if before == after {
            return;
        }
        match theirs {
            Some((digest, table)) => {
                if before.map(|(d, _)| d) != Some(digest) {
                    let ours = self.definition;
                    self.emit(QuorumEvent::ConfigMismatch { peer, ours, theirs: digest, at: now });
                }
                self.foreign.insert(peer, (digest, table));
            }
            None => {
                self.foreign.remove(&peer);
                self.emit(QuorumEvent::ConfigMatched { peer, at: now });
            }
        }
        self.status_dirty = true;
        self.evaluate(now);
    }

    /// The vote table `peer` runs when it is not this node's, if known.
    pub fn foreign_definition(&self, peer: NodeId) -> Option<(DefinitionDigest, Option<&VoteTable>)> {
        self.foreign.get(&peer).map(|(d, t)| (*d, t.as_ref()))
    }

    /// A fresh heartbeat from `peer` arrived at `now`.
    pub fn on_heard(&mut self, now: Instant, peer: NodeId) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        p.last_heard = Some(now);
        if self.fenced.remove(&peer) {
            self.status_dirty = true;
        }
        if self.waiting_for.remove(&peer) {
            self.status_dirty = true;
            self.evaluate(now);
        }
    }

    /// The detector moved `peer` to `state` at `now`: record it and emit the peer event.
    pub fn on_peer_state(&mut self, now: Instant, peer: NodeId, state: PeerState) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        if p.state == state {
            return;
        }
        p.state = state;
        self.status_dirty = true;
        let event = match state {
            PeerState::Reachable => QuorumEvent::PeerUp { peer, at: now },
            PeerState::Suspect => QuorumEvent::PeerSuspect { peer, at: now },
            PeerState::Unreachable => QuorumEvent::PeerDown { peer, at: now },
            PeerState::Left => QuorumEvent::PeerLeft { peer, at: now },
            PeerState::Unknown => return,
        };
        self.emit(event);
    }

    /// Re-evaluates at `now`: notices a lease deadline that has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.evaluate(now);
    }

    /// When the gate next needs `handle_timeout`: the deadline of the current quorum.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.quorate && self.deadline != Instant::MAX).then_some(self.deadline)
    }

    /// The next event for the driver. Every event is also sent to subscribers.
    pub fn poll_event(&mut self) -> Option<QuorumEvent> {
        self.events.pop_front()
    }

    /// Fences the node for good (graceful shutdown): handles answer `Stopped` from now on.
    pub fn shutdown(&mut self, now: Instant) {
        self.stopped = true;
        self.shared.stop();
        if self.quorate {
            self.quorate = false;
            self.emit(QuorumEvent::QuorumLost { epoch: self.epoch, at: now, why: Why::Stopped });
        }
        self.deadline = Instant::ZERO;
        self.status_dirty = true;
        self.flush_status(now);
    }

    /// Publishes the status snapshot if something material changed, or if a heartbeat
    /// interval has passed since the last one (lease expiries move on every ack; publishing
    /// each of them would cost more than it tells).
    pub fn flush_status(&mut self, now: Instant) {
        let due = self.status_published.is_none_or(|at| now >= at + self.status_every);
        if self.status_dirty || due {
            self.shared.publish_status(self.status(now));
            self.status_dirty = false;
            self.status_published = Some(now);
        }
    }

    /// Whether the gate is writable at `now` by its own published deadline (what the
    /// handles answer at that clock reading).
    pub fn is_writable(&self, now: Instant) -> bool {
        now < self.deadline
    }

    /// The current epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The deadline last published.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Until when this node holds `peer`'s vote, if it ever did.
    pub fn lease_until(&self, peer: NodeId) -> Option<Instant> {
        self.peers.get(&peer).and_then(|p| p.lease_until)
    }

    /// The vote table.
    pub fn votes(&self) -> &VoteTable {
        &self.votes
    }

    /// Events dropped because the driver did not poll them (they still went to
    /// subscribers).
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// A full snapshot at `now`.
    pub fn status(&self, now: Instant) -> QuorumStatus {
        let held_votes = u64::from(self.votes.votes(self.me))
            + self
                .peers
                .values()
                .filter(|p| p.lease_until.is_some_and(|u| u > now))
                .map(|p| u64::from(p.votes))
                .sum::<u64>();
        QuorumStatus {
            node: self.me,
            as_of: now,
            writable: self.is_writable(now),
            epoch: self.epoch,
            deadline: self.deadline,
            held_votes,
            needed_votes: self.votes.majority(),
            total_votes: self.votes.total(),
            tie_breaker: self.votes.tie_breaker(),
            peers: self
                .peers
                .iter()
                .map(|(id, p)| PeerStatus {
                    id: *id,
                    votes: p.votes,
                    state: p.state,
                    last_heard: p.last_heard,
                    lease_until: p.lease_until,
                })
                .collect(),
            waiting_for: self.waiting_for.iter().copied().collect(),
            partition: self.partition.clone(),
            fenced: self.fenced.iter().copied().collect(),
            epochs_exhausted: self.epoch >= self.last_epoch,
            definition: self.definition,
            mismatched: self
                .foreign
                .iter()
                .map(|(peer, (digest, table))| ForeignDefinition {
                    peer: *peer,
                    digest: *digest,
                    members: table.as_ref().map(VoteTable::parts),
                })
                .collect(),
        }
    }

    fn evaluate(&mut self, now: Instant) {
        if self.stopped {
            // Shut down for good: no ack, however fresh, makes this life writable again.
            return;
        }
        // The handles compare the deadline with the clock as they read it, which may be
        // later than the `now` the driver read before it got here: judge whether the
        // current stretch of quorum is over by the later of the two, so an epoch never
        // resumes after a handle already answered "no" for it.
        let now = now.max(self.shared.clock.now());
        // A new stretch needs a new epoch; a life that used all 2^20 of its own stays fenced
        // (reason: `EpochsExhausted`) rather than borrow the next incarnation's.
        let exhausted = !self.quorate && self.epoch >= self.last_epoch;
        let deadline = if exhausted {
            Instant::ZERO
        } else if self.waiting_for.is_empty() {
            // Evaluated on every ack: the leases are read in place, not collected.
            let leases = || self.peers.iter().filter_map(|(id, p)| p.lease_until.map(|u| (*id, u)));
            let own = self.votes.quorum_deadline(now, self.me, leases());
            // Under every other definition in use, the same votes must be a quorum too; a
            // definition not yet received is never satisfied.
            self.foreign.values().fold(own, |deadline, (_, table)| match table {
                Some(table) => deadline.min(table.quorum_deadline(now, self.me, leases())),
                None => Instant::ZERO,
            })
        } else {
            Instant::ZERO
        };
        // A published deadline at or before `now` means the handles already answered "no"
        // for a while: that stretch of quorum is over, whatever the new leases say.
        if self.quorate && self.deadline <= now {
            self.quorate = false;
            let why = self.status(now).fence_reason();
            self.emit(QuorumEvent::QuorumLost { epoch: self.epoch, at: self.deadline, why });
        }
        if deadline > now {
            if !self.quorate {
                self.quorate = true;
                self.epoch = self.epoch.next();
                self.deadline = deadline;
                self.shared.publish(self.epoch, deadline);
                self.status_dirty = true;
                let held_votes = self.status(now).held_votes;
                self.emit(QuorumEvent::QuorumGained {
                    epoch: self.epoch,
                    at: now,
                    held_votes,
                    needed_votes: self.votes.majority(),
                });
            } else if deadline != self.deadline {
                self.deadline = deadline;
                self.shared.publish(self.epoch, deadline);
            }
        } else if self.quorate {
            // Leases were withdrawn before their end (not reachable through acks, which
            // only extend them; kept so that a future revocation path stays safe).
            self.quorate = false;
            self.deadline = Instant::ZERO;
            self.shared.fence();
            self.status_dirty = true;
            let why = self.status(now).fence_reason();
            self.emit(QuorumEvent::QuorumLost { epoch: self.epoch, at: now, why });
        } else if self.deadline != Instant::ZERO {
            self.deadline = Instant::ZERO;
            self.shared.fence();
            self.status_dirty = true;
        }
    }

    /// Records the partition view gossip computed, for status snapshots.
    pub fn set_partition(&mut self, view: Option<PartitionView>) {
        if self.partition != view {
            self.partition = view;
            self.status_dirty = true;
        }
    }

    /// Emits an event that the layers above the gate decided (gossip liveness, fence
    /// checks). A [`QuorumEvent::PeerFenced`] also marks the peer fenced in the status
    /// until [`Gate::on_heard`] hears it again.
    pub fn announce(&mut self, event: QuorumEvent) {
        if let QuorumEvent::PeerFenced { peer, .. } = &event {
            self.fenced.insert(*peer);
        }
        self.emit(event);
    }

    fn emit(&mut self, event: QuorumEvent) {
        // No subscribers is not an error: the event is still queued for the driver.
        let _ = self.events_tx.send(event.clone());
        if self.events.len() >= EVENT_QUEUE_MAX {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
        self.status_dirty = true;
    }
}

fn placeholder_status(me: NodeId) -> QuorumStatus {
    QuorumStatus {
        node: me,
        as_of: Instant::ZERO,
        writable: false,
        epoch: Epoch(0),
        deadline: Instant::ZERO,
        held_votes: 0,
        needed_votes: 0,
        total_votes: 0,
        tie_breaker: None,
        peers: Vec::new(),
        waiting_for: Vec::new(),
        partition: None,
        fenced: Vec::new(),
        epochs_exhausted: false,
        definition: DefinitionDigest::default(),
        mismatched: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::quorum::TieBreaker;
    use crate::status::Why;

    const MS: u64 = 1_000_000;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * MS)
    }

    struct Fixture {
        gate: Gate,
        handle: QuorumGate,
        hand: ManualClock,
    }

    fn five_nodes(config: GateConfig) -> Fixture {
        let votes = VoteTable::new((1..=5).map(|i| (NodeId(i), 1)), TieBreaker::LowestId);
        let votes = votes.unwrap_or_else(|e| panic!("{e}"));
        let (clock, hand) = Clock::manual(at(0));
        let made =
            Gate::new(config, &DetectorConfig::default(), votes, NodeId(1), Incarnation(7), clock, at(0));
        let (gate, handle) = made.unwrap_or_else(|e| panic!("{e}"));
        Fixture { gate, handle, hand }
    }

    impl Fixture {
        fn tick(&mut self, ms: u64) {
            self.hand.set(at(ms));
            self.gate.handle_timeout(at(ms));
        }
        fn ack(&mut self, now_ms: u64, peer: u64, sent_ms: u64) {
            self.hand.set(at(now_ms));
            self.gate.on_ack(at(now_ms), NodeId(peer), at(sent_ms));
        }
        fn drain(&mut self) -> Vec<QuorumEvent> {
            std::iter::from_fn(|| self.gate.poll_event()).collect()
        }
    }

    #[test]
    fn starts_fenced_and_gains_quorum_with_a_majority_of_acks() {
        let mut f = five_nodes(GateConfig::default());
        assert!(!f.handle.can_write());
        assert!(matches!(f.handle.permit(), Err(e) if matches!(e.why, Why::MissingVotes { held: 1, .. })));
        f.ack(10, 2, 0);
        assert!(!f.handle.can_write());
        f.ack(12, 3, 0);
        assert!(f.handle.can_write());
        let events = f.drain();
        assert!(matches!(
            events.as_slice(),
            [QuorumEvent::QuorumGained { held_votes: 3, needed_votes: 3, .. }]
        ));
        let permit = f.handle.permit().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(permit.valid_until(), at(900));
        assert_eq!(permit.epoch(), Epoch(Epoch::base(Incarnation(7)).0 + 1));
    }

    #[test]
    fn fences_by_the_clock_even_if_the_core_never_runs_again() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 2, 0);
        f.ack(10, 3, 5);
        f.hand.set(at(899));
        assert!(f.handle.can_write());
        // Nobody calls the gate: the process is "paused". The handle still fences on time.
        f.hand.set(at(900));
        assert!(!f.handle.can_write());
        assert!(f.handle.permit().is_err());
    }

    #[test]
    fn lost_quorum_is_reported_at_the_deadline_and_regain_bumps_the_epoch() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 2, 0);
        f.ack(10, 3, 0);
        let first = f.handle.permit().unwrap_or_else(|e| panic!("{e}"));
        f.drain();
        f.tick(1_500);
        let events = f.drain();
        assert!(
            matches!(events.as_slice(), [QuorumEvent::QuorumLost { at: lost, .. }] if *lost == at(900)),
            "{events:?}"
        );
        f.ack(1_510, 2, 1_400);
        f.ack(1_510, 4, 1_400);
        assert!(f.handle.can_write());
        assert_eq!(f.handle.epoch(), first.epoch().next());
        let err = first.check().err().map(|e| e.why);
        assert_eq!(err, Some(Why::EpochChanged { permit: first.epoch(), current: first.epoch().next() }));
    }

    #[test]
    fn a_gap_unseen_by_the_core_still_starts_a_new_epoch() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 2, 0);
        f.ack(10, 3, 0);
        let e1 = f.handle.epoch();
        f.drain();
        // The core stalls past the deadline (900) and its first act is a fresh ack.
        f.ack(2_000, 2, 1_900);
        f.ack(2_000, 3, 1_900);
        assert!(f.handle.can_write());
        assert_eq!(f.handle.epoch(), e1.next());
        let events = f.drain();
        assert!(matches!(
            events.as_slice(),
            [QuorumEvent::QuorumLost { .. }, QuorumEvent::QuorumGained { .. }]
        ));
    }

    #[test]
    fn a_stretch_that_ended_by_the_clock_never_resumes_its_epoch() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 2, 0);
        f.ack(10, 3, 0);
        let e1 = f.handle.epoch();
        // The handles read 950: past the 900 deadline, they already answer "no".
        f.hand.set(at(950));
        assert!(!f.handle.can_write());
        // The driver read its `now` (850) before it got the core: a fresh ack must not
        // stretch the old epoch over the gap the handles saw.
        f.gate.on_ack(at(850), NodeId(2), at(800));
        f.gate.on_ack(at(850), NodeId(3), at(800));
        assert!(f.handle.can_write());
        assert_eq!(f.handle.epoch(), e1.next());
    }

    #[test]
    fn the_core_side_accessors_and_timer_follow_the_published_deadline() {
        let mut f = five_nodes(GateConfig::default());
        assert_eq!(f.gate.poll_timeout(), None);
        f.ack(10, 2, 0);
        f.ack(10, 3, 0);
        assert_eq!(f.gate.deadline(), at(900));
        assert_eq!(f.gate.epoch(), f.handle.epoch());
        assert_eq!(f.gate.poll_timeout(), Some(at(900)));
        assert!(f.gate.is_writable(at(899)));
        assert!(!f.gate.is_writable(at(900)) && !f.gate.is_writable(at(901)));
        f.tick(1_000);
        assert_eq!(f.gate.poll_timeout(), None);
        assert_eq!(f.gate.deadline(), Instant::ZERO, "a lost stretch leaves no stale deadline");
        assert!(!f.gate.is_writable(at(500)));
    }

    #[test]
    fn a_lease_that_ends_now_is_not_counted_as_held() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 2, 0);
        assert_eq!(f.gate.status(at(899)).held_votes, 2);
        assert_eq!(f.gate.status(at(900)).held_votes, 1);
    }

    #[test]
    fn the_status_snapshot_carries_definition_partition_and_fenced_peers() {
        let mut f = five_nodes(GateConfig::default());
        let ours = quorate_heartbeat::DefinitionDigest([3; 8]);
        f.gate.set_definition(ours);
        let view = PartitionView {
            components: vec![vec![NodeId(1), NodeId(2)]],
            one_way: vec![],
            unseen: vec![NodeId(3)],
            left: vec![],
        };
        f.gate.set_partition(Some(view.clone()));
        f.gate.announce(QuorumEvent::PeerFenced {
            peer: NodeId(3),
            confirmed_by: vec![NodeId(1)],
            at: at(5),
        });
        let theirs = quorate_heartbeat::DefinitionDigest([4; 8]);
        let three = VoteTable::new((1..=3).map(|i| (NodeId(i), 1)), TieBreaker::LowestId);
        let three = three.unwrap_or_else(|e| panic!("{e}"));
        f.gate.on_peer_definition(at(6), NodeId(5), Some((theirs, Some(three.clone()))));
        assert_eq!(f.gate.foreign_definition(NodeId(5)), Some((theirs, Some(&three))));
        assert_eq!(f.gate.foreign_definition(NodeId(4)), None);
        f.gate.flush_status(at(6));
        let status = f.handle.status();
        assert_eq!(status.definition, ours);
        assert_eq!(status.partition, Some(view));
        assert_eq!(status.fenced, vec![NodeId(3)]);
        assert_eq!(status.mismatched.len(), 1);
        // Hearing the fenced peer again clears it.
        f.gate.on_heard(at(7), NodeId(3));
        f.gate.flush_status(at(7));
        assert!(f.handle.status().fenced.is_empty());
    }

    #[test]
    fn lease_changes_reach_the_snapshot_within_one_interval_without_a_material_change() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 2, 0);
        f.ack(10, 3, 0);
        f.gate.flush_status(at(10));
        // Node 4's ack is not material (already quorate): not published at once...
        f.ack(50, 4, 40);
        f.gate.flush_status(at(60));
        let lease4 = |f: &Fixture| {
            f.handle.watch().borrow().peers.iter().find(|p| p.id == NodeId(4)).and_then(|p| p.lease_until)
        };
        assert_eq!(lease4(&f), None);
        // ...but within one heartbeat interval (100 ms) of the last publication.
        f.gate.flush_status(at(110));
        assert_eq!(lease4(&f), Some(at(940)));
    }

    #[test]
    fn events_the_driver_never_polls_are_dropped_oldest_first_and_counted() {
        let mut f = five_nodes(GateConfig::default());
        let n = EVENT_QUEUE_MAX as u64 + 10;
        for i in 0..n {
            let state = if i % 2 == 0 { PeerState::Suspect } else { PeerState::Reachable };
            f.gate.on_peer_state(at(i), NodeId(2), state);
        }
        assert_eq!(f.gate.events_dropped(), 10);
        assert_eq!(f.drain().len(), EVENT_QUEUE_MAX);
    }

    #[test]
    fn a_life_that_used_every_epoch_stays_fenced_instead_of_borrowing_the_next_lifes() {
        let mut f = five_nodes(GateConfig::default());
        // Pretend this life already gained quorum 2^20 - 1 times.
        f.gate.epoch = Epoch(f.gate.last_epoch.0 - 1);
        f.ack(10, 2, 0);
        f.ack(10, 3, 0);
        assert!(f.handle.can_write());
        assert_eq!(f.handle.epoch(), f.gate.last_epoch);
        assert!(f.handle.epoch() < Epoch::base(Incarnation(8)));
        f.tick(1_000);
        f.ack(1_010, 2, 1_000);
        f.ack(1_010, 3, 1_000);
        f.gate.flush_status(at(1_010));
        assert!(!f.handle.can_write());
        assert_eq!(f.handle.permit().err().map(|e| e.why), Some(Why::EpochsExhausted));
    }

    #[test]
    fn a_peer_on_another_definition_must_agree_the_votes_are_a_quorum() {
        let mut f = five_nodes(GateConfig::default());
        f.gate.set_definition(quorate_heartbeat::DefinitionDigest([1; 8]));
        f.ack(10, 2, 0);
        f.ack(10, 3, 0);
        assert!(f.handle.can_write());
        let e1 = f.handle.epoch();
        f.drain();
        // Node 4 runs seven members: {1,2,3} is 3 of 7 there, not a quorum.
        let seven = VoteTable::new((1..=7).map(|i| (NodeId(i), 1)), TieBreaker::LowestId);
        let seven = seven.unwrap_or_else(|e| panic!("{e}"));
        let theirs = quorate_heartbeat::DefinitionDigest([7; 8]);
        // Until the definition itself arrives, the node is not writable.
        f.gate.on_peer_definition(at(20), NodeId(4), Some((theirs, None)));
        f.hand.set(at(20));
        assert!(!f.handle.can_write());
        f.gate.on_peer_definition(at(21), NodeId(4), Some((theirs, Some(seven.clone()))));
        f.gate.flush_status(at(21));
        assert!(!f.handle.can_write());
        let why = f.handle.permit().err().map(|e| e.why);
        assert!(
            matches!(why, Some(Why::DefinitionMismatch { ref theirs, .. }) if theirs.len() == 1),
            "{why:?}"
        );
        let text = why.map(|w| w.to_string()).unwrap_or_default();
        assert!(text.contains("node 4 runs definition 0707070707070707 (members 1:1,2:1"), "{text}");
        let events = f.drain();
        assert!(
            matches!(
                events.as_slice(),
                [QuorumEvent::ConfigMismatch { peer: NodeId(4), .. }, QuorumEvent::QuorumLost { .. }]
            ),
            "{events:?}"
        );
        // With two more votes the held set {1,2,3,5} is 4 of 7... still not; all five is 5 of 7.
        f.ack(30, 4, 25);
        f.ack(30, 5, 25);
        assert!(f.handle.can_write());
        // Node 4 comes back on this node's definition: the extra condition goes away.
        f.gate.on_peer_definition(at(40), NodeId(4), None);
        assert!(matches!(
            f.drain().as_slice(),
            [QuorumEvent::QuorumGained { .. }, QuorumEvent::ConfigMatched { .. }]
        ));
        assert!(f.handle.epoch() > e1);
    }

    #[test]
    fn renewed_leases_keep_permit_valid_past_its_first_deadline() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 2, 0);
        f.ack(10, 3, 0);
        let permit = f.handle.permit().unwrap_or_else(|e| panic!("{e}"));
        f.ack(800, 2, 700);
        f.ack(800, 3, 700);
        f.hand.set(at(1_000));
        assert_eq!(permit.check(), Ok(()));
        assert!(f.gate.poll_timeout() == Some(at(1_600)));
    }

    #[test]
    fn old_and_duplicate_acks_never_shorten_a_lease() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 2, 500);
        f.ack(11, 2, 100);
        f.ack(12, 2, 500);
        assert_eq!(f.gate.lease_until(NodeId(2)), Some(at(1_400)));
    }

    #[test]
    fn acks_from_non_members_are_ignored() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 9, 0);
        f.ack(10, 1, 0); // itself
        f.ack(10, 2, 0);
        assert!(!f.handle.can_write());
    }

    #[test]
    fn wait_for_all_holds_first_quorum_until_every_voter_was_heard() {
        let mut f = five_nodes(GateConfig { wait_for_all: true, ..GateConfig::default() });
        for peer in [2, 3, 4] {
            f.gate.on_heard(at(5), NodeId(peer));
            f.ack(10, peer, 0);
        }
        f.gate.flush_status(at(10));
        assert!(!f.handle.can_write());
        let why = f.handle.permit().err().map(|e| e.why);
        assert_eq!(why, Some(Why::WaitingForAll { unseen: vec![NodeId(5)] }));
        f.gate.on_heard(at(20), NodeId(5));
        assert!(f.handle.can_write());
    }

    #[test]
    fn peer_state_changes_become_events_and_status() {
        let mut f = five_nodes(GateConfig::default());
        let mut sub = f.handle.subscribe();
        f.gate.on_peer_state(at(1), NodeId(3), PeerState::Reachable);
        f.gate.on_peer_state(at(2), NodeId(3), PeerState::Reachable);
        f.gate.on_peer_state(at(3), NodeId(3), PeerState::Unreachable);
        f.gate.flush_status(at(3));
        let got: Vec<_> = std::iter::from_fn(|| sub.try_recv().ok().flatten()).collect();
        assert_eq!(
            got,
            vec![
                QuorumEvent::PeerUp { peer: NodeId(3), at: at(1) },
                QuorumEvent::PeerDown { peer: NodeId(3), at: at(3) }
            ]
        );
        let status = f.handle.status();
        let p3 = status.peers.iter().find(|p| p.id == NodeId(3)).map(|p| p.state);
        assert_eq!(p3, Some(PeerState::Unreachable));
        assert_eq!(f.handle.watch().borrow().peers.len(), 4);
    }

    #[test]
    fn slow_subscriber_sees_lagged_and_the_gate_does_not_block() {
        let config = GateConfig {
            event_capacity: core::num::NonZeroUsize::new(2).unwrap_or(core::num::NonZeroUsize::MIN),
            ..GateConfig::default()
        };
        let mut f = five_nodes(config);
        let mut sub = f.handle.subscribe();
        for i in 0..10 {
            let state = if i % 2 == 0 { PeerState::Suspect } else { PeerState::Reachable };
            f.gate.on_peer_state(at(i), NodeId(2), state);
        }
        assert!(matches!(sub.try_recv(), Err(crate::events::RecvError::Lagged { missed: 8 })));
        assert!(matches!(sub.try_recv(), Ok(Some(_))));
    }

    #[test]
    fn shutdown_fences_and_says_stopped() {
        let mut f = five_nodes(GateConfig::default());
        f.ack(10, 2, 0);
        f.ack(10, 3, 0);
        let permit = f.handle.permit().unwrap_or_else(|e| panic!("{e}"));
        f.gate.shutdown(at(20));
        assert!(!f.handle.can_write());
        assert_eq!(permit.check().err().map(|e| e.why), Some(Why::Stopped));
        assert!(matches!(f.drain().last(), Some(QuorumEvent::QuorumLost { why: Why::Stopped, .. })));
        // Fresh acks after shutdown must not make this life writable again.
        f.ack(30, 2, 25);
        f.ack(30, 3, 25);
        f.tick(40);
        assert!(!f.handle.can_write());
        assert!(f.drain().is_empty());
    }

    #[test]
    fn stream_reports_closed_once_the_gate_is_gone() {
        let f = five_nodes(GateConfig::default());
        let handle = f.handle.clone();
        drop(f);
        let mut sub = handle.subscribe();
        assert_eq!(sub.try_recv(), Err(crate::events::RecvError::Closed));
    }
}
