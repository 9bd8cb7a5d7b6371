//! The reconfiguration nemesis (`reconfigure-random-5`): random changes proposed through
//! `Node::propose` on random running members, raced by partitions, crashes, restarts,
//! pauses and loss, every checker judging each node under the definition and version it
//! runs. A driver that skips the one-change-at-a-time rule is caught; and a gap the
//! nemesis found in the core (two changes of one version made on the two sides of a
//! partition) is replayed so that its fix shows.

use quorate_sim::setup::Tie;
use quorate_sim::{run, Bug, Fault, Scenario, Sim, Stats};

fn nemesis(seed: u64) -> Scenario {
    Scenario::named("reconfigure-random-5", seed, None, None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn random_changes_raced_by_faults_hold_every_invariant() {
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for seed in 0..400 {
        let report = run(nemesis(seed), seed).unwrap_or_else(|e| panic!("{e}"));
        if let Some(f) = &report.failure {
            failures.push(f.to_string());
        }
        total.merge(&report.stats);
    }
    println!("reconfigure-random-5 x 400 seeds\n{}", total.render());
    assert!(failures.is_empty(), "{} failing runs; first:\n{}", failures.len(), failures[0]);
    // The nemesis exercised what it is for: every kind of refusal, removals, added members.
    let c = total.changes;
    assert!(c.proposed > 8_000 && c.accepted > 2_000, "{c}");
    assert!(c.refused_pending > 400 && c.refused_unsafe > 400 && c.refused_change > 400, "{c}");
    assert!(c.removed > 200 && c.members_started > 200 && c.fresh_starts > 200, "{c}");
    assert!(c.adopted > 3 * c.accepted, "peers followed the changes: {c}");
    assert!(total.peer_fenced > 400 && total.fence_voter.len() > 400);
}

/// Changes that skip the one-at-a-time rule let a side of a partition add members one
/// after the other until it holds a quorum of a later version disjoint from a quorum the
/// other side still holds of the earlier one: the new members never heard the other side,
/// so no joint rule stops them.
#[test]
fn quorum_intersection_catches_a_proposer_that_skips_one_change_at_a_time() {
    let mut caught = Vec::new();
    for seed in 0..20 {
        let mut s = nemesis(seed);
        s.definitions[0].tie = Tie::None;
        // The storms alone: random changes before them would take the slots they add.
        s.faults.retain(|f| !matches!(f.fault, Fault::Propose { grow: false, .. }));
        // The same runs with the rule kept break nothing.
        if let Some(f) = run(s.clone(), seed).unwrap_or_else(|e| panic!("{e}")).failure {
            panic!("{f}");
        }
        s.bugs = (0..s.nodes).map(|node| Bug::HastyProposer { node }).collect();
        let Some(f) = Sim::new(s, seed).unwrap_or_else(|e| panic!("{e}")).run().failure else { continue };
        assert!(f.to_string().contains("--bug hasty-proposer:1"), "{f}");
        caught.push((seed, f.violation.invariant));
    }
    let split = caught.iter().filter(|(_, inv)| *inv == "quorum-intersection").count();
    // 9 of 20 when measured: the storm must leave the other side a quorum of the earlier
    // version and bring the growing side enough slots.
    assert!(split >= 6, "split brain in {split} of 20 seeds: {caught:?}");
}

/// Known gap in the core, found by the nemesis: two different definitions of one version,
/// proposed on the two sides of a partition (each side had heard every voter run the
/// version before, so each passed the one-at-a-time rule). In seed 525 (partition
/// {n2,n3,n5} | {n1,n4,n6,n7,n8} at 20.8 s) n1 makes version 11 {n1,n2,n4:0,n8} (adding
/// n8) and n2 makes version 11 {n2,n4:0} (removing n1). n8 starts, follows n1's version
/// and is writable on {n1,n8}. After the heal (23.2 s) n2's version has the lower digest:
/// n1 follows it and leaves; n2, whose only voter peer is now itself, makes version 12
/// {n2} at once (every voter of version 11, itself, runs it) and writes on {n2} at 24.0 s,
/// while n8 still holds the vote n1 lent it under the other version 11 (n8 is no member of
/// n2's definitions, so no joint rule of n2 counts it): no voter in common. Seeds 532 and
/// 788 break the same way (3 of 1,000 seeds). This test replays it; once the core closes
/// the gap, it fails and is to be turned into a passing run of the seed.
#[test]
fn known_gap_two_changes_of_one_version_across_a_partition_split_the_cluster() {
    let report = run(nemesis(525), 525).unwrap_or_else(|e| panic!("{e}"));
    let Some(f) = report.failure else { panic!("seed 525 passes now: the gap is closed, update this test") };
    assert_eq!(f.violation.invariant, "quorum-intersection");
    assert!(f.violation.detail.contains("n2 is writable with the votes of {n2}"), "{f}");
    assert!(f.timeline.contains("which removes it: it leaves"), "{f}");
}
