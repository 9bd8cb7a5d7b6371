//! Several real cores driven by hand over a deterministic, hostile network: the lease rule,
//! fencing bound, no false fencing, heal, pauses and restarts.

mod harness;

use harness::{Net, MS};
use proptest::prelude::*;
use quorate_detector::PeerState;
use quorate_gate::QuorumEvent;
use quorate_heartbeat::{ClusterId, Incarnation, NodeId};

const SEC: u64 = 1_000 * MS;

fn all_writable(net: &Net, real: u64) -> bool {
    net.nodes.iter().all(|n| n.can_write_at(real))
}

/// The instant every node is writable, polled in 10 ms steps up to `limit`.
fn time_until_all_writable(net: &mut Net, limit: u64) -> Option<u64> {
    let start = net.now;
    while net.now < start + limit {
        if all_writable(net, net.now) {
            return Some(net.now - start);
        }
        let next = net.now + 10 * MS;
        net.run_until(next);
    }
    None
}

#[test]
fn five_nodes_converge_to_all_writable_within_a_second() {
    let mut net = Net::new(5, 1);
    let took = time_until_all_writable(&mut net, 2 * SEC);
    assert!(took.is_some_and(|t| t < SEC), "took {took:?}");
    assert!(net.lease_violations.is_empty(), "{:#?}", net.lease_violations);
}

#[test]
fn clean_partition_fences_the_minority_within_lease_times_drift_and_heals() {
    for seed in 0..20 {
        let mut net = Net::new(5, seed);
        net.run_until(3 * SEC);
        assert!(all_writable(&net, net.now), "seed {seed}: not all writable before the cut");
        let cut = net.now;
        net.partition(&[0, 1], &[2, 3, 4]);
        let bound = cut + net.fence_bound();
        let mut majority_fenced = Vec::new();
        let mut minority_late = Vec::new();
        net.run_until_with(cut + 4 * SEC, |net| {
            for i in 2..5 {
                if !net.nodes[i].can_write_at(net.now) {
                    majority_fenced.push((net.now / MS, i + 1));
                }
            }
            if net.now >= bound {
                for i in 0..2 {
                    if net.nodes[i].can_write_at(net.now) {
                        minority_late.push((net.now / MS, i + 1));
                    }
                }
            }
        });
        assert!(majority_fenced.is_empty(), "seed {seed}: majority fenced at {majority_fenced:?}");
        assert!(minority_late.is_empty(), "seed {seed}: minority writable after bound: {minority_late:?}");
        // The majority sees the minority down, and never before the floor.
        for i in 2..5 {
            for m in 0..2 {
                assert_eq!(
                    net.nodes[i].node.peer_state(Net::id(m)),
                    Some(PeerState::Unreachable),
                    "seed {seed}"
                );
            }
        }
        net.heal();
        let healed = time_until_all_writable(&mut net, 3 * SEC);
        assert!(healed.is_some_and(|t| t < SEC), "seed {seed}: heal took {healed:?}");
        assert!(net.lease_violations.is_empty(), "seed {seed}: {:#?}", net.lease_violations);
    }
}

#[test]
fn fence_time_is_reported_by_quorum_lost_at_the_lease_end() {
    let mut net = Net::new(5, 7);
    net.run_until(2 * SEC);
    let cut = net.now;
    net.partition(&[0, 1], &[2, 3, 4]);
    net.run_until(cut + 3 * SEC);
    let lost = net.nodes[0].events.iter().find_map(|e| match e {
        QuorumEvent::QuorumLost { at, .. } => Some(*at),
        _ => None,
    });
    let cut_local = net.nodes[0].local(cut);
    let fence = lost.map(|at| at - cut_local);
    assert!(fence.is_some_and(|d| d <= net.lease()), "fence after cut (local clock): {fence:?}");
}

