//! [`Gate`]: the sans-IO lease table. Acks become vote leases, leases become a quorum
//! deadline, and the deadline and its fencing epoch are published to the [`QuorumGate`]
//! handles.
//!
//! ```text
//!   on_ack(now, peer, sent_at) ──► lease[peer] = max(lease, sent_at + lease(sent_at))
//!   set_lease(now, lease)      ──► heartbeats sent from now on give the new lease
//!   on_heard(now, peer)        ──► wait_for_all: voters heard so far
//!   set_other_definitions      ──► the votes must be a quorum under each of them too
//!   handle_timeout(now)        ──► notices a deadline that passed
//!            │
//!            ▼  evaluate(now): deadline = quorum_deadline(leases)
//!   publish (epoch, deadline) to the atomics; poll_event(): Gained with a new epoch after
//!   any gap, Lost when a stretch ends
//! ```
//!
//! Leases only grow (an ack for an older heartbeat, a duplicate or a reordered ack cannot
//! shorten one, and cannot extend one either beyond `a_s + lease` of what the peer heard).
//! Everything else a node says about itself (peer states, the partition view, events for
//! subscribers) is the core's: it builds the one [`crate::QuorumStatus`] and hands it and
//! the events to the [`Publisher`] the driver holds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use quorate_proto::{Incarnation, Instant, NodeId, Valid, VoteTable};

use crate::clock::Clock;
use crate::config::GateConfig;
use crate::handle::{Published, Publisher, QuorumGate};
use crate::status::Epoch;

mod schedule;
use schedule::LeaseSchedule;

/// Events kept for `poll_event` before the oldest is dropped (and counted). The driver
/// polls after every call, so this only fills when a driver forgets to.
pub const EVENT_QUEUE_MAX: usize = 4096;

/// What the lease table decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateEvent {
    /// A stretch of quorum began under the new `epoch`.
    Gained {
        /// Its fencing epoch.
        epoch: Epoch,
        /// When.
        at: Instant,
        /// Votes held then, own included.
        held_votes: u64,
    },
    /// The stretch under `epoch` ended at `at` (its deadline passed, or the node stopped).
    Lost {
        /// Its fencing epoch.
        epoch: Epoch,
        /// When the handles started to answer "no".
        at: Instant,
        /// Whether it ended because the node shut down.
        stopped: bool,
    },
}

/// The lease table of one node.
#[derive(Debug)]
pub struct Gate {
    /// The lease each acked heartbeat gives, by when it was sent (see `schedule.rs`).
    leases_by_send: LeaseSchedule,
    me: NodeId,
    votes: VoteTable,
    leases: BTreeMap<NodeId, Lease>,
    epoch: Epoch,
    /// The last epoch this life may use: `incarnation x 2^20 + 2^20 - 1`. One more would be
    /// the base of the next incarnation, which a later life may use.
    last_epoch: Epoch,
    /// Whether the node is in a stretch of quorum (published deadline was in the future
    /// at the last evaluation).
    quorate: bool,
    /// The deadline last published.
    deadline: Instant,
    /// Voters not heard yet, while `wait_for_all` holds the first quorum back.
    waiting_for: BTreeSet<NodeId>,
    /// The other definitions peers run; `None` for one not received yet. The votes held
    /// must be a quorum under each of them as well as under `votes`.
    others: Vec<Option<VoteTable>>,
    shared: Arc<Published>,
    publisher: Publisher,
    events: VecDeque<GateEvent>,
    events_dropped: u64,
    stopped: bool,
}

/// One peer's row of the lease table.
#[derive(Debug, Clone, Copy)]
struct Lease {
    votes: u32,
    until: Option<Instant>,
}

