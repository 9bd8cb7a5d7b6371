//! The per-peer state machine: from heartbeat arrivals to Reachable, Suspect, Unreachable.
//!
//! ```text
//!   Unknown ──heartbeat──▶ Reachable ──suspect_at──▶ Suspect ──down_at──▶ Unreachable
//!      │                      ▲                          │                   │
//!      └───────down_at────────┼──────────────────────────┼──────────────────▶│
//!                             └────────heartbeat─────────┴───────────────────┘
//! ```
//!
//! Instead of evaluating phi on every tick, each peer keeps two precomputed instants,
//! recomputed on every heartbeat and after a stall of this node:
//!
//! * `silence_from = max(last_heard, stall_wake)`: silence that spans our own stall says
//!   nothing about the peer, so it only counts from when we woke up;
//! * `suspect_at = silence_from + acceptable_pause + mean + z_suspect * std_dev`;
//! * `down_at = max(silence_from + acceptable_pause + mean + z_down * std_dev,
//!   last_heard + down_after_min, started + down_after_min, stall_wake + down_after_min)`.
//!
//! The `down_after_min` terms are the hard floor that makes leases safe: whatever phi says,
//! a peer is never Unreachable sooner than `down_after_min` after it was last heard, nor
//! sooner than `down_after_min` after the detector started. A never-heard peer stays
//! Unknown (never Suspect: there is no arrival to be late) until
//! `max(started, stall_wake) + down_after_min`.
//!
//! Transitions without a heartbeat only move forward (Reachable → Suspect → Unreachable);
//! only a heartbeat, i.e. fresh contact, moves a peer back to Reachable.

use std::num::NonZeroUsize;
use std::time::Duration;

use quorate_proto::Instant;

use crate::config::DetectorConfig;
use crate::phi::{phi, z_for_phi, ArrivalWindow, STD_DEV_FLOOR_MS};

/// What this node currently believes about one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Never heard from in this detector's life (since start). Counts as not reachable, but
    /// is only declared Unreachable after the `down_after_min` floor.
    Unknown,
    /// Heard recently enough: phi is below `suspect_phi`.
    Reachable,
    /// Phi reached `suspect_phi` but the peer is not yet declared down. Informational.
    Suspect,
    /// Phi reached `down_phi` and at least `down_after_min` passed since the peer was last
    /// heard and since the detector started. Only a heartbeat brings it back.
    Unreachable,
    /// The peer announced a graceful leave. It fenced its own gate before saying so, so it
    /// is gone at once, without waiting for the floor. Only a heartbeat of a later life
    /// brings it back (the node refuses the left life's heartbeats).
    Left,
}

/// Parameters shared by every peer, derived once from a validated [`DetectorConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    /// When the detector started; the floor also counts from here.
    pub(crate) started: Instant,
    /// `down_after_min`.
    pub(crate) floor: Duration,
    /// The floor counted from the start for every peer: at least `floor`, raised to what an
    /// earlier life of this node may have owed a peer (see [`crate::Detector::raise_start_floor`]).
    pub(crate) start_floor: Duration,
    /// `acceptable_pause`.
    pub(crate) pause: Duration,
    /// `min_std_dev` in microseconds, the window's unit.
    pub(crate) min_std_dev_us: f64,
    /// z-score at which phi reaches `suspect_phi`.
    pub(crate) z_suspect: f64,
    /// z-score at which phi reaches `down_phi`.
    pub(crate) z_down: f64,
    /// `window_len`.
    pub(crate) window_len: NonZeroUsize,
    /// `first_heartbeat_estimate`.
    pub(crate) first_estimate: Duration,
}

impl Timing {
    /// Derives the per-peer parameters; inverts both thresholds once (bisection).
    pub(crate) fn new(config: &DetectorConfig, started: Instant) -> Self {
        Timing {
            started,
            floor: config.down_after_min,
            start_floor: config.down_after_min,
            pause: config.acceptable_pause,
            min_std_dev_us: config.min_std_dev.as_secs_f64() * 1e6,
            z_suspect: z_for_phi(config.suspect_phi),
            z_down: z_for_phi(config.down_phi),
            window_len: config.window_len,
            first_estimate: config.first_heartbeat_estimate,
        }
    }
}

