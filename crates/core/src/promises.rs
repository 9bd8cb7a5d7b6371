//! What a node promises its peers, and how those promises outlive a restart.
//!
//! Two promises bind a node beyond the instant it makes them:
//!
//! * an **ack** to peer A lets A hold this node's vote for A's lease (A's clock) from when A
//!   sent the acked heartbeat, so this node must not call A down for A's lease scaled by
//!   drift (the *floor* it owes A; see [`required_floor`]);
//! * a **yes** to a fence check on X promises to send X no ack for `fence_hold`.
//!
//! A crash forgets both, and the next life would break them: it would call A down at its
//! own (maybe shorter) floor after start, or ack X at once. So each life starts by
//! honouring what the earlier lives may have promised: no ack at all for the longest hold
//! they may have given, and no peer called down sooner than the longest floor they may have
//! owed. The numbers come from the data directory ([`Memory::Durable`]); the node asks the
//! driver to persist them ([`crate::Node::poll_persist`]) and makes no promise its durable
//! record does not cover: it withholds an ack (or answers "no" to a fence check) until the
//! driver confirms the write.
//!
//! ```text
//!   start: hold every ack until start + prior.ack_hold; no peer down before start + prior.floor
//!   heartbeat from A (terms: lease, drift) ──► floor owed to A = lease (1 + rho) / (1 - rho)
//!          │ detector floor for A raised        │ above the durable floor?
//!          ▼                                     ▼
//!   ack A only if durable.floor covers it   poll_persist() ──► driver writes ──► handle_persisted()
//! ```

use std::time::Duration;

use quorate_gate::DefinitionParts;
use quorate_proto::{DefinitionDigest, Instant, NodeId, Terms};

/// The longest floor a peer's terms may ask for. A peer whose lease scaled by drift needs
/// more is never acked (counted in `Counters::terms_refused`): no quorum should rest on a
/// vote that can outlive an hour of silence.
pub const FLOOR_MAX: Duration = Duration::from_secs(3600);

/// What a life may have promised its peers, in durations of its own clock. Kept in the
/// data directory; all zero on a node's very first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Promises {
    /// The longest fence hold the life may have promised: a later life sends no ack for
    /// this long after it starts.
    pub ack_hold: Duration,
    /// The longest floor the life may have owed a peer it acked (the peer's lease scaled
    /// by drift): a later life declares no peer down sooner than this after it starts.
    pub floor: Duration,
}

impl Promises {
    /// The larger of each field.
    pub fn max(self, other: Promises) -> Promises {
        Promises { ack_hold: self.ack_hold.max(other.ack_hold), floor: self.floor.max(other.floor) }
    }
}

/// The quorum definitions a node last heard its peers run. Kept in the data directory so
/// that a new life knows, before it hears anyone, that some peer runs another definition:
/// without it, a node restarted during a rolling change of the member list would count a
/// quorum of the old list alone, while the nodes on the new list count theirs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerDefinitions {
    /// Each peer's definition digest as last heard, in id order.
    pub peers: Vec<(NodeId, DefinitionDigest)>,
    /// The definitions those digests name, each with its version, when known (a digest can
    /// be heard before its definition arrives; a new life then treats it as unknown: no
    /// quorum under it).
    pub tables: Vec<(u64, DefinitionParts)>,
}

/// Where a node keeps its promises across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// Nowhere: no data directory. The node assumes its earlier life ran its own
    /// configuration (it holds acks for its own `fence_hold` after start) and never waits
    /// for a write. Right for observers, whose acks carry no vote, and for tests; a voter
    /// whose configuration changes across restarts needs [`Memory::Durable`].
    Volatile,
    /// In a data directory. `prior` is what the earlier lives recorded (all zero on the
    /// first start). The driver must persist every [`crate::Node::poll_persist`] and then
    /// call [`crate::Node::handle_persisted`]; until it does, the node makes no promise the
    /// record does not cover.
    Durable {
        /// Read from the data directory at start.
        prior: Promises,
    },
}

