//! Definitions changed while the cores run: a change proposed on one node (`Node::propose`)
//! spreads to the others (`Node::poll_adopt`, `Node::adopt`, as the harness drives them),
//! one change at a time, over the deterministic network of the harness, with the lease
//! rule checked at every step (the harness panics at the first violation).

mod harness;

use harness::{config_for, Net, MS};
use quorate_core::{Adopted, Config, Member, ProposeError};
use quorate_gate::TieBreaker;
use quorate_proto::{Change, NodeId, Roster, SuccessionError};

const SEC: u64 = 1_000 * MS;

fn versions(net: &Net, nodes: &[usize]) -> Vec<u64> {
    nodes.iter().map(|&i| net.nodes[i].node.roster().version).collect()
}

/// Node `i` proposes `change` and adopts the result, as the admin command makes it.
fn propose(net: &mut Net, i: usize, change: Change) -> Result<Roster, ProposeError> {
    let roster = net.nodes[i].node.propose(&change, Some("127.0.0.1:7000"))?;
    let now = net.nodes[i].local(net.now);
    net.nodes[i].hand.set(now);
    let adopted = net.nodes[i].node.adopt(now, roster.clone());
    assert_eq!(adopted, Ok(Adopted::Running), "node {} adopting its own proposal", i + 1);
    Ok(roster)
}

/// Like [`propose`], retried every 10 ms for up to two seconds while the previous change
/// is still under way (its last voters are heard running it a heartbeat after they adopt)
/// or votes lent to a peer it leaves behind may still be held.
fn propose_when_ready(net: &mut Net, i: usize, change: Change) -> Roster {
    let end = net.now + 2 * SEC;
    loop {
        match propose(net, i, change) {
            Ok(roster) => return roster,
            Err(ProposeError::Pending { .. } | ProposeError::VotesLent { .. }) if net.now < end => {
                let next = net.now + 10 * MS;
                net.run_until(next);
            }
            Err(e) => panic!("node {} refused {change}: {e}", i + 1),
        }
    }
}

/// Runs `limit` in 10 ms steps; fails naming the first step at which one of `nodes` was
/// not writable.
fn stays_writable(net: &mut Net, nodes: &[usize], limit: u64) -> Result<(), String> {
    let end = net.now + limit;
    while net.now < end {
        if let Some(&i) = nodes.iter().find(|&&i| !net.nodes[i].can_write_at(net.now)) {
            let status = net.nodes[i].node.status(net.nodes[i].local(net.now));
            return Err(format!("node {} not writable at t={} ms: {status:#?}", i + 1, net.now / MS));
        }
        let next = net.now + 10 * MS;
        net.run_until(next);
    }
    Ok(())
}

#[test]
fn a_change_spreads_from_the_node_it_was_made_on_and_the_majority_stays_writable() {
    for seed in 0..20 {
        // Strict majority: a fourth voter then needs 3 of 4, which meets every 2 of 3.
        let mut config = config_for(3, 0);
        config.gate.tie_breaker = TieBreaker::None;
        let mut net = Net::with_config(3, seed, config.clone());
        assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1, 2])).is_some(), "seed {seed}");
        // Every vote lent to every node (the first quorum may have been two of three).
        net.run_until(net.now + SEC);

        // Grow 3 -> 4: node 2 takes the change; node 4 starts on a file that lists it.
        let v1 = propose(&mut net, 1, Change::AddMember { id: NodeId(4), votes: 1 });
        let v1 = v1.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!((v1.version, v1.address(NodeId(4))), (1, Some("127.0.0.1:7000")));
        net.add_node(Config { members: (1..=4).map(Member::voter).collect(), ..config.clone() });
        // Votes cross the two versions, so nobody of the three loses its quorum meanwhile.
        stays_writable(&mut net, &[0, 1, 2], SEC).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(versions(&net, &[0, 1, 2, 3]), [1, 1, 1, 1], "seed {seed}");
        assert!(net.writable(&[3]), "seed {seed}: the new member writes");

        // Grow 4 -> 5 from another node, once every voter runs version 1.
        propose_when_ready(&mut net, 3, Change::AddMember { id: NodeId(5), votes: 1 });
        net.add_node(Config { members: (1..=5).map(Member::voter).collect(), ..config.clone() });
        stays_writable(&mut net, &[0, 1, 2, 3], SEC).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(versions(&net, &[0, 1, 2, 3, 4]), [2; 5], "seed {seed}");
        let status = net.nodes[0].node.status(net.nodes[0].local(net.now));
        assert_eq!((status.definition_version, status.total_votes), (2, 5), "seed {seed}");
        assert!(status.mismatched.is_empty(), "seed {seed}: {:?}", status.mismatched);
    }
}

