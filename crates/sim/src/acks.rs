//! The wire's record of leases: which heartbeat each node sent each voter when, and which of
//! them came back acked, as the simulator saw the bytes cross the network. It is kept apart
//! from the cores' own lease tables so the checkers can hold a node's gate to what the world
//! actually delivered ([`crate::invariants::intersection`], [`crate::invariants::fenced_sound`]).
//!
//! ```text
//!   a sends b heartbeat seq s at real r ──► sent[(a, b)] += (s, a's local reading at r, r,
//!                                            the lease of the preset a runs at r)
//!   b's heartbeat acking (a's life, s) reaches a's core ──► acked[(a, b)] = send of s
//!   a's vote from b, by the wire: a's local now < a's local at send + that lease
//! ```
//!
//! An ack counts only if it names the holder's current life and a heartbeat the record
//! still holds; a new life starts with an empty record, as the core does.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use quorate_proto::{Heartbeat, Instant, Seq};

/// Heartbeat sends remembered per link. At 10 per second that is 25 s, ten times the
/// longest lease of any preset: an ack of anything older could not extend a lease.
const SENT_PER_LINK_MAX: usize = 256;

/// One heartbeat as it left its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Send {
    /// Its number on the link.
    pub seq: Seq,
    /// The sender's clock when it left.
    pub local: Instant,
    /// Real time when it left, ns.
    pub real: u64,
    /// The lease of the preset its sender ran when it left: what an ack of it lends (a
    /// node that switches presets online keeps, for a heartbeat sent before the switch,
    /// the lease it was sent under).
    pub lease: Duration,
}

/// What the wire delivered.
#[derive(Debug, Default)]
pub struct AckLedger {
    /// Heartbeats `a` sent voter `b` in `a`'s current life, oldest first.
    sent: BTreeMap<(usize, usize), VecDeque<Send>>,
    /// The heartbeat of `a` acked by `b` (and handed to `a`'s core) whose lease ends last.
    acked: BTreeMap<(usize, usize), Send>,
    /// Each holder's current incarnation (0 before its first start).
    incarnation: BTreeMap<usize, u64>,
    /// `heard[(v, p)]`: the simulator step in which voter `v`'s core was last handed a
    /// heartbeat from `p`.
    heard: BTreeMap<(usize, usize), u64>,
}

impl AckLedger {
    /// `a` started a new life: its earlier sends and leases no longer count.
    pub fn new_life(&mut self, a: usize, incarnation: u64) {
        self.incarnation.insert(a, incarnation);
        self.sent.retain(|(x, _), _| *x != a);
        self.acked.retain(|(x, _), _| *x != a);
    }

    /// `a` sent `hb` to `b` at real time `real`, reading `local` on its clock, running a
    /// preset of lease `lease`.
    pub fn sent(&mut self, a: usize, b: usize, hb: &Heartbeat, local: Instant, real: u64, lease: Duration) {
        if b >= 64 || Some(&hb.incarnation.0) != self.incarnation.get(&a) {
            return;
        }
        let log = self.sent.entry((a, b)).or_default();
        if log.len() >= SENT_PER_LINK_MAX {
            log.pop_front();
        }
        log.push_back(Send { seq: hb.seq, local, real, lease });
    }

    /// `hb` from voter `b` was handed to `a`'s core: the send it acks, if it acks one of
    /// `a`'s current life that the record holds.
    pub fn lookup(&self, a: usize, b: usize, hb: &Heartbeat) -> Option<Send> {
        let ack = hb.ack?;
        if Some(&ack.incarnation.0) != self.incarnation.get(&a) {
            return None;
        }
        self.sent.get(&(a, b))?.iter().rev().find(|s| s.seq == ack.seq).copied()
    }