/// The floor a receiver must keep for a sender with `terms`, given the receiver's own drift
/// bound: `lease (1 + rho) / (1 - rho)` with rho the larger of the two drift bounds,
/// rounded up to the microsecond. `None` when the terms cannot be honoured (a drift bound
/// of 50% or more, or a floor above [`FLOOR_MAX`]).
pub fn required_floor(terms: &Terms, own_drift: f64) -> Option<Duration> {
    let drift = (f64::from(terms.drift_ppm) / 1e6).max(own_drift);
    if !(0.0..0.5).contains(&drift) {
        return None;
    }
    let lease_us = f64::from(terms.lease_us);
    let floor_us = (lease_us * (1.0 + drift) / (1.0 - drift)).ceil();
    if !floor_us.is_finite() || floor_us > FLOOR_MAX.as_micros() as f64 {
        return None;
    }
    // `as` saturates; the value is finite and within FLOOR_MAX here.
    Some(Duration::from_micros(floor_us as u64))
}

/// One life's ledger of promises: what earlier lives left, what this one owes, what is
/// durable.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    /// What the data directory holds; `None` when nothing is kept (no limit applies).
    durable: Option<Promises>,
    /// What earlier lives may have promised, binding until `prior_until`.
    prior: Promises,
    prior_until: Instant,
    /// The hold this life promises with each fence-check yes.
    own_hold: Duration,
    /// A longer hold this life promised before its timing changed, and until when a yes
    /// given under it may still bind: the record keeps it until then.
    earlier_hold: Duration,
    earlier_hold_until: Instant,
    /// The largest floor this life owes (or is about to owe) a peer it acks.
    owed_floor: Duration,
    /// No ack goes out before this instant: the earlier lives' holds.
    acks_from: Instant,
}

impl Ledger {
    /// The ledger of a life started at `now` that promises holds of `own_hold`.
    pub(crate) fn new(memory: Memory, own_hold: Duration, now: Instant) -> Self {
        let (durable, prior) = match memory {
            // Nothing read: assume the earlier life made the holds this configuration makes.
            Memory::Volatile => (None, Promises { ack_hold: own_hold, floor: Duration::ZERO }),
            Memory::Durable { prior } => (Some(prior), prior),
        };
        Ledger {
            durable,
            prior,
            prior_until: now.saturating_add(prior.ack_hold.max(prior.floor)),
            own_hold,
            earlier_hold: Duration::ZERO,
            earlier_hold_until: Instant::ZERO,
            owed_floor: Duration::ZERO,
            acks_from: now.saturating_add(prior.ack_hold),
        }
    }

    /// The floor earlier lives may have owed any peer: the detector's start floor.
    pub(crate) fn start_floor(&self) -> Duration {
        self.prior.floor
    }

    /// Whether acks may go out at `now` (the earlier lives' holds are over).
    pub(crate) fn acks_allowed(&self, now: Instant) -> bool {
        now >= self.acks_from
    }

    /// Whether this life may owe a peer `floor`: the durable record covers it.
    pub(crate) fn covers_floor(&self, floor: Duration) -> bool {
        self.durable.is_none_or(|d| floor <= d.floor)
    }

    /// Whether this life may promise a fence hold: the durable record covers it.
    pub(crate) fn covers_hold(&self) -> bool {
        self.durable.is_none_or(|d| self.own_hold <= d.ack_hold)
    }

    /// From `now` each fence-check yes promises `hold` (the node's timing changed). A yes
    /// given before promised the old hold, which may bind until `now + old`: while it
    /// may, the record keeps the longer of the two. A longer hold is promised only once
    /// the record covers it ([`Ledger::covers_hold`]).
    pub(crate) fn set_own_hold(&mut self, now: Instant, hold: Duration) {
        if hold < self.own_hold {
            let until = now.saturating_add(self.own_hold);
            let still = if now < self.earlier_hold_until { self.earlier_hold } else { Duration::ZERO };
            self.earlier_hold = still.max(self.own_hold);
            self.earlier_hold_until = self.earlier_hold_until.max(until);
        }
        self.own_hold = hold;
    }