#[test]
fn the_next_change_waits_until_every_voter_runs_the_current_one() {
    let mut net = Net::new(3, 11);
    assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1, 2])).is_some());
    net.partition(&[2], &[0, 1]);
    // Node 3 was heard running version 0: the first change may go.
    propose(&mut net, 0, Change::AddMember { id: NodeId(4), votes: 0 }).unwrap_or_else(|e| panic!("{e}"));
    net.run_until(net.now + SEC);
    assert_eq!(versions(&net, &[0, 1, 2]), [1, 1, 0]);
    let refused = net.nodes[0].node.propose(&Change::SetVotes { id: NodeId(4), votes: 1 }, None);
    assert_eq!(refused, Err(ProposeError::Pending { version: 1, waiting: vec![NodeId(3)] }));
    assert_eq!(
        refused.map_err(|e| e.to_string()).err().as_deref(),
        Some("the change to version 1 is still under way: node 3 not heard running it yet")
    );
    // Node 3 is back: it adopts version 1, and the next change may go.
    net.heal();
    assert!(net.time_until(3 * SEC, |n| versions(n, &[2]) == [1]).is_some());
    propose_when_ready(&mut net, 0, Change::RemoveMember { id: NodeId(4) });
    assert!(net.time_until(2 * SEC, |n| versions(n, &[0, 1, 2]) == [2, 2, 2]).is_some());
    assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1, 2])).is_some());
}

#[test]
fn an_unsafe_change_is_refused_with_a_safe_route_and_the_route_works() {
    let mut net = Net::new(3, 5);
    assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1, 2])).is_some());
    // Under the lowest-id tie-breaker, {1} would be a quorum of {1,2} beside {2,3} of three.
    let refused = net.nodes[0].node.propose(&Change::RemoveMember { id: NodeId(3) }, None);
    let Err(ProposeError::Unsafe(SuccessionError::Unsafe(why))) = refused else {
        panic!("expected an unsafe change, got {refused:?}");
    };
    let route = why.route.clone().unwrap_or_else(|| panic!("no route offered: {why}"));
    // The removal with the tie-breaker dropped, then back to the tie-breaker it keeps.
    let expected = [
        Change::RemoveMemberSetTieBreaker { id: NodeId(3), tie_breaker: TieBreaker::None },
        Change::SetTieBreaker(TieBreaker::Node(NodeId(1))),
    ];
    assert_eq!(route, expected);
    assert_eq!(versions(&net, &[0, 1, 2]), [0, 0, 0], "a refusal changes nothing");

    // Each step of the route, once the one before has spread.
    for (step, change) in route.into_iter().enumerate() {
        let want = step as u64 + 1;
        let proposed = propose_when_ready(&mut net, 0, change);
        assert_eq!(proposed.version, want);
        let spread = net.time_until(2 * SEC, |n| {
            n.nodes.iter().all(|x| x.node.is_stopped() || x.node.roster().version == want)
        });
        assert!(spread.is_some(), "step {want} did not spread: {:?}", versions(&net, &[0, 1, 2]));
    }
    // Node 3 was removed: it left, fenced for good; nodes 1 and 2 write on their own.
    assert_eq!(versions(&net, &[0, 1]), [2, 2]);
    assert!(net.nodes[2].node.is_stopped(), "the removed node stopped");
    assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1])).is_some());
    stays_writable(&mut net, &[0, 1], 2 * SEC).unwrap_or_else(|e| panic!("{e}"));
    assert!(!net.nodes[2].can_write_at(net.now));
}