/// One peer's arrivals, statistics, state and the instants of its next transitions.
#[derive(Debug, Clone)]
pub(crate) struct PeerTracker {
    state: PeerState,
    last_heard: Option<Instant>,
    /// The latest stall of this node the tracker was told about.
    stall_wake: Option<Instant>,
    window: ArrivalWindow,
    /// Reachable becomes Suspect at this instant (`Instant::MAX` for a never-heard peer).
    suspect_at: Instant,
    /// Anything but Unreachable becomes Unreachable at this instant.
    down_at: Instant,
    /// What this peer's lease needs after last contact (see
    /// [`crate::Detector::raise_floor`]); zero until raised, and never lowered. The floor
    /// applied is the larger of this and `down_after_min`, which may change while the
    /// node runs ([`crate::Detector::set_config`]) without lowering what a lease needs.
    floor: Duration,
    /// Since when this peer is watched: the detector's start, or when it was added
    /// ([`crate::Detector::set_peers`]). A never-heard peer's silence counts from here.
    watched_since: Instant,
}

impl PeerTracker {
    /// A peer never heard from, watched since `since` (the detector's start, or later).
    pub(crate) fn new(timing: &Timing, since: Instant) -> Self {
        let mut tracker = PeerTracker {
            state: PeerState::Unknown,
            last_heard: None,
            stall_wake: None,
            window: ArrivalWindow::seeded(timing.window_len, timing.first_estimate),
            suspect_at: Instant::MAX,
            down_at: Instant::MAX,
            floor: Duration::ZERO,
            watched_since: since.max(timing.started),
        };
        tracker.recompute(timing);
        tracker
    }

    /// Current state.
    pub(crate) fn state(&self) -> PeerState {
        self.state
    }

    /// When the last heartbeat arrived, if any.
    pub(crate) fn last_heard(&self) -> Option<Instant> {
        self.last_heard
    }

    /// This peer's floor after last contact.
    pub(crate) fn floor(&self) -> Duration {
        self.floor
    }

    /// Raises this peer's floor to `floor` (never lowers it). Returns whether it rose.
    pub(crate) fn raise_floor(&mut self, floor: Duration, timing: &Timing) -> bool {
        if floor <= self.floor {
            return false;
        }
        self.floor = floor;
        if !matches!(self.state, PeerState::Unreachable | PeerState::Left) {
            self.recompute(timing);
        }
        true
    }

    /// The start floor rose, or the timing changed: recompute the pending verdict. A
    /// window longer than the new `window_len` drops its oldest samples.
    pub(crate) fn on_timing(&mut self, timing: &Timing) {
        self.window.set_capacity(timing.window_len);
        if !matches!(self.state, PeerState::Unreachable | PeerState::Left) {
            self.recompute(timing);
        }
    }

    /// The inter-arrival window.
    pub(crate) fn window(&self) -> &ArrivalWindow {
        &self.window
    }

    /// When the peer turns Suspect, if that transition is still pending.
    pub(crate) fn suspect_at(&self) -> Option<Instant> {
        (self.state == PeerState::Reachable).then_some(self.suspect_at)
    }

    /// When the peer turns Unreachable, if that transition is still pending.
    pub(crate) fn down_at(&self) -> Option<Instant> {
        (!matches!(self.state, PeerState::Unreachable | PeerState::Left)).then_some(self.down_at)
    }

