//! Every named scenario and a few hundred random ones hold every invariant. Each test
//! prints the simulated node-hours it covered (`cargo test -p quorate-sim -- --nocapture`).

use quorate_sim::{run, Scenario, Stats, LOSS_BOUND, NAMED};

fn check_all(label: &str, runs: impl Iterator<Item = (u64, Scenario)>) -> Stats {
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for (seed, scenario) in runs {
        let report = run(scenario, seed).unwrap_or_else(|e| panic!("{e}"));
        if let Some(f) = &report.failure {
            failures.push(f.to_string());
        }
        total.merge(&report.stats);
    }
    println!(
        "{label}: {} runs, {:.3} simulated node-hours\n{}",
        total.runs,
        total.node_hours(),
        total.render()
    );
    assert!(failures.is_empty(), "{} failing runs; first:\n{}", failures.len(), failures[0]);
    total
}

fn named(name: &'static str, seeds: std::ops::Range<u64>) -> impl Iterator<Item = (u64, Scenario)> {
    seeds.map(move |seed| (seed, Scenario::named(name, seed, None, None).unwrap_or_else(|e| panic!("{e}"))))
}

#[test]
fn named_scenarios_hold_every_invariant() {
    let mut total = Stats::default();
    for name in NAMED {
        let stats = check_all(&format!("{name} x 30 seeds"), named(name, 0..30));
        // Where a node is cut off (or paused) past the floor, the majority must announce it
        // fenced: a run of these with no PeerFenced would check G7 against nothing.
        let cuts_off = [
            "clean-split-5",
            "asymmetric-5",
            "pause-leader",
            "restart-during-fence-check",
            "rolling-wan-5",
            "rollout-3-to-5",
            "tie-breakers-4",
            "votes-3",
        ];
        if cuts_off.contains(name) {
            assert!(stats.peer_fenced >= 30, "{name}: only {} PeerFenced in 30 runs", stats.peer_fenced);
        }
        total.merge(&stats);
    }
    assert!(total.fence_voter.len() > 100, "partitions did fence minorities");
    // The longest lease is the wan preset's 2.5 s, x 1.01 for drift; the fence-bound
    // checker holds each node to its own (909 ms on lan) at every step.
    let bound = 2_525_000_000 + 1_000;
    assert!(total.fence_voter.iter().all(|ns| *ns <= bound));
    assert!(!total.heal.is_empty() && !total.rejoin.is_empty());
}

#[test]
fn random_scenarios_of_two_to_nine_nodes_hold_every_invariant() {
    let runs = (0..300u64).map(|seed| {
        let nodes = 2 + (seed % 8) as usize;
        (seed, Scenario::random(seed, Some(nodes), None).unwrap_or_else(|e| panic!("{e}")))
    });
    check_all("random scenarios, 2..9 nodes x 300 seeds", runs);
}

#[test]
fn random_scenarios_with_observers_hold_every_invariant() {
    let runs = (1_000..1_012u64).map(|seed| {
        let nodes = [12, 20, 50][(seed % 3) as usize];
        (seed, Scenario::random(seed, Some(nodes), None).unwrap_or_else(|e| panic!("{e}")))
    });
    let total = check_all("random scenarios, 12..50 nodes x 12 seeds", runs);
    assert!(!total.fence_observer.is_empty(), "observers were cut off and fenced too");
}

/// Random runs of mixed configurations: half on one definition with lan and wan presets
/// mixed (every fault kind, restarts that flip a preset), half with two definitions (two
/// tie-breakers, or different votes) and restarts that move a node between them.
#[test]
fn random_mixed_configurations_hold_every_invariant() {
    let runs = (0..150u64).map(|seed| {
        (seed, Scenario::named("random-mixed", seed, None, None).unwrap_or_else(|e| panic!("{e}")))
    });
    let total = check_all("random mixed configurations x 150 seeds", runs);
    assert!(!total.rejoin.is_empty(), "heal was checked in the runs on one definition");
    assert!(total.fence_voter.iter().any(|ns| *ns > 909_001_000), "wan nodes were cut off and fenced");
    assert!(total.peer_fenced > 0);
}

#[test]
fn loss_at_the_documented_bound_never_fences_a_connected_majority() {
    // 3 voters give every node redundancy 2; 5 voters give redundancy 3 (see LOSS_BOUND).
    let at_bound = |voters: usize, r: usize, seed: u64| {
        let pct = (LOSS_BOUND[r - 1] * 100.0).round() as u32;
        let name = format!("loss-{pct}pct-{voters}");
        (seed, Scenario::named(&name, seed, None, None).unwrap_or_else(|e| panic!("{e}")))
    };
    let runs = (0..4).map(|seed| at_bound(3, 2, seed)).chain((0..4).map(|seed| at_bound(5, 3, seed)));
    let total = check_all("loss at the documented bound", runs);
    assert_eq!(total.loss_fences, 0);
}
