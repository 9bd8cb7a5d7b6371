//! What gossip and fence checks may do, and the rules that keep fence checks sound.

use std::time::Duration;

use quorate_proto::{FieldError, Rules, Valid};

/// Gossip of reachability rows and fence checks.
#[derive(Debug, Clone, PartialEq)]
pub struct GossipConfig {
    /// Off: no rows, no partition view, no `PeerAliveElsewhere`/`PeerDownEverywhere`/
    /// `PeerFenced` events. Heartbeats, leases and the gate work the same either way.
    pub enabled: bool,
    /// Time between gossip rounds. Default 250 ms.
    pub interval: Duration,
    /// Peers each round talks to, chosen at random. Default 2: messages per node per round
    /// stay constant however large the cluster grows.
    pub fanout: usize,
    /// Budget for the rows in one message, in encoded bytes. Default 16 KiB; rows that do
    /// not fit go in later rounds.
    pub bytes_max: usize,
    /// A row counts (for liveness, the partition view and fence nominations) while its
    /// owner was heard within this long: by this node, or by the owner of a row that
    /// counts (rounds mark them). Default 500 ms: two rounds, so one late round does not
    /// drop a row, and a cut-off owner's row stops counting half a second after the rows
    /// of those who heard it say so.
    pub fresh_for: Duration,
    /// For the partition view, a peer counts as not heard by its accusers only when at
    /// least this many fresh rows say it is down. Default 1 (every row is believed).
    pub corroboration: usize,
    /// How long a fence check waits for answers. Default 300 ms.
    pub fence_timeout: Duration,
    /// How long a member that answers "yes, down" withholds acks from the peer in
    /// question (its own clock). Default 400 ms. Must exceed `fence_timeout` by the drift
    /// margin, or no check could conclude. This is what a fence check can cost a heal
    /// that races it: the peer regains this member's vote up to `fence_hold` later.
    pub fence_hold: Duration,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            enabled: true,
            interval: Duration::from_millis(250),
            fanout: 2,
            bytes_max: 16 * 1024,
            fresh_for: Duration::from_millis(500),
            corroboration: 1,
            fence_timeout: Duration::from_millis(300),
            fence_hold: Duration::from_millis(400),
        }
    }
}

/// Why a [`GossipConfig`] was refused. Each message names the field, its value and the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GossipConfigError {
    /// A duration that must be positive is zero.
    #[error("gossip.{field} must be greater than zero")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// Rows would go stale between two rounds.
    #[error("gossip.fresh_for ({fresh_for:?}) must be at least 2 x gossip.interval ({interval:?})")]
    FreshTooShort {
        /// The configured freshness window.
        fresh_for: Duration,
        /// The configured round interval.
        interval: Duration,
    },
    /// Fence checks could never conclude.
    #[error(
        "gossip.fence_hold ({hold:?}) x (1 - max_clock_drift) must exceed gossip.fence_timeout \
         ({timeout:?}) x (1 + max_clock_drift), max_clock_drift = {drift}"
    )]
    HoldTooShort {
        /// The configured hold.
        hold: Duration,
        /// The configured check timeout.
        timeout: Duration,
        /// The drift bound.
        drift: f64,
    },
    /// A row budget too small for even one small row.
    #[error("gossip.bytes_max ({bytes_max}) must be between {min} and {max} bytes")]
    BytesMax {
        /// The configured budget.
        bytes_max: usize,
        /// The smallest accepted.
        min: usize,
        /// The largest accepted (what a stream message holds, less room for the digest).
        max: usize,
    },
}

/// Smallest accepted [`GossipConfig::bytes_max`].
pub const GOSSIP_BYTES_MIN: usize = 256;
/// Largest accepted [`GossipConfig::bytes_max`]: half a stream message, leaving the other
/// half for the digest.
pub const GOSSIP_BYTES_MAX: usize = quorate_proto::STREAM_BYTES_MAX / 2;

impl FieldError for GossipConfigError {
    fn field(&self) -> String {
        match self {
            GossipConfigError::Zero { field } => field,
            GossipConfigError::FreshTooShort { .. } => "fresh_for",
            GossipConfigError::HoldTooShort { .. } => "fence_hold",
            GossipConfigError::BytesMax { .. } => "bytes_max",
        }
        .to_owned()
    }

    fn value(&self) -> String {
        match self {
            GossipConfigError::Zero { .. } => "0".to_owned(),
            GossipConfigError::FreshTooShort { fresh_for, .. } => format!("{fresh_for:?}"),
            GossipConfigError::HoldTooShort { hold, .. } => format!("{hold:?}"),
            GossipConfigError::BytesMax { bytes_max, .. } => bytes_max.to_string(),
        }
    }
}

impl GossipConfig {
    /// This configuration, if it passes every rule (none when gossip is off); `drift` is the
    /// gate's `max_clock_drift`, which fence checks must allow for.
    pub fn check(self, drift: f64) -> Result<Valid<GossipConfig>, GossipConfigError> {
        Valid::check(self, &drift)
    }
}

impl Rules for GossipConfig {
    type Context = f64;
    type Error = GossipConfigError;

    fn check_rules(&self, &drift: &f64) -> Result<(), GossipConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let named = [
            ("interval", self.interval),
            ("fresh_for", self.fresh_for),
            ("fence_timeout", self.fence_timeout),
            ("fence_hold", self.fence_hold),
        ];
        if let Some((field, _)) = named.iter().find(|(_, d)| d.is_zero()) {
            return Err(GossipConfigError::Zero { field });
        }
        if self.fanout == 0 {
            return Err(GossipConfigError::Zero { field: "fanout" });
        }
        if self.corroboration == 0 {
            return Err(GossipConfigError::Zero { field: "corroboration" });
        }
        if self.fresh_for < self.interval.saturating_mul(2) {
            return Err(GossipConfigError::FreshTooShort {
                fresh_for: self.fresh_for,
                interval: self.interval,
            });
        }
        if self.fence_hold.as_secs_f64() * (1.0 - drift) <= self.fence_timeout.as_secs_f64() * (1.0 + drift) {
            return Err(GossipConfigError::HoldTooShort {
                hold: self.fence_hold,
                timeout: self.fence_timeout,
                drift,
            });
        }
        if !(GOSSIP_BYTES_MIN..=GOSSIP_BYTES_MAX).contains(&self.bytes_max) {
            return Err(GossipConfigError::BytesMax {
                bytes_max: self.bytes_max,
                min: GOSSIP_BYTES_MIN,
                max: GOSSIP_BYTES_MAX,
            });
        }
        Ok(())
    }
}
