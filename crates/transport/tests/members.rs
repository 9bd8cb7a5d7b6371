//! Changing the member list while the transport runs (`Transport::set_members`), on
//! 127.0.0.1: a member added at runtime is dialed, accepted and exchanges datagrams; a member
//! removed is disconnected, refused and unreachable; unchanged members keep their
//! connections. Every wait is bounded.

// Tests may panic on failure; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use quorate_proto::NodeId;
use quorate_transport::{generate_dev_pki, DatagramDropped, MemberAddress, MemberChanges, Transport};

fn listed(members: &[(NodeId, SocketAddr)]) -> Vec<(NodeId, MemberAddress)> {
    members.iter().map(|&(id, a)| (id, MemberAddress::Ip(a))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_at_runtime_connects_and_a_removed_one_is_cut_off() {
    let pki = generate_dev_pki(CLUSTER, &ids(3)).unwrap();
    let sockets: Vec<_> = (0..3).map(|_| bind()).collect();
    let all: Vec<(NodeId, SocketAddr)> = ids(3).into_iter().zip(sockets.iter().map(addr)).collect();
    let two = &all[..2];
    let mut sockets = sockets.into_iter();
    // Nodes 1 and 2 start as a cluster of two; node 3 already lists all three.
    let n1 = start(&pki, NodeId(1), sockets.next().unwrap(), two).await;
    let mut n2 = start(&pki, NodeId(2), sockets.next().unwrap(), two).await;
    // Node 3 dials nobody (1 and 2 are passive for it): the connections below exist only
    // if 1 and 2 dial the member they added.
    let socket3 = sockets.next().unwrap();
    let mut config3 = config(NodeId(3), addr(&socket3), &all, pki.identity(NodeId(3)).unwrap());
    config3.passive = vec![NodeId(1), NodeId(2)];
    let (t3, rx3) = Transport::start_on(config3, socket3).await.unwrap();
    let mut n3 = Node { id: NodeId(3), t: t3, rx: rx3 };
    assert!(deliver(&n1, &mut n2, b"one-two", Duration::from_secs(3)).await);
    // Node 3 is nobody's member yet: nothing reaches it.
    assert!(matches!(
        n1.t.send_datagram(NodeId(3), Bytes::from_static(b"x")),
        Err(DatagramDropped::UnknownPeer { .. })
    ));
    let link_before = n1.t.link(NodeId(2)).map(|l| (l.remote, l.dialed_by));

    // Both add node 3.
    let added = MemberChanges { added: vec![NodeId(3)], removed: vec![] };
    assert_eq!(n1.t.set_members(listed(&all), &[]).unwrap(), added);
    assert_eq!(n2.t.set_members(listed(&all), &[]).unwrap(), added);
    assert!(deliver(&n1, &mut n3, b"one-three", Duration::from_secs(5)).await, "1 reaches the new member");
    assert!(deliver(&n3, &mut n2, b"three-two", Duration::from_secs(5)).await, "the new member reaches 2");
    assert_eq!(
        n1.t.link(NodeId(2)).map(|l| (l.remote, l.dialed_by)),
        link_before,
        "an unchanged member keeps its connection"
    );

    // Node 1 removes node 3: the connection closes, sends fail, and 3's new dials are refused.
    let removed = MemberChanges { added: vec![], removed: vec![NodeId(3)] };
    assert_eq!(n1.t.set_members(listed(two), &[]).unwrap(), removed);
    assert!(matches!(
        n1.t.send_datagram(NodeId(3), Bytes::from_static(b"x")),
        Err(DatagramDropped::UnknownPeer { .. })
    ));
    assert!(eventually(Duration::from_secs(3), || !n3.t.connected_peers().contains(&NodeId(1))).await);
    // Were 3 to dial 1 now, it would be refused: 3 is no member of 1's any more.
    n3.t.set_members(listed(&all), &[]).unwrap();
    let refused = n1.t.counters().refused.total();
    assert!(
        eventually(Duration::from_secs(5), || n1.t.counters().refused.total() > refused).await,
        "3 dials 1 and is refused"
    );
    assert!(!n1.t.connected_peers().contains(&NodeId(3)));
    assert!(deliver(&n1, &mut n2, b"still", Duration::from_secs(3)).await, "1 and 2 are unaffected");
    assert!(deliver(&n2, &mut n3, b"two-three", Duration::from_secs(3)).await, "2 still has 3");
    n1.t.shutdown().await;
    n2.t.shutdown().await;
    n3.t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_member_list_is_refused_and_changes_nothing() {
    let pki = generate_dev_pki(CLUSTER, &ids(2)).unwrap();
    let (nodes, members) = cluster(&pki, 2).await;
    let mut twice = listed(&members);
    twice.push(twice[1].clone());
    assert!(nodes[0].t.set_members(twice, &[]).is_err(), "a member listed twice");
    let unspecified =
        vec![(NodeId(1), MemberAddress::Ip(members[0].1)), (NodeId(2), "0.0.0.0:7000".parse().unwrap())];
    assert!(nodes[0].t.set_members(unspecified, &[]).is_err(), "an address nobody can dial");
    let (a, b) = (&nodes[0], &nodes[1]);
    assert!(eventually(Duration::from_secs(3), || all_connected(&nodes)).await, "the old list still stands");
    assert!(a.t.send_datagram(b.id, Bytes::from_static(b"x")).is_ok());
    for n in &nodes {
        n.t.shutdown().await;
    }
}
