//! What an idle node costs, on real `quorate run` processes in a private network namespace:
//! CPU (from `/proc`), UDP packets and IP bytes per second (nftables counters per sending
//! port), and where the packets go (QUIC's frame counts). See `quorate_e2e::cost`.
//!
//! ```sh
//! cargo bench -p quorate-e2e --bench netns-cost                         # 5 voters, 3 x 20 s
//! cargo bench -p quorate-e2e --bench netns-cost -- --nodes 15 --voters 5 # + 10 observers
//! cargo bench -p quorate-e2e --bench netns-cost -- --nodes 15            # 15 voters
//! cargo bench -p quorate-e2e --bench netns-cost -- --quick --no-gossip   # 1 x 5 s, no gossip
//! ```
//!
//! `--loss P` adds P% random loss on every link during the window and counts the suspicions,
//! downs and fences it causes. `QE2E_NODE_BIN=path` measures another build of `quorate`.
//! Needs root, `ip` and `nft`. Run by `cargo test` (without `--bench`) it does nothing.

use std::path::Path;
use std::process::ExitCode;

use quorate_e2e::cluster::{make_certs, Env};
use quorate_e2e::cost::{mean_min_max, measure, NodeCost, Plan, SIZE_BUCKETS};
use quorate_e2e::netns::{remove_stale, Tools};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("netns-cost: a benchmark; run it with `cargo bench -p quorate-e2e --bench netns-cost`");
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netns-cost: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Removes the bench's working directory however it ends.
struct WorkDir(std::path::PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let plan = Plan::parse(args)?;
    let tools = Tools::probe()?;
    for stale in remove_stale(&tools) {
        println!("netns-cost: removed stale network namespace {stale}");
    }
    let work = WorkDir(std::env::temp_dir().join(format!("qe2e-{}", std::process::id())));
    std::fs::create_dir_all(&work.0).map_err(|e| format!("create {}: {e}", work.0.display()))?;
    // Another build of `quorate` (e.g. one from before a change) can be measured with the
    // same bench: QE2E_NODE_BIN=path.
    let node_bin = std::env::var_os("QE2E_NODE_BIN")
        .map_or_else(|| Path::new(env!("CARGO_BIN_EXE_quorate-e2e-node")).to_owned(), Into::into);
    println!("netns-cost: node binary {}", node_bin.display());
    let node_bin = node_bin.as_path();
    make_certs(node_bin, &work.0.join("certs"), plan.nodes)?;
    let env = Env {
        tools,
        node_bin: node_bin.to_owned(),
        kv_bin: Path::new(env!("CARGO_BIN_EXE_quorate-e2e-kv")).to_owned(),
        failover_bin: Path::new(env!("CARGO_BIN_EXE_quorate-e2e-failover")).to_owned(),
        work_dir: work.0.clone(),
        // The bench runs no failover scenario: no shared directory on tmpfs.
        fast_dir: work.0.clone(),
        keep: false,
    };
    println!(
        "netns-cost: {} nodes ({} voters, {} observers), LAN preset (heartbeat 100 ms), idle, gossip {}, \
         {}% loss, {} run(s) of {} s after {} s of warm-up",
        plan.nodes,
        plan.voters,
        plan.nodes - plan.voters,
        if plan.gossip { "on" } else { "off" },
        plan.loss,
        plan.runs,
        plan.secs,
        plan.warmup
    );
    let mut all = Vec::new();
    for run in 1..=plan.runs {
        let costs = measure(&env, &format!("cost-{run}"), &plan)?;
        println!("run {run}:");
        println!("  node  role      CPU %  CPU % (ns)   IP B/s   pkts/s  | QUIC/s: udp  datagram  ack  stream  ping  flow  lost | gossip/s: msgs rows");
        for c in &costs {
            let q = |k: &str| c.quic.get(k).copied().unwrap_or(0.0);
            println!(
                "  {:>4}  {:<8} {:>6.2}  {:>10.2} {:>8.0} {:>8.1}  | {:>11.1} {:>9.1} {:>4.1} {:>7.1} {:>5.1} {:>5.1} {:>5.2} | {:>13.1} {:>4.1}",
                c.id,
                role(c.voter),
                c.cpu_percent,
                c.cpu_percent_ns,
                c.bytes,
                c.packets,
                q("udp_tx_packets"),
                q("datagram_frames"),
                q("ack_frames"),
                q("stream_frames"),
                q("ping_frames"),
                q("flow_control_frames"),
                q("lost_packets"),
                q("gossip_messages_sent"),
                q("gossip_rows_applied"),
            );
        }
        all.extend(costs);
    }
    summary(&plan, &all);
    let sum = |f: fn(&NodeCost) -> u64| all.iter().map(f).sum::<u64>();
    let node_hours = all.len() as f64 * plan.secs as f64 / 3600.0;
    println!();
    println!(
        "events inside the windows ({node_hours:.3} node-hours, {}% loss): {} peer_suspect, {} peer_down \
         ({:.0} per node-hour), {} quorum_lost",
        plan.loss,
        sum(|c| c.events.0),
        sum(|c| c.events.1),
        sum(|c| c.events.1) as f64 / node_hours,
        sum(|c| c.events.2)
    );
    Ok(())
}

