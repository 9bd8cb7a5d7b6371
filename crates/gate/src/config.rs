//! Gate configuration and the rule that makes leases safe.
//!
//! A node holds a peer's vote until `a_s + lease`, where `a_s` is when it sent the heartbeat
//! the peer acknowledged. The peer never declares the node down sooner than
//! `down_after_min` after it last heard from it. With clock rates within `max_clock_drift`
//! (rho) of real time, `lease` local seconds last at most `lease / (1 - rho)` real seconds
//! and `down_after_min` local seconds at least `down_after_min / (1 + rho)`. So if
//!
//! ```text
//! lease < down_after_min * (1 - rho) / (1 + rho)
//! ```
//!
//! every lease a node holds on a peer's vote has ended before that peer can consider it down.

use core::num::NonZeroUsize;
use std::time::Duration;

use quorate_detector::DetectorConfig;
use quorate_proto::quorum::TieBreaker;
use quorate_proto::{FieldError, Rules, Valid};

/// How the gate turns acks into votes.
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    /// How long an acked heartbeat holds the acking peer's vote, measured from when the
    /// heartbeat was sent. The minority side of a partition is fenced at most this long
    /// (times `1 + max_clock_drift`) after the cut. Default 900 ms, which fits under the
    /// default `down_after_min` of 1 s with 1% drift (bound: 980 ms).
    pub lease: Duration,
    /// The largest relative clock-rate error between any node's clock and real time, as a
    /// fraction (0.01 = 1%). Default 0.01; quartz is within 0.01% but VMs and NTP slewing
    /// are not.
    pub max_clock_drift: f64,
    /// How an exact half of the votes is decided. Default [`TieBreaker::LowestId`].
    pub tie_breaker: TieBreaker,
    /// When set, the node does not become writable for the first time until it has heard
    /// every voter once (like Corosync's `wait_for_all`): a freshly started minority cannot
    /// write before it has seen the full cluster. Default off.
    pub wait_for_all: bool,
    /// How many events a slow subscriber may fall behind before it sees `Lagged`.
    /// Default 1024.
    pub event_capacity: NonZeroUsize,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            lease: Duration::from_millis(900),
            max_clock_drift: 0.01,
            tie_breaker: TieBreaker::default(),
            wait_for_all: false,
            event_capacity: NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// A gate setting that cannot be used, with the values involved and the rule broken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GateConfigError {
    /// The lease would outlive the peers' down floor under the drift bound.
    #[error(
        "lease ({lease:?}) must be shorter than down_after_min ({down_after_min:?}) scaled by clock drift \
         {max_clock_drift}: at most {bound:?}"
    )]
    LeaseTooLong {
        /// Configured lease.
        lease: Duration,
        /// Configured down floor.
        down_after_min: Duration,
        /// Configured drift bound.
        max_clock_drift: f64,
        /// `down_after_min * (1 - rho) / (1 + rho)`, exclusive.
        bound: Duration,
    },
    /// The lease is too short to be renewed between heartbeats; the gate would flap.
    #[error("lease ({lease:?}) must be at least 2 x heartbeat_interval ({heartbeat_interval:?})")]
    LeaseTooShort {
        /// Configured lease.
        lease: Duration,
        /// Configured heartbeat interval.
        heartbeat_interval: Duration,
    },
    /// The drift bound is not a fraction in `[0, 0.5)`.
    #[error("max_clock_drift ({max_clock_drift}) must be a fraction in [0, 0.5), for example 0.01 for 1%")]
    BadDrift {
        /// Configured drift.
        max_clock_drift: f64,
    },
}

impl FieldError for GateConfigError {
    fn field(&self) -> String {
        match self {
            GateConfigError::LeaseTooLong { .. } | GateConfigError::LeaseTooShort { .. } => "lease",
            GateConfigError::BadDrift { .. } => "max_clock_drift",
        }
        .to_owned()
    }

    fn value(&self) -> String {
        match self {
            GateConfigError::LeaseTooLong { lease, .. } | GateConfigError::LeaseTooShort { lease, .. } => {
                format!("{lease:?}")
            }
            GateConfigError::BadDrift { max_clock_drift } => max_clock_drift.to_string(),
        }
    }
}

impl GateConfig {
    /// This configuration, if it passes every rule within the gate settings and against the
    /// detector's (the lease safety rule). The detector's settings passed their own rules.
    pub fn check(self, detector: &Valid<DetectorConfig>) -> Result<Valid<GateConfig>, GateConfigError> {
        Valid::check(self, detector)
    }
}

impl Rules for GateConfig {
    type Context = Valid<DetectorConfig>;
    type Error = GateConfigError;

