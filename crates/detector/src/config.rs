//! Detector configuration: the knobs, their defaults, two presets and the rules across them.
//!
//! Every rule of thumb from the literature that can be checked without measuring the
//! network is a rule of [`DetectorConfig::check`], so a bad configuration fails at start-up
//! with a message naming the field, its value and the rule, instead of causing flapping or,
//! worse, an early down-verdict that breaks lease safety.

use std::num::NonZeroUsize;
use std::time::Duration;

use quorate_proto::{FieldError, Rules, Valid};

use crate::phi::WINDOW_LEN_MAX;

/// Smallest sliding window that yields a standard deviation at all.
pub const WINDOW_LEN_MIN: usize = 2;

/// How the detector turns heartbeat arrivals into Reachable / Suspect / Unreachable.
///
/// Start from [`DetectorConfig::lan`] or [`DetectorConfig::wan`], change single fields, then
/// [`DetectorConfig::check`]: [`crate::Detector::new`] takes only a checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// How often each peer sends a heartbeat. The detector ticks at this rate (see
    /// [`crate::Detector::poll_timeout`]). Default 100 ms.
    pub heartbeat_interval: Duration,
    /// Hard floor: a peer is never declared Unreachable sooner than this after it was last
    /// heard, nor sooner than this after the detector started. Leases are sized against it,
    /// so it is a safety bound, not a tuning knob. Must be at least 2 x
    /// `heartbeat_interval`. Default 1 s.
    pub down_after_min: Duration,
    /// Phi at which a peer becomes Suspect (informational: the quorum only counts
    /// Unreachable). Default 5.0, about 1 chance in 10^5 that the peer is merely late.
    pub suspect_phi: f64,
    /// Phi at which a peer becomes Unreachable, once the `down_after_min` floor has also
    /// passed. Default 8.0.
    pub down_phi: f64,
    /// Inter-arrival samples kept per peer, between 2 and
    /// [`WINDOW_LEN_MAX`]. Default 100 (10 s of history at the
    /// default interval).
    pub window_len: NonZeroUsize,
    /// Floor on the measured standard deviation, so a perfectly regular peer does not turn
    /// Suspect on the first millisecond of jitter. Default 20 ms.
    pub min_std_dev: Duration,
    /// Extra silence tolerated on top of the expected arrival before phi rises, e.g. for
    /// known garbage-collection pauses. Default 0.
    pub acceptable_pause: Duration,
    /// Assumed inter-arrival time before any sample exists; seeds each window so phi is
    /// meaningful from the first heartbeat. Default = `heartbeat_interval`.
    pub first_heartbeat_estimate: Duration,
    /// A gap longer than this between two [`crate::Detector::handle_timeout`] calls means
    /// this node itself was stalled (GC, suspend, overloaded runtime); peers then get a
    /// fresh grace period instead of being convicted for our own silence. Must be at least
    /// 2 x `heartbeat_interval`. Default 500 ms.
    pub stall_threshold: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        let heartbeat_interval = Duration::from_millis(100);
        DetectorConfig {
            heartbeat_interval,
            down_after_min: Duration::from_secs(1),
            suspect_phi: 5.0,
            down_phi: 8.0,
            window_len: NonZeroUsize::MIN.saturating_add(99),
            min_std_dev: Duration::from_millis(20),
            acceptable_pause: Duration::ZERO,
            first_heartbeat_estimate: heartbeat_interval,
            stall_threshold: Duration::from_millis(500),
        }
    }
}

impl DetectorConfig {
    /// Preset for a data-centre network (sub-millisecond RTT, little jitter): the defaults.
    pub fn lan() -> Self {
        DetectorConfig::default()
    }

    /// Preset for links across regions: heartbeats every 250 ms, down floor 3 s, at least
    /// 100 ms standard deviation, stall threshold 1.5 s.
    pub fn wan() -> Self {
        let heartbeat_interval = Duration::from_millis(250);
        DetectorConfig {
            heartbeat_interval,
            down_after_min: Duration::from_secs(3),
            min_std_dev: Duration::from_millis(100),
            first_heartbeat_estimate: heartbeat_interval,
            stall_threshold: Duration::from_millis(1500),
            ..DetectorConfig::default()
        }
    }

