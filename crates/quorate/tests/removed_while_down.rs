//! A member removed while it was down, restarted on its old data directory, between real
//! nodes over QUIC on 127.0.0.1 (`LocalCluster`): it never receives the definition that
//! removed it, and learns it from its members' refusals. With a quorum refusing it stops by
//! itself and says why; with fewer it keeps running (the change may still be spreading)
//! until the definition reaches it.

use std::time::Duration;

use quorate::testing::{retry_while_pending, wait_until, LocalCluster};
use quorate::{Change, ChangeRefused, Node, NodeId, Removal, TieBreaker, LEAVING_GRACE};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT_MAX: Duration = Duration::from_secs(10);

/// Node 3 stops by itself within this long of its restart: once both members have refused
/// a dial (each answers within a round trip, but the dial loop backs off between tries, up
/// to 2 s) and the driver has looked (every 200 ms). Measured 0.2 to 7 s on a loaded 2-core
/// machine.
const STOPS_WITHIN: Duration = Duration::from_secs(15);

/// Proposes `change` on `node`, retried every 20 ms while the previous change is still
/// under way.
async fn change_when_ready(node: &Node, change: Change) -> Result<quorate::Roster, ChangeRefused> {
    retry_while_pending(WAIT_MAX, || node.change(change, None)).await
}

/// Three nodes under strict majority, so that removing one is a single safe step.
async fn three(name: &str) -> Result<LocalCluster, Box<dyn std::error::Error>> {
    let cluster =
        LocalCluster::builder(name, 3).configure(|c| c.gate.tie_breaker = TieBreaker::None).start().await?;
    cluster.wait_all_writable(WAIT_MAX).await?;
    Ok(cluster)
}

/// Whether node `id` of `cluster` runs definition `version`.
fn runs(cluster: &LocalCluster, id: u64, version: u64) -> bool {
    cluster.node(NodeId(id)).is_some_and(|n| n.definition().version == version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_while_down_stops_by_itself_when_restarted() -> TestResult {
    let mut cluster = three("removed-down").await?;
    // Node 3 crashes; node 1 removes it; the change spreads to node 2.
    drop(cluster.take(NodeId(3)));
    let one = cluster.node(NodeId(1)).ok_or("no node 1")?;
    let v1 = change_when_ready(one, Change::RemoveMember { id: NodeId(3) }).await?;
    assert_eq!(v1.version, 1);
    wait_until(WAIT_MAX, || runs(&cluster, 2, 1)).await.ok_or("node 2 does not run version 1")?;
    // Past the grace, neither member keeps node 3 in its transport.
    tokio::time::sleep(LEAVING_GRACE + Duration::from_millis(500)).await;

    for life in 0..2 {
        // Node 3 restarts on its old data directory, which never heard of version 1.
        let three = cluster.start_node(NodeId(3)).await?;
        let started = std::time::Instant::now();
        assert_eq!(three.definition().version, 0);
        let removal = tokio::time::timeout(STOPS_WITHIN, three.wait_removal()).await.map_err(|_| {
            format!("life {life}: node 3 still runs: {:?}", three.status().refused_as_non_member_by)
        })?;
        eprintln!("life {life}: node 3 stopped {:?} after its restart: {removal}", started.elapsed());
        assert_eq!(removal, Removal::RefusedAsNonMember { by: vec![NodeId(1), NodeId(2)] });
        let text = removal.to_string();
        assert!(text.contains("members 1, 2 refuse it as a non-member"), "{text}");
        assert!(text.contains("removed from the cluster while it was down"), "{text}");
        assert!(!three.gate().can_write(), "a node that stopped is fenced");
        assert!(three.gate().permit().is_err());
        let status = three.status();
        assert!(status.removed_by_refusals);
        assert_eq!(status.removed_at_version, None, "the version is unknown");
        assert_eq!(status.refused_as_non_member_by, vec![1, 2]);
        assert_eq!(three.removed(), None);
        if let Some(three) = cluster.take(NodeId(3)) {
            three.shutdown().await;
        }
        // Nothing was recorded: the next life starts (and stops again the same way).
    }
    // The members were not disturbed.
    cluster.wait_writable(&[NodeId(1), NodeId(2)], WAIT_MAX).await?;
    let status = cluster.node(NodeId(1)).ok_or("no node 1")?.status();
    assert!(status.transport.get("refused_former_member").is_some_and(|n| *n >= 1), "{:?}", status.transport);
    assert!(status.refused_as_non_member_by.is_empty());
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_by_fewer_than_a_quorum_a_member_keeps_running() -> TestResult {
    let mut cluster = three("removed-partly").await?;
    // Node 3 crashes; node 1, cut off from node 2, removes it: the change stays on node 1.
    drop(cluster.take(NodeId(3)));
    cluster.cut(&[NodeId(1)], &[NodeId(2)])?;
    let one = cluster.node(NodeId(1)).ok_or("no node 1")?;
    let v1 = change_when_ready(one, Change::RemoveMember { id: NodeId(3) }).await?;
    assert_eq!(v1.version, 1);
    tokio::time::sleep(LEAVING_GRACE + Duration::from_millis(500)).await;
    assert!(runs(&cluster, 2, 0), "node 2 did not hear of the change");

    // Node 3 restarts: node 1 refuses it, node 2 (version 0) takes it. One vote of three.
    let three = cluster.start_node(NodeId(3)).await?;
    let refused = wait_until(WAIT_MAX, || three.status().refused_as_non_member_by == [1]).await;
    refused.ok_or("node 3 does not see node 1's refusal")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(three.removal(), None, "one refusal of three votes stopped it");
    let status = three.status();
    assert!(!status.removed_by_refusals);
    assert_eq!(status.refused_as_non_member_by, vec![1]);
    assert!(status.peers.iter().any(|p| p.id == 2 && p.definition_version == Some(0)), "node 3 hears node 2");

    // Healed, node 2 adopts version 1 and tells node 3, which then leaves for good.
    cluster.heal()?;
    let three = cluster.node(NodeId(3)).ok_or("no node 3")?;
    let removal = tokio::time::timeout(WAIT_MAX, three.wait_removal()).await?;
    eprintln!("after the heal: {removal}");
    assert!(
        matches!(removal, Removal::ByDefinition { version: 1 } | Removal::RefusedAsNonMember { .. }),
        "{removal:?}"
    );
    assert!(!three.gate().can_write());
    if let Some(three) = cluster.take(NodeId(3)) {
        three.shutdown().await;
    }
    cluster.wait_writable(&[NodeId(1), NodeId(2)], WAIT_MAX).await?;
    cluster.shutdown().await?;
    Ok(())
}