    fn check_rules(&self, detector: &Valid<DetectorConfig>) -> Result<(), GateConfigError> {
        let rho = self.max_clock_drift;
        if !(0.0..0.5).contains(&rho) {
            return Err(GateConfigError::BadDrift { max_clock_drift: rho });
        }
        let bound = lease_bound(detector.down_after_min, rho);
        if self.lease >= bound {
            return Err(GateConfigError::LeaseTooLong {
                lease: self.lease,
                down_after_min: detector.down_after_min,
                max_clock_drift: rho,
                bound,
            });
        }
        if self.lease < detector.heartbeat_interval.saturating_mul(2) {
            return Err(GateConfigError::LeaseTooShort {
                lease: self.lease,
                heartbeat_interval: detector.heartbeat_interval,
            });
        }
        Ok(())
    }
}

/// The exclusive upper bound on the lease for a down floor and drift bound:
/// `down_after_min * (1 - rho) / (1 + rho)`, rounded down to the nanosecond.
pub fn lease_bound(down_after_min: Duration, max_clock_drift: f64) -> Duration {
    let factor = (1.0 - max_clock_drift) / (1.0 + max_clock_drift);
    if !factor.is_finite() || factor <= 0.0 {
        return Duration::ZERO;
    }
    Duration::from_nanos((down_after_min.as_nanos() as f64 * factor).floor() as u64)
}

/// The fencing promise (guarantee G2): a node cut off from every quorum at `c` is no longer
/// writable from `c + lease x (1 + rho)` on, measured in real time, whatever its clock's
/// rate within the drift bound. The one formula behind every fencing bound that tests,
/// benchmarks and the demo hold real nodes to (each adds its own scheduling margin).
/// A drift that gives no finite, non-negative bound gives `Duration::MAX`: no promise.
pub fn fence_promise(lease: Duration, max_clock_drift: f64) -> Duration {
    // `Duration::mul_f64` without its panic on a negative or non-finite product.
    Duration::try_from_secs_f64(lease.as_secs_f64() * (1.0 + max_clock_drift)).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan() -> Valid<DetectorConfig> {
        match DetectorConfig::default().check() {
            Ok(valid) => valid,
            Err(e) => panic!("the default detector settings are valid: {e}"),
        }
    }

    #[test]
    fn defaults_are_valid_with_default_detector() {
        assert_eq!(GateConfig::default().check(&lan()).map(drop), Ok(()));
    }

    #[test]
    fn lease_at_or_above_drift_scaled_floor_is_refused_naming_both_values() {
        let detector = lan(); // down_after_min 1 s
        let bound = lease_bound(detector.down_after_min, 0.01);
        assert_eq!(bound, Duration::from_nanos(980_198_019));
        let cfg = GateConfig { lease: bound, ..GateConfig::default() };
        let err = cfg.check(&detector).err();
        assert!(matches!(err, Some(GateConfigError::LeaseTooLong { .. })), "{err:?}");
        let named = err.as_ref().map(|e| (e.field(), e.value()));
        assert_eq!(named, Some(("lease".to_owned(), "980.198019ms".to_owned())));
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("lease (980.198019ms)") && text.contains("down_after_min (1s)"), "{text}");
        let ok = GateConfig { lease: bound - Duration::from_nanos(1), ..GateConfig::default() };
        assert_eq!(ok.check(&detector).map(drop), Ok(()));
    }

    #[test]
    fn fence_promise_is_the_lease_stretched_by_the_drift_bound() {
        assert_eq!(fence_promise(Duration::from_millis(900), 0.01), Duration::from_millis(909));
        assert_eq!(fence_promise(Duration::from_millis(900), 0.0), Duration::from_millis(900));
        assert_eq!(fence_promise(Duration::from_millis(2_500), 0.01), Duration::from_millis(2_525));
        for nonsense in [-2.0, f64::NAN, f64::INFINITY] {
            assert_eq!(fence_promise(Duration::from_secs(1), nonsense), Duration::MAX, "{nonsense}");
        }
    }

    #[test]
    fn zero_drift_allows_lease_just_under_floor() {
        let cfg =
            GateConfig { max_clock_drift: 0.0, lease: Duration::from_millis(999), ..GateConfig::default() };
        assert_eq!(cfg.check(&lan()).map(drop), Ok(()));
    }

    #[test]
    fn lease_too_short_and_bad_drift_are_refused() {
        let detector = lan();
        let short = GateConfig { lease: Duration::from_millis(150), ..GateConfig::default() };
        assert!(matches!(short.check(&detector), Err(GateConfigError::LeaseTooShort { .. })));
        for drift in [-0.1, 0.5, f64::NAN, f64::INFINITY] {
            let bad = GateConfig { max_clock_drift: drift, ..GateConfig::default() };
            let err = bad.check(&detector).err();
            assert!(matches!(err, Some(GateConfigError::BadDrift { .. })), "{drift}");
            assert_eq!(err.map(|e| e.field()).as_deref(), Some("max_clock_drift"));
        }
    }
}
