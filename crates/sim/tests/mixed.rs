//! Nodes on different configurations: lan and wan presets side by side, restarts that
//! switch a node's preset, and different quorum definitions (a 3 -> 5 rollout half done,
//! two tie-breakers, different votes). Every invariant holds in the named scenarios and in
//! random ones; with the cross-node rules switched off (`local_only_terms`: every heartbeat
//! reaches its receiver carrying the receiver's own lease and definition, as if each node
//! only knew its own file) the checker aimed at each rule reports the run, by name.

use quorate_sim::clock::MS;
use quorate_sim::{run, RunReport, Scenario, Sim, Stats};

fn named(name: &str, seed: u64) -> Scenario {
    Scenario::named(name, seed, None, None).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `name` for `seeds` with only the checker `only` and local-only rules; returns the
/// seeds in which that checker fired.
fn caught_without_cross_node_rules(name: &str, seeds: u64, only: &str) -> Vec<u64> {
    let mut caught = Vec::new();
    for seed in 0..seeds {
        let mut s = named(name, seed);
        s.local_only_terms = true;
        let sim = Sim::new(s, seed).unwrap_or_else(|e| panic!("{e}")).only(&[only]);
        let Some(f) = sim.run().failure else { continue };
        assert_eq!(f.violation.invariant, only);
        let text = f.to_string();
        assert!(
            text.contains(&format!("--scenario {name}")) && text.contains("--local-only-terms"),
            "{text}"
        );
        caught.push(seed);
    }
    caught
}

fn passes(report: &RunReport) -> &Stats {
    if let Some(f) = &report.failure {
        panic!("{f}");
    }
    &report.stats
}

/// The 2.5 s wan lease is 2.525 s with drift: a node on wan that is cut off is fenced
/// later than a lan node may be and no later than its own bound; lan peers wait for it.
#[test]
fn a_rolling_lan_to_wan_change_holds_every_node_to_its_own_lease() {
    let mut latencies = Vec::new();
    for seed in 0..8 {
        let report = run(named("rolling-wan-5", seed), seed).unwrap_or_else(|e| panic!("{e}"));
        latencies.extend_from_slice(&passes(&report).fence_voter);
    }
    let lan_bound = 909 * MS + 1_000;
    let wan_bound = 2_525 * MS + 1_000;
    assert!(latencies.iter().any(|ns| *ns > lan_bound), "wan nodes are held to their longer lease");
    assert!(latencies.iter().all(|ns| *ns <= wan_bound), "{latencies:?}");
}

#[test]
fn lease_safety_catches_lan_peers_that_ignore_a_wan_lease() {
    let caught = caught_without_cross_node_rules("rolling-wan-5", 8, "lease-safety");
    assert!(caught.len() >= 7, "caught in seeds {caught:?}");
}

#[test]
fn quorum_intersection_catches_two_tie_breakers_counting_votes_across() {
    let caught = caught_without_cross_node_rules("tie-breakers-4", 8, "quorum-intersection");
    assert!(caught.len() >= 7, "caught in seeds {caught:?}");
}

#[test]
fn quorum_intersection_catches_a_half_done_rollout_counting_votes_across() {
    let caught = caught_without_cross_node_rules("rollout-3-to-5", 8, "quorum-intersection");
    assert!(caught.len() >= 7, "caught in seeds {caught:?}");
}

#[test]
fn quorum_intersection_catches_different_votes_counted_across() {
    let caught = caught_without_cross_node_rules("votes-3", 8, "quorum-intersection");
    assert!(caught.len() >= 7, "caught in seeds {caught:?}");
}

/// Counting a vote across definitions also shows as a node that is writable although no
/// quorum of its own definition runs its definition with it.
#[test]
fn fence_bound_catches_a_node_writing_on_votes_of_another_definition() {
    let caught = caught_without_cross_node_rules("votes-3", 8, "fence-bound");
    assert!(caught.len() >= 6, "caught in seeds {caught:?}");
}

/// The bound is each node's own: clocks beyond the drift bound break it on mixed presets.
#[test]
fn fence_bound_catches_clocks_beyond_rho_on_mixed_presets() {
    let mut caught = Vec::new();
    for seed in 0..12 {
        let mut s = named("rolling-wan-5", seed);
        s.drift_scale = 25.0;
        let sim = Sim::new(s, seed).unwrap_or_else(|e| panic!("{e}")).only(&["fence-bound"]);
        if let Some(f) = sim.run().failure {
            assert!(f.to_string().contains("--drift-scale 25"), "{f}");
            caught.push(seed);
        }
    }
    // About four seeds in five break the bound (24 of 30 when measured).
    assert!(caught.len() >= 6, "caught in seeds {caught:?}");
}

/// During a half-done 3 -> 5 rollout a node on three members restarts, cut off from n3 but
/// reaching the other node on three, while n4 (which never hears n1 or n2: neither lists
/// the other) is writable on {n3,n4,n5}. The new life knows from its disk that n3 runs five
/// members, so it is not writable on {n1,n2} before it hears n3 again. With the memory forgotten (`--forget-promises`: no promises, no definitions),
/// `quorum-intersection` reports the split brain in most seeds: the check can fail.
#[test]
fn a_restart_during_a_half_done_rollout_remembers_the_other_definition() {
    let mut caught = Vec::new();
    for seed in 0..10 {
        passes(&run(named("rollout-restart-5", seed), seed).unwrap_or_else(|e| panic!("{e}")));
        let mut forgetful = named("rollout-restart-5", seed);
        forgetful.forget_promises = true;
        let sim = Sim::new(forgetful, seed).unwrap_or_else(|e| panic!("{e}")).only(&["quorum-intersection"]);
        if let Some(f) = sim.run().failure {
            assert!(f.violation.detail.starts_with("split brain"), "{f}");
            caught.push(seed);
        }
    }
    assert!(caught.len() >= 8, "split brain without the memory in seeds {caught:?} only");
}