    /// Records that `hb` from `b` reached `a`'s core in simulator step `step`.
    pub fn delivered(&mut self, a: usize, b: usize, hb: &Heartbeat, step: u64) {
        if a < 64 {
            self.heard.insert((a, b), step);
        }
        let Some(send) = self.lookup(a, b, hb) else { return };
        // The vote lasts to the latest end any acked send gives: after a switch to a
        // shorter lease, an ack of a heartbeat sent before it may still end later.
        let slot = self.acked.entry((a, b)).or_insert(send);
        if send.local + send.lease > slot.local + slot.lease {
            *slot = send;
        }
    }

    /// The simulator step in which voter `v` last heard a heartbeat from `p`.
    pub fn heard(&self, v: usize, p: usize) -> Option<u64> {
        self.heard.get(&(v, p)).copied()
    }

    /// The latest heartbeat `a` sent `b` in its current life.
    pub fn last_sent(&self, a: usize, b: usize) -> Option<Send> {
        self.sent.get(&(a, b)).and_then(|log| log.back().copied())
    }

    /// The send behind `a`'s vote from `b`, if the wire says `a` holds it when its clock
    /// reads `now` (a lease, the one the send was made under, from the send).
    pub fn vote(&self, a: usize, b: usize, now: Instant) -> Option<Send> {
        self.acked.get(&(a, b)).copied().filter(|s| s.local + s.lease > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_proto::{Ack, Incarnation, NodeId, Terms};

    fn hb(from: u64, inc: u64, seq: u64, ack: Option<(u64, u64)>) -> Heartbeat {
        Heartbeat {
            from: NodeId(from),
            incarnation: Incarnation(inc),
            seq: Seq(seq),
            ack: ack.map(|(i, s)| Ack { incarnation: Incarnation(i), seq: Seq(s) }),
            terms: Terms::default(),
            digest: Vec::new(),
        }
    }

    #[test]
    fn a_vote_lasts_a_lease_from_the_acked_send_and_a_new_life_forgets_it() {
        let lease = Duration::from_millis(900);
        let at = |ms: u64| Instant::from_nanos(ms * 1_000_000);
        let mut l = AckLedger::default();
        l.new_life(0, 7);
        l.sent(0, 1, &hb(1, 7, 1, None), at(100), 100, lease);
        l.sent(0, 1, &hb(1, 7, 2, None), at(200), 200, lease);
        // An ack of another life, or of a heartbeat never sent, lends nothing.
        l.delivered(0, 1, &hb(2, 3, 5, Some((6, 2))), 1);
        l.delivered(0, 1, &hb(2, 3, 5, Some((7, 9))), 2);
        assert_eq!(l.vote(0, 1, at(150)), None);
        l.delivered(0, 1, &hb(2, 3, 5, Some((7, 2))), 3);
        // A late ack of an older heartbeat does not shorten the vote.
        l.delivered(0, 1, &hb(2, 3, 6, Some((7, 1))), 4);
        assert_eq!(l.heard(0, 1), Some(4));
        assert_eq!(l.vote(0, 1, at(1_099)).map(|s| s.seq), Some(Seq(2)));
        assert_eq!(l.vote(0, 1, at(1_100)), None);
        // A heartbeat sent after a switch to a longer lease lends that one; the earlier
        // sends keep theirs.
        l.sent(0, 1, &hb(1, 7, 3, None), at(300), 300, Duration::from_millis(2_500));
        l.delivered(0, 1, &hb(2, 3, 7, Some((7, 3))), 5);
        assert_eq!(l.vote(0, 1, at(2_799)).map(|s| s.seq), Some(Seq(3)));
        assert_eq!(l.vote(0, 1, at(2_800)), None);
        // After a switch back to the shorter lease, a later send does not cut it short.
        l.sent(0, 1, &hb(1, 7, 4, None), at(400), 400, lease);
        l.delivered(0, 1, &hb(2, 3, 8, Some((7, 4))), 6);
        assert_eq!(l.vote(0, 1, at(2_700)).map(|s| s.seq), Some(Seq(3)));
        l.new_life(0, 8);
        assert_eq!(l.vote(0, 1, at(300)), None);
        assert_eq!(l.last_sent(0, 1), None);
    }
}
