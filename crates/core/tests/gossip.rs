//! Gossip on real cores in the test network: liveness events, the partition view and fence
//! checks. The simulator (quorate-sim) runs the same at scale with every invariant.

mod harness;

use harness::{Net, MS};

const SEC: u64 = 1_000 * MS;
use quorate_gate::QuorumEvent;
use quorate_proto::NodeId;

fn fenced_events(net: &Net, i: usize) -> Vec<(NodeId, Vec<NodeId>)> {
    net.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            QuorumEvent::PeerFenced { peer, confirmed_by, .. } => Some((*peer, confirmed_by.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn clean_split_majority_announces_the_minority_fenced_and_never_while_it_can_write() {
    for seed in 0..10 {
        let mut net = Net::new(5, seed);
        net.run_until(3 * SEC);
        let cut = net.now;
        net.partition(&[0, 1], &[2, 3, 4]);
        // Every PeerFenced, at the step it is emitted, names a peer that cannot write.
        let mut seen = [0usize; 5];
        let mut violations = Vec::new();
        net.run_until_with(cut + 4 * SEC, |net| {
            for i in 0..5 {
                let fenced = fenced_events(net, i);
                for (peer, _) in &fenced[seen[i]..] {
                    let p = peer.0 as usize - 1;
                    if net.nodes[p].can_write_at(net.now) {
                        violations.push(format!(
                            "t={}ms n{} announced n{} fenced while it could write",
                            net.now / MS,
                            i + 1,
                            p + 1
                        ));
                    }
                }
                seen[i] = fenced.len();
            }
        });
        assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
        for i in 2..5 {
            let peers: Vec<NodeId> = fenced_events(&net, i).into_iter().map(|(p, _)| p).collect();
            assert_eq!(peers.len(), 2, "seed {seed}: n{} announced {peers:?}", i + 1);
            assert!(peers.contains(&NodeId(1)) && peers.contains(&NodeId(2)), "seed {seed}: {peers:?}");
            for (_, by) in fenced_events(&net, i) {
                assert!(by.len() >= 3 && by.iter().all(|b| b.0 >= 3), "seed {seed}: confirmed by {by:?}");
            }
        }
        for i in 0..2 {
            assert!(fenced_events(&net, i).is_empty(), "seed {seed}: the minority announced a fence");
        }
        let view = net.nodes[2].node.partition_view(net.nodes[2].local(net.now));
        let view = view.map(|v| v.to_string()).unwrap_or_default();
        assert_eq!(view, "partition A: {3,4,5}; unseen: {1,2}", "seed {seed}");
        // Heal: everyone writable again, the fences cleared from the status.
        net.heal();
        net.run_until(net.now + 2 * SEC);
        for i in 0..5 {
            assert!(net.nodes[i].can_write_at(net.now), "seed {seed}: n{} not writable after heal", i + 1);
            assert!(net.nodes[i].node.status(net.nodes[i].local(net.now)).fenced.is_empty(), "seed {seed}");
        }
    }
}

#[test]
fn a_one_way_cut_is_alive_elsewhere_and_a_crash_is_down_everywhere() {
    let mut net = Net::new(5, 3);
    net.run_until(3 * SEC);
    // Node 1 stops hearing node 3; everyone else (node 3 included) hears everyone.
    net.cut.insert((2, 0));
    net.run_until(net.now + 3 * SEC);
    let alive = net.nodes[0].events.iter().find_map(|e| match e {
        QuorumEvent::PeerAliveElsewhere { peer, via, .. } if *peer == NodeId(3) => Some(via.clone()),
        _ => None,
    });
    let via = alive.unwrap_or_default();
    assert!(via.len() >= 3 && !via.contains(&NodeId(1)), "n1 learned n3 is heard by {via:?}");
    let view = net.nodes[0].node.partition_view(net.nodes[0].local(net.now)).map(|v| v.to_string());
    assert_eq!(view.as_deref(), Some("partition A: {1,2,3,4,5}; node 3 sees 1 one-way"));
    // Nobody fences node 3: only node 1 accuses it.
    assert!((0..5).all(|i| fenced_events(&net, i).is_empty()));
    assert!((0..5).all(|i| net.nodes[i].can_write_at(net.now)));

    // Node 4 crashes (stops for good): everyone else learns it is down everywhere.
    net.cut.clear();
    net.pause(3);
    net.run_until(net.now + 4 * SEC);
    for i in [0, 1, 2, 4] {
        let down_everywhere = net.nodes[i]
            .events
            .iter()
            .any(|e| matches!(e, QuorumEvent::PeerDownEverywhere { peer, .. } if *peer == NodeId(4)));
        let alive_elsewhere = net.nodes[i]
            .events
            .iter()
            .any(|e| matches!(e, QuorumEvent::PeerAliveElsewhere { peer, .. } if *peer == NodeId(4)));
        assert!(down_everywhere && !alive_elsewhere, "n{}: {:?}", i + 1, net.nodes[i].events);
        assert!(
            fenced_events(&net, i).iter().any(|(p, _)| *p == NodeId(4)),
            "n{} did not announce n4",
            i + 1
        );
    }
}

#[test]
fn gossip_off_emits_none_of_its_events() {
    let mut config = harness::config_for(5, 0);
    config.gossip.enabled = false;
    let mut net = Net::with_config(5, 1, config);
    net.run_until(3 * SEC);
    net.partition(&[0, 1], &[2, 3, 4]);
    net.run_until(net.now + 3 * SEC);
    for i in 0..5 {
        assert!(net.nodes[i].node.partition_view(net.nodes[i].local(net.now)).is_none());
        assert!(!net.nodes[i].events.iter().any(|e| matches!(
            e,
            QuorumEvent::PeerFenced { .. }
                | QuorumEvent::PeerAliveElsewhere { .. }
                | QuorumEvent::PeerDownEverywhere { .. }
        )));
    }
}
