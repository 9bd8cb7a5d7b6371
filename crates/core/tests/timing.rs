//! Timing changed while the cores run (`Node::set_timing`, and a definition naming a
//! preset spreading through `Node::propose_timing`), over the deterministic network of the
//! harness with the lease rule checked at every step (the harness panics at the first
//! violation: "whenever B considers A down, A does not hold B's vote").

mod harness;

use std::time::Duration;

use harness::{preset, Net, MS};
use quorate_core::{CoreConfigError, ProposeError};
use quorate_gate::GateConfig;
use quorate_proto::{NodeId, RosterError};

const SEC: u64 = 1_000 * MS;
const LAN_LEASE: Duration = Duration::from_millis(900);
const WAN_LEASE: Duration = Duration::from_millis(2_500);

/// Runs `limit` in 10 ms steps; fails naming the first step at which one of `nodes` was
/// not writable.
fn stays_writable(net: &mut Net, nodes: &[usize], limit: u64) -> Result<(), String> {
    let end = net.now + limit;
    while net.now < end {
        if let Some(&i) = nodes.iter().find(|&&i| !net.nodes[i].can_write_at(net.now)) {
            return Err(format!("node {} not writable at t={} ms", i + 1, net.now / MS));
        }
        let next = net.now + 10 * MS;
        net.run_until(next);
    }
    Ok(())
}

fn leases(net: &Net) -> Vec<Duration> {
    net.nodes.iter().map(|n| n.node.timing().lease).collect()
}

/// A cluster of three, every vote lent to every node.
fn settled(seed: u64) -> Net {
    let mut net = Net::new(3, seed);
    assert!(net.time_until(2 * SEC, |n| n.writable(&[0, 1, 2])).is_some(), "seed {seed}");
    net.run_until(net.now + SEC);
    net
}

/// The crux. Node 1 switches to `wan` (2.5 s lease) right after it sent a heartbeat under
/// `lan` (900 ms); node 2 then hears nothing more from it (one-way cut), so its floor for
/// node 1 stays lan's 1 s, but its acks of that last heartbeat still reach node 1. Those
/// acks must give 900 ms from the heartbeat's send time, not 2.5 s: with 2.5 s node 1
/// would hold node 2's vote long after node 2 called it down (the harness panics then).
#[test]
fn an_ack_of_a_heartbeat_sent_before_a_longer_lease_gives_the_lease_it_was_sent_under() {
    for seed in 0..10 {
        let mut net = settled(seed);
        net.cut.insert((0, 1));
        net.set_timing(0, "wan");
        assert_eq!(net.nodes[0].node.timing().lease, WAN_LEASE);
        let a_then = net.nodes[0].local(net.now);
        // Node 2's acks (of lan heartbeats) keep arriving: node 1 holds its vote, but never
        // beyond 900 ms after it sent the last heartbeat node 2 heard.
        net.run_until(net.now + 100 * MS);
        let held = net.nodes[0].node.lease_until(NodeId(2));
        assert!(held.is_some_and(|u| u > a_then), "seed {seed}: node 2's acks arrived after the switch");
        assert!(held.is_some_and(|u| u <= a_then + LAN_LEASE), "seed {seed}: {held:?} after {a_then:?}");
        // Node 2 calls node 1 down after its 1 s floor; the check ran on that pair.
        let down = net.time_until(2 * SEC, |n| {
            n.nodes[1].node.peer_state(NodeId(1)) == Some(quorate_detector::PeerState::Unreachable)
        });
        assert!(
            down.is_some_and(|d| d < 1_100 * MS),
            "seed {seed}: node 2 called node 1 down after {down:?}"
        );
        net.run_until(net.now + 2 * SEC);
        assert!(net.down_pairs_checked > 0);
    }
}

