//! The smallest program that embeds the gate: a 3-node cluster in one process, a guarded
//! write loop on node 1, and a task that reacts to QuorumLost / QuorumGained. Halfway
//! through, node 1 is cut off from the others and the writes stop; then the link heals.
//!
//! Run: `cargo run -p quorate --example embed`

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use quorate::transport::generate_dev_pki;
use quorate::{Config, MemberAddr, Node, NodeId, QuorumEvent, TlsSource};

/// The example's data directories, removed when it ends.
struct DataDirs(std::path::PathBuf);

impl Drop for DataDirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let pki = generate_dev_pki("embed", &ids)?;
    let sockets = ids.map(|_| UdpSocket::bind("127.0.0.1:0"));
    let mut members = Vec::new();
    for (id, socket) in ids.iter().zip(&sockets) {
        members.push(MemberAddr {
            id: *id,
            addr: socket.as_ref().map_err(|e| e.to_string())?.local_addr()?,
            votes: 1,
        });
    }
    // Each voter keeps its incarnation (and so its epochs) in a data directory of its own;
    // a real deployment uses a persistent path such as /var/lib/<engine>/quorate.
    let data = DataDirs(std::env::temp_dir().join(format!("quorate-embed-{}", std::process::id())));
    let mut nodes = Vec::new();
    for (id, socket) in ids.into_iter().zip(sockets) {
        let tls = TlsSource::Identity(Arc::new(pki.identity(id)?));
        let mut config = Config::lan("embed", id, members.clone(), tls);
        config.data_dir = Some(data.0.join(format!("node-{}", id.0)));
        nodes.push(Node::start_on(config, socket?).await?);
    }

    // React to quorum changes: a storage engine would flip to read-only and back here.
    let gate = nodes[0].gate();
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
            for peer in [2, 3] {
                nodes[0].set_link_blocked(NodeId(peer), true, true)?;
            }
        }
        if i == 40 {
            println!("-- healing --");
            for peer in [2, 3] {
                nodes[0].set_link_blocked(NodeId(peer), false, false)?;
            }
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
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
