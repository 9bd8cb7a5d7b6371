//! The reconfiguration nemesis (`reconfigure-random-5`): random changes proposed through
//! `Node::propose` on random running members, raced by partitions, crashes, restarts,
//! pauses and loss, every checker judging each node under the definition and version it
//! runs. A driver that skips the one-change-at-a-time rule is caught; and the seeds that
//! found two gaps in the core (two changes of one version made on the two sides of a
//! partition; a vote held two versions back) are replayed so that their fixes show.

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

/// Two gaps the nemesis found in the core. Before the fixes these seeds broke
/// quorum-intersection (13 of 5,000 seeds); they pass now. (Since then the nemesis also
/// switches timing presets, which changes what each seed draws: the runs below are no
/// longer exactly the ones described, and the 5,000-seed runs are the regression check.)
///
/// * Seed 525: two definitions of one version made on the two sides of a partition (each
///   side had heard every voter run the version before). n1 made version 11 adding n8,
///   n2 made version 11 removing n1; after the heal n2's won, n1 left, and n2 (version
///   11's only voter) made version 12 and wrote on {n2} while n8 still held the vote n1
///   had lent it under the other version 11. Fixed by commitment: a definition is
///   committed once a quorum of its parent's voters runs it; until then the parent stays
///   in the joint rule and no next change is made, and a node leaves a definition of its
///   version only for a committed one.
/// * Seed 788: a voter lent its vote to n2 on version 7, then moved to 8 and 9 while n2,
///   cut off, still held the vote; on version 9 n4 was the only voter and wrote alone
///   while n2 wrote on {n2, n8}. Fixed by the lent-vote wait: a node does not move two
///   versions past a peer that may still hold a vote it lent.
#[test]
fn two_changes_of_one_version_and_votes_lent_two_versions_back_no_longer_split_the_cluster() {
    for seed in [525, 532, 788] {
        let report = run(nemesis(seed), seed).unwrap_or_else(|e| panic!("{e}"));
        if let Some(f) = report.failure {
            panic!("seed {seed}: {f}");
        }
    }
}