    /// This configuration, if it passes every rule across its fields (the first broken rule
    /// is reported).
    ///
    /// Rules: `heartbeat_interval > 0`; `down_after_min >= 2 x heartbeat_interval`;
    /// `suspect_phi` and `down_phi` finite and `> 0`, `suspect_phi <= down_phi`;
    /// `stall_threshold >= 2 x heartbeat_interval`; `2 <= window_len <= WINDOW_LEN_MAX`;
    /// `first_heartbeat_estimate > 0`.
    pub fn check(self) -> Result<Valid<DetectorConfig>, DetectorConfigError> {
        Valid::check(self, &())
    }
}

impl Rules for DetectorConfig {
    type Context = ();
    type Error = DetectorConfigError;

    fn check_rules(&self, (): &()) -> Result<(), DetectorConfigError> {
        let heartbeat_interval = self.heartbeat_interval;
        if heartbeat_interval.is_zero() {
            return Err(DetectorConfigError::HeartbeatIntervalZero);
        }
        let twice = heartbeat_interval.saturating_mul(2);
        if self.down_after_min < twice {
            return Err(DetectorConfigError::DownAfterMinTooShort {
                down_after_min: self.down_after_min,
                heartbeat_interval,
            });
        }
        if !(self.suspect_phi.is_finite() && self.suspect_phi > 0.0) {
            return Err(DetectorConfigError::SuspectPhiInvalid { suspect_phi: self.suspect_phi });
        }
        if !(self.down_phi.is_finite() && self.down_phi > 0.0) {
            return Err(DetectorConfigError::DownPhiInvalid { down_phi: self.down_phi });
        }
        if self.suspect_phi > self.down_phi {
            return Err(DetectorConfigError::SuspectAboveDown {
                suspect_phi: self.suspect_phi,
                down_phi: self.down_phi,
            });
        }
        if self.stall_threshold < twice {
            return Err(DetectorConfigError::StallThresholdTooShort {
                stall_threshold: self.stall_threshold,
                heartbeat_interval,
            });
        }
        let window_len = self.window_len.get();
        if !(WINDOW_LEN_MIN..=WINDOW_LEN_MAX).contains(&window_len) {
            return Err(DetectorConfigError::WindowLenOutOfRange {
                window_len,
                min: WINDOW_LEN_MIN,
                max: WINDOW_LEN_MAX,
            });
        }
        if self.first_heartbeat_estimate.is_zero() {
            return Err(DetectorConfigError::FirstHeartbeatEstimateZero);
        }
        Ok(())
    }
}

