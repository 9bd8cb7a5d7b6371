//! What an idle node costs, measured on real `quorate run` processes: CPU from `/proc`,
//! UDP packets and bytes from the kernel (nftables counters), and where the packets go from
//! QUIC's own frame counts (`quorate status --json`).
//!
//! ```text
//!   namespace qe2e-<pid>-cost-<run>: N `quorate run` processes on 127.0.0.1:700i
//!   table inet qe2e_cost, input hook: per node `udp sport 700i counter` (+ size buckets)
//!   window: /proc/<pid>/stat utime + stime, /proc/<pid>/task/*/schedstat, nft, status
//! ```
//!
//! Loopback traffic passes the input hook once per packet, so a rule on the sender's port
//! counts every UDP packet that node sends, once; its byte count is the IP packet length,
//! headers included (what a wire carries, less the link layer). The run is idle: nothing
//! is cut, nobody writes. The `netns-cost` bench drives it; see `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Cluster, Env, Spec};
use crate::events::Kind;
use crate::faults::{quic_port, Rule};
use crate::timing::monotonic_us;

/// IP packet length buckets of the size histogram: `[low, high]`, bytes.
pub const SIZE_BUCKETS: [(u32, u32); 4] = [(0, 79), (80, 127), (128, 255), (256, 65535)];

/// Longest measuring window and most runs the bench accepts: every loop has a bound.
pub const SECS_MAX: u64 = 600;
/// See [`SECS_MAX`].
pub const RUNS_MAX: u32 = 20;

/// Most nodes a cost run starts (ports 7001-7064, 9001-9064).
pub const NODES_MAX: u64 = 64;

/// How long a cluster may take to become writable before a run counts as failed.
const WRITABLE_WAIT: Duration = Duration::from_secs(20);

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Nodes in the cluster.
    pub nodes: u64,
    /// Nodes `1..=voters` vote; the rest are observers.
    pub voters: u64,
    /// Independent runs, each on a fresh cluster.
    pub runs: u32,
    /// Seconds of each measuring window.
    pub secs: u64,
    /// Seconds between "all writable" and the window's start (connections settle).
    pub warmup: u64,
    /// Gossip on (the default) or off (to see what gossip costs).
    pub gossip: bool,
    /// Random loss on every link during the window, percent (0: none): to count the
    /// suspicions, false downs and false fences that loss causes.
    pub loss: u8,
}

impl Default for Plan {
    fn default() -> Self {
        Plan { nodes: 5, voters: 5, runs: 3, secs: 20, warmup: 3, gossip: true, loss: 0 }
    }
}

impl Plan {
    /// Parses `--nodes N --voters V --runs R --secs S --warmup W --loss P --no-gossip --quick`;
    /// anything else (cargo's `--bench`) is ignored.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Plan, String> {
        let mut plan = Plan::default();
        let mut voters = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut num = |name: &str| -> Result<u64, String> {
                let v = args.next().ok_or(format!("{name} needs a number"))?;
                v.parse().map_err(|_| format!("{name} {v}: not a number"))
            };
            match arg.as_str() {
                "--nodes" => plan.nodes = num("--nodes")?,
                "--voters" => voters = Some(num("--voters")?),
                "--runs" => plan.runs = u32::try_from(num("--runs")?).unwrap_or(u32::MAX),
                "--secs" => plan.secs = num("--secs")?,
                "--warmup" => plan.warmup = num("--warmup")?,
                "--no-gossip" => plan.gossip = false,
                "--loss" => plan.loss = u8::try_from(num("--loss")?).unwrap_or(u8::MAX),
                "--quick" => (plan.runs, plan.secs, plan.warmup) = (1, 5, 2),
                _ => {}
            }
        }
        plan.voters = voters.unwrap_or(plan.nodes);
        if !(1..=NODES_MAX).contains(&plan.nodes) || !(1..=plan.nodes).contains(&plan.voters) {
            return Err(format!(
                "need 1 <= voters ({}) <= nodes ({}) <= {}",
                plan.voters, plan.nodes, NODES_MAX
            ));
        }
        if !(1..=SECS_MAX).contains(&plan.secs)
            || !(1..=RUNS_MAX).contains(&plan.runs)
            || plan.warmup > 60
            || plan.loss > 100
        {
            return Err(format!(
                "need 1 <= secs <= {SECS_MAX}, 1 <= runs <= {RUNS_MAX}, warmup <= 60, loss <= 100"
            ));
        }
        Ok(plan)
    }

    /// The cluster to start.
    pub fn spec(&self) -> Spec {
        Spec { voters: self.voters, gossip: self.gossip, ..Spec::lan(self.nodes) }
    }
}

