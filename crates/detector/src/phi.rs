//! The phi accrual suspicion level and the window of inter-arrival times it is computed from.
//!
//! Phi (Hayashibara et al., 2004) turns "how long since we last heard from a peer" into a
//! suspicion level on a log scale: `phi = -log10(P(a heartbeat arrives later than this))`,
//! with the arrival time modelled as a normal distribution whose mean and standard deviation
//! come from the recent inter-arrival times. `phi = 1` means a 10 % chance the peer is merely
//! late, `phi = 8` one chance in 10^8.
//!
//! Unlike Akka, which approximates the normal CDF with a logistic curve, [`phi`] uses the
//! real normal tail (via `erfc`), so it can be checked against published tables. In the far
//! tail, where `erfc` underflows to zero, it switches to the asymptotic expansion of
//! `ln erfc`, so phi keeps growing instead of jumping to infinity.
//!
//! The detector does not evaluate phi on every tick: [`z_for_phi`] inverts it once per
//! threshold, and the crossing instant is then `last_heard + mean + z * std_dev`.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::time::Duration;

/// Smallest standard deviation [`phi`] will divide by, in milliseconds.
///
/// A zero or negative standard deviation is meaningless for a normal distribution; flooring
/// it keeps phi finite and monotone instead of producing NaN.
pub const STD_DEV_FLOOR_MS: f64 = 1e-9;

/// Largest standard deviation [`phi`] accepts, in milliseconds; larger (or infinite) values
/// are capped so that `elapsed / std_dev` never becomes `inf / inf`.
const STD_DEV_CAP_MS: f64 = 1e300;

/// Bound on the z-score, so `z^2` never overflows. At this bound phi is about 2e11, far
/// beyond any useful threshold.
pub const Z_MAX: f64 = 1e6;

/// Where the computation switches from `libm::erfc` to the asymptotic expansion, in units of
/// `z / sqrt(2)`. `erfc(25)` is about 8e-274, still a normal `f64`; beyond about 26.5 it
/// underflows. At 25 the first omitted term of the series is below 1e-10, relative.
const ERFC_SEAM: f64 = 25.0;

/// Longest inter-arrival interval the window records; longer gaps are clamped to it so one
/// outage cannot dominate the statistics for the rest of the window. 60 s.
pub const INTERVAL_MAX: Duration = Duration::from_secs(60);

/// Most samples an [`ArrivalWindow`] keeps, whatever capacity it is asked for. It bounds
/// memory per peer and keeps the integer sums far from overflow.
pub const WINDOW_LEN_MAX: usize = 10_000;

/// Iterations [`z_for_phi`] spends bisecting at most; 200 halvings of `2 * Z_MAX` reach the
/// resolution of an `f64` long before the bound.
const BISECTION_STEPS_MAX: u32 = 200;

/// Suspicion level for a peer last heard `elapsed_ms` milliseconds ago, when inter-arrival
/// times follow a normal distribution with mean `mean_ms` and standard deviation
/// `std_dev_ms` (all milliseconds).
///
/// `phi = -log10(1 - F(elapsed_ms))` with `F` the normal CDF. Guarantees, for every input:
///
/// * the result is finite and `>= 0`;
/// * it is monotone non-decreasing in `elapsed_ms`;
/// * it is exactly `0.0` when `elapsed_ms <= 0` — deliberately, not `-log10(1 - F(0))`:
///   when no time has passed there is no evidence against the peer, whatever the
///   distribution says;
/// * it is `0.0` when any input is NaN (no evidence either);
/// * a zero, negative or tiny `std_dev_ms` is raised to [`STD_DEV_FLOOR_MS`].
pub fn phi(elapsed_ms: f64, mean_ms: f64, std_dev_ms: f64) -> f64 {
    if elapsed_ms.is_nan() || mean_ms.is_nan() || std_dev_ms.is_nan() || elapsed_ms <= 0.0 {
        return 0.0;
    }
    // Infinite means are replaced by the largest finite value so that `elapsed - mean`
    // cannot be `inf - inf`; the result is the same for any finite elapsed.
    let mean = mean_ms.clamp(-f64::MAX, f64::MAX);
    let std_dev = std_dev_ms.clamp(STD_DEV_FLOOR_MS, STD_DEV_CAP_MS);
    let z = (elapsed_ms - mean) / std_dev;
    phi_standard(z)
}