/// Why a [`DetectorConfig`] (or the peer list handed to [`crate::Detector::new`]) was
/// refused. Nothing was started when this is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DetectorConfigError {
    /// A zero interval would mean heartbeats are expected continuously.
    #[error("heartbeat_interval must be greater than zero")]
    HeartbeatIntervalZero,
    /// The down floor must allow at least one lost heartbeat.
    #[error(
        "down_after_min ({down_after_min:?}) must be at least 2 x heartbeat_interval \
         ({heartbeat_interval:?})"
    )]
    DownAfterMinTooShort {
        /// The configured floor.
        down_after_min: Duration,
        /// The configured interval.
        heartbeat_interval: Duration,
    },
    /// The suspect threshold is NaN, infinite, zero or negative.
    #[error("suspect_phi ({suspect_phi}) must be finite and greater than zero")]
    SuspectPhiInvalid {
        /// The configured threshold.
        suspect_phi: f64,
    },
    /// The down threshold is NaN, infinite, zero or negative.
    #[error("down_phi ({down_phi}) must be finite and greater than zero")]
    DownPhiInvalid {
        /// The configured threshold.
        down_phi: f64,
    },
    /// A peer must be suspected no later than it is declared down.
    #[error("suspect_phi ({suspect_phi}) must not exceed down_phi ({down_phi})")]
    SuspectAboveDown {
        /// The configured suspect threshold.
        suspect_phi: f64,
        /// The configured down threshold.
        down_phi: f64,
    },
    /// A stall threshold below two intervals would call ordinary timer jitter a stall.
    #[error(
        "stall_threshold ({stall_threshold:?}) must be at least 2 x heartbeat_interval \
         ({heartbeat_interval:?})"
    )]
    StallThresholdTooShort {
        /// The configured stall threshold.
        stall_threshold: Duration,
        /// The configured interval.
        heartbeat_interval: Duration,
    },
    /// The window cannot compute a standard deviation, or would use unbounded memory.
    #[error("window_len ({window_len}) must be between {min} and {max}")]
    WindowLenOutOfRange {
        /// The configured length.
        window_len: usize,
        /// [`WINDOW_LEN_MIN`].
        min: usize,
        /// [`WINDOW_LEN_MAX`].
        max: usize,
    },
    /// A zero estimate would seed the window with a zero mean and deviation.
    #[error("first_heartbeat_estimate must be greater than zero")]
    FirstHeartbeatEstimateZero,
    /// More peers than [`PEERS_MAX`](crate::PEERS_MAX) were handed to the detector.
    #[error("more than {max} distinct peers given; at most {max} are supported")]
    TooManyPeers {
        /// [`PEERS_MAX`](crate::PEERS_MAX).
        max: usize,
    },
}

impl FieldError for DetectorConfigError {
    fn field(&self) -> String {
        use DetectorConfigError as E;
        let field = match self {
            E::HeartbeatIntervalZero => "heartbeat_interval",
            E::DownAfterMinTooShort { .. } => "down_after_min",
            E::SuspectPhiInvalid { .. } | E::SuspectAboveDown { .. } => "suspect_phi",
            E::DownPhiInvalid { .. } => "down_phi",
            E::StallThresholdTooShort { .. } => "stall_threshold",
            E::WindowLenOutOfRange { .. } => "window_len",
            E::FirstHeartbeatEstimateZero => "first_heartbeat_estimate",
            E::TooManyPeers { .. } => "peers",
        };
        field.to_owned()
    }