    /// The earliest pending transition, if any.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match (self.suspect_at(), self.down_at()) {
            (Some(s), Some(d)) => Some(s.min(d)),
            (s, d) => s.or(d),
        }
    }

    /// A heartbeat arrived at `now`: the peer is Reachable. Returns the previous state when
    /// it changed. The interval since the previous arrival becomes a sample, unless that
    /// arrival predates our latest stall (the interval would measure our stall, not the
    /// peer) or the peer was down (it would measure the outage). A `now` earlier than the previous arrival is treated as the same instant.
    pub(crate) fn on_heartbeat(&mut self, now: Instant, timing: &Timing) -> Option<PeerState> {
        let now = self.last_heard.map_or(now, |prev| now.max(prev));
        // A gap that ended a verdict of down measures an outage, not the peer's rhythm:
        // kept, it would inflate mean and deviation and slow the next detection for a
        // whole window.
        let outage = matches!(self.state, PeerState::Unreachable | PeerState::Left);
        if let Some(prev) = self.last_heard {
            if !outage && self.stall_wake.is_none_or(|wake| prev >= wake) {
                self.window.push(now - prev);
            }
        }
        self.last_heard = Some(now);
        let previous = self.state;
        self.state = PeerState::Reachable;
        self.recompute(timing);
        (previous != PeerState::Reachable).then_some(previous)
    }

    /// The peer announced a graceful leave: it is gone now. Returns the previous state when
    /// it changed.
    pub(crate) fn on_leave(&mut self) -> Option<PeerState> {
        let previous = self.state;
        self.state = PeerState::Left;
        (previous != PeerState::Left).then_some(previous)
    }

    /// This node was stalled and woke at `wake`: a peer that is not Unreachable gets a fresh
    /// grace period counted from `wake`. Unreachable peers stay so until heard.
    pub(crate) fn on_stall(&mut self, wake: Instant, timing: &Timing) {
        self.stall_wake = Some(self.stall_wake.map_or(wake, |old| old.max(wake)));
        if !matches!(self.state, PeerState::Unreachable | PeerState::Left) {
            self.recompute(timing);
        }
    }

    /// Applies the transition due at `now`, if any, and returns `(from, to)`. Moves straight
    /// from Reachable to Unreachable when both instants have passed.
    pub(crate) fn advance(&mut self, now: Instant, timing: &Timing) -> Option<(PeerState, PeerState)> {
        let from = self.state;
        let to = match from {
            PeerState::Unreachable | PeerState::Left => return None,
            _ if now >= self.down_at => PeerState::Unreachable,
            PeerState::Reachable if now >= self.suspect_at => PeerState::Suspect,
            _ => return None,
        };
        if to == PeerState::Unreachable {
            // The safety floor: leases elsewhere are sized on the promise that no peer is
            // declared down within down_after_min of last contact or of our start. down_at
            // includes both terms, so a failure here is a bug in recompute().
            debug_assert!(now >= timing.started.saturating_add(timing.start_floor));
            debug_assert!(self
                .last_heard
                .is_none_or(|h| now >= h.saturating_add(self.floor.max(timing.floor))));
        }
        self.state = to;
        Some((from, to))
    }

    /// Phi at `now`, with silence counted from `max(last_heard, stall_wake)` (from the start
    /// for a never-heard peer, whose window holds the first-heartbeat estimate), so the
    /// value agrees with the transition instants.
    pub(crate) fn phi_at(&self, now: Instant, timing: &Timing) -> f64 {
        let elapsed_ms = (now - self.silence_from()).as_secs_f64() * 1e3;
        let mean_ms = self.window.mean_ms() + timing.pause.as_secs_f64() * 1e3;
        phi(elapsed_ms, mean_ms, self.std_dev_us(timing) / 1e3)
    }

    /// Recomputes `suspect_at` and `down_at` from the current arrivals, window and stall.
    fn recompute(&mut self, timing: &Timing) {
        let from = self.silence_from();
        let floor = self.floor.max(timing.floor);
        let floor_from_start = timing.started.saturating_add(timing.start_floor.max(timing.floor));
        let floor_from_wake = self.stall_wake.map_or(Instant::ZERO, |w| w.saturating_add(floor));
        match self.last_heard {
            None => {
                self.suspect_at = Instant::MAX;
                self.down_at = from.saturating_add(floor).max(floor_from_start).max(floor_from_wake);
            }
            Some(heard) => {
                self.suspect_at = from.saturating_add(self.crossing(timing.z_suspect, timing));
                self.down_at = from
                    .saturating_add(self.crossing(timing.z_down, timing))
                    .max(heard.saturating_add(floor))
                    .max(floor_from_start)
                    .max(floor_from_wake);
            }
        }
    }

    /// Where silence starts counting: the later of the last arrival (or the start, if none)
    /// and the latest stall wake.
    fn silence_from(&self) -> Instant {
        let base = self.last_heard.unwrap_or(self.watched_since);
        self.stall_wake.map_or(base, |wake| base.max(wake))
    }

    /// Silence after which phi reaches the threshold whose z-score is `z`:
    /// `acceptable_pause + max(0, mean + z * std_dev)`.
    fn crossing(&self, z: f64, timing: &Timing) -> Duration {
        let us = self.window.mean_us() + z * self.std_dev_us(timing);
        timing.pause.saturating_add(duration_from_micros(us))
    }

    /// The window's standard deviation raised to `min_std_dev`, in microseconds.
    fn std_dev_us(&self, timing: &Timing) -> f64 {
        self.window.std_dev_us().max(timing.min_std_dev_us).max(STD_DEV_FLOOR_MS * 1e3)
    }
}

