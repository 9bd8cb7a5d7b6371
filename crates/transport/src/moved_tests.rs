//! A named peer that comes back at another address, on loopback (127.0.0.1, then
//! 127.0.0.2): found by looking its name up again, both when its connections were closed and
//! when the old connection still looked alive. The name's answers come from
//! `address::fake_hosts`; everything else (dial loop, handshakes, the one-connection rule)
//! is the real transport.

// Tests may panic on failure; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::address::{fake_hosts, MemberAddress, Resolution};
use crate::{generate_dev_pki, DevPki, Transport, TransportConfig, TransportTiming};
use quorate_proto::NodeId;

const CLUSTER: &str = "moved";
const OLD: [u8; 4] = [127, 0, 0, 1];
const NEW: [u8; 4] = [127, 0, 0, 2];

fn config(pki: &DevPki, me: u64, listen: SocketAddr, members: &[(NodeId, MemberAddress)]) -> TransportConfig {
    let mut c = TransportConfig::new(
        NodeId(me),
        CLUSTER,
        listen,
        members.to_vec(),
        pki.identity(NodeId(me)).unwrap(),
    );
    c.timing = TransportTiming { handshake_timeout: Duration::from_secs(1), ..TransportTiming::default() };
    c
}

async fn start(
    pki: &DevPki,
    me: u64,
    socket: UdpSocket,
    members: &[(NodeId, MemberAddress)],
    passive: &[u64],
) -> Transport {
    let mut c = config(pki, me, socket.local_addr().unwrap(), members);
    c.passive = passive.iter().copied().map(NodeId).collect();
    Transport::start_on(c, socket).await.expect("start").0
}

/// Polls `ok` every 5 ms until it holds or `within` passes; how long it took.
async fn within(limit: Duration, mut ok: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ok() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Node 1 at 127.0.0.1 (by address), node 2 by `name` resolving to 127.0.0.1 for now.
fn two(name: &str) -> (DevPki, UdpSocket, UdpSocket, Vec<(NodeId, MemberAddress)>, u16) {
    let pki = generate_dev_pki(CLUSTER, &[NodeId(1), NodeId(2)]).unwrap();
    let (s1, s2) = (
        UdpSocket::bind(SocketAddr::from((OLD, 0))).unwrap(),
        UdpSocket::bind(SocketAddr::from((OLD, 0))).unwrap(),
    );
    let port2 = s2.local_addr().unwrap().port();
    fake_hosts::set(name, IpAddr::from(OLD));
    let members = vec![
        (NodeId(1), MemberAddress::Ip(s1.local_addr().unwrap())),
        (NodeId(2), MemberAddress::Name { host: name.to_owned(), port: port2 }),
    ];
    (pki, s1, s2, members, port2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_back_at_a_new_address_is_dialed_there_after_its_name_moves() {
    let name = "node-2.closed.fake.test";
    let (pki, s1, s2, members, port2) = two(name);
    let t1 = start(&pki, 1, s1, &members, &[]).await;
    let t2 = start(&pki, 2, s2, &members, &[]).await;
    let old = SocketAddr::from((OLD, port2));
    assert!(within(Duration::from_secs(3), || t1.link(NodeId(2)).is_some()).await.is_some());
    assert_eq!(t1.resolution(NodeId(2)).map(|r| r.1), Some(Resolution::Resolved(old)));

    t2.shutdown().await;
    // Node 1 re-dials the old address meanwhile (and fails); then the name moves.
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake_hosts::set(name, IpAddr::from(NEW));
    let new = SocketAddr::from((NEW, port2));
    // The new life never dials node 1: only node 1's own lookup can find it.
    let t2 = start(&pki, 2, UdpSocket::bind(new).unwrap(), &members, &[1]).await;
    // A failed dial (1 s handshake timeout) plus the backoff (at most 2 s).
    let took = within(Duration::from_secs(4), || t1.link(NodeId(2)).is_some_and(|l| l.remote == new)).await;
    assert!(took.is_some(), "not reconnected at {new}: {:?} {:?}", t1.resolution(NodeId(2)), t1.counters());
    assert_eq!(t1.link(NodeId(2)).map(|l| l.dialed_by), Some(NodeId(1)));
    assert_eq!(t1.resolution(NodeId(2)).map(|r| r.1), Some(Resolution::Resolved(new)));
    println!("reconnected at the new address {:?} after the restart", took);
    t1.shutdown().await;
    t2.shutdown().await;
}

/// Node 2 vanishes without a word (its runtime stops: no close, no stateless reset from the
/// old address), so node 1 keeps the connection it dialed, which QUIC alone would close only
/// after the 10 s idle timeout. Node 2 comes back at 127.0.0.2 and dials in; its connection
/// loses to node 1's (lower id dialed it), node 1 looks the name up, finds it moved, closes
/// the old connection and dials the new address.
#[test]
fn a_peer_that_moved_while_its_old_connection_looked_alive_is_reconnected_at_once() {
    let name = "node-2.silent.fake.test";
    let (pki, s1, s2, members, port2) = two(name);
    let rt1 = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let rt2 = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let t1 = rt1.block_on(start(&pki, 1, s1, &members, &[]));
    let t2 = rt2.block_on(start(&pki, 2, s2, &members, &[]));
    let settled = rt1.block_on(within(Duration::from_secs(3), || {
        t1.link(NodeId(2)).map(|l| l.dialed_by) == Some(NodeId(1))
            && t2.link(NodeId(1)).map(|l| l.dialed_by) == Some(NodeId(1))
    }));
    assert!(settled.is_some(), "the pair did not settle on node 1's connection");

    // Vanish without a word: stop the runtime, and never drop the handle (dropping it
    // closes the endpoint, and a CONNECTION_CLOSE that still got out would tell node 1).
    rt2.shutdown_background();
    std::mem::forget(t2);
    fake_hosts::set(name, IpAddr::from(NEW));
    let new = SocketAddr::from((NEW, port2));
    let t2 = rt1.block_on(start(&pki, 2, UdpSocket::bind(new).unwrap(), &members, &[]));
    let took =
        rt1.block_on(within(Duration::from_secs(3), || t1.link(NodeId(2)).is_some_and(|l| l.remote == new)));
    let c = t1.counters();
    assert!(took.is_some(), "not reconnected at {new} well before the idle timeout: {c:?}");
    assert_eq!(c.peers_moved, 1, "{c:?}");
    assert!(c.duplicates_closed >= 1, "the new life's dial lost to the old connection first: {c:?}");
    println!("reconnected at the new address {took:?} after the new life started; {c:?}");
    rt1.block_on(async {
        t1.shutdown().await;
        t2.shutdown().await;
    });
}