/// One node's figures over one window, per second of wall time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeCost {
    /// The node.
    pub id: u64,
    /// Whether it votes.
    pub voter: bool,
    /// CPU, percent of one core, from utime + stime in `/proc/<pid>/stat` (clock ticks).
    pub cpu_percent: f64,
    /// CPU, percent of one core, from the threads' `schedstat` (nanoseconds).
    pub cpu_percent_ns: f64,
    /// UDP packets sent per second (nftables).
    pub packets: f64,
    /// IP bytes of those packets per second, headers included.
    pub bytes: f64,
    /// Packets per second in each of [`SIZE_BUCKETS`].
    pub size_buckets: [f64; SIZE_BUCKETS.len()],
    /// QUIC's counts, summed over the node's connections, per second: UDP packets sent and
    /// frames sent by kind (`udp_tx_packets`, `ack_frames`, `datagram_frames`, ...).
    pub quic: BTreeMap<String, f64>,
    /// Events this node logged inside the window: (peer_suspect, peer_down, quorum_lost).
    /// An idle cluster without loss logs none; with loss, downs and fences are false ones.
    pub events: (u64, u64, u64),
}

/// The nftables script of the counting table: one rule per node's sending port, and one
/// per size bucket.
pub fn count_script(ids: &[u64]) -> String {
    let mut s = String::from(
        "table inet qe2e_cost {\n  chain input {\n    type filter hook input priority filter - 20; policy accept;\n  }\n}\n\
         flush chain inet qe2e_cost input\n",
    );
    for &id in ids {
        let port = quic_port(id);
        s.push_str(&format!("add rule inet qe2e_cost input udp sport {port} counter\n"));
        for (low, high) in SIZE_BUCKETS {
            s.push_str(&format!(
                "add rule inet qe2e_cost input udp sport {port} ip length {low}-{high} counter\n"
            ));
        }
    }
    s
}

/// Counters read from `nft list table inet qe2e_cost`: per node, (packets, bytes) in total
/// and packets per size bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counted {
    /// node -> (packets, bytes)
    pub total: BTreeMap<u64, (u64, u64)>,
    /// node -> packets per bucket of [`SIZE_BUCKETS`]
    pub buckets: BTreeMap<u64, [u64; SIZE_BUCKETS.len()]>,
}

/// Parses the listing of [`count_script`]'s table.
pub fn parse_counted(listing: &str) -> Counted {
    let mut out = Counted::default();
    for line in listing.lines() {
        let field =
            |key: &str| -> Option<u64> { line.split(key).nth(1)?.split_whitespace().next()?.parse().ok() };
        let (Some(sport), Some(packets), Some(bytes)) =
            (field("udp sport "), field("counter packets "), field(" bytes "))
        else {
            continue;
        };
        let Some(id) = sport.checked_sub(quic_port(0)) else { continue };
        match line.split("ip length ").nth(1).and_then(|r| r.split_whitespace().next()) {
            None => {
                out.total.insert(id, (packets, bytes));
            }
            Some(range) => {
                let low = range.split('-').next().and_then(|l| l.parse::<u32>().ok());
                if let Some(i) = SIZE_BUCKETS.iter().position(|(l, _)| Some(*l) == low) {
                    out.buckets.entry(id).or_default()[i] = packets;
                }
            }
        }
    }
    out
}

