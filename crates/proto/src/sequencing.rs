//! Heartbeat sequencing and ack bookkeeping for one link (this node and one peer). Sans-IO.
//!
//! Sending side: every heartbeat gets the next sequence number, and its send time is kept in
//! a bounded ring ([`SentLog`]) so that when the peer acks it, the node can look up `a_s`,
//! the local time it sent heartbeat `s`. The lease on the peer's vote runs from `a_s`.
//!
//! Receiving side: the link remembers the peer's incarnation and the highest sequence number
//! received in it. A heartbeat from an older incarnation, or with a sequence number already
//! seen, is refused: replays and duplicates never count as fresh contact.

use core::num::NonZeroUsize;

use crate::ids::{Incarnation, NodeId, Seq};
use crate::time::Instant;
use crate::wire::{Ack, Heartbeat, Terms};

/// Bookkeeping for one link.
#[derive(Debug, Clone)]
pub struct Link {
    last_sent: Seq,
    sent: SentLog,
    peer_incarnation: Option<Incarnation>,
    highest_received: Seq,
    /// The peer's life that announced its leave: its heartbeats are refused from then on.
    left: Option<Incarnation>,
}

/// What a received heartbeat means for the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The heartbeat starts a new incarnation of the peer (it restarted), or is the first
    /// heartbeat ever heard from it.
    pub new_incarnation: bool,
}

/// Why a received heartbeat was refused. The node counts each reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// From an incarnation older than one already heard: a delayed packet from a previous
    /// life, or a replay.
    #[error("heartbeat from stale incarnation {got:?}, peer is at {current:?}")]
    StaleIncarnation {
        /// The heartbeat's incarnation.
        got: Incarnation,
        /// The newest incarnation heard.
        current: Incarnation,
    },
    /// A sequence number at or below the highest already received: duplicate, reordered or
    /// replayed.
    #[error("heartbeat {got:?} already covered by {highest:?}")]
    Replayed {
        /// The heartbeat's sequence number.
        got: Seq,
        /// The highest sequence number received.
        highest: Seq,
    },
    /// From a life of the peer that announced its leave (a delayed packet).
    #[error("heartbeat from {incarnation:?}, which left")]
    Left {
        /// The life that left.
        incarnation: Incarnation,
    },
}

/// What an ack is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The ack is for heartbeat `seq`, sent at `sent_at`: the lease may run from there.
    Sent {
        /// The acked sequence number.
        seq: Seq,
        /// When this node sent that heartbeat (its own clock).
        sent_at: Instant,
    },
    /// The ack names another incarnation of this node (a previous life, or not yet this
    /// one): worth nothing.
    OtherIncarnation,
    /// The acked heartbeat is older than the log keeps. Harmless: newer acks follow.
    Forgotten,
    /// The ack names a heartbeat this node never sent. Counted as hostile input.
    NeverSent,
}

impl Link {
    /// Remembers the send times of the last `len` heartbeats from now on (see
    /// [`SentLog::resize`]).
    pub fn resize_sent_log(&mut self, len: NonZeroUsize) {
        self.sent.resize(len);
    }

    /// A fresh link. `sent_log_len` bounds how many send times are remembered; it must
    /// cover a lease's worth of heartbeats or acks of older heartbeats are wasted.
    pub fn new(sent_log_len: NonZeroUsize) -> Self {
        Link {
            last_sent: Seq(0),
            sent: SentLog::new(sent_log_len),
            peer_incarnation: None,
            highest_received: Seq(0),
            left: None,
        }
    }

    /// Builds the next heartbeat to the peer at local time `now`, under `terms`, and records
    /// its send time.
    pub fn next_heartbeat(
        &mut self,
        now: Instant,
        me: NodeId,
        incarnation: Incarnation,
        terms: Terms,
    ) -> Heartbeat {
        self.last_sent = Seq(self.last_sent.0.saturating_add(1));
        self.sent.record(self.last_sent, now);
        Heartbeat { from: me, incarnation, seq: self.last_sent, ack: self.ack(), terms, digest: Vec::new() }
    }

    /// The ack this node owes the peer: its highest heartbeat received, in its incarnation.
    pub fn ack(&self) -> Option<Ack> {
        self.peer_incarnation.map(|incarnation| Ack { incarnation, seq: self.highest_received })
    }

    /// The peer's incarnation, once heard.
    pub fn peer_incarnation(&self) -> Option<Incarnation> {
        self.peer_incarnation
    }