    /// No ack goes out before `at` (on top of any hold already in force): for a node that
    /// skips versions of its definition, until every vote it lent before has expired.
    pub(crate) fn hold_acks_until(&mut self, at: Instant) {
        self.acks_from = self.acks_from.max(at);
    }

    /// The largest floor this life owes a peer it acked: how long a vote it lent may
    /// still be held, in its own clock.
    pub(crate) fn owed_floor(&self) -> Duration {
        self.owed_floor
    }

    /// This life is about to owe some peer `floor`.
    pub(crate) fn owe_floor(&mut self, floor: Duration) {
        self.owed_floor = self.owed_floor.max(floor);
    }

    /// What the record must say at `now`: this life's promises, and the earlier lives'
    /// while they still bind.
    pub(crate) fn needed(&self, now: Instant) -> Promises {
        let hold =
            if now < self.earlier_hold_until { self.own_hold.max(self.earlier_hold) } else { self.own_hold };
        let own = Promises { ack_hold: hold, floor: self.owed_floor };
        if now < self.prior_until {
            own.max(self.prior)
        } else {
            own
        }
    }

    /// A write the driver should make now, if the record differs from what is needed (it
    /// grows before a promise is made, and shrinks once earlier lives no longer bind).
    /// Asked again on every call until the driver confirms it: a failed write is retried.
    pub(crate) fn poll_persist(&self, now: Instant) -> Option<Promises> {
        let durable = self.durable?;
        let needed = self.needed(now);
        (needed != durable).then_some(needed)
    }

    /// The driver wrote `promises` to the data directory.
    pub(crate) fn persisted(&mut self, promises: Promises) {
        if self.durable.is_some() {
            self.durable = Some(promises);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * MS)
    }

    fn terms(lease_ms: u32, drift_ppm: u32) -> Terms {
        Terms { lease_us: lease_ms * 1000, drift_ppm, ..Terms::default() }
    }

    #[test]
    fn required_floor_scales_the_lease_by_the_larger_drift() {
        // wan: 2.5 s lease at 1% drift needs 2.5 x 1.01 / 0.99 = 2.550505 s.
        assert_eq!(required_floor(&terms(2_500, 10_000), 0.0), Some(Duration::from_micros(2_550_506)));
        assert_eq!(required_floor(&terms(2_500, 0), 0.01), Some(Duration::from_micros(2_550_506)));
        // The default lease fits under the default 1 s floor.
        let lan = required_floor(&terms(900, 10_000), 0.01);
        assert!(lan.is_some_and(|f| f < Duration::from_secs(1)), "{lan:?}");
        assert_eq!(required_floor(&terms(900, 500_000), 0.01), None);
        assert_eq!(required_floor(&terms(900, u32::MAX), 0.01), None);
        assert_eq!(required_floor(&Terms { lease_us: u32::MAX, ..terms(0, 0) }, 0.01), None);
        assert_eq!(required_floor(&terms(0, 0), 0.0), Some(Duration::ZERO));
        // Exactly an hour is still honoured; a microsecond more is not.
        let hour = Terms { lease_us: 3_600_000_000, ..terms(0, 0) };
        assert_eq!(required_floor(&hour, 0.0), Some(FLOOR_MAX));
        let more = Terms { lease_us: 3_600_000_001, ..terms(0, 0) };
        assert_eq!(required_floor(&more, 0.0), None);
    }