/// utime + stime of process `pid`, in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Fields 14 and 15 of a `/proc/<pid>/stat` line; the command name may hold spaces.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so field 14 (utime) is index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Nanoseconds on CPU of every live thread of `pid` (first field of each `schedstat`).
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let text = std::fs::read_to_string(entry.path().join("schedstat")).unwrap_or_default();
        total += text.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(total)
}

/// Per node: QUIC's counters summed over its connections, and gossip's, from its `/status`.
fn quic_totals(cluster: &Cluster, id: u64) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    let Ok(status) = cluster.status(id) else { return sums };
    for peer in status.get("peers").and_then(Value::as_array).into_iter().flatten() {
        for (k, v) in peer.get("quic").and_then(Value::as_object).into_iter().flatten() {
            *sums.entry(k.clone()).or_insert(0) += v.as_u64().unwrap_or(0);
        }
    }
    for key in ["rounds", "messages_sent", "rows_applied"] {
        let v = status.get("gossip").and_then(|g| g.get(key)).and_then(Value::as_u64);
        sums.insert(format!("gossip_{key}"), v.unwrap_or(0));
    }
    sums
}

struct Snapshot {
    at: Instant,
    ticks: BTreeMap<u64, u64>,
    ns: BTreeMap<u64, u64>,
    counted: Counted,
}

fn snapshot(cluster: &Cluster, ids: &[u64]) -> Result<Snapshot, String> {
    let at = Instant::now();
    let mut ticks = BTreeMap::new();
    let mut ns = BTreeMap::new();
    for &id in ids {
        let pid = cluster.pid(id).ok_or(format!("node {id} is not running"))?;
        ticks.insert(id, cpu_ticks(pid).ok_or(format!("cannot read /proc/{pid}/stat"))?);
        ns.insert(id, cpu_ns(pid).ok_or(format!("cannot read /proc/{pid}/task"))?);
    }
    let counted = parse_counted(&cluster.namespace().nft_args(&["list", "table", "inet", "qe2e_cost"])?);
    Ok(Snapshot { at, ticks, ns, counted })
}

