//! A node that members no longer count as a member learns it from their closes
//! (`CLOSE_REMOVED`, `Transport::refused_as_non_member`), on 127.0.0.1: a member removed while
//! it was down hears it when it comes back, one removed while connected hears it at once, a
//! changed address is not taken for a removal, and a node that was never a member hears
//! nothing of the kind. Every wait is bounded.

// Tests may panic on failure; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use quorate_proto::NodeId;
use quorate_transport::{generate_dev_pki, MemberAddress, MemberChanges};

fn listed(members: &[(NodeId, SocketAddr)]) -> Vec<(NodeId, MemberAddress)> {
    members.iter().map(|&(id, a)| (id, MemberAddress::Ip(a))).collect()
}

/// Binds `addr` again once the process that held it let it go (bounded retries).
async fn rebind(addr: SocketAddr) -> UdpSocket {
    for _ in 0..100 {
        if let Ok(socket) = UdpSocket::bind(addr) {
            return socket;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} stays taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_while_down_is_told_when_it_comes_back() {
    let pki = generate_dev_pki(CLUSTER, &ids(4)).unwrap();
    let (mut nodes, all) = cluster(&pki, 3).await;
    assert!(eventually(Duration::from_secs(5), || all_connected(&nodes)).await);
    // Node 3 goes down; then 1 and 2 remove it.
    let n3 = nodes.pop().unwrap();
    let addr3 = n3.t.local_addr();
    n3.t.shutdown().await;
    drop(n3);
    let two = &all[..2];
    let removed = MemberChanges { added: vec![], removed: vec![NodeId(3)] };
    for n in &nodes {
        assert_eq!(n.t.set_members(listed(two), &[]).unwrap(), removed);
    }

    // Node 3 comes back at its address with the list it knew: both members tell it.
    let n3 = start(&pki, NodeId(3), rebind(addr3).await, &all).await;
    let told = eventually(Duration::from_secs(10), || n3.t.refused_as_non_member() == [NodeId(1), NodeId(2)]);
    assert!(told.await, "3 hears from both that it is no member: {:?}", n3.t.refused_as_non_member());
    assert!(n3.t.counters().closed_as_non_member >= 2);
    assert!(n3.t.connected_peers().is_empty());
    for n in &nodes {
        assert!(n.t.counters().refused.former_member >= 1, "{:?} answered it as a former member", n.id);
        assert!(!n.t.connected_peers().contains(&NodeId(3)));
    }

    // Node 1 adds it back: a kept connection clears the record for 1, 2's still stands.
    nodes[0].t.set_members(listed(&all), &[]).unwrap();
    let cleared = eventually(Duration::from_secs(10), || n3.t.refused_as_non_member() == [NodeId(2)]);
    assert!(cleared.await, "1 accepts 3 again: {:?}", n3.t.refused_as_non_member());
    assert!(n3.t.connected_peers().contains(&NodeId(1)));

    // Node 4 was never a member: its dials are ignored, and it records nobody.
    let socket4 = bind();
    let mut with4 = all.clone();
    with4.push((NodeId(4), addr(&socket4)));
    let n4 = start(&pki, NodeId(4), socket4, &with4).await;
    let ignored = nodes[0].t.counters().refused.address_mismatch;
    let dialed =
        eventually(Duration::from_secs(5), || nodes[0].t.counters().refused.address_mismatch > ignored);
    assert!(dialed.await, "4 dials 1 and is ignored");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(n4.t.refused_as_non_member().is_empty());
    assert_eq!(n4.t.counters().closed_as_non_member, 0);
    for n in nodes.iter().chain([&n3, &n4]) {
        n.t.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_member_hears_its_removal_and_not_an_address_change() {
    let pki = generate_dev_pki(CLUSTER, &ids(3)).unwrap();
    let (nodes, all) = cluster(&pki, 3).await;
    assert!(eventually(Duration::from_secs(5), || all_connected(&nodes)).await);
    // Node 1 gives node 2 another address (where nobody listens) and removes node 3.
    let nowhere = addr(&bind());
    let next = vec![(NodeId(1), all[0].1), (NodeId(2), nowhere)];
    let changes = nodes[0].t.set_members(listed(&next), &[]).unwrap();
    assert_eq!(changes, MemberChanges { added: vec![NodeId(2)], removed: vec![NodeId(2), NodeId(3)] });
    let three = &nodes[2];
    let told = eventually(Duration::from_secs(5), || three.t.refused_as_non_member() == [NodeId(1)]);
    assert!(told.await, "3 hears it was removed: {:?}", three.t.refused_as_non_member());
    // Node 2 lost its connection to 1 (closed as moved), and that is no removal.
    let two = &nodes[1];
    let cut = eventually(Duration::from_secs(5), || !two.t.connected_peers().contains(&NodeId(1)));
    assert!(cut.await, "1 closed its connection to 2's old address");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(two.t.refused_as_non_member().is_empty(), "{:?}", two.t.refused_as_non_member());
    assert_eq!(two.t.counters().closed_as_non_member, 0);
    for n in &nodes {
        n.t.shutdown().await;
    }
}
