//! Real nodes on 127.0.0.1 whose members are given by name: two members named `localhost`
//! form a quorum of three, while the third member's name does not resolve; the nodes keep
//! running and say so in their status.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use quorate::testing::wait_until;
use quorate::transport::generate_dev_pki;
use quorate::{Config, MemberAddr, Node, NodeId, TlsSource};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT_MAX: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_by_name_form_a_quorum_and_an_unresolvable_one_is_reported() -> TestResult {
    let dir = std::env::temp_dir().join(format!("quorate-names-{}", std::process::id()));
    let pki = generate_dev_pki("names", &[NodeId(1), NodeId(2), NodeId(3)])?;
    let sockets: Vec<UdpSocket> = (0..2).map(|_| UdpSocket::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let mut members = Vec::new();
    for (i, s) in sockets.iter().enumerate() {
        let addr = format!("localhost:{}", s.local_addr()?.port()).parse()?;
        members.push(MemberAddr { id: NodeId(i as u64 + 1), addr, votes: 1 });
    }
    let lost = "quorate-2.quorate.nosuch.invalid:7000";
    members.push(MemberAddr { id: NodeId(3), addr: lost.parse()?, votes: 1 });
    let mut nodes = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let id = NodeId(i as u64 + 1);
        let tls = TlsSource::Identity(Arc::new(pki.identity(id)?));
        let mut config = Config::lan("names", id, members.clone(), tls);
        config.data_dir = Some(dir.join(format!("data-{}", id.0)));
        nodes.push(Node::start_on(config, socket).await?);
    }
    let writable = wait_until(WAIT_MAX, || nodes.iter().all(|n| n.gate().can_write())).await;
    let failing = wait_until(WAIT_MAX, || {
        nodes.iter().all(|n| n.status().transport.get("resolve_failures").is_some_and(|&f| f >= 2))
    })
    .await;
    let status = nodes[0].status();
    for node in nodes {
        node.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);

    assert!(writable.is_some(), "two of three members by name did not form a quorum");
    assert!(failing.is_some(), "the unresolvable name is not retried: {:?}", status.transport);
    let peer = |id: u64| status.peers.iter().find(|p| p.id == id).ok_or(format!("no peer {id}"));
    let third = peer(3)?;
    assert_eq!(third.address.as_deref(), Some(lost));
    assert_eq!(third.resolve_error.as_deref(), Some("name does not resolve"));
    assert_eq!(third.host_name(), Some("quorate-2.quorate.nosuch.invalid"));
    assert!(!third.connected && third.resolved.is_none());
    let second = peer(2)?;
    assert!(second.connected && second.resolve_error.is_none(), "{second:?}");
    assert_eq!(second.resolved, second.remote, "node 2 is where `localhost` resolved: {second:?}");
    assert!(second.resolved.as_deref().is_some_and(|r| r.starts_with("127.0.0.1:")), "{second:?}");
    Ok(())
}