/// The z-score at which phi reaches `threshold`: the smallest `z` (to `f64` resolution) with
/// `phi(mean + z * std_dev, mean, std_dev) >= threshold`.
///
/// A detector calls it once per configured threshold and then computes the instant at
/// which a peer crosses it as `last_heard + mean + z * std_dev`, instead of evaluating phi
/// on every tick. Found by bisection over `[-Z_MAX, Z_MAX]`. A threshold `<= 0` yields
/// `-Z_MAX` (phi is always at least 0); a NaN threshold or one beyond phi's range yields
/// `Z_MAX` (never crossed in practice).
pub fn z_for_phi(threshold: f64) -> f64 {
    if threshold.is_nan() || phi_standard(Z_MAX) < threshold {
        return Z_MAX;
    }
    if threshold <= 0.0 {
        return -Z_MAX;
    }
    // Invariant: phi_standard(lo) < threshold <= phi_standard(hi).
    let (mut lo, mut hi) = (-Z_MAX, Z_MAX);
    for _ in 0..BISECTION_STEPS_MAX {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        if phi_standard(mid) >= threshold {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Phi of a standardized z-score: `-log10(0.5 * erfc(z / sqrt 2))`, finite and monotone.
fn phi_standard(z: f64) -> f64 {
    let x = z.clamp(-Z_MAX, Z_MAX) / core::f64::consts::SQRT_2;
    let phi = if x < ERFC_SEAM {
        -libm::log10(0.5 * libm::erfc(x))
    } else {
        // The asymptotic series and erfc differ by less than 1e-10 at the seam, but they are
        // different formulas: taking the max keeps phi monotone across it.
        let at_seam = -libm::log10(0.5 * libm::erfc(ERFC_SEAM));
        // -log10(0.5 * erfc(x)) = (ln 2 - ln erfc(x)) / ln 10
        let tail = (core::f64::consts::LN_2 - ln_erfc_asymptotic(x)) / core::f64::consts::LN_10;
        tail.max(at_seam)
    };
    // `-log10(1.0)` is `-0.0`, and rounding can leave a hair below zero: report 0.
    if phi > 0.0 {
        phi
    } else {
        0.0
    }
}

/// `ln erfc(x)` for large positive `x` (here `x >= 25`):
/// `-x^2 - ln(x sqrt(pi)) + ln(1 - 1/(2x^2) + 3/(4x^4) - 15/(8x^6))`.
fn ln_erfc_asymptotic(x: f64) -> f64 {
    // ln(sqrt(pi))
    const LN_SQRT_PI: f64 = 0.572_364_942_924_700_1;
    let inv2 = 1.0 / (x * x);
    let series = 1.0 - inv2 / 2.0 + 3.0 * inv2 * inv2 / 4.0 - 15.0 * inv2 * inv2 * inv2 / 8.0;
    -(x * x) - (libm::log(x) + LN_SQRT_PI) + libm::log(series)
}

/// A bounded sliding window of heartbeat inter-arrival intervals, with their mean and
/// standard deviation maintained in O(1) per sample.
///
/// Intervals are stored as whole microseconds and summed in integers, so the statistics are
/// exact and never drift however many samples pass through (a floating running sum would
/// accumulate rounding error over millions of heartbeats).
#[derive(Debug, Clone)]
pub struct ArrivalWindow {
    intervals_us: VecDeque<u64>,
    capacity: usize,
    /// Sum of the intervals in the window, microseconds. At most
    /// `WINDOW_LEN_MAX * 60e6 = 6e11`.
    sum_us: u128,
    /// Sum of the squared intervals, microseconds squared. At most `WINDOW_LEN_MAX * 3.6e15`.
    sum_sq_us: u128,
}

impl ArrivalWindow {
    /// An empty window keeping the last `capacity` intervals (at most [`WINDOW_LEN_MAX`]).
    pub fn new(capacity: NonZeroUsize) -> Self {
        ArrivalWindow {
            intervals_us: VecDeque::new(),
            capacity: capacity.get().min(WINDOW_LEN_MAX),
            sum_us: 0,
            sum_sq_us: 0,
        }
    }

    /// A window seeded, as Akka does, with two samples `estimate ± estimate / 4`: mean
    /// `estimate`, standard deviation `estimate / 4`. Phi is then meaningful from the very
    /// first heartbeat; the seeds age out as real samples arrive.
    pub fn seeded(capacity: NonZeroUsize, estimate: Duration) -> Self {
        let mut window = ArrivalWindow::new(capacity);
        let quarter = estimate / 4;
        window.push(estimate.saturating_sub(quarter));
        window.push(estimate.saturating_add(quarter));
        window
    }

    /// Records one inter-arrival interval, truncated to whole microseconds and clamped to
    /// [`INTERVAL_MAX`]; evicts the oldest when the window is full.
    pub fn push(&mut self, interval: Duration) {
        let us = interval.min(INTERVAL_MAX).as_micros();
        // INTERVAL_MAX is 6e7 microseconds, so the conversion cannot fail.
        let us = u64::try_from(us).unwrap_or(u64::MAX);
        if self.intervals_us.len() >= self.capacity {
            if let Some(old) = self.intervals_us.pop_front() {
                let old = u128::from(old);
                self.sum_us -= old;
                self.sum_sq_us -= old * old;
            }
        }
        let wide = u128::from(us);
        self.sum_us += wide;
        self.sum_sq_us += wide * wide;
        self.intervals_us.push_back(us);
    }

    /// Keeps at most `capacity` intervals (at most [`WINDOW_LEN_MAX`]) from now on,
    /// dropping the oldest beyond it.
    pub fn set_capacity(&mut self, capacity: NonZeroUsize) {
        self.capacity = capacity.get().min(WINDOW_LEN_MAX);
        while self.intervals_us.len() > self.capacity {
            if let Some(old) = self.intervals_us.pop_front() {
                let old = u128::from(old);
                self.sum_us -= old;
                self.sum_sq_us -= old * old;
            }
        }
    }

    /// Number of intervals currently held (seeds included).
    pub fn len(&self) -> usize {
        self.intervals_us.len()
    }

    /// Whether the window holds no interval.
    pub fn is_empty(&self) -> bool {
        self.intervals_us.is_empty()
    }

    /// Most intervals the window keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Mean interval in microseconds; 0 for an empty window.
    pub fn mean_us(&self) -> f64 {
        match self.intervals_us.len() {
            0 => 0.0,
            n => self.sum_us as f64 / n as f64,
        }
    }

    /// Population standard deviation of the intervals, in microseconds; 0 for an empty
    /// window. Computed as `sqrt((n * sum_sq - sum^2) / n^2)` with the numerator exact in
    /// integers, so it never goes negative through cancellation.
    pub fn std_dev_us(&self) -> f64 {
        let n = self.intervals_us.len() as u128;
        if n == 0 {
            return 0.0;
        }
        // Cauchy-Schwarz makes n * sum_sq >= sum^2; saturating_sub only guards the proof.
        let numerator = (n * self.sum_sq_us).saturating_sub(self.sum_us * self.sum_us);
        let variance = numerator as f64 / (n * n) as f64;
        variance.sqrt()
    }

    /// Mean interval in milliseconds, the unit [`phi`] takes.
    pub fn mean_ms(&self) -> f64 {
        self.mean_us() / 1_000.0
    }

    /// Standard deviation in milliseconds, the unit [`phi`] takes.
    pub fn std_dev_ms(&self) -> f64 {
        self.std_dev_us() / 1_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(actual: f64, expected: f64, rel: f64) -> bool {
        (actual - expected).abs() <= rel * expected.abs()
    }

    #[test]
    fn phi_matches_published_normal_tail_values() {
        // 1 - Phi(k) for k standard deviations, from standard normal tables.
        let table = [
            (1.0, 0.158_655_253_931_457),
            (2.0, 0.022_750_131_948_179),
            (3.0, 0.001_349_898_031_630),
            (5.0, 2.866_515_718_791e-7),
            (10.0, 7.619_853_024_160e-24),
        ];
        for (k, tail) in table {
            let expected = -libm::log10(tail);
            let got = phi(100.0 + k * 20.0, 100.0, 20.0);
            assert!(close(got, expected, 1e-3), "k={k}: phi {got} vs {expected}");
        }
        assert!(close(phi(120.0, 100.0, 20.0), 0.7995, 1e-3));
        assert!(close(phi(140.0, 100.0, 20.0), 1.6430, 1e-3));
        assert!(close(phi(160.0, 100.0, 20.0), 2.8697, 1e-3));
        assert!(close(phi(200.0, 100.0, 20.0), 6.5421, 1e-3));
        assert!(close(phi(300.0, 100.0, 20.0), 23.118, 1e-3));
    }

    #[test]
    fn phi_at_the_mean_is_log10_of_two() {
        assert!(close(phi(100.0, 100.0, 20.0), core::f64::consts::LOG10_2, 1e-12));
    }

    #[test]
    fn phi_is_zero_when_no_time_has_passed_or_inputs_are_nan() {
        assert_eq!(phi(0.0, 100.0, 20.0), 0.0);
        assert_eq!(phi(-5.0, -100.0, 20.0), 0.0);
        assert_eq!(phi(f64::NAN, 100.0, 20.0), 0.0);
        assert_eq!(phi(50.0, f64::NAN, 20.0), 0.0);
        assert_eq!(phi(50.0, 100.0, f64::NAN), 0.0);
    }

    #[test]
    fn phi_stays_finite_in_the_far_tail() {
        for (e, m, s) in [
            (1e300, 100.0, 20.0),
            (1e300, 0.0, 1e-300),
            (1.0, 0.0, 0.0),
            (1.0, 0.0, -3.0),
            (f64::INFINITY, 100.0, 20.0),
            (f64::INFINITY, f64::INFINITY, f64::INFINITY),
            (f64::MAX, -f64::MAX, 1e-300),
        ] {
            let p = phi(e, m, s);
            assert!(p.is_finite() && p >= 0.0, "phi({e}, {m}, {s}) = {p}");
        }
        assert!(phi(1e300, 100.0, 20.0) > 1e9);
    }

    #[test]
    fn asymptotic_tail_continues_erfc_at_the_seam() {
        let z_seam = ERFC_SEAM * core::f64::consts::SQRT_2;
        let below = phi_standard(z_seam * (1.0 - 1e-12));
        let above = phi_standard(z_seam * (1.0 + 1e-12));
        assert!(below <= above);
        assert!(close(above, below, 1e-9), "{below} vs {above}");
        // The expansion itself agrees with erfc where both are representable.
        let direct = libm::log(libm::erfc(20.0));
        assert!(close(ln_erfc_asymptotic(20.0), direct, 1e-9));
    }

    #[test]
    fn z_for_phi_inverts_phi() {
        for threshold in [0.5, 1.0, 3.0, 5.0, 8.0, 16.0, 100.0, 1000.0] {
            let z = z_for_phi(threshold);
            let at = phi(100.0 + z * 20.0, 100.0, 20.0);
            assert!(close(at, threshold, 1e-9), "threshold {threshold}: z {z} gives {at}");
        }
        // phi = 8 is reached at about 5.6 standard deviations.
        assert!(close(z_for_phi(8.0), 5.612, 1e-3));
    }

    #[test]
    fn z_for_phi_saturates_outside_phi_range() {
        assert_eq!(z_for_phi(0.0), -Z_MAX);
        assert_eq!(z_for_phi(-1.0), -Z_MAX);
        assert_eq!(z_for_phi(f64::NAN), Z_MAX);
        assert_eq!(z_for_phi(1e300), Z_MAX);
    }

    #[test]
    fn seeded_window_has_the_estimate_as_mean_and_a_quarter_as_std_dev() {
        let w = ArrivalWindow::seeded(NonZeroUsize::MIN.saturating_add(99), Duration::from_millis(100));
        assert_eq!(w.len(), 2);
        assert!(close(w.mean_ms(), 100.0, 1e-12));
        assert!(close(w.std_dev_ms(), 25.0, 1e-12));
    }

    #[test]
    fn window_clamps_long_intervals_and_evicts_the_oldest() {
        let mut w = ArrivalWindow::new(NonZeroUsize::MIN.saturating_add(1));
        w.push(Duration::from_secs(3600));
        assert!(close(w.mean_us(), 60e6, 1e-12));
        w.push(Duration::from_millis(10));
        w.push(Duration::from_millis(30));
        assert_eq!(w.len(), 2);
        assert!(close(w.mean_ms(), 20.0, 1e-12));
        assert!(close(w.std_dev_ms(), 10.0, 1e-12));
    }

    #[test]
    fn window_capacity_is_bounded() {
        let w = ArrivalWindow::new(NonZeroUsize::MAX);
        assert_eq!(w.capacity(), WINDOW_LEN_MAX);
        assert!(w.is_empty());
        assert_eq!((w.mean_us(), w.std_dev_us()), (0.0, 0.0));
    }

    proptest! {
        #[test]
        fn phi_is_monotone_in_elapsed(
            a in any::<f64>(), b in any::<f64>(), mean in any::<f64>(), sd in any::<f64>(),
        ) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(phi(lo, mean, sd) <= phi(hi, mean, sd));
        }

        #[test]
        fn phi_is_monotone_for_nearby_elapsed_in_realistic_ranges(
            e in 0.0f64..1e7, step in 0.0f64..1.0, mean in 0.0f64..1e5, sd in 0.0f64..1e4,
        ) {
            prop_assert!(phi(e, mean, sd) <= phi(e + step, mean, sd));
        }

        #[test]
        fn phi_is_finite_and_non_negative_everywhere(
            e in any::<f64>(), mean in any::<f64>(), sd in any::<f64>(),
        ) {
            let p = phi(e, mean, sd);
            prop_assert!(p.is_finite() && p >= 0.0);
        }

        #[test]
        fn phi_is_zero_for_non_positive_elapsed(
            e in -1e300f64..=0.0, mean in any::<f64>(), sd in any::<f64>(),
        ) {
            prop_assert_eq!(phi(e, mean, sd), 0.0);
        }

        #[test]
        fn window_stats_equal_a_two_pass_computation(
            capacity in 1usize..40,
            samples in proptest::collection::vec(0u64..120_000_000, 0..200),
        ) {
            let cap = NonZeroUsize::new(capacity).ok_or_else(|| TestCaseError::fail("zero"))?;
            let mut w = ArrivalWindow::new(cap);
            for &us in &samples {
                w.push(Duration::from_micros(us));
            }
            let kept: Vec<f64> = samples
                .iter()
                .skip(samples.len().saturating_sub(capacity))
                .map(|&us| us.min(60_000_000) as f64)
                .collect();
            prop_assert_eq!(w.len(), kept.len());
            if !kept.is_empty() {
                let n = kept.len() as f64;
                let mean = kept.iter().sum::<f64>() / n;
                let var = kept.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                prop_assert!((w.mean_us() - mean).abs() <= 1e-9 * mean.max(1.0));
                prop_assert!((w.std_dev_us() - var.sqrt()).abs() <= 1e-6 * mean.max(1.0));
            }
        }
    }
}
