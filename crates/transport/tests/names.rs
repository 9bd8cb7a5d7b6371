//! Members by name, end to end on loopback: `localhost:PORT` members connect and exchange
//! datagrams, a name that does not resolve is reported and retried while the rest of the
//! cluster works, and a named member does not loosen the address check of members configured
//! at an IP address. (A peer whose name moves to another address: `src/moved_tests.rs`.)

// Tests may panic on failure; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quorate_proto::NodeId;
use quorate_transport::{
    generate_dev_pki, DevPki, Inbound, MemberAddress, Resolution, ResolveFailure, Transport, TransportConfig,
    TransportTiming,
};
use tokio::sync::mpsc;

const CLUSTER: &str = "names";

fn bind(ip: &str) -> UdpSocket {
    UdpSocket::bind((ip, 0)).expect("bind a loopback port")
}

fn port(s: &UdpSocket) -> u16 {
    s.local_addr().expect("local_addr").port()
}

fn named(host: &str, port: u16) -> MemberAddress {
    format!("{host}:{port}").parse().expect("a valid member address")
}

fn timing() -> TransportTiming {
    TransportTiming { handshake_timeout: Duration::from_secs(1), ..TransportTiming::default() }
}

async fn start(
    pki: &DevPki,
    me: u64,
    socket: UdpSocket,
    members: &[(NodeId, MemberAddress)],
) -> (Transport, mpsc::Receiver<Inbound>) {
    let listen = socket.local_addr().expect("local_addr");
    let mut c = TransportConfig::new(
        NodeId(me),
        CLUSTER,
        listen,
        members.to_vec(),
        pki.identity(NodeId(me)).unwrap(),
    );
    c.timing = timing();
    Transport::start_on(c, socket).await.expect("start")
}

/// Polls `ok` every 5 ms until it holds or `within` passes.
async fn eventually(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ok()
}

