//! Virtual real time and each node's drifting local clock.
//!
//! The simulator keeps one global **real** time in nanoseconds since the start of the run.
//! Every node reads its own monotonic clock, which starts at a random offset and runs at a
//! constant rate within the drift bound. The model is the one the lease rule assumes
//! (`docs/guarantees.md`): one second of a node's clock lasts between `1 - rho` and
//! `1 + rho` real seconds. Integer arithmetic only, so a run is bit-for-bit reproducible on
//! every platform.

use quorate_proto::Instant;

/// Nanoseconds in a millisecond.
pub const MS: u64 = 1_000_000;

/// Nanoseconds in a second.
pub const SEC: u64 = 1_000 * MS;

/// Parts per billion: the unit of a clock's rate error.
const PPB: i128 = 1_000_000_000;

/// One node's local monotonic clock, as a function of real time.
///
/// `local(real) = offset + floor(real * 1e9 / (1e9 + stretch_ppb))`, where `stretch_ppb` is
/// how many nanoseconds longer than a nanosecond one local nanosecond lasts, in billionths
/// (positive: a slow clock). `|stretch_ppb| <= rho * 1e9`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimClock {
    /// Local nanoseconds at real time zero.
    offset: u64,
    /// Real nanoseconds per local nanosecond, minus one, in parts per billion.
    stretch_ppb: i64,
}

impl SimClock {
    /// A clock reading `offset` at real time zero whose local second lasts
    /// `1 + stretch_ppb / 1e9` real seconds. `stretch_ppb` is clamped to +/- 50%.
    pub fn new(offset: u64, stretch_ppb: i64) -> Self {
        let bound = 500_000_000;
        SimClock { offset, stretch_ppb: stretch_ppb.clamp(-bound, bound) }
    }

    /// The clock's reading at real time `real` (nanoseconds since the run started).
    pub fn local(&self, real: u64) -> Instant {
        let scaled = i128::from(real) * PPB / (PPB + i128::from(self.stretch_ppb));
        let scaled = u64::try_from(scaled).unwrap_or(u64::MAX);
        Instant::from_nanos(self.offset.saturating_add(scaled))
    }

    /// The first real instant at which the clock reads at least `local`; zero for readings
    /// before the run started.
    pub fn real_at(&self, local: Instant) -> u64 {
        let since = i128::from(local.as_nanos().saturating_sub(self.offset));
        let num = since * (PPB + i128::from(self.stretch_ppb));
        // Ceiling division, then walk at most a couple of nanoseconds to absorb the floor in
        // `local`: the loop is bounded because each step moves the reading by about 1 ns.
        let mut real = u64::try_from((num + PPB - 1) / PPB).unwrap_or(u64::MAX);
        for _ in 0..4 {
            if real == 0 || self.local(real - 1) < local {
                break;
            }
            real -= 1;
        }
        for _ in 0..4 {
            if self.local(real) >= local || real == u64::MAX {
                break;
            }
            real += 1;
        }
        real
    }

    /// The rate error in parts per billion (positive: slow clock).
    pub fn stretch_ppb(&self) -> i64 {
        self.stretch_ppb
    }
}

/// Converts a drift fraction (`0.01` for 1%) to parts per billion.
pub fn fraction_to_ppb(fraction: f64) -> i64 {
    // Drift fractions are validated to lie in [0, 0.5); the cast cannot overflow.
    (fraction * 1e9).round() as i64
}

/// Formats real nanoseconds as milliseconds with three decimals, for timelines.
pub fn fmt_ms(real: u64) -> String {
    format!("{}.{:03}", real / MS, (real % MS) / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_clock_reads_less_than_real_time_and_real_at_inverts_local() {
        let c = SimClock::new(5_000, 10_000_000); // 1% slow
        assert_eq!(c.local(0), Instant::from_nanos(5_000));
        let local = c.local(SEC);
        assert!(local.as_nanos() - 5_000 < SEC && local.as_nanos() - 5_000 > SEC * 98 / 100);
        for real in [0, 1, 7, 999, SEC, 3 * SEC + 17] {
            let l = c.local(real);
            let back = c.real_at(l);
            assert!(back <= real && c.local(back) >= l, "{real} -> {l:?} -> {back}");
            assert!(back == 0 || c.local(back - 1) < l);
        }
    }

    #[test]
    fn fast_clock_reads_more_and_the_lease_stretch_stays_within_rho() {
        let fast = SimClock::new(0, -10_000_000);
        let lease = 900 * MS;
        let start = fast.local(SEC);
        let end = fast.real_at(start + std::time::Duration::from_nanos(lease));
        let elapsed = end - SEC;
        assert!(elapsed <= lease * 101 / 100 + 1 && elapsed >= lease * 99 / 100, "{elapsed}");
    }

    #[test]
    fn readings_before_the_offset_map_to_real_zero() {
        let c = SimClock::new(1_000, 0);
        assert_eq!(c.real_at(Instant::from_nanos(3)), 0);
        assert_eq!(fmt_ms(1_234_567), "1.234");
    }
}