impl Gate {
    /// A gate for node `me`, fenced until it earns leases, with its first handle. `config`
    /// passed its rules ([`GateConfig::check`], the lease safety rule among them).
    ///
    /// `incarnation` seeds the epoch so epochs grow across restarts; `clock` must be the
    /// clock the core is driven with.
    pub fn new(
        config: Valid<GateConfig>,
        votes: VoteTable,
        me: NodeId,
        incarnation: Incarnation,
        clock: Clock,
        now: Instant,
    ) -> (Gate, QuorumGate) {
        let leases: BTreeMap<NodeId, Lease> = votes
            .peers_of(me)
            .into_iter()
            .map(|id| (id, Lease { votes: votes.votes(id), until: None }))
            .collect();
        let waiting_for = if config.wait_for_all {
            leases.iter().filter(|(_, l)| l.votes > 0).map(|(id, _)| *id).collect()
        } else {
            BTreeSet::new()
        };
        let epoch = Epoch::base(incarnation);
        let last_epoch = Epoch(epoch.0.saturating_add((1 << Epoch::GAIN_BITS) - 1));
        let own_votes = u64::from(votes.votes(me));
        let (shared, publisher) = Published::new(clock, epoch, own_votes, me, config.event_capacity);
        let mut gate = Gate {
            leases_by_send: LeaseSchedule::new(config.lease),
            me,
            votes,
            leases,
            epoch,
            last_epoch,
            quorate: false,
            deadline: Instant::ZERO,
            waiting_for,
            others: Vec::new(),
            shared,
            publisher,
            events: VecDeque::new(),
            events_dropped: 0,
            stopped: false,
        };
        gate.evaluate(now);
        let handle = gate.handle();
        (gate, handle)
    }

    /// Another handle on this gate.
    pub fn handle(&self) -> QuorumGate {
        QuorumGate::new(self.shared.clone())
    }

    /// The writer of this gate's status and events, for the driver.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// Peer `peer` acked the heartbeat this node sent at `sent_at`: hold its vote until
    /// `sent_at + lease`, with the lease in force when that heartbeat was sent (see
    /// [`Gate::set_lease`]).
    pub fn on_ack(&mut self, now: Instant, peer: NodeId, sent_at: Instant) {
        let lease = self.leases_by_send.lease_for(sent_at);
        let Some(l) = self.leases.get_mut(&peer) else { return };
        let until = sent_at + lease;
        if l.until.is_none_or(|old| until > old) {
            l.until = Some(until);
            self.evaluate(now);
        }
    }

    /// Heartbeats sent from `now` on carry `lease` in their terms (the node's timing
    /// changed while it runs; the caller checked `lease` against the detector's floor, as
    /// [`GateConfig::check`] does). Leases held keep their end. An ack gives the lease in
    /// force when the heartbeat it acks was sent: a longer lease only once the peer has seen
    /// the terms that carry it, a shorter one at once; a heartbeat sent at `now` itself
    /// gives the shorter of the two.
    pub fn set_lease(&mut self, now: Instant, lease: Duration) {
        self.leases_by_send.switch(now, lease);
    }

    /// The lease heartbeats sent now carry.
    pub fn lease(&self) -> Duration {
        self.leases_by_send.current()
    }

    /// A fresh heartbeat from `peer` arrived at `now` (what `wait_for_all` waits for).
    pub fn on_heard(&mut self, now: Instant, peer: NodeId) {
        if self.waiting_for.remove(&peer) {
            self.evaluate(now);
        }
    }

    /// The other definitions peers run (`None`: not received yet). While any is set, the
    /// node is writable only when the votes it holds are a quorum under each of them too
    /// (an unknown one is never satisfied).
    pub fn set_other_definitions(&mut self, now: Instant, others: Vec<Option<VoteTable>>) {
        if self.others != others {
            self.others = others;
            self.evaluate(now);
        }
    }

    /// The node's own definition changed (online membership change) to `votes`: from `now`
    /// quorums are counted under it. A peer that stays a member keeps the lease it holds
    /// (an ack is a vote lent whatever the definition, now weighed with the peer's new
    /// votes); a new member holds none until it acks; a removed member's lease is dropped.
    /// The definitions other peers still run stay in force through
    /// [`Gate::set_other_definitions`], which the caller keeps current.
    pub fn set_votes(&mut self, now: Instant, votes: VoteTable) {
        let mut leases = BTreeMap::new();
        for id in votes.peers_of(self.me) {
            let until = self.leases.get(&id).and_then(|l| l.until);
            leases.insert(id, Lease { votes: votes.votes(id), until });
        }
        self.waiting_for.retain(|id| leases.contains_key(id));
        self.leases = leases;
        self.shared.set_own_votes(u64::from(votes.votes(self.me)));
        self.votes = votes;
        self.evaluate(now);
    }