    /// Records a heartbeat from the peer, or refuses it as stale or replayed. A refused
    /// heartbeat changes nothing.
    pub fn on_heartbeat(&mut self, hb: &Heartbeat) -> Result<Received, Refused> {
        if let Some(left) = self.left.filter(|left| hb.incarnation <= *left) {
            return Err(Refused::Left { incarnation: left });
        }
        let new_incarnation = match self.peer_incarnation {
            Some(current) if hb.incarnation < current => {
                return Err(Refused::StaleIncarnation { got: hb.incarnation, current });
            }
            Some(current) if hb.incarnation == current => {
                if hb.seq <= self.highest_received {
                    return Err(Refused::Replayed { got: hb.seq, highest: self.highest_received });
                }
                false
            }
            _ => true,
        };
        self.peer_incarnation = Some(hb.incarnation);
        self.highest_received = hb.seq;
        Ok(Received { new_incarnation })
    }

    /// The peer announced that its life `incarnation` leaves. Returns true if that is news
    /// about a life not older than the newest heard (a leave of an older life is stale).
    pub fn on_leave(&mut self, incarnation: Incarnation) -> bool {
        if self.peer_incarnation.is_some_and(|current| incarnation < current)
            || self.left >= Some(incarnation)
        {
            return false;
        }
        self.left = Some(incarnation);
        self.peer_incarnation = Some(incarnation);
        true
    }

    /// Evaluates an ack carried by the peer's heartbeat, for this node in `incarnation`.
    pub fn on_ack(&self, ack: Ack, incarnation: Incarnation) -> AckOutcome {
        if ack.incarnation != incarnation {
            return AckOutcome::OtherIncarnation;
        }
        if ack.seq > self.last_sent || ack.seq == Seq(0) {
            return AckOutcome::NeverSent;
        }
        match self.sent.lookup(ack.seq) {
            Some(sent_at) => AckOutcome::Sent { seq: ack.seq, sent_at },
            None => AckOutcome::Forgotten,
        }
    }
}

/// Send times of the most recent heartbeats on a link, in a fixed ring.
#[derive(Debug, Clone)]
pub struct SentLog {
    slots: Vec<Option<(Seq, Instant)>>,
}

impl SentLog {
    /// A log remembering the last `len` send times.
    pub fn new(len: NonZeroUsize) -> Self {
        SentLog { slots: vec![None; len.get()] }
    }

    fn slot(&self, seq: Seq) -> usize {
        // The modulo keeps the index in range; `usize` holds any slot count.
        (seq.0 % self.slots.len() as u64) as usize
    }