#[test]
fn a_node_that_missed_changes_starts_over_on_the_latest_and_then_writes() {
    let mut config = config_for(3, 0);
    config.gate.tie_breaker = TieBreaker::None;
    let mut net = Net::with_config(3, 9, config.clone());
    assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1, 2])).is_some());
    // Two changes: observer 4 added, then given a vote. Node 4 is not running yet.
    propose(&mut net, 0, Change::AddMember { id: NodeId(4), votes: 0 }).unwrap_or_else(|e| panic!("{e}"));
    // Version 1's new member is an observer: the voters alone decide whether it spread.
    propose_when_ready(&mut net, 0, Change::SetVotes { id: NodeId(4), votes: 1 });
    assert!(net.time_until(2 * SEC, |n| versions(n, &[0, 1, 2]) == [2, 2, 2]).is_some());

    // Node 4 starts on a file (version 0) that is neither the cluster's version 1 nor a
    // version away from 2: it adopts version 2 as a fresh start.
    let four = net.add_node(Config { members: (1..=4).map(Member::voter).collect(), ..config });
    assert!(net.time_until(2 * SEC, |n| versions(n, &[four]) == [2]).is_some());
    let counters = net.nodes[four].node.counters();
    assert_eq!((counters.definitions_adopted, counters.definitions_skipped), (1, 1));
    assert!(net.time_until(5 * SEC, |n| n.writable(&[0, 1, 2, 3])).is_some());
}

#[test]
fn a_definition_offered_that_does_not_replace_the_current_one_is_refused() {
    let mut net = Net::new(3, 2);
    assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1, 2])).is_some());
    let current = net.nodes[0].node.roster().clone();
    let now = net.nodes[0].local(net.now);
    let refused = net.nodes[0].node.adopt(now, current);
    assert!(
        matches!(refused, Err(quorate_core::AdoptError::Stale { version: 0, current: 0 })),
        "{refused:?}"
    );
    assert_eq!(net.nodes[0].node.poll_adopt(), None);
}

/// Follows the safe route the refusal of `change` names, step by step from node `i`.
fn follow_route(net: &mut Net, i: usize, change: Change) {
    let end = net.now + 2 * SEC;
    let why = loop {
        match net.nodes[i].node.propose(&change, Some("127.0.0.1:7000")) {
            Err(ProposeError::Unsafe(SuccessionError::Unsafe(why))) => break why,
            Err(ProposeError::Pending { .. } | ProposeError::VotesLent { .. }) if net.now < end => {
                let next = net.now + 10 * MS;
                net.run_until(next);
            }
            other => panic!("expected {change} to be refused as unsafe, got {other:?}"),
        }
    };
    for step in why.route.unwrap_or_else(|| panic!("no route for {change}")) {
        propose_when_ready(net, i, step);
    }
}

#[test]
fn a_dead_voter_of_three_is_replaced_under_the_default_tie_breaker() {
    // Default tie-breaker (lowest id): removing node 3 alone would leave {1} a quorum
    // beside {2,3}; dropping the tie-breaker first cannot spread, node 3 being dead. The
    // route removes it and drops the tie-breaker in one step.
    for seed in 0..5 {
        let mut net = Net::new(3, seed);
        assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1, 2])).is_some());
        net.run_until(net.now + SEC);
        net.partition(&[2], &[0, 1]);
        net.pause(2);
        follow_route(&mut net, 0, Change::RemoveMember { id: NodeId(3) });
        assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1])).is_some(), "seed {seed}");
        assert!(net.time_until(2 * SEC, |n| versions(n, &[0, 1]) == [2, 2]).is_some(), "seed {seed}");
        let four = net.add_node(Config {
            members: vec![Member::voter(1), Member::voter(2), Member::voter(4)],
            ..config_for(1, 0)
        });
        follow_route(&mut net, 0, Change::AddMember { id: NodeId(4), votes: 1 });
        assert!(net.time_until(3 * SEC, |n| n.writable(&[0, 1, four])).is_some(), "seed {seed}");
        let status = net.nodes[0].node.status(net.nodes[0].local(net.now));
        assert_eq!(status.total_votes, 3, "seed {seed}");
        assert!(status.peers.iter().all(|p| p.id != NodeId(3)), "seed {seed}");
    }
}