/// Runs one measuring window on a fresh cluster named `name`; returns each node's cost.
pub fn measure(env: &Env, name: &str, plan: &Plan) -> Result<Vec<NodeCost>, String> {
    let spec = plan.spec();
    let ids = spec.ids();
    let mut cluster = Cluster::start(env, name, spec)?;
    cluster.wait_all_writable(WRITABLE_WAIT)?;
    std::thread::sleep(Duration::from_secs(plan.warmup));
    cluster.namespace().nft(&count_script(&ids))?;
    if plan.loss > 0 {
        let what = format!("{}% random loss on every link", plan.loss);
        cluster.faults(&[Rule::Loss { percent: plan.loss }], &what)?;
    }
    // QUIC counts first and last, so that reading them (over TCP) falls outside the window.
    let quic0: BTreeMap<u64, _> = ids.iter().map(|&id| (id, quic_totals(&cluster, id))).collect();
    let start_us = monotonic_us();
    let t0 = snapshot(&cluster, &ids)?;
    std::thread::sleep(Duration::from_secs(plan.secs));
    let t1 = snapshot(&cluster, &ids)?;
    let end_us = monotonic_us();
    let quic1: BTreeMap<u64, _> = ids.iter().map(|&id| (id, quic_totals(&cluster, id))).collect();
    let wall = (t1.at - t0.at).as_secs_f64();
    let tick_hz = rustix::param::clock_ticks_per_second() as f64;
    let log = cluster.log();
    let in_window = |id: u64, kind: Kind| {
        log.events
            .iter()
            .filter(|e| e.node == id && e.kind == kind && (start_us..=end_us).contains(&e.at_us))
            .count() as u64
    };
    let mut out = Vec::new();
    for &id in &ids {
        let get = |m: &BTreeMap<u64, u64>| m.get(&id).copied().unwrap_or(0);
        let (p0, b0) = t0.counted.total.get(&id).copied().unwrap_or_default();
        let (p1, b1) = t1.counted.total.get(&id).copied().unwrap_or_default();
        let z = [0; SIZE_BUCKETS.len()];
        let (k0, k1) = (t0.counted.buckets.get(&id).unwrap_or(&z), t1.counted.buckets.get(&id).unwrap_or(&z));
        let mut size_buckets = [0.0; SIZE_BUCKETS.len()];
        for (i, b) in size_buckets.iter_mut().enumerate() {
            *b = k1[i].saturating_sub(k0[i]) as f64 / wall;
        }
        let (q0, q1) = (&quic0[&id], &quic1[&id]);
        let quic = q1
            .iter()
            .map(|(k, v)| (k.clone(), v.saturating_sub(q0.get(k).copied().unwrap_or(0)) as f64 / wall))
            .collect();
        out.push(NodeCost {
            id,
            voter: id <= plan.voters,
            cpu_percent: get(&t1.ticks).saturating_sub(get(&t0.ticks)) as f64 / tick_hz / wall * 100.0,
            cpu_percent_ns: get(&t1.ns).saturating_sub(get(&t0.ns)) as f64 / 1e9 / wall * 100.0,
            packets: p1.saturating_sub(p0) as f64 / wall,
            bytes: b1.saturating_sub(b0) as f64 / wall,
            size_buckets,
            quic,
            events: (
                in_window(id, Kind::PeerSuspect),
                in_window(id, Kind::PeerDown),
                in_window(id, Kind::QuorumLost),
            ),
        });
    }
    let (_log, exits) = cluster.stop_all();
    if !exits.is_empty() {
        return Err(exits.join("; "));
    }
    Ok(out)
}

/// The mean of `f` over `costs`, with the smallest and largest value.
pub fn mean_min_max(costs: &[&NodeCost], f: impl Fn(&NodeCost) -> f64) -> (f64, f64, f64) {
    let values: Vec<f64> = costs.iter().map(|c| f(c)).collect();
    let n = values.len().max(1) as f64;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (values.iter().sum::<f64>() / n, min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_are_utime_plus_stime_even_with_spaces_in_the_name() {
        let stat = "4242 (quorate e2e) S 1 4242 4242 0 -1 4194560 500 0 0 0 37 12 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(stat), Some(49));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn counted_listing_reads_totals_and_buckets_per_node() {
        let script = count_script(&[1, 2]);
        assert!(script.contains("add rule inet qe2e_cost input udp sport 7002 ip length 80-127 counter\n"));
        let listing = "\t\tudp sport 7001 counter packets 120 bytes 9000\n\
                       \t\tudp sport 7001 ip length 0-79 counter packets 20 bytes 1000\n\
                       \t\tudp sport 7001 ip length 256-65535 counter packets 3 bytes 2000\n\
                       \t\tudp sport 7002 counter packets 7 bytes 700\n";
        let c = parse_counted(listing);
        assert_eq!(c.total.get(&1), Some(&(120, 9000)));
        assert_eq!(c.total.get(&2), Some(&(7, 700)));
        assert_eq!(c.buckets.get(&1), Some(&[20, 0, 0, 3]));
    }

    #[test]
    fn plan_defaults_to_every_node_a_voter_and_refuses_nonsense() {
        let words = |w: &[&str]| Plan::parse(w.iter().map(|s| s.to_string()));
        assert_eq!(words(&["--bench"]), Ok(Plan::default()));
        let p = words(&["--nodes", "15", "--voters", "5", "--quick"]).unwrap_or_default();
        assert_eq!((p.nodes, p.voters, p.runs, p.secs), (15, 5, 1, 5));
        assert!(words(&["--nodes", "3", "--voters", "4"]).is_err());
        assert!(words(&["--secs", "0"]).is_err());
    }
}
