//! The smallest program that embeds the gate: a 3-node cluster in one process, a guarded
//! write loop on node 1, and a task that reacts to QuorumLost / QuorumGained. Halfway
//! through, node 1 is cut off from the others and the writes stop; then the link heals.
//!
//! Run: `cargo run -p quorate --example embed`

use std::collections::BTreeMap;
use std::time::Duration;

use quorate::testing::LocalCluster;
use quorate::{NodeId, QuorumEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Three nodes over QUIC on 127.0.0.1 with generated certificates, each with a temporary
    // data directory (where a voter keeps its incarnation, and so its epochs). A real
    // deployment runs one node per process, `quorate::Node::start(Config::load(path)?)`,
    // with a persistent data directory such as /var/lib/<engine>/quorate.
    let mut cluster = LocalCluster::builder("embed", 3).start().await?;

    // React to quorum changes: a storage engine would flip to read-only and back here.
    let gate = cluster.gate(NodeId(1)).ok_or("no node 1")?;
    let mut events = gate.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            match event {
                QuorumEvent::QuorumLost { why, .. } => println!("read-only: {why}"),
                QuorumEvent::QuorumGained { epoch, .. } => println!("writable again, epoch {epoch}"),
                _ => {}
            }
        }
    });

    // The engine: every write takes a permit and stores its epoch with the value.
    let mut store: BTreeMap<u32, (u32, u64)> = BTreeMap::new();
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..60u32 {
        if i == 20 {
            println!("-- cutting node 1 off --");
            cluster.cut(&[NodeId(1)], &[NodeId(2), NodeId(3)])?;
        }
        if i == 40 {
            println!("-- healing --");
            cluster.heal()?;
        }
        match gate.permit() {
            Ok(permit) => {
                store.insert(i, (i * i, permit.epoch().0));
                // Re-check at commit: if quorum broke meanwhile, roll the write back.
                if permit.check().is_ok() {
                    accepted += 1;
                } else {
                    store.remove(&i);
                    refused += 1;
                }
            }
            Err(_) => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{accepted} writes accepted, {refused} refused while fenced; {} stored", store.len());
    cluster.shutdown().await?;
    Ok(())
}
