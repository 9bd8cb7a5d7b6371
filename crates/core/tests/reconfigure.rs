//! A definition changed while the cores run (`Node::set_definition`): members removed and
//! added over the deterministic network of the harness, with the lease rule checked at
//! every step (the harness panics at the first violation).

mod harness;

use harness::{Net, MS};
use quorate_gate::TieBreaker;
use quorate_proto::{NodeId, VoteTable};

const SEC: u64 = 1_000 * MS;

fn table(ids: &[u64]) -> VoteTable {
    VoteTable::new(ids.iter().map(|&i| (NodeId(i), 1)), TieBreaker::LowestId)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs until `ok` holds, polled every 10 ms, for at most `limit`; how long it took.
fn time_until(net: &mut Net, limit: u64, ok: impl Fn(&Net) -> bool) -> Option<u64> {
    let start = net.now;
    while net.now < start + limit {
        if ok(net) {
            return Some(net.now - start);
        }
        let next = net.now + 10 * MS;
        net.run_until(next);
    }
    None
}

fn writable(net: &Net, nodes: &[usize]) -> bool {
    nodes.iter().all(|&i| net.nodes[i].can_write_at(net.now))
}

#[test]
fn a_member_removed_and_added_back_while_running() {
    for seed in 0..5 {
        let mut net = Net::new(5, seed);
        assert!(time_until(&mut net, 2 * SEC, |n| writable(n, &[0, 1, 2, 3, 4])).is_some(), "seed {seed}");

        // Nodes 1-4 drop node 5; node 5 is not told (it keeps the five-member definition).
        // `check_successor` would refuse this step under the lowest-id tie-breaker ({2,3,5}
        // of five beside {1,4} of four); it stays safe here only because no votes cross
        // definitions, which is what the lease check below holds the cores to.
        let four = table(&[1, 2, 3, 4]);
        for i in 0..4 {
            let now = net.nodes[i].local(net.now);
            net.nodes[i].node.set_definition(now, four.clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        let back = time_until(&mut net, 2 * SEC, |n| writable(n, &[0, 1, 2, 3]));
        assert!(back.is_some(), "seed {seed}: the four are not writable on their new definition");
        // Node 5 gets no vote from the four any more: fenced, and it stays so.
        net.run_until(net.now + 2 * SEC);
        assert!(writable(&net, &[0, 1, 2, 3]), "seed {seed}");
        assert!(!net.nodes[4].can_write_at(net.now), "seed {seed}: a removed node stays fenced");
        let status = net.nodes[0].node.status(net.nodes[0].local(net.now));
        assert!(status.peers.iter().all(|p| p.id != NodeId(5)), "seed {seed}: node 5 is forgotten");

        // Node 5 is added back: all five run the same definition again.
        let five = table(&[1, 2, 3, 4, 5]);
        for i in 0..4 {
            let now = net.nodes[i].local(net.now);
            net.nodes[i].node.set_definition(now, five.clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        let all = time_until(&mut net, 3 * SEC, |n| writable(n, &[0, 1, 2, 3, 4]));
        assert!(all.is_some(), "seed {seed}: node 5 not writable after it was added back");
    }
}

#[test]
fn a_node_outside_its_new_definition_is_refused_and_unchanged() {
    let mut net = Net::new(3, 7);
    assert!(time_until(&mut net, 2 * SEC, |n| writable(n, &[0, 1, 2])).is_some());
    let now = net.nodes[2].local(net.now);
    let without_me = table(&[1, 2]);
    assert!(net.nodes[2].node.set_definition(now, without_me).is_err());
    net.run_until(net.now + SEC);
    assert!(writable(&net, &[0, 1, 2]), "nothing changed");
}

#[test]
fn while_peers_run_the_previous_definition_every_definition_in_use_must_hold() {
    // Three nodes; node 1 alone adopts {1,2,3,4}. No votes cross definitions yet, and every
    // node needs a quorum under each definition it hears in use: node 1 has only its own
    // vote, and {2,3} is no quorum of {1,2,3,4} (half, without the tie-breaker 1). Nobody
    // writes until 2 and 3 adopt too: safe, and the reason votes must cross adjacent
    // versions (docs/reconfiguration.md) before online changes keep a cluster writable.
    let mut net = Net::new(3, 3);
    assert!(time_until(&mut net, 2 * SEC, |n| writable(n, &[0, 1, 2])).is_some());
    let now = net.nodes[0].local(net.now);
    net.nodes[0].node.set_definition(now, table(&[1, 2, 3, 4])).unwrap_or_else(|e| panic!("{e}"));
    net.run_until(net.now + 2 * SEC);
    assert!(!net.nodes[0].can_write_at(net.now), "no votes across definitions");
    assert!(!writable(&net, &[1]) && !writable(&net, &[2]), "{{2,3}} is no quorum of {{1,2,3,4}}");
    let status = net.nodes[0].node.status(net.nodes[0].local(net.now));
    assert_eq!(status.mismatched.len(), 2, "{:?}", status.mismatched);
    // Once 2 and 3 adopt it too, {1,2,3} is a quorum of four.
    for i in 1..3 {
        let now = net.nodes[i].local(net.now);
        net.nodes[i].node.set_definition(now, table(&[1, 2, 3, 4])).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(time_until(&mut net, 2 * SEC, |n| writable(n, &[0, 1, 2])).is_some());
    let status = net.nodes[0].node.status(net.nodes[0].local(net.now));
    assert!(status.mismatched.is_empty(), "{:?}", status.mismatched);
}