    /// Forgets every lease held, from `now`: the node is fenced until peers ack again.
    /// For a node that skips versions of its definition, whose leases were lent under a
    /// definition too far from the one it now runs to count.
    pub fn drop_leases(&mut self, now: Instant) {
        for lease in self.leases.values_mut() {
            lease.until = None;
        }
        self.evaluate(now);
    }

    /// Re-evaluates at `now`: notices a lease deadline that has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.evaluate(now);
    }

    /// When the gate next needs `handle_timeout`: the deadline of the current quorum.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.quorate && self.deadline != Instant::MAX).then_some(self.deadline)
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<GateEvent> {
        self.events.pop_front()
    }

    /// Fences the node for good (graceful shutdown): handles answer `Stopped` from now on.
    pub fn shutdown(&mut self, now: Instant) {
        self.stopped = true;
        self.shared.stop();
        if self.quorate {
            self.quorate = false;
            self.emit(GateEvent::Lost { epoch: self.epoch, at: now, stopped: true });
        }
        self.deadline = Instant::ZERO;
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
        self.leases.get(&peer).and_then(|l| l.until)
    }

    /// Votes held at `now`, this node's own included (a lease ending at `now` is over).
    pub fn held_votes(&self, now: Instant) -> u64 {
        let leased: u64 = self
            .leases
            .values()
            .filter(|l| l.until.is_some_and(|u| u > now))
            .map(|l| u64::from(l.votes))
            .sum();
        u64::from(self.votes.votes(self.me)) + leased
    }

    /// Voters `wait_for_all` still waits to hear.
    pub fn waiting_for(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.waiting_for.iter().copied()
    }

    /// Whether this life used every epoch it may.
    pub fn epochs_exhausted(&self) -> bool {
        self.epoch >= self.last_epoch
    }

    /// This node's definition.
    pub fn votes(&self) -> &VoteTable {
        &self.votes
    }

    /// Events dropped because the driver did not poll them.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
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
        let deadline = if exhausted || !self.waiting_for.is_empty() {
            Instant::ZERO
        } else {
            // Evaluated on every ack: the leases are read in place, not collected.
            let leases = || self.leases.iter().filter_map(|(id, l)| l.until.map(|u| (*id, u)));
            let own = self.votes.quorum_deadline(now, self.me, leases());
            // Under every other definition in use, the same votes must be a quorum too; a
            // definition not yet received is never satisfied.
            self.others.iter().fold(own, |deadline, table| match table {
                Some(table) => deadline.min(table.quorum_deadline(now, self.me, leases())),
                None => Instant::ZERO,
            })
        };
        // A published deadline at or before `now` means the handles already answered "no"
        // for a while: that stretch of quorum is over, whatever the new leases say.
        if self.quorate && self.deadline <= now {
            self.quorate = false;
            self.emit(GateEvent::Lost { epoch: self.epoch, at: self.deadline, stopped: false });
        }
        if deadline > now {
            if !self.quorate {
                self.quorate = true;
                self.epoch = self.epoch.next();
                self.deadline = deadline;
                self.shared.publish(self.epoch, deadline);
                let held_votes = self.held_votes(now);
                self.emit(GateEvent::Gained { epoch: self.epoch, at: now, held_votes });
            } else if deadline != self.deadline {
                self.deadline = deadline;
                self.shared.publish(self.epoch, deadline);
            }
        } else if self.quorate {
            // The votes stopped forming a quorum before their leases ended (another
            // definition came into play): the stretch ends now.
            self.quorate = false;
            self.deadline = Instant::ZERO;
            self.shared.fence();
            self.emit(GateEvent::Lost { epoch: self.epoch, at: now, stopped: false });
        } else if self.deadline != Instant::ZERO {
            self.deadline = Instant::ZERO;
            self.shared.fence();
        }
    }

    fn emit(&mut self, event: GateEvent) {
        if self.events.len() >= EVENT_QUEUE_MAX {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }
}

#[cfg(test)]
mod tests;