    fn value(&self) -> String {
        use DetectorConfigError as E;
        match self {
            E::HeartbeatIntervalZero | E::FirstHeartbeatEstimateZero => format!("{:?}", Duration::ZERO),
            E::DownAfterMinTooShort { down_after_min, .. } => format!("{down_after_min:?}"),
            E::SuspectPhiInvalid { suspect_phi } | E::SuspectAboveDown { suspect_phi, .. } => {
                suspect_phi.to_string()
            }
            E::DownPhiInvalid { down_phi } => down_phi.to_string(),
            E::StallThresholdTooShort { stall_threshold, .. } => format!("{stall_threshold:?}"),
            E::WindowLenOutOfRange { window_len, .. } => window_len.to_string(),
            E::TooManyPeers { .. } => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() -> Result<(), DetectorConfigError> {
        DetectorConfig::default().check()?;
        DetectorConfig::lan().check()?;
        DetectorConfig::wan().check()?;
        assert_eq!(DetectorConfig::lan(), DetectorConfig::default());
        Ok(())
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = DetectorConfig::default();
        assert_eq!(c.heartbeat_interval, Duration::from_millis(100));
        assert_eq!(c.down_after_min, Duration::from_secs(1));
        assert_eq!((c.suspect_phi, c.down_phi), (5.0, 8.0));
        assert_eq!(c.window_len.get(), 100);
        assert_eq!(c.min_std_dev, Duration::from_millis(20));
        assert_eq!(c.acceptable_pause, Duration::ZERO);
        assert_eq!(c.first_heartbeat_estimate, c.heartbeat_interval);
        assert_eq!(c.stall_threshold, Duration::from_millis(500));
    }

    #[test]
    fn wan_preset_is_slower_and_more_tolerant() {
        let c = DetectorConfig::wan();
        assert_eq!(c.heartbeat_interval, Duration::from_millis(250));
        assert_eq!(c.down_after_min, Duration::from_secs(3));
        assert_eq!(c.min_std_dev, Duration::from_millis(100));
        assert_eq!(c.stall_threshold, Duration::from_millis(1500));
        assert_eq!(c.first_heartbeat_estimate, c.heartbeat_interval);
    }

    #[test]
    fn zero_interval_is_refused() {
        let c = DetectorConfig { heartbeat_interval: Duration::ZERO, ..DetectorConfig::default() };
        assert_eq!(c.check().map(drop), Err(DetectorConfigError::HeartbeatIntervalZero));
    }

    #[test]
    fn down_floor_below_two_intervals_is_refused_with_an_actionable_message() {
        let c = DetectorConfig { down_after_min: Duration::from_millis(150), ..DetectorConfig::default() };
        let err = c.check().err();
        assert_eq!(
            err.as_ref().map(ToString::to_string).as_deref(),
            Some("down_after_min (150ms) must be at least 2 x heartbeat_interval (100ms)")
        );
        let named = err.map(|e| (e.field(), e.value()));
        assert_eq!(named, Some(("down_after_min".to_owned(), "150ms".to_owned())));
    }

    #[test]
    fn down_floor_of_exactly_two_intervals_is_accepted() {
        let c = DetectorConfig {
            down_after_min: Duration::from_millis(200),
            stall_threshold: Duration::from_millis(200),
            ..DetectorConfig::default()
        };
        assert_eq!(c.check().map(drop), Ok(()));
    }

    #[test]
    fn thresholds_must_be_finite_positive_and_ordered() {
        let base = DetectorConfig::default();
        for bad in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
            let c = DetectorConfig { suspect_phi: bad, ..base.clone() };
            assert!(matches!(c.check().map(drop), Err(DetectorConfigError::SuspectPhiInvalid { .. })));
            let c = DetectorConfig { down_phi: bad, ..base.clone() };
            assert!(matches!(c.check().map(drop), Err(DetectorConfigError::DownPhiInvalid { .. })));
        }
        let c = DetectorConfig { suspect_phi: 9.0, ..base };
        assert_eq!(
            c.check().map(drop),
            Err(DetectorConfigError::SuspectAboveDown { suspect_phi: 9.0, down_phi: 8.0 })
        );
    }

    #[test]
    fn stall_threshold_below_two_intervals_is_refused() {
        let c = DetectorConfig { stall_threshold: Duration::from_millis(199), ..DetectorConfig::default() };
        assert!(matches!(c.check().map(drop), Err(DetectorConfigError::StallThresholdTooShort { .. })));
    }

    #[test]
    fn window_len_must_be_between_two_and_the_maximum() {
        let c = DetectorConfig { window_len: NonZeroUsize::MIN, ..DetectorConfig::default() };
        assert!(matches!(c.check().map(drop), Err(DetectorConfigError::WindowLenOutOfRange { .. })));
        let c = DetectorConfig { window_len: NonZeroUsize::MAX, ..DetectorConfig::default() };
        assert!(matches!(c.check().map(drop), Err(DetectorConfigError::WindowLenOutOfRange { .. })));
    }

    #[test]
    fn zero_first_heartbeat_estimate_is_refused() {
        let c = DetectorConfig { first_heartbeat_estimate: Duration::ZERO, ..DetectorConfig::default() };
        assert_eq!(c.check().map(drop), Err(DetectorConfigError::FirstHeartbeatEstimateZero));
    }

    #[test]
    fn huge_durations_do_not_overflow_validation() {
        let c = DetectorConfig {
            heartbeat_interval: Duration::MAX,
            first_heartbeat_estimate: Duration::MAX,
            ..DetectorConfig::default()
        };
        assert!(matches!(c.check().map(drop), Err(DetectorConfigError::DownAfterMinTooShort { .. })));
    }
}