#[test]
fn paused_node_wakes_fenced_and_does_not_convict_live_peers() {
    let mut net = Net::new(3, 3);
    net.run_until(2 * SEC);
    net.pause(2);
    net.run_until(net.now + 3 * SEC);
    // Still paused: by the clock alone its gate is fenced.
    assert!(!net.nodes[2].can_write_at(net.now));
    let events_before = net.nodes[2].events.len();
    net.resume(2);
    let wake = net.now;
    net.run_until(wake + 500 * MS);
    let convicted: Vec<_> = net.nodes[2].events[events_before..]
        .iter()
        .filter(|e| matches!(e, QuorumEvent::PeerDown { .. }))
        .collect();
    assert!(convicted.is_empty(), "woken node declared live peers down: {convicted:?}");
    assert!(net.nodes[2].node.detector().stalls() >= 1);
    assert!(all_writable(&net, net.now), "not all writable 500 ms after wake");
    // The majority kept writing throughout and considered the paused node down.
    assert!(net.lease_violations.is_empty(), "{:#?}", net.lease_violations);
}

#[test]
fn restarted_node_starts_fenced_with_a_higher_epoch_and_rejoins() {
    let mut net = Net::new(3, 4);
    net.run_until(2 * SEC);
    let before = net.nodes[1].node.epoch();
    net.restart(1);
    assert!(!net.nodes[1].can_write_at(net.now));
    assert!(net.nodes[1].node.epoch() > before);
    let rejoined = time_until_all_writable(&mut net, 3 * SEC);
    assert!(rejoined.is_some(), "restarted node never writable again");
    assert!(net.nodes[1].node.epoch() > before);
    assert!(net.nodes[0].node.counters().peer_restarts >= 1);
    assert!(net.lease_violations.is_empty(), "{:#?}", net.lease_violations);
}

#[test]
fn garbage_and_forged_datagrams_change_nothing_and_are_counted() {
    let mut net = Net::new(3, 5);
    net.run_until(2 * SEC);
    let target = 0;
    let epoch = net.nodes[target].node.epoch();
    let deadline_before = net.nodes[target].node.lease_until(NodeId(2));
    let mut rng_bytes = 0u8;
    for len in 0..300usize {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                rng_bytes = rng_bytes.wrapping_mul(31).wrapping_add(7);
                rng_bytes
            })
            .collect();
        net.inject(1, target, bytes);
    }
    // A well-formed heartbeat claiming to be node 3 but arriving on node 2's connection,
    // one from another cluster, and one acking a heartbeat never sent.
    let forged = |from: u64, cluster: &str, ack_seq: u64| {
        let hb = quorate_heartbeat::Heartbeat {
            from: NodeId(from),
            incarnation: Incarnation(99),
            seq: quorate_heartbeat::Seq(u64::MAX - 1),
            ack: Some(quorate_heartbeat::Ack {
                incarnation: net.nodes[target].node.incarnation(),
                seq: quorate_heartbeat::Seq(ack_seq),
            }),
            terms: net.nodes[target].node.terms(),
            digest: vec![],
        };
        quorate_heartbeat::encode(ClusterId::from_name(cluster), &quorate_heartbeat::Message::Heartbeat(hb))
            .unwrap_or_default()
    };
    let spoofed = forged(3, "harness", 1);
    let foreign = forged(2, "other", 1);
    let bogus_ack = forged(2, "harness", u64::MAX);
    net.inject(1, target, spoofed);
    net.inject(1, target, foreign);
    net.inject(1, target, bogus_ack);
    let c = net.nodes[target].node.counters();
    assert!(c.dropped.total() >= 300, "{c:?}");
    assert_eq!(c.dropped.sender_mismatch, 1);
    assert_eq!(c.dropped.foreign_cluster, 1);
    assert_eq!(c.acks_bogus, 1);
    assert_eq!(net.nodes[target].node.epoch(), epoch);
    assert_eq!(net.nodes[target].node.lease_until(NodeId(2)), deadline_before);
    assert!(net.nodes[target].can_write_at(net.now));
}