#[test]
fn lan_to_wan_and_back_on_one_node_then_on_all_keeps_every_node_writable() {
    for seed in 0..10 {
        let mut net = settled(seed);
        net.set_timing(1, "wan");
        stays_writable(&mut net, &[0, 1, 2], 4 * SEC).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        for i in [0, 2] {
            net.set_timing(i, "wan");
            net.run_until(net.now + 37 * MS);
        }
        stays_writable(&mut net, &[0, 1, 2], 4 * SEC).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(leases(&net), [WAN_LEASE; 3]);
        let interval = net.nodes[2].node.timing().heartbeat_interval;
        assert_eq!(interval, Duration::from_millis(250), "seed {seed}");
        // And back, one node at a time.
        for i in [2, 0, 1] {
            net.set_timing(i, "lan");
            stays_writable(&mut net, &[0, 1, 2], SEC).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        assert_eq!(leases(&net), [LAN_LEASE; 3]);
        let counters = net.nodes[0].node.counters();
        assert_eq!(counters.timing_changes, 2, "seed {seed}");
    }
}

/// Right after every node switched, a partition cuts node 1 off. It must be fenced within
/// the longer of the two leases (stretched by drift): leases lent before the switch run
/// under the old terms, those after under the new. The majority never loses its quorum.
#[test]
fn a_partition_right_after_a_switch_fences_the_minority_within_the_longer_lease() {
    for (from, to) in [("lan", "wan"), ("wan", "lan")] {
        for seed in 0..10 {
            let mut net = settled(seed);
            if from == "wan" {
                for i in 0..3 {
                    net.set_timing(i, "wan");
                }
                stays_writable(&mut net, &[0, 1, 2], 4 * SEC).unwrap_or_else(|e| panic!("{e}"));
            }
            for i in 0..3 {
                net.set_timing(i, to);
            }
            net.run_until(net.now + 20 * MS);
            net.partition(&[0], &[1, 2]);
            let cut = net.now;
            let bound = (WAN_LEASE.as_nanos() as f64 * (1.0 + net.rho)).ceil() as u64;
            let mut majority_lost = None;
            let fenced = net.time_until(4 * SEC, |n| !n.nodes[0].can_write_at(n.now) && n.writable(&[1, 2]));
            let fenced = fenced.unwrap_or_else(|| panic!("{from}->{to} seed {seed}: node 1 never fenced"));
            assert!(
                fenced <= bound + 20 * MS,
                "{from}->{to} seed {seed}: fenced {} ms after the cut",
                fenced / MS
            );
            if let Err(e) = stays_writable(&mut net, &[1, 2], 4 * SEC) {
                majority_lost = Some(e);
            }
            assert_eq!(majority_lost, None, "{from}->{to} seed {seed}");
            assert!(net.now > cut && net.down_pairs_checked > 0);
        }
    }
}

/// The preset travels as a definition change: proposed on one node, adopted by all (the
/// harness runs the preset on adoption, as the runtime does), one change at a time.
#[test]
fn a_preset_proposed_on_one_node_spreads_and_every_node_runs_it() {
    let mut net = settled(4);
    let roster = net.nodes[2].node.propose_timing("wan").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((roster.version, roster.timing.as_deref()), (1, Some("wan")));
    assert_eq!(roster.votes, net.nodes[2].node.roster().votes);
    let local = net.nodes[2].local(net.now);
    net.nodes[2].hand.set(local);
    net.nodes[2].node.adopt(local, roster).unwrap_or_else(|e| panic!("{e}"));
    net.set_timing(2, "wan");
    stays_writable(&mut net, &[0, 1, 2], 3 * SEC).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(leases(&net), [WAN_LEASE; 3]);
    assert!(net.nodes.iter().all(|n| n.node.roster().timing.as_deref() == Some("wan")));
    // A bad name is refused by the core; a second change waits for the first to spread.
    assert!(matches!(
        net.nodes[0].node.propose_timing("W A N"),
        Err(ProposeError::Timing(RosterError::BadTimingName { .. }))
    ));
    let back = net.nodes[0].node.propose_timing("lan").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.version, 2);
}

#[test]
fn a_timing_change_that_breaks_a_rule_or_the_drift_bound_changes_nothing() {
    let mut net = settled(6);
    let local = net.nodes[0].local(net.now);
    let (detector, gate, gossip) = preset("lan");
    // A 2.5 s lease under lan's 1 s floor breaks the lease rule.
    let long = GateConfig { lease: WAN_LEASE, ..gate.clone() };
    let refused = net.nodes[0].node.set_timing(local, detector.clone(), long, gossip.clone());
    assert!(matches!(refused, Err(CoreConfigError::Gate(_))), "{refused:?}");
    let drift = GateConfig { max_clock_drift: 0.02, ..gate };
    let refused = net.nodes[0].node.set_timing(local, detector, drift, gossip);
    assert!(matches!(refused, Err(CoreConfigError::DriftChanged { .. })), "{refused:?}");
    assert_eq!(net.nodes[0].node.timing().lease, LAN_LEASE);
    assert_eq!(net.nodes[0].node.counters().timing_changes, 0);
    stays_writable(&mut net, &[0, 1, 2], SEC).unwrap_or_else(|e| panic!("{e}"));
}
