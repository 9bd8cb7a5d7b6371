//! A 1000-node cluster (5 voters, 995 observers) runs in the simulator, and an observer's
//! load does not grow with the cluster.

use quorate_sim::clock::SEC;
use quorate_sim::{run, Scenario, Stats};

fn split(nodes: usize, secs: u64) -> Stats {
    let s =
        Scenario::named("clean-split-5", 1, Some(nodes), Some(secs * SEC)).unwrap_or_else(|e| panic!("{e}"));
    let report = run(s, 1).unwrap_or_else(|e| panic!("{e}"));
    if let Some(f) = &report.failure {
        panic!("{f}");
    }
    println!("{nodes} nodes:\n{}", report.stats.render());
    report.stats
}

#[test]
fn a_thousand_node_cluster_is_fenced_on_the_minority_side_within_the_bound() {
    // The first split starts between 2 and 3 s; 4.5 s covers it and the fence.
    let big = split(1_000, 5);
    assert!(big.fence_observer.len() > 300, "{} observers fenced", big.fence_observer.len());
    assert!(big.fence_voter.len() == 2);
    assert!(big.fence_observer.iter().chain(&big.fence_voter).all(|ns| *ns <= 909_001_000));
}

#[test]
fn observer_load_stays_constant_as_the_cluster_grows() {
    let small = split(50, 3);
    let large = split(400, 3);
    let (s, l) = (small.observer_load().0, large.observer_load().0);
    assert!((s - l).abs() / s < 0.05, "per-observer msg/s: {s} at 50 nodes, {l} at 400");
    // Voters heartbeat everyone: their load grows with the cluster.
    assert!(large.voter_load().0 > 6.0 * small.voter_load().0);
}
