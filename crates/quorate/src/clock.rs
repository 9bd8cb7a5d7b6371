//! Clock conversions for logs: the gate runs on `CLOCK_BOOTTIME`, event logs are stamped
//! with `CLOCK_MONOTONIC` so that tools can use the most common time base.

use quorate_gate::Clock;
use quorate_proto::Instant;

/// Microseconds of `CLOCK_MONOTONIC` now.
pub fn monotonic_us() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

/// Converts an instant of the system gate clock (`CLOCK_BOOTTIME`) to microseconds of
/// `CLOCK_MONOTONIC`. The two differ by the time the machine spent suspended since boot,
/// a constant between suspends.
pub fn gate_to_monotonic_us(at: Instant) -> u64 {
    let boot_now = Clock::system().now().as_nanos() / 1_000;
    let mono_now = monotonic_us();
    let offset = boot_now.saturating_sub(mono_now);
    (at.as_nanos() / 1_000).saturating_sub(offset)
}
