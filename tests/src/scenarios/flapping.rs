//! A link that flaps, with cuts both shorter and longer than the fence bound, on a seeded schedule.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn flapping(c: &mut Cluster) -> Result<Check, String> {
    let (minority, majority): (&[u64], &[u64]) = (&[1, 2], &[3, 4, 5]);
    let seed = seed();
    let plan = flap_schedule(seed, c.spec().timing.fence_bound());
    let (begin, _) = started(c)?;
    let mut cuts = Vec::new();
    for (cut_for, open_for) in plan {
        let cut =
            c.faults(&partition(minority, majority), &format!("flap: cut {}", groups(minority, majority)))?;
        sleep(cut_for);
        let open = c.faults(&[], "flap: reopen")?;
        cuts.push((cut, open));
        sleep(open_for);
    }
    let last = cuts.last().map(|(_, open)| open.clone()).ok_or("no flap happened")?;
    settle_after_heal(c, HEAL_BOUND);
    let (status, end) = finish(c);
    let timing = c.spec().timing;
    let all = c.spec().ids();
    Ok(Box::new(move |log, r| {
        r.info("seed", format!("QE2E_SEED={seed} ({} cuts in {})", cuts.len(), secs(us(FLAP_FOR) as i64)));
        r.check(&format!("majority {}", set(majority)), never_fenced(log, majority, begin.at_us, end.at_us));
        r.check("cuts longer than the fence bound", long_cuts_fenced(log, minority, &cuts, timing));
        r.check("heal after the last flap", healed_within(log, &all, &last, HEAL_BOUND));
        r.check("status", status);
    }))
}

/// The flapping link's plan from `seed`: (cut, reopen) durations drawn from
/// [`FLAP_CUT_MS`] and [`FLAP_OPEN_MS`] until they fill [`FLAP_FOR`], with at least one cut
/// longer than `fence_bound` (see [`FLAP_LONG_CUT_MS`]).
pub(super) fn flap_schedule(seed: u64, fence_bound: Duration) -> Vec<(Duration, Duration)> {
    let mut rng = SplitMix64(seed);
    let mut plan = Vec::new();
    let mut total = Duration::ZERO;
    // Bounded: every step adds at least FLAP_CUT_MS.0 + FLAP_OPEN_MS.0 (200 ms).
    while total < FLAP_FOR {
        let cut = Duration::from_millis(rng.between(FLAP_CUT_MS));
        let open = Duration::from_millis(rng.between(FLAP_OPEN_MS));
        total += cut + open;
        plan.push((cut, open));
    }
    if !plan.iter().any(|&(cut, _)| cut > fence_bound) {
        // `plan` is not empty: FLAP_FOR > 0. The `max` keeps the cut long should a slower
        // timing put the bound past FLAP_LONG_CUT_MS.
        let i = (rng.next() % plan.len() as u64) as usize;
        plan[i].0 = Duration::from_millis(rng.between(FLAP_LONG_CUT_MS)).max(fence_bound * 5 / 4);
    }
    plan
}

/// In every cut that lasted longer than the fence bound, every minority node was fenced by
/// the bound; for shorter cuts, reports how many fenced anyway (allowed: the lease may run
/// out before a short cut ends). Fails if no cut was long enough to require a fence.
pub(super) fn long_cuts_fenced(
    log: &Log,
    minority: &[u64],
    cuts: &[(Mark, Mark)],
    timing: Timing,
) -> Result<String, String> {
    let bound = us(timing.fence_bound());
    let mut long = 0;
    let mut fence_times = Vec::new();
    let mut short_fenced = 0;
    for (cut, open) in cuts {
        if open.at_us.saturating_sub(cut.at_us) > bound {
            long += 1;
            let deadline = cut.at_us + bound;
            for &node in minority {
                if log.writable_at(node, deadline) {
                    return Err(format!(
                        "node {node} still writable {} into a {} cut",
                        secs(bound as i64),
                        secs((open.at_us - cut.at_us) as i64)
                    ));
                }
                if let Some(lost) = log.of(node, Kind::QuorumLost, cut.at_us, deadline).next() {
                    fence_times.push(lost.at_us - cut.at_us);
                }
            }
        } else if minority
            .iter()
            .any(|&n| log.of(n, Kind::QuorumLost, cut.at_us, open.at_us).next().is_some())
        {
            short_fenced += 1;
        }
    }
    if long == 0 {
        return Err(format!(
            "none of the {} cuts lasted longer than the fence bound {}: no fence was checked",
            cuts.len(),
            secs(bound as i64)
        ));
    }
    let fence = match (fence_times.iter().min(), fence_times.iter().max()) {
        (Some(&lo), Some(&hi)) => format!("fenced {}-{} after the cut", secs(lo as i64), secs(hi as i64)),
        _ => "no quorum_lost logged".into(),
    };
    Ok(format!(
        "{long} of {} cuts; {fence} (bound {}); shorter cuts that fenced anyway: {short_fenced}",
        cuts.len(),
        secs(bound as i64)
    ))
}

/// The flapping scenario's seed: `QE2E_SEED` if set, else from the clock.
pub(super) fn seed() -> u64 {
    std::env::var("QE2E_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    })
}

/// SplitMix64: a small, seedable generator, enough to pick flap durations.
pub(super) struct SplitMix64(pub(super) u64);

impl SplitMix64 {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]` (modulo bias is irrelevant here).
    pub(super) fn between(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}