/// Sends from `from` to `to` every 20 ms until a datagram arrives, within `within`.
async fn delivered(from: &Transport, to: NodeId, rx: &mut mpsc::Receiver<Inbound>, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        let _ = from.send_datagram(to, Bytes::from_static(b"by name"));
        let wait = tokio::time::Instant::now() + Duration::from_millis(20);
        if let Ok(Some(Inbound::Datagram { from: sender, bytes })) =
            tokio::time::timeout_at(wait, rx.recv()).await
        {
            if sender == from.me() && bytes == b"by name"[..] {
                return true;
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_named_localhost_connect_and_exchange_datagrams() {
    let pki = generate_dev_pki(CLUSTER, &[NodeId(1), NodeId(2), NodeId(3)]).unwrap();
    let sockets: Vec<UdpSocket> = (0..3).map(|_| bind("127.0.0.1")).collect();
    let members: Vec<(NodeId, MemberAddress)> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| (NodeId(i as u64 + 1), named("localhost", port(s))))
        .collect();
    let ports: Vec<u16> = sockets.iter().map(port).collect();
    let mut nodes = Vec::new();
    for (i, s) in sockets.into_iter().enumerate() {
        nodes.push(start(&pki, i as u64 + 1, s, &members).await);
    }
    let connected =
        eventually(Duration::from_secs(3), || nodes.iter().all(|(t, _)| t.connected_peers().len() == 2));
    assert!(connected.await, "not all connected by name within 3 s");
    // Each peer's name was looked up and gave its loopback address.
    for (t, _) in &nodes {
        for (id, p) in [1, 2, 3].into_iter().zip(&ports).filter(|(id, _)| NodeId(*id) != t.me()) {
            let want = SocketAddr::from(([127, 0, 0, 1], *p));
            let dialed = eventually(Duration::from_secs(2), || {
                t.resolution(NodeId(id)) == Some((named("localhost", *p), Resolution::Resolved(want)))
            });
            assert!(dialed.await, "{:?} sees {id}: {:?}", t.me(), t.resolution(NodeId(id)));
            assert_eq!(t.link(NodeId(id)).map(|l| l.remote), Some(want));
        }
    }
    let t1 = nodes[0].0.clone();
    let (_, rx2) = &mut nodes[1];
    assert!(delivered(&t1, NodeId(2), rx2, Duration::from_secs(1)).await, "1 -> 2 by name");
    for (t, _) in &nodes {
        let c = t.counters();
        assert_eq!((c.resolve_failures, c.refused.total(), c.peers_moved), (0, 0, 0), "{c:?}");
        t.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_does_not_resolve_is_reported_retried_and_not_fatal() {
    let pki = generate_dev_pki(CLUSTER, &[NodeId(1), NodeId(2), NodeId(3)]).unwrap();
    let (s1, s2) = (bind("127.0.0.1"), bind("127.0.0.1"));
    // RFC 6761: `.invalid` never resolves.
    let lost = named("quorate-2.nosuch.invalid", 7000);
    let members = vec![
        (NodeId(1), MemberAddress::Ip(s1.local_addr().unwrap())),
        (NodeId(2), MemberAddress::Ip(s2.local_addr().unwrap())),
        (NodeId(3), lost.clone()),
    ];
    let (t1, _rx1) = start(&pki, 1, s1, &members).await;
    let (t2, mut rx2) = start(&pki, 2, s2, &members).await;
    let failed = Some((lost.clone(), Resolution::Failed(ResolveFailure::NotFound)));
    assert!(
        eventually(Duration::from_secs(5), || t1.resolution(NodeId(3)) == failed).await,
        "{:?}",
        t1.resolution(NodeId(3))
    );
    assert_eq!(ResolveFailure::NotFound.to_string(), "name does not resolve");
    // The node keeps trying (with its backoff) and the rest of the cluster works.
    assert!(
        eventually(Duration::from_secs(5), || t1.counters().resolve_failures >= 3).await,
        "{:?}",
        t1.counters()
    );
    assert!(
        delivered(&t1, NodeId(2), &mut rx2, Duration::from_secs(2)).await,
        "1 -> 2 while 3 does not resolve"
    );
    assert_eq!(t1.connected_peers(), [NodeId(2)]);
    assert!(t1.link(NodeId(3)).is_none());
    t1.shutdown().await;
    t2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_named_member_a_member_at_an_ip_address_must_still_come_from_it() {
    let pki = generate_dev_pki(CLUSTER, &[NodeId(1), NodeId(2), NodeId(3)]).unwrap();
    let (s1, s2, elsewhere) = (bind("127.0.0.1"), bind("127.0.0.1"), bind("127.0.0.2"));
    let members = vec![
        (NodeId(1), MemberAddress::Ip(s1.local_addr().unwrap())),
        (NodeId(2), MemberAddress::Ip(s2.local_addr().unwrap())),
        (NodeId(3), named("localhost", 9)),
    ];
    let (t1, _rx1) = start(&pki, 1, s1, &members).await;
    // Node 2's real certificate, from an address that is not node 2's: unlisted, so let
    // through to the handshake (node 3 is named), where node 2's fixed address refuses it.
    let (wrong, _rx) = start(&pki, 2, elsewhere, &members).await;
    let refused = eventually(Duration::from_secs(3), || t1.counters().refused.address_mismatch >= 1).await;
    let c = t1.counters();
    assert!(refused, "{c:?}");
    assert!(c.handshakes_from_unlisted_address >= 1, "{c:?}");
    assert!(t1.link(NodeId(2)).is_none(), "a member at an IP address was accepted from elsewhere");
    wrong.shutdown().await;
    // The real node 2 at its address connects.
    let (t2, _rx2) = start(&pki, 2, s2, &members).await;
    assert!(eventually(Duration::from_secs(3), || t1.link(NodeId(2)).is_some()).await);
    t1.shutdown().await;
    t2.shutdown().await;
}