#[test]
fn when_every_datagram_is_lost_polls_still_carry_contact_and_acks() {
    let mut net = Net::new(3, 9);
    net.run_until(2 * SEC);
    // From now on every heartbeat datagram is lost; polls travel on reliable streams.
    net.loss = 1.0;
    let before = net.nodes[0].node.counters();
    let start = net.now;
    net.run_until(start + 5 * SEC);
    let after = net.nodes[0].node.counters();
    assert!(after.polls_sent >= before.polls_sent + 4, "{after:?}");
    // Every answered poll is fresh contact with an ack, exactly like a heartbeat: node 1
    // kept hearing its peers and renewing leases with no datagram delivered at all.
    assert!(after.heartbeats_accepted >= before.heartbeats_accepted + 4, "{after:?}");
    assert!(after.acks_accepted >= before.acks_accepted + 4, "{after:?}");
    let answered: u64 = net.nodes.iter().map(|n| n.node.counters().polls_answered).sum();
    assert!(answered >= 8, "{answered} polls answered");
    assert!(net.lease_violations.is_empty(), "{:#?}", net.lease_violations);
}

#[test]
fn late_peer_is_polled_and_answers_after_its_pause() {
    let mut net = Net::new(3, 10);
    net.run_until(2 * SEC);
    // Pause node 2 long enough for node 1 to suspect and poll it; the poll waits in its
    // socket and is answered on resume.
    net.pause(1);
    let until = net.now + 600 * MS;
    net.run_until(until);
    net.resume(1);
    let until = net.now + 2 * SEC;
    net.run_until(until);
    assert!(net.nodes[0].node.counters().polls_sent >= 1);
    assert_eq!(net.nodes[0].node.peer_state(NodeId(2)), Some(PeerState::Reachable));
    assert!(net.nodes[1].node.counters().polls_answered >= 1);
    assert!(net.lease_violations.is_empty(), "{:#?}", net.lease_violations);
}

#[test]
fn graceful_leave_lets_peers_drop_the_node_at_once_and_a_new_life_is_heard_again() {
    let mut net = Net::new(3, 11);
    net.run_until(2 * SEC);
    net.shutdown(2);
    assert!(!net.nodes[2].can_write_at(net.now));
    net.run_until(net.now + 50 * MS);
    for i in 0..2 {
        assert_eq!(net.nodes[i].node.peer_state(NodeId(3)), Some(PeerState::Left), "node {}", i + 1);
        assert!(net.nodes[i].can_write_at(net.now));
    }
    // Fresh acks after the shutdown never make the stopped life writable again.
    net.run_until(net.now + 2 * SEC);
    assert!(!net.nodes[2].can_write_at(net.now));
    net.restart(2);
    let back = time_until_all_writable(&mut net, 3 * SEC);
    assert!(back.is_some(), "the next life was never heard");
    assert_eq!(net.nodes[0].node.peer_state(NodeId(3)), Some(PeerState::Reachable));
    assert!(net.nodes[0].node.counters().leaves_heard >= 1);
    assert!(net.lease_violations.is_empty(), "{:#?}", net.lease_violations);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Two and three cores with skewed clocks, loss, duplication, reordering and flapping
    /// one-way cuts: a node never counts the vote of a peer that considers it down.
    #[test]
    fn never_holds_the_vote_of_a_peer_that_considers_it_down(
        seed in any::<u64>(),
        n in 2usize..=3,
        loss in 0.0f64..0.5,
        dup in 0.0f64..0.3,
        reorder_ms in 1u64..250,
        flaps in proptest::collection::vec((0usize..3, 0usize..3, 50u64..1500), 1..12),
    ) {
        let mut net = Net::new(n, seed);
        net.loss = loss;
        net.dup = dup;
        net.delay_max = reorder_ms * MS;
        for (a, b, hold_ms) in flaps {
            let (a, b) = (a % n, b % n);
            if a != b {
                net.cut.insert((a, b));
            }
            let until = net.now + hold_ms * MS;
            net.run_until(until);
            if net.rng_bool(0.5) {
                net.heal();
            }
        }
        net.heal();
        let until = net.now + 3 * SEC;
        net.run_until(until);
        prop_assert!(net.lease_violations.is_empty(), "seed {}: {:#?}", seed, net.lease_violations);
    }
}