    #[test]
    fn a_new_life_holds_acks_and_keeps_earlier_floors_until_they_expire() {
        let prior = Promises { ack_hold: Duration::from_millis(400), floor: Duration::from_secs(3) };
        let mut ledger = Ledger::new(Memory::Durable { prior }, Duration::from_millis(300), at(1_000));
        assert_eq!(ledger.start_floor(), Duration::from_secs(3));
        assert!(!ledger.acks_allowed(at(1_399)));
        assert!(ledger.acks_allowed(at(1_400)));
        // Nothing to write while the earlier life's promises bind and cover this one's.
        assert_eq!(ledger.poll_persist(at(1_500)), None);
        // Once they expire, the record shrinks to this life's own.
        let own = Promises { ack_hold: Duration::from_millis(300), floor: Duration::ZERO };
        assert_eq!(ledger.poll_persist(at(4_000)), Some(own));
        assert_eq!(ledger.poll_persist(at(4_001)), Some(own), "asked until confirmed");
        ledger.persisted(own);
        assert_eq!(ledger.poll_persist(at(4_002)), None);
    }

    #[test]
    fn a_fence_hold_is_not_promised_before_the_record_covers_it() {
        let prior = Promises { ack_hold: Duration::from_millis(300), floor: Duration::ZERO };
        let mut ledger = Ledger::new(Memory::Durable { prior }, Duration::from_millis(400), at(0));
        assert!(!ledger.covers_hold(), "the record holds 300 ms, this life promises 400 ms");
        let want = ledger.poll_persist(at(1));
        assert_eq!(want.map(|p| p.ack_hold), Some(Duration::from_millis(400)));
        if let Some(p) = want {
            ledger.persisted(p);
        }
        assert!(ledger.covers_hold());
        let same = Ledger::new(Memory::Durable { prior }, Duration::from_millis(300), at(0));
        assert!(same.covers_hold(), "a record equal to the hold covers it");
    }

    #[test]
    fn a_floor_above_the_record_is_not_covered_until_written() {
        let mut ledger = Ledger::new(Memory::Durable { prior: Promises::default() }, Duration::ZERO, at(0));
        let wan = Duration::from_millis(2_551);
        assert!(ledger.covers_floor(Duration::ZERO));
        assert!(!ledger.covers_floor(wan));
        ledger.owe_floor(wan);
        let want = Promises { ack_hold: Duration::ZERO, floor: wan };
        assert_eq!(ledger.poll_persist(at(10)), Some(want));
        assert!(!ledger.covers_floor(wan));
        ledger.persisted(want);
        assert!(ledger.covers_floor(wan));
    }

    #[test]
    fn a_shorter_hold_keeps_the_longer_one_on_record_until_its_promises_expire() {
        let long = Promises { ack_hold: Duration::from_millis(800), floor: Duration::ZERO };
        let mut ledger = Ledger::new(Memory::Durable { prior: long }, long.ack_hold, at(0));
        ledger.persisted(long);
        assert_eq!(ledger.poll_persist(at(5_000)), None);
        ledger.set_own_hold(at(5_000), Duration::from_millis(400));
        assert!(ledger.covers_hold());
        assert_eq!(ledger.poll_persist(at(5_799)), None, "a yes at 5 s may bind until 5.8 s");
        let short = Promises { ack_hold: Duration::from_millis(400), floor: Duration::ZERO };
        assert_eq!(ledger.poll_persist(at(5_800)), Some(short));
        ledger.persisted(short);
        // A longer hold again: not promised before the record covers it.
        ledger.set_own_hold(at(6_000), Duration::from_millis(900));
        assert!(!ledger.covers_hold());
        assert_eq!(ledger.poll_persist(at(6_000)).map(|p| p.ack_hold), Some(Duration::from_millis(900)));
    }

    #[test]
    fn without_memory_nothing_waits_for_a_write_but_acks_still_wait_for_the_own_hold() {
        let ledger = Ledger::new(Memory::Volatile, Duration::from_millis(400), at(0));
        assert!(ledger.covers_floor(Duration::from_secs(60)) && ledger.covers_hold());
        assert_eq!(ledger.poll_persist(at(10)), None);
        assert!(!ledger.acks_allowed(at(399)) && ledger.acks_allowed(at(400)));
    }
}
