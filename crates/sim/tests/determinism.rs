//! Same seed + same code = same run, bit for bit; different seeds explore different runs.

use quorate_sim::{run, RunReport, Scenario};

fn once(name: Option<&str>, seed: u64, nodes: Option<usize>) -> RunReport {
    let scenario = match name {
        Some(n) => Scenario::named(n, seed, nodes, None),
        None => Scenario::random(seed, nodes, None),
    };
    let scenario = scenario.unwrap_or_else(|e| panic!("{e}"));
    run(scenario, seed).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_same_seed_replays_the_same_timeline_bit_for_bit() {
    let runs = [
        (None, 3, None),
        (Some("clean-split-5"), 9, None),
        (Some("bridge-5"), 4, Some(40)),
        (Some("restart-during-fence-check"), 2, None),
        (Some("random-mixed"), 7, None),
    ];
    for (name, seed, nodes) in runs {
        let a = once(name, seed, nodes);
        let b = once(name, seed, nodes);
        assert_eq!(a.digest, b.digest, "{name:?} seed {seed}");
        assert_eq!(a.timeline, b.timeline, "{name:?} seed {seed}");
        assert_eq!(a.stats, b.stats, "{name:?} seed {seed}");
        assert!(a.stats.events > 500, "{name:?}: a real run, not an empty one");
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let digests: std::collections::BTreeSet<u64> = (0..6).map(|seed| once(None, seed, None).digest).collect();
    assert_eq!(digests.len(), 6);
    let a = once(Some("loss-30pct-5"), 1, None);
    let b = once(Some("loss-30pct-5"), 2, None);
    assert_ne!(a.digest, b.digest);
}
