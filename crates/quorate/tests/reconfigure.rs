//! Online definition changes between real nodes over QUIC on 127.0.0.1 (`LocalCluster`):
//! an unsafe change refused with its safe route, the route followed while the cluster stays
//! writable, a fourth node joining, a member removed that learns it and stops, restarts from
//! the persisted definition, a removed node that refuses to start, and a second change
//! refused while a voter has not moved.

use std::time::Duration;

use quorate::testing::{retry_while_pending, wait_until, LocalCluster};
use quorate::{Change, ChangeRefused, Node, NodeId, ProposeError, StartError, TieBreaker};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT_MAX: Duration = Duration::from_secs(10);

fn versions(cluster: &LocalCluster, ids: &[u64]) -> Vec<Option<u64>> {
    ids.iter().map(|&i| cluster.node(NodeId(i)).map(|n| n.definition().version)).collect()
}

/// Proposes `change` on `node`, retried every 20 ms while the previous change is still
/// under way (its last voters are heard running it a heartbeat after they adopt).
async fn change_when_ready(node: &Node, change: Change) -> Result<quorate::Roster, ChangeRefused> {
    retry_while_pending(WAIT_MAX, || node.change(change, None)).await
}

/// Samples the gates of `ids` every 5 ms until `stop` says so; how many samples found one
/// of them fenced, out of how many.
fn sample_writable(
    cluster: &LocalCluster,
    ids: &[u64],
) -> (tokio::task::JoinHandle<(u32, u32)>, tokio::sync::watch::Sender<bool>) {
    let gates: Vec<_> = ids.iter().filter_map(|&i| cluster.gate(NodeId(i))).collect();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let (mut fenced, mut samples) = (0, 0);
        // Bounded: at most a minute of samples.
        for _ in 0..12_000 {
            if *stopped.borrow_and_update() {
                break;
            }
            samples += 1;
            if let Some(g) = gates.iter().find(|g| !g.can_write()) {
                fenced += 1;
                eprintln!(
                    "fenced at sample {samples}: {}",
                    g.status().why_not().map(|w| w.to_string()).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (fenced, samples)
    });
    (task, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_grows_by_the_safe_route_and_a_removed_member_learns_it_and_stays_out() -> TestResult {
    // Nodes 1-3 run on a file listing three (default tie-breaker, the lowest id); node 4's
    // file lists the definition as it will be once it is added: four, strict majority.
    let mut prepared = LocalCluster::builder("grow", 4)
        .configure(|c| {
            if c.id != NodeId(4) {
                c.members.truncate(3);
            } else {
                c.gate.tie_breaker = TieBreaker::None;
            }
        })
        .prepare()?;
    let (four_config, socket) = prepared.take(NodeId(4))?;
    drop(socket);
    let mut cluster = prepared.start().await?;
    cluster.wait_writable(&[NodeId(1), NodeId(2), NodeId(3)], WAIT_MAX).await?;
    // Settled: every node holds every vote (the first quorum may have been two of three;
    // with four voters and one not started, all three are needed).
    let settled = || (1..=3).all(|i| cluster.node(NodeId(i)).is_some_and(|n| n.status().held_votes == 3));
    wait_until(WAIT_MAX, settled).await.ok_or("not every vote held")?;
    let one = cluster.node(NodeId(1)).ok_or("no node 1")?;

    // Under the lowest-id tie-breaker {1,4} would be a quorum of four beside {2,3} of three.
    let four_addr = four_config.listen.into();
    let refused = one.change(Change::AddMember { id: NodeId(4), votes: 1 }, Some(four_addr)).await;
    let Err(ChangeRefused::Propose(ProposeError::Unsafe(why))) = &refused else {
        return Err(format!("expected an unsafe change, got {refused:?}").into());
    };
    let text = why.to_string();
    assert!(text.contains("is a quorum of the current definition"), "{text}");
    assert!(
        text.contains("1. set the tie-breaker to none (strict majority), 2. add node 4 with 1 vote"),
        "{text}"
    );
    assert_eq!(versions(&cluster, &[1, 2, 3]), [Some(0); 3], "a refusal changes nothing");

    // The route, while nodes 1-3 are sampled for writability.
    let (sampler, stop) = sample_writable(&cluster, &[1, 2, 3]);
    let one = cluster.node(NodeId(1)).ok_or("no node 1")?;
    let v1 = one.change(Change::SetTieBreaker(TieBreaker::None), None).await?;
    assert_eq!(v1.version, 1);
    let added = Change::AddMember { id: NodeId(4), votes: 1 };
    let v2 = loop {
        match one.change(added, Some(four_config.listen.into())).await {
            Err(ChangeRefused::Propose(ProposeError::Pending { waiting, .. })) => {
                assert!(waiting.iter().all(|w| [NodeId(2), NodeId(3)].contains(w)), "{waiting:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other?,
        }
    };
    assert_eq!((v2.version, v2.address(NodeId(4))), (2, Some(four_config.listen.to_string().as_str())));
    wait_until(WAIT_MAX, || versions(&cluster, &[1, 2, 3]) == [Some(2); 3])
        .await
        .ok_or("v2 did not spread")?;
    let _ = stop.send(true);
    let (fenced, samples) = sampler.await?;
    assert!(
        samples > 0 && fenced == 0,
        "nodes 1-3 were fenced in {fenced} of {samples} samples of the route"
    );
    // Node 4 starts on its file (version 0, another digest than version 2). Its definition
    // reaches nodes 1-3 before its heartbeats do, so none of them loses its quorum for want
    // of knowing it: not one QuorumLost event, not one fenced sample.
    let mut streams: Vec<_> =
        [1, 2, 3].iter().filter_map(|&i| cluster.gate(NodeId(i))).map(|g| g.subscribe()).collect();
    let (sampler, stop) = sample_writable(&cluster, &[1, 2, 3]);
    cluster.start_node(NodeId(4)).await?;
    cluster.wait_all_writable(WAIT_MAX).await?;
    wait_until(WAIT_MAX, || versions(&cluster, &[4]) == [Some(2)]).await.ok_or("node 4 did not adopt v2")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop.send(true);
    let (fenced, samples) = sampler.await?;
    let mut lost = Vec::new();
    for stream in &mut streams {
        while let Ok(Some(event)) = stream.try_recv() {
            if matches!(event, quorate::QuorumEvent::QuorumLost { .. }) {
                lost.push(event);
            }
        }
    }
    assert!(lost.is_empty(), "nodes 1-3 lost their quorum as node 4 joined: {lost:?}");
    assert!(samples > 0 && fenced == 0, "nodes 1-3 were fenced in {fenced} of {samples} samples as 4 joined");
    let status = cluster.node(NodeId(1)).ok_or("no node 1")?.status();
    assert_eq!((status.definition_version, status.total_votes), (2, 4));
    wait_until(WAIT_MAX, || {
        let s = cluster.node(NodeId(1)).map(Node::status);
        s.is_some_and(|s| s.peers.iter().all(|p| p.definition_version == Some(2)))
    })
    .await
    .ok_or("node 1 does not see every peer at version 2")?;

    // Node 2 removes node 4: it learns it, fences itself and says at which version.
    let two = cluster.node(NodeId(2)).ok_or("no node 2")?;
    let v3 = change_when_ready(two, Change::RemoveMember { id: NodeId(4) }).await?;
    assert_eq!(v3.version, 3);
    let four = cluster.node(NodeId(4)).ok_or("no node 4")?;
    let removed = tokio::time::timeout(WAIT_MAX, four.wait_removed()).await?;
    assert_eq!(removed, 3);
    assert!(!four.gate().can_write());
    assert_eq!(four.status().removed_at_version, Some(3));
    cluster.wait_writable(&[NodeId(1), NodeId(2), NodeId(3)], WAIT_MAX).await?;
    if let Some(four) = cluster.take(NodeId(4)) {
        four.shutdown().await;
    }
    // Its data directory keeps the definition that removed it: it does not start again.
    let again = cluster.start_node(NodeId(4)).await.err().ok_or("the removed node started")?;
    let text = again.to_string();
    assert!(text.contains("node 4 was removed from the cluster by definition version 3"), "{text}");
    assert!(matches!(again, quorate::testing::ClusterError::Start { ref source, .. }
        if matches!(**source, StartError::Removed { version: 3, .. })));

    // A restarted member starts on the persisted version, not its file's.
    if let Some(three) = cluster.take(NodeId(3)) {
        three.shutdown().await;
    }
    let three = cluster.start_node(NodeId(3)).await?;
    assert_eq!(three.definition().version, 3);
    assert_eq!(three.definition().votes.tie_breaker(), None);
    cluster.wait_writable(&[NodeId(1), NodeId(2), NodeId(3)], WAIT_MAX).await?;
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_change_while_a_voter_has_not_moved_is_refused_naming_it() -> TestResult {
    let mut cluster = LocalCluster::builder("pending", 3).start().await?;
    cluster.wait_all_writable(WAIT_MAX).await?;
    // Node 3 crashes; it was heard running version 0, so one change may go.
    drop(cluster.take(NodeId(3)));
    let one = cluster.node(NodeId(1)).ok_or("no node 1")?;
    let v1 = one.change(Change::SetVotes { id: NodeId(2), votes: 2 }, None).await?;
    assert_eq!(v1.version, 1);
    let two_moved = || one.status().peers.iter().any(|p| p.id == 2 && p.definition_version == Some(1));
    wait_until(WAIT_MAX, two_moved).await.ok_or("node 2 not heard running version 1")?;
    let refused = one.change(Change::SetVotes { id: NodeId(2), votes: 1 }, None).await;
    assert_eq!(
        refused,
        Err(ChangeRefused::Propose(ProposeError::Pending { version: 1, waiting: vec![NodeId(3)] }))
    );
    let text = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(text, "the change to version 1 is still under way: node 3 not heard running it yet");
    // A node does not remove itself; an added member needs an address.
    let self_removal = one.change(Change::RemoveMember { id: NodeId(1) }, None).await;
    assert!(matches!(self_removal, Err(ChangeRefused::RemovesThisNode { .. })), "{self_removal:?}");
    // Node 3 comes back on its file (version 0), adopts version 1, and the next change goes.
    cluster.start_node(NodeId(3)).await?;
    wait_until(WAIT_MAX, || versions(&cluster, &[3]) == [Some(1)]).await.ok_or("node 3 did not adopt")?;
    let one = cluster.node(NodeId(1)).ok_or("no node 1")?;
    let v2 = change_when_ready(one, Change::SetVotes { id: NodeId(2), votes: 1 }).await?;
    assert_eq!(v2.version, 2);
    wait_until(WAIT_MAX, || versions(&cluster, &[1, 2, 3]) == [Some(2); 3])
        .await
        .ok_or("v2 did not spread")?;
    cluster.wait_all_writable(WAIT_MAX).await?;
    cluster.shutdown().await?;
    Ok(())
}