    /// Remembers that `seq` was sent at `at`, evicting the entry `len` heartbeats older.
    pub fn record(&mut self, seq: Seq, at: Instant) {
        let i = self.slot(seq);
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some((seq, at));
        }
    }

    /// Remembers the last `len` send times from now on, keeping those already remembered
    /// that still fit (the most recent): for a node whose lease or heartbeat interval
    /// changed while it runs.
    pub fn resize(&mut self, len: NonZeroUsize) {
        let mut kept: Vec<(Seq, Instant)> = self.slots.iter().flatten().copied().collect();
        kept.sort_by_key(|(seq, _)| seq.0);
        self.slots = vec![None; len.get()];
        for (seq, at) in kept {
            self.record(seq, at);
        }
    }

    /// When `seq` was sent, if it is still remembered.
    pub fn lookup(&self, seq: Seq) -> Option<Instant> {
        match self.slots.get(self.slot(seq)) {
            Some(Some((s, at))) if *s == seq => Some(*at),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
    }

    fn hb(inc: u64, seq: u64) -> Heartbeat {
        Heartbeat {
            from: NodeId(2),
            incarnation: Incarnation(inc),
            seq: Seq(seq),
            ack: None,
            terms: Terms::default(),
            digest: vec![],
        }
    }

    #[test]
    fn ack_returns_send_time_of_acked_heartbeat() {
        let mut link = Link::new(nz(8));
        let me = Incarnation(10);
        let t = |ms| Instant::from_nanos(ms * 1_000_000);
        for i in 1..=3 {
            let sent = link.next_heartbeat(t(i * 100), NodeId(1), me, Terms::default());
            assert_eq!(sent.seq, Seq(i));
        }
        assert_eq!(
            link.on_ack(Ack { incarnation: me, seq: Seq(2) }, me),
            AckOutcome::Sent { seq: Seq(2), sent_at: t(200) }
        );
    }

    #[test]
    fn the_latest_heartbeat_can_be_acked_and_the_peer_life_is_remembered() {
        let mut link = Link::new(nz(8));
        let me = Incarnation(10);
        let t = |ms: u64| Instant::from_nanos(ms * 1_000_000);
        for i in 1..=3 {
            link.next_heartbeat(t(i * 100), NodeId(1), me, Terms::default());
        }
        let latest = link.on_ack(Ack { incarnation: me, seq: Seq(3) }, me);
        assert_eq!(latest, AckOutcome::Sent { seq: Seq(3), sent_at: t(300) });
        assert_eq!(link.peer_incarnation(), None);
        link.on_heartbeat(&hb(5, 1)).ok();
        assert_eq!(link.peer_incarnation(), Some(Incarnation(5)));
    }

    #[test]
    fn acks_for_other_lives_future_or_forgotten_heartbeats_are_worthless() {
        let mut link = Link::new(nz(4));
        let me = Incarnation(10);
        for i in 0..10 {
            link.next_heartbeat(Instant::from_nanos(i), NodeId(1), me, Terms::default());
        }
        let ack = |inc, seq| Ack { incarnation: Incarnation(inc), seq: Seq(seq) };
        assert_eq!(link.on_ack(ack(9, 10), me), AckOutcome::OtherIncarnation);
        assert_eq!(link.on_ack(ack(10, 11), me), AckOutcome::NeverSent);
        assert_eq!(link.on_ack(ack(10, 0), me), AckOutcome::NeverSent);
        assert_eq!(link.on_ack(ack(10, 6), me), AckOutcome::Forgotten);
        assert!(matches!(link.on_ack(ack(10, 7), me), AckOutcome::Sent { .. }));
    }

    #[test]
    fn duplicates_replays_and_old_lives_are_refused() {
        let mut link = Link::new(nz(4));
        assert_eq!(link.on_heartbeat(&hb(5, 3)), Ok(Received { new_incarnation: true }));
        assert_eq!(link.on_heartbeat(&hb(5, 4)), Ok(Received { new_incarnation: false }));
        assert!(matches!(link.on_heartbeat(&hb(5, 4)), Err(Refused::Replayed { .. })));
        assert!(matches!(link.on_heartbeat(&hb(5, 2)), Err(Refused::Replayed { .. })));
        assert_eq!(link.on_heartbeat(&hb(6, 1)), Ok(Received { new_incarnation: true }));
        assert!(matches!(link.on_heartbeat(&hb(5, 9)), Err(Refused::StaleIncarnation { .. })));
        assert_eq!(link.ack(), Some(Ack { incarnation: Incarnation(6), seq: Seq(1) }));
    }

    #[test]
    fn refused_heartbeat_changes_nothing() {
        let mut link = Link::new(nz(4));
        link.on_heartbeat(&hb(5, 7)).ok();
        let before = link.ack();
        let _ = link.on_heartbeat(&hb(4, 100));
        let _ = link.on_heartbeat(&hb(5, 7));
        assert_eq!(link.ack(), before);
    }

    #[test]
    fn after_a_leave_only_a_later_life_is_heard() {
        let mut link = Link::new(nz(4));
        link.on_heartbeat(&hb(5, 1)).ok();
        assert!(!link.on_leave(Incarnation(4)), "leave of an older life is stale");
        assert!(link.on_leave(Incarnation(5)));
        assert!(!link.on_leave(Incarnation(5)), "duplicate leave is not news");
        assert!(matches!(link.on_heartbeat(&hb(5, 2)), Err(Refused::Left { .. })));
        assert_eq!(link.on_heartbeat(&hb(6, 1)), Ok(Received { new_incarnation: true }));
    }

    #[test]
    fn heartbeats_carry_the_ack_owed_to_the_peer() {
        let mut link = Link::new(nz(4));
        let first = link.next_heartbeat(Instant::ZERO, NodeId(1), Incarnation(1), Terms::default());
        assert_eq!(first.ack, None);
        link.on_heartbeat(&hb(9, 42)).ok();
        let second = link.next_heartbeat(Instant::ZERO, NodeId(1), Incarnation(1), Terms::default());
        assert_eq!(second.ack, Some(Ack { incarnation: Incarnation(9), seq: Seq(42) }));
    }

    #[test]
    fn a_resized_log_keeps_the_most_recent_send_times_that_fit() {
        let mut log = SentLog::new(nz(4));
        for i in 1..=6 {
            log.record(Seq(i), Instant::from_nanos(i * 10));
        }
        log.resize(nz(8));
        assert_eq!((1..=6).map(|i| log.lookup(Seq(i))).filter(Option::is_some).count(), 4);
        assert_eq!(log.lookup(Seq(3)), Some(Instant::from_nanos(30)));
        for i in 7..=10 {
            log.record(Seq(i), Instant::from_nanos(i * 10));
        }
        assert_eq!(log.lookup(Seq(3)), Some(Instant::from_nanos(30)), "eight are kept now");
        log.resize(nz(2));
        assert_eq!((log.lookup(Seq(8)), log.lookup(Seq(9))), (None, Some(Instant::from_nanos(90))));
    }
}
