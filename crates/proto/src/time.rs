//! Time as the protocol sees it: readings of one node's monotonic clock.
//!
//! quorate does not use `std::time::Instant` for protocol time, for two reasons:
//!
//! * On Linux `std::time::Instant` is `CLOCK_MONOTONIC`, which stops while the machine is
//!   suspended. A lease must keep running across a suspend, so the runtime reads
//!   `CLOCK_BOOTTIME` and hands the value in as an [`Instant`].
//! * The quorum gate publishes its lease deadline in an atomic `u64` that `can_write()`
//!   compares with the clock; the simulator needs to build arbitrary instants. Both want a
//!   plain number of nanoseconds.
//!
//! An [`Instant`] is only comparable with instants of the same node's clock. Nothing on the
//! wire carries an instant: leases are computed from the sender's own send times.

use core::fmt;
use core::ops::{Add, Sub};
use std::time::Duration;

/// A reading of a node's monotonic clock, in nanoseconds since an arbitrary origin.
///
/// Arithmetic saturates: adding a duration to [`Instant::MAX`] stays at `MAX`, and
/// subtracting a later instant yields [`Duration::ZERO`]. Saturation errs on the safe side
/// for every use in quorate (a lease never wraps into the past or the far future).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);
    /// The end of time; a lease that never expires (a single-voter cluster) ends here.
    pub const MAX: Instant = Instant(u64::MAX);

    /// The instant `nanos` nanoseconds after the clock's origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the clock's origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_nanos(d)))
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_nanos(d)))
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (584 years).
fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        self.saturating_sub(d)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Instant::MAX {
            return f.write_str("Instant(MAX)");
        }
        write!(f, "Instant({}.{:06}s)", self.0 / 1_000_000_000, (self.0 % 1_000_000_000) / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Instant::from_nanos(5);
        assert_eq!(t - Duration::from_nanos(10), Instant::ZERO);
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(t - Instant::from_nanos(9), Duration::ZERO);
        assert_eq!(Instant::from_nanos(9) - t, Duration::from_nanos(4));
        assert_eq!(t + Duration::MAX, Instant::MAX);
    }

    #[test]
    fn debug_shows_seconds_and_micros() {
        let t = Instant::from_nanos(1_500_002_000);
        assert_eq!(format!("{t:?}"), "Instant(1.500002s)");
    }
}
