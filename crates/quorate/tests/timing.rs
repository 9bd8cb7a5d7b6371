//! Timing presets changed while real nodes run over QUIC on 127.0.0.1 (`LocalCluster`):
//! lan -> wan on three nodes without a restart while all stay writable, then a partition
//! that fences the minority within the wan bound, and back to lan.

use std::time::{Duration, Instant};

use quorate::testing::{fence_bound, retry_while_pending, wait_until, LocalCluster};
use quorate::{ChangeRefused, Node, NodeId};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT_MAX: Duration = Duration::from_secs(10);
const IDS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

/// Asks `node` for preset `name`, retried every 20 ms while the previous change is under way.
async fn preset_when_ready(node: &Node, name: &str) -> Result<quorate::Roster, ChangeRefused> {
    retry_while_pending(WAIT_MAX, || node.set_timing_preset(name)).await
}

/// Every node's `(preset, lease ms, heartbeat interval ms)` from its status.
fn timings(cluster: &LocalCluster) -> Vec<(Option<String>, u64, u64)> {
    IDS.iter()
        .filter_map(|&id| cluster.node(id))
        .filter_map(|n| n.status().timing)
        .map(|t| (t.preset, t.lease_ms, t.heartbeat_interval_ms))
        .collect()
}

/// Samples the gates of `IDS` every 5 ms for `span` (bounded); how many samples found one
/// of them fenced, out of how many.
async fn fenced_samples(cluster: &LocalCluster, span: Duration) -> (u32, u32) {
    let gates: Vec<_> = IDS.iter().filter_map(|&i| cluster.gate(i)).collect();
    let end = Instant::now() + span;
    let (mut fenced, mut samples) = (0, 0);
    while Instant::now() < end && samples < 12_000 {
        samples += 1;
        if let Some(g) = gates.iter().find(|g| !g.can_write()) {
            fenced += 1;
            eprintln!("fenced: {}", g.status().why_not().map(|w| w.to_string()).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (fenced, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lan_to_wan_online_keeps_every_node_writable_and_a_partition_fences_within_the_wan_bound(
) -> TestResult {
    let mut cluster = LocalCluster::builder("timing", 3).prepare()?.start().await?;
    cluster.wait_all_writable(WAIT_MAX).await?;
    let lan = timings(&cluster);
    assert_eq!(lan, vec![(None, 900, 100); 3], "the file's lan timing");

    // lan -> wan from node 2, sampled while it spreads: no node fenced at any sample.
    let two = cluster.node(NodeId(2)).ok_or("no node 2")?;
    let unknown = two.set_timing_preset("gigabit").await;
    assert!(matches!(unknown, Err(ChangeRefused::UnknownPreset { .. })), "{unknown:?}");
    let roster = two.set_timing_preset("wan").await?;
    assert_eq!((roster.version, roster.timing.as_deref()), (1, Some("wan")));
    let (fenced, samples) = fenced_samples(&cluster, Duration::from_secs(3)).await;
    assert_eq!(fenced, 0, "{fenced} of {samples} samples found a node fenced during the switch");
    assert_eq!(timings(&cluster), vec![(Some("wan".to_owned()), 2_500, 250); 3]);
    let lost = cluster.nodes().map(|n| n.status()).filter(|s| !s.writable).count();
    assert_eq!(lost, 0);

    // Node 3 cut off: fenced within the wan lease (stretched by drift), not within lan's.
    let wan_bound = fence_bound(Duration::from_millis(2_500), 0.01);
    let gate3 = cluster.gate(NodeId(3)).ok_or("no gate 3")?;
    let cut = Instant::now();
    cluster.cut(&[NodeId(3)], &[NodeId(1), NodeId(2)])?;
    let fenced = wait_until(wan_bound + Duration::from_secs(1), || !gate3.can_write()).await;
    let fenced = fenced.ok_or("node 3 was never fenced")?;
    eprintln!("node 3 fenced {:?} after the cut (wan bound {wan_bound:?})", cut.elapsed());
    assert!(fenced <= wan_bound + Duration::from_millis(100), "fenced after {fenced:?}");
    cluster.wait_writable(&[NodeId(1), NodeId(2)], Duration::from_millis(100)).await?;
    cluster.heal()?;
    cluster.wait_all_writable(WAIT_MAX).await?;

    // wan -> lan from node 1, once node 3 runs version 1 again (it did all along).
    let one = cluster.node(NodeId(1)).ok_or("no node 1")?;
    let back = preset_when_ready(one, "lan").await?;
    assert_eq!(back.version, 2);
    let (fenced, samples) = fenced_samples(&cluster, Duration::from_secs(2)).await;
    assert_eq!(fenced, 0, "{fenced} of {samples} samples found a node fenced during the switch back");
    assert_eq!(timings(&cluster), vec![(Some("lan".to_owned()), 900, 100); 3]);
    let again = one.set_timing_preset("lan").await;
    assert!(matches!(again, Err(ChangeRefused::PresetInForce { .. })), "{again:?}");
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_starts_on_the_preset_its_data_directory_kept() -> TestResult {
    let mut cluster = LocalCluster::builder("timing-restart", 3).prepare()?.start().await?;
    cluster.wait_all_writable(WAIT_MAX).await?;
    cluster.node(NodeId(1)).ok_or("no node 1")?.set_timing_preset("wan").await?;
    let spread = wait_until(WAIT_MAX, || {
        timings(&cluster).iter().all(|t| t.0.as_deref() == Some("wan") && t.1 == 2_500)
    })
    .await;
    assert!(spread.is_some(), "{:?}", timings(&cluster));
    let three = cluster.take(NodeId(3)).ok_or("no node 3")?;
    three.shutdown().await;
    let restarted = cluster.start_node(NodeId(3)).await?;
    let t = restarted.status().timing.ok_or("no timing in status")?;
    assert_eq!((t.preset.as_deref(), t.lease_ms, t.heartbeat_interval_ms), (Some("wan"), 2_500, 250));
    cluster.wait_all_writable(WAIT_MAX).await?;
    cluster.shutdown().await?;
    Ok(())
}