/// A non-negative microsecond count as a [`Duration`], saturating; NaN counts as forever so
/// a numeric accident can only delay a verdict, never hasten it.
fn duration_from_micros(us: f64) -> Duration {
    if us.is_nan() {
        return Duration::MAX;
    }
    // `as` saturates float-to-int conversions: negatives give 0, huge values u64::MAX.
    Duration::from_nanos((us * 1e3) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    fn at_ms(ms: u64) -> Instant {
        Instant::from_nanos(ms * MS)
    }

    fn timing() -> Timing {
        Timing::new(&DetectorConfig::default(), at_ms(1_000))
    }

    #[test]
    fn never_heard_peer_becomes_unreachable_exactly_at_the_floor_after_start() {
        let t = timing();
        let mut p = PeerTracker::new(&t, t.started);
        assert_eq!(p.state(), PeerState::Unknown);
        assert_eq!(p.suspect_at(), None);
        assert_eq!(p.deadline(), Some(at_ms(2_000)));
        assert_eq!(p.advance(at_ms(1_999), &t), None);
        assert_eq!(p.advance(at_ms(2_000), &t), Some((PeerState::Unknown, PeerState::Unreachable)));
        assert_eq!(p.deadline(), None);
    }

    #[test]
    fn first_heartbeat_makes_peer_reachable_and_reports_previous_state() {
        let t = timing();
        let mut p = PeerTracker::new(&t, t.started);
        assert_eq!(p.on_heartbeat(at_ms(1_100), &t), Some(PeerState::Unknown));
        assert_eq!(p.on_heartbeat(at_ms(1_200), &t), None);
        assert_eq!(p.state(), PeerState::Reachable);
        assert_eq!(p.last_heard(), Some(at_ms(1_200)));
        assert_eq!(p.window().len(), 3);
    }

    #[test]
    fn suspect_comes_before_down_and_down_respects_the_floor() {
        let t = timing();
        let mut p = PeerTracker::new(&t, t.started);
        for ms in (2_000..3_000).step_by(100) {
            p.on_heartbeat(at_ms(ms), &t);
        }
        let heard = at_ms(2_900);
        let (suspect, down) = (p.suspect_at().unwrap_or(Instant::MAX), p.down_at().unwrap_or(Instant::ZERO));
        assert!(heard < suspect && suspect <= down);
        assert!(down >= heard + t.floor);
        assert_eq!(p.advance(suspect, &t), Some((PeerState::Reachable, PeerState::Suspect)));
        assert_eq!(p.advance(down - Duration::from_nanos(1), &t), None);
        assert_eq!(p.advance(down, &t), Some((PeerState::Suspect, PeerState::Unreachable)));
    }

    #[test]
    fn phi_at_the_suspect_instant_equals_the_suspect_threshold() {
        let t = timing();
        let mut p = PeerTracker::new(&t, t.started);
        for ms in [1_100, 1_190, 1_310, 1_400] {
            p.on_heartbeat(at_ms(ms), &t);
        }
        let suspect = p.suspect_at().unwrap_or(Instant::MAX);
        let phi = p.phi_at(suspect, &t);
        assert!((phi - 5.0).abs() < 1e-3, "phi at suspect_at = {phi}");
    }

    #[test]
    fn stall_pushes_deadlines_out_by_a_fresh_grace_period() {
        let t = timing();
        let mut p = PeerTracker::new(&t, t.started);
        p.on_heartbeat(at_ms(1_100), &t);
        let wake = at_ms(9_000);
        p.on_stall(wake, &t);
        assert!(p.suspect_at().is_some_and(|s| s > wake));
        assert!(p.down_at().is_some_and(|d| d >= wake + t.floor));
        // The interval spanning the stall is not a sample; the next one is.
        p.on_heartbeat(at_ms(9_050), &t);
        assert_eq!(p.window().len(), 2);
        p.on_heartbeat(at_ms(9_150), &t);
        assert_eq!(p.window().len(), 3);
    }

    #[test]
    fn unreachable_peer_stays_unreachable_through_a_stall() {
        let t = timing();
        let mut p = PeerTracker::new(&t, t.started);
        p.advance(at_ms(5_000), &t);
        p.on_stall(at_ms(6_000), &t);
        assert_eq!(p.state(), PeerState::Unreachable);
        assert_eq!(p.advance(at_ms(6_000), &t), None);
        assert_eq!(p.on_heartbeat(at_ms(6_001), &t), Some(PeerState::Unreachable));
    }

    #[test]
    fn heartbeat_earlier_than_the_previous_one_counts_as_the_same_instant() {
        let t = timing();
        let mut p = PeerTracker::new(&t, t.started);
        p.on_heartbeat(at_ms(3_000), &t);
        p.on_heartbeat(at_ms(2_000), &t);
        assert_eq!(p.last_heard(), Some(at_ms(3_000)));
    }

    #[test]
    fn nan_crossing_delays_forever() {
        assert_eq!(duration_from_micros(f64::NAN), Duration::MAX);
        assert_eq!(duration_from_micros(-5.0), Duration::ZERO);
        assert_eq!(duration_from_micros(f64::INFINITY), Duration::from_nanos(u64::MAX));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Heartbeat(u64),
        Advance(u64),
        Stall(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..400).prop_map(Op::Heartbeat),
            4 => (0u64..1_500).prop_map(Op::Advance),
            1 => (0u64..3_000).prop_map(Op::Stall),
        ]
    }

    proptest! {
        #[test]
        fn tracker_never_goes_unreachable_before_the_floor(
            floor_ms in 200u64..3_000,
            down_phi in 0.01f64..20.0,
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let config = DetectorConfig {
                down_after_min: Duration::from_millis(floor_ms),
                suspect_phi: down_phi / 2.0,
                down_phi,
                ..DetectorConfig::default()
            };
            let t = Timing::new(&config, at_ms(1_000));
            let mut p = PeerTracker::new(&t, t.started);
            let mut now = at_ms(1_000);
            for op in ops {
                let heard = p.last_heard();
                let (Op::Heartbeat(dt) | Op::Advance(dt) | Op::Stall(dt)) = op;
                now = now + Duration::from_millis(dt);
                let moved = match op {
                    Op::Heartbeat(_) => {
                        p.on_heartbeat(now, &t);
                        None
                    }
                    Op::Advance(_) => p.advance(now, &t),
                    Op::Stall(_) => {
                        p.on_stall(now, &t);
                        p.advance(now, &t)
                    }
                };
                if let Some((_, PeerState::Unreachable)) = moved {
                    prop_assert!(now >= t.started + t.floor);
                    if let Some(h) = heard {
                        prop_assert!(now >= h + t.floor);
                    }
                }
                if !matches!(op, Op::Heartbeat(_)) {
                    prop_assert!(p.deadline().is_none_or(|d| d > now), "transition left due");
                }
            }
        }
    }
}
