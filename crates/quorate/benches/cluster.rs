//! Cost of a running node: UDP payload bytes per heartbeat and CPU per node, in a 5-node
//! cluster over real QUIC on 127.0.0.1 at 10 heartbeats/s (the LAN defaults).
//!
//! Run: `cargo bench -p quorate --bench cluster` (set `QUORATE_BENCH_SECS`, default 20).
//!
//! CPU is the whole process's user + system time (from /proc/self/stat, 10 ms ticks)
//! divided by the number of nodes, over a window that starts after the cluster is writable.
//! UDP bytes are QUIC's own count of UDP payload sent on each connection, so they include
//! QUIC's ACK-only packets and keep-alives, not just the heartbeat packets.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use quorate::testing::LocalCluster;
use quorate::NodeId;

const NODES: u64 = 5;

fn cpu_seconds() -> f64 {
    // Fields 14 and 15 of /proc/self/stat: utime and stime of all threads, in clock ticks.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // Field 14 is index 11 after the command name (fields 3.. start at index 0).
    (ticks(11) + ticks(12)) as f64 / 100.0
}

struct Totals {
    datagrams: u64,
    bytes: u64,
    heartbeats: u64,
}

fn totals(cluster: &LocalCluster) -> Totals {
    let mut t = Totals { datagrams: 0, bytes: 0, heartbeats: 0 };
    for node in cluster.nodes() {
        let status = node.status();
        t.heartbeats += status.transport.get("datagrams_sent").copied().unwrap_or(0);
        for peer in 1..=NODES {
            if let Some(link) = node.link_info(NodeId(peer)) {
                t.datagrams += link.udp_tx_datagrams;
                t.bytes += link.udp_tx_bytes;
            }
        }
    }
    t
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::var("QUORATE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    // Voters keep their incarnation in data directories; they go with the cluster.
    let cluster = LocalCluster::builder("bench", NODES).start().await?;
    cluster.wait_all_writable(Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, t0, wall0) = (cpu_seconds(), totals(&cluster), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (cpu1, t1, wall) = (cpu_seconds(), totals(&cluster), wall0.elapsed().as_secs_f64());
    let heartbeats = (t1.heartbeats - t0.heartbeats) as f64;
    let udp_bytes = (t1.bytes - t0.bytes) as f64;
    let udp_datagrams = (t1.datagrams - t0.datagrams) as f64;
    let cpu_per_node = (cpu1 - cpu0) / wall / NODES as f64;
    println!("5-node loopback cluster, LAN defaults (100 ms heartbeats), {wall:.1} s measured");
    println!(
        "  heartbeat datagrams sent:        {heartbeats:.0} ({:.1}/s per node)",
        heartbeats / wall / NODES as f64
    );
    println!("  UDP datagrams sent (all QUIC):   {udp_datagrams:.0}");
    println!("  UDP payload bytes per heartbeat: {:.1}", udp_bytes / heartbeats.max(1.0));
    println!("  UDP payload bytes per UDP datagram: {:.1}", udp_bytes / udp_datagrams.max(1.0));
    println!("  UDP payload bytes/s per node:    {:.0}", udp_bytes / wall / NODES as f64);
    println!("  CPU per node:                    {:.2}% of one core", cpu_per_node * 100.0);
    cluster.shutdown().await?;
    Ok(())
}
