//! Helpers shared by the transport's end-to-end tests: nodes on 127.0.0.1 with OS-assigned
//! ports, bounded waits.

// Each test crate uses a different part of this module.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quorate_proto::NodeId;
use quorate_transport::{DevPki, Inbound, TlsIdentity, Transport, TransportConfig, TransportTiming};
use tokio::sync::mpsc;

pub(crate) const CLUSTER: &str = "test";

pub(crate) struct Node {
    pub(crate) id: NodeId,
    pub(crate) t: Transport,
    pub(crate) rx: mpsc::Receiver<Inbound>,
}

pub(crate) fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

pub(crate) fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("local_addr")
}

pub(crate) fn ids(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

/// Short handshake timeout so tests about refused connections do not wait long.
pub(crate) fn timing() -> TransportTiming {
    TransportTiming { handshake_timeout: Duration::from_secs(1), ..TransportTiming::default() }
}

pub(crate) fn config(
    me: NodeId,
    listen: SocketAddr,
    members: &[(NodeId, SocketAddr)],
    tls: TlsIdentity,
) -> TransportConfig {
    let mut c = TransportConfig::new(me, CLUSTER, listen, members.to_vec(), tls);
    c.timing = timing();
    c
}

pub(crate) async fn start(
    pki: &DevPki,
    me: NodeId,
    socket: UdpSocket,
    members: &[(NodeId, SocketAddr)],
) -> Node {
    let cfg = config(me, addr(&socket), members, pki.identity(me).expect("identity"));
    let (t, rx) = Transport::start_on(cfg, socket).await.expect("start");
    Node { id: me, t, rx }
}

/// Binds `n` sockets, then starts every node with the full member list.
pub(crate) async fn cluster(pki: &DevPki, n: u64) -> (Vec<Node>, Vec<(NodeId, SocketAddr)>) {
    let sockets: Vec<UdpSocket> = (0..n).map(|_| bind()).collect();
    let members: Vec<(NodeId, SocketAddr)> = ids(n).into_iter().zip(sockets.iter().map(addr)).collect();
    let mut nodes = Vec::new();
    for (socket, (id, _)) in sockets.into_iter().zip(members.iter()) {
        nodes.push(start(pki, *id, socket, &members).await);
    }
    (nodes, members)
}

/// Polls `ok` every 5 ms until it holds or `within` passes.
pub(crate) async fn eventually(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The next datagram within `within`, skipping requests.
pub(crate) async fn next_datagram(
    rx: &mut mpsc::Receiver<Inbound>,
    within: Duration,
) -> Option<(NodeId, Bytes)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Inbound::Datagram { from, bytes })) => return Some((from, bytes)),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Sends `payload` from `from` to `to` every 20 ms until `to` receives it, within `within`.
pub(crate) async fn deliver(from: &Node, to: &mut Node, payload: &'static [u8], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let _ = from.t.send_datagram(to.id, Bytes::from_static(payload));
        if let Some((sender, bytes)) = next_datagram(&mut to.rx, Duration::from_millis(20)).await {
            if sender == from.id && bytes == payload {
                return true;
            }
        }
    }
    false
}

/// Waits until `a` and `b` share exactly one connection that both ends agree on, so that no
/// message is lost on a connection retired by the duplicate rule.
pub(crate) async fn settle(a: &Transport, b: &Transport) {
    let settled = eventually(Duration::from_secs(2), || {
        let (ab, ba) = (a.link(b.me()), b.link(a.me()));
        ab.is_some()
            && ab.map(|l| l.dialed_by) == ba.map(|l| l.dialed_by)
            && a.open_connections() == 1
            && b.open_connections() == 1
    })
    .await;
    assert!(settled, "{:?} and {:?} did not settle on one connection", a.me(), b.me());
}

pub(crate) fn all_connected(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| n.t.connected_peers().len() == nodes.len() - 1)
}