fn role(voter: bool) -> &'static str {
    if voter {
        "voter"
    } else {
        "observer"
    }
}

/// Per role, over every node of every run: mean [min-max].
fn summary(plan: &Plan, all: &[NodeCost]) {
    println!();
    println!(
        "summary, per node, mean [min-max] over {} run(s) x nodes of each role ({} nodes, {} voters):",
        plan.runs, plan.nodes, plan.voters
    );
    println!("| role | CPU % of a core | CPU % (schedstat) | UDP IP bytes/s | UDP packets/s |");
    println!("|---|---|---|---|---|");
    for voter in [true, false] {
        let costs: Vec<&NodeCost> = all.iter().filter(|c| c.voter == voter).collect();
        if costs.is_empty() {
            continue;
        }
        let fmt = |(mean, min, max): (f64, f64, f64), digits: usize| {
            format!("{mean:.digits$} [{min:.digits$}-{max:.digits$}]")
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            role(voter),
            fmt(mean_min_max(&costs, |c| c.cpu_percent), 2),
            fmt(mean_min_max(&costs, |c| c.cpu_percent_ns), 2),
            fmt(mean_min_max(&costs, |c| c.bytes), 0),
            fmt(mean_min_max(&costs, |c| c.packets), 1),
        );
    }
    println!();
    println!("where the packets go, per node and second (mean):");
    let buckets: Vec<String> = SIZE_BUCKETS.iter().map(|(l, h)| format!("IP {l}-{h} B")).collect();
    println!(
        "| role | {} | QUIC udp pkts | DATAGRAM frames | ACK frames | STREAM frames | PING frames | flow-control frames | lost |",
        buckets.join(" | ")
    );
    println!("|---|{}---|---|---|---|---|---|---|", "---|".repeat(SIZE_BUCKETS.len()));
    for voter in [true, false] {
        let costs: Vec<&NodeCost> = all.iter().filter(|c| c.voter == voter).collect();
        if costs.is_empty() {
            continue;
        }
        let mean = |f: &dyn Fn(&NodeCost) -> f64| mean_min_max(&costs, f).0;
        let sizes: Vec<String> =
            (0..SIZE_BUCKETS.len()).map(|i| format!("{:.1}", mean(&|c| c.size_buckets[i]))).collect();
        let q = |k: &'static str| format!("{:.1}", mean(&move |c| c.quic.get(k).copied().unwrap_or(0.0)));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            role(voter),
            sizes.join(" | "),
            q("udp_tx_packets"),
            q("datagram_frames"),
            q("ack_frames"),
            q("stream_frames"),
            q("ping_frames"),
            q("flow_control_frames"),
            q("lost_packets"),
        );
    }
}
