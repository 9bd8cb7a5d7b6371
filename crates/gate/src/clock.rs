//! The clock the gate checks leases against.
//!
//! The gate's hot path compares the clock with an atomically published deadline, so the
//! clock it reads must be the very clock the node's core is driven with. [`Clock::system`]
//! reads `CLOCK_BOOTTIME` on Linux (through the vDSO, no syscall): monotonic, and unlike
//! `CLOCK_MONOTONIC` it keeps counting while the machine is suspended, so a lease that
//! expired during a suspend is expired on wake. Elsewhere it falls back to the platform's
//! monotonic clock. [`Clock::manual`] is a clock that tests and the simulator set by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quorate_proto::Instant;

/// A monotonic clock shared by a node's core and its gate handles. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Clock(Kind);

#[derive(Debug, Clone)]
enum Kind {
    System,
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The machine's clock that counts across suspend (`CLOCK_BOOTTIME` on Linux).
    pub fn system() -> Self {
        Clock(Kind::System)
    }

    /// A clock that reads `start` until moved with [`ManualClock`].
    pub fn manual(start: Instant) -> (Self, ManualClock) {
        let cell = Arc::new(AtomicU64::new(start.as_nanos()));
        (Clock(Kind::Manual(cell.clone())), ManualClock(cell))
    }

    /// The current reading.
    #[inline]
    pub fn now(&self) -> Instant {
        match &self.0 {
            Kind::System => system_now(),
            Kind::Manual(cell) => Instant::from_nanos(cell.load(Ordering::Acquire)),
        }
    }
}

/// The hand that moves a [`Clock::manual`] clock.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// Sets the clock to `to`. A manual clock may be set backwards; the gate stays safe
    /// (a lease deadline is compared with whatever the clock reads) but tests should not.
    pub fn set(&self, to: Instant) {
        self.0.store(to.as_nanos(), Ordering::Release);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let now = Instant::from_nanos(self.0.load(Ordering::Acquire));
        self.set(now + by);
    }

    /// The current reading.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.0.load(Ordering::Acquire))
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn system_now() -> Instant {
    timespec_to_instant(rustix::time::clock_gettime(rustix::time::ClockId::Boottime))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
fn system_now() -> Instant {
    timespec_to_instant(rustix::time::clock_gettime(rustix::time::ClockId::Monotonic))
}

#[inline]
fn timespec_to_instant(ts: rustix::time::Timespec) -> Instant {
    // A monotonic clock never reads negative; clamp rather than trust it.
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    Instant::from_nanos(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_monotonic_and_moves() {
        let clock = Clock::system();
        let a = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        let b = clock.now();
        assert!(b > a);
        assert!(b - a >= Duration::from_millis(2));
    }

    #[test]
    fn manual_clock_moves_only_by_hand() {
        let (clock, hand) = Clock::manual(Instant::from_nanos(10));
        assert_eq!(clock.now(), Instant::from_nanos(10));
        hand.advance(Duration::from_nanos(5));
        assert_eq!(clock.now(), Instant::from_nanos(15));
        let copy = clock.clone();
        hand.set(Instant::from_nanos(100));
        assert_eq!(copy.now(), Instant::from_nanos(100));
    }
}
