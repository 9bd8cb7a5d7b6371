//! `quorate demo`: a whole cluster in one process, over real QUIC on 127.0.0.1, that cuts off
//! a minority and measures what the guarantees promise.
//!
//! ```text
//!   start N nodes ──► all writable? ──► cut minority×majority links (both directions)
//!        │ (10 s max)                      │ hold max(3 s, 3 x lease); poll gates every 5 ms,
//!        │                                 │ read every gate's events
//!        ▼                                 ▼
//!     fail (1)                        heal ──► all writable? (10 s max) ──► summary, verdict
//! ```
//!
//! All nodes share the machine's `CLOCK_BOOTTIME`, so the `at` of one node's event and the
//! cut instant taken from another node's gate clock are comparable.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use quorate::testing::{ClusterError, LocalCluster, Prepared, POLL};
use quorate::{Clock, EventStream, Instant, NodeId, QuorumEvent, QuorumGate, RecvError};
use serde_json::json;

use crate::demo_report::{signed_ms, Reporter, Summary};
use crate::Failure;

/// `--help` epilogue of `quorate demo`.
pub(crate) const AFTER_HELP: &str = "\
What it does:
  1. starts N nodes in this process, over QUIC on 127.0.0.1 with generated certificates;
  2. waits until every node is writable (at most 10 s, or 20 heartbeat intervals if longer);
  3. cuts the first (N-1)/2 nodes off from the rest, both directions, and holds the partition
     for max(3 s, 3 x lease), polling every gate every 5 ms;
  4. heals and waits until every node is writable again (same limit).
It passes when every minority node fenced itself within lease x (1 + drift) + 50 ms of the
cut, no majority node ever stopped being writable, and the cluster healed.

With --interval T: heartbeat T, down_after_min 10 x T, lease 9 x T, stall_threshold 5 x T.

Exit codes:
  0  the outcome was right
  1  a wrong outcome (split brain, slow fencing, majority fenced, no heal) or a startup failure
  2  usage error (e.g. an --interval that gives an invalid configuration)";

/// Largest cluster the demo starts (each node is a QUIC endpoint with N-1 connections).
const NODES_MAX: u64 = 15;
/// Least time allowed for every node to become writable (at start, and again after healing).
const QUORUM_WAIT_MIN: Duration = Duration::from_secs(10);
/// Least time the partition is held.
const HOLD_MIN: Duration = Duration::from_secs(3);
/// Accepted `--interval` range: below this the scheduler's noise dominates; above it the
/// demo would take minutes.
const INTERVAL_RANGE: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Flags of `quorate demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Cluster size, 3 to 15. The first (N-1)/2 nodes form the minority.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(3..=NODES_MAX))]
    nodes: u64,
    /// Heartbeat interval (e.g. 50ms); scales the down floor, lease and stall threshold with it.
    /// Default: the LAN preset (100ms heartbeats, 900ms lease, 1s down floor).
    #[arg(long, value_name = "DURATION", value_parser = crate::parse_duration)]
    interval: Option<Duration>,
    /// Print JSON lines (events, phases, and last a summary) instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the demo; `Err(Failure::Outcome)` when the outcome was wrong.
pub(crate) async fn run(args: DemoArgs) -> Result<(), Failure> {
    let mut rep = Reporter::new(args.json);
    let prepared = prepare(args.nodes, args.interval)?;
    let template = prepared.configs().first().ok_or(Failure::Usage("no nodes".into()))?.clone();
    let mut summary = Summary {
        nodes: prepared.configs().len(),
        heartbeat_interval: template.detector.heartbeat_interval,
        lease: template.gate.lease,
        down_after_min: template.detector.down_after_min,
        max_clock_drift: template.gate.max_clock_drift,
        ..Summary::default()
    };
    rep.say(&format!(
        "quorate demo: {} nodes over QUIC on 127.0.0.1 (heartbeat {}, lease {}, down after {}, drift {}%)",
        summary.nodes,
        humantime::format_duration(summary.heartbeat_interval),
        humantime::format_duration(summary.lease),
        humantime::format_duration(summary.down_after_min),
        summary.max_clock_drift * 100.0,
    ));
    let addrs: BTreeMap<String, String> =
        template.members.iter().map(|m| (m.id.0.to_string(), m.addr.to_string())).collect();
    rep.phase(
        "starting",
        json!({
            "nodes": summary.nodes, "addrs": addrs,
            "heartbeat_interval_ms": crate::demo_report::ms(summary.heartbeat_interval),
            "lease_ms": crate::demo_report::ms(summary.lease),
            "down_after_min_ms": crate::demo_report::ms(summary.down_after_min),
            "max_clock_drift": summary.max_clock_drift,
        }),
    );

    // Data directories go with the cluster, after every node has shut down.
    let mut cluster = prepared.start().await.map_err(runtime)?;
    let outcome = scenario(&mut cluster, &mut rep, &mut summary).await;
    rep.end_progress();
    if let Err(e) = cluster.shutdown().await {
        eprintln!("warning: {e}");
    }
    rep.phase("stopped", json!({}));
    outcome?;
    rep.summary(&summary);
    if summary.verdict().0 {
        Ok(())
    } else {
        Err(Failure::Outcome)
    }
}

/// The cluster, not started: certificates, one UDP socket per node on 127.0.0.1:0, and
/// each node's checked configuration (`--interval` applied).
fn prepare(nodes: u64, interval: Option<Duration>) -> Result<Prepared, Failure> {
    if let Some(t) = interval {
        if t < INTERVAL_RANGE.0 || t > INTERVAL_RANGE.1 {
            return Err(Failure::Usage(format!(
                "--interval {} is outside {}..{}",
                humantime::format_duration(t),
                humantime::format_duration(INTERVAL_RANGE.0),
                humantime::format_duration(INTERVAL_RANGE.1)
            )));
        }
    }
    let prepared = LocalCluster::builder("demo", nodes)
        .configure(|config| {
            if let Some(t) = interval {
                config.detector.heartbeat_interval = t;
                config.detector.first_heartbeat_estimate = t;
                config.detector.down_after_min = t * 10;
                config.gate.lease = t * 9;
                config.detector.stall_threshold = t * 5;
            }
        })
        .prepare()
        .map_err(runtime)?;
    prepared.check().map_err(|e| match e {
        ClusterError::Config { source, .. } => {
            Failure::Usage(format!("this --interval gives an invalid configuration: {source}"))
        }
        other => runtime(other),
    })?;
    Ok(prepared)
}

fn runtime(e: ClusterError) -> Failure {
    Failure::Runtime(e.to_string())
}

/// Start, partition, hold, heal; fills in `s`. `Err` only for failures of the harness
/// itself (the link filter refusing); wrong outcomes are recorded in `s`.
async fn scenario(cluster: &mut LocalCluster, rep: &mut Reporter, s: &mut Summary) -> Result<(), Failure> {
    let mut w = Watch::new(cluster);
    let wait_bound = QUORUM_WAIT_MIN.max(s.heartbeat_interval * 20);
    let started = w.clock.now();

    // 1. Every node writable.
    let Some(quorate_at) = w.until_all_writable(rep, wait_bound, true).await else {
        rep.end_progress();
        rep.phase("gave_up", json!({ "waited_ms": crate::demo_report::ms(wait_bound) }));
        return Ok(());
    };
    s.quorate_after = Some(quorate_at - started);
    rep.end_progress();
    rep.say(&format!(
        "all {} nodes writable after {} ms",
        s.nodes,
        crate::demo_report::ms(quorate_at - started)
    ));
    rep.phase("quorate", json!({ "after_ms": crate::demo_report::ms(quorate_at - started) }));

    // 2. Cut. The instant is taken before the first link is blocked, so every figure below
    // is measured from no later than the real cut (conservative).
    let ids = cluster.ids();
    let (minority, majority) = ids.split_at((ids.len() - 1) / 2);
    s.minority = minority.iter().map(|id| id.0).collect();
    s.majority = majority.iter().map(|id| id.0).collect();
    w.minority = minority.to_vec();
    w.drain(rep);
    let cut = w.clock.now();
    cluster.cut(minority, majority).map_err(runtime)?;
    w.cut = Some(cut);
    rep.say(&format!(
        "partition: minority {} | majority {}  (t=0 is the cut)",
        join(&s.minority),
        join(&s.majority)
    ));
    rep.phase("partition", json!({ "minority": s.minority, "majority": s.majority }));

    // 3. Hold, watching.
    let hold = HOLD_MIN.max(s.lease * 3);
    let mut tick = ticker();
    while w.clock.now() - cut < hold {
        tick.tick().await;
        w.drain(rep);
        w.poll(rep);
    }
    w.drain(rep);
    let healed_from = w.clock.now();
    w.heal_at = Some(healed_from);
    s.held = healed_from - cut;
    s.fence = w.fence_times(cut);
    s.detect = w.detect_time(cut, majority);
    s.majority_fenced = w.majority_fenced.clone();
    s.lagged = w.lagged;

    // 4. Heal.
    cluster.heal().map_err(runtime)?;
    rep.say(&format!("t=+{:.2}s  healed: all links restored", (healed_from - cut).as_secs_f64()));
    rep.phase("heal", json!({ "t_ms": crate::demo_report::ms(healed_from - cut) }));
    if let Some(all_at) = w.until_all_writable(rep, wait_bound, false).await {
        s.heal = Some(all_at - healed_from);
        rep.phase("healed", json!({ "heal_ms": crate::demo_report::ms(all_at - healed_from) }));
    }
    // Events that arrived during the heal wait but happened while partitioned.
    w.drain(rep);
    s.majority_fenced = w.majority_fenced.clone();
    s.lagged = w.lagged;
    Ok(())
}

fn ticker() -> tokio::time::Interval {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Every gate and event stream, and what has been seen on them.
struct Watch {
    ids: Vec<NodeId>,
    gates: Vec<QuorumGate>,
    streams: Vec<EventStream>,
    clock: Clock,
    minority: Vec<NodeId>,
    cut: Option<Instant>,
    heal_at: Option<Instant>,
    /// Minority node → `at` of its first QuorumLost after the cut.
    lost_at: BTreeMap<NodeId, Instant>,
    /// Minority node → first poll after the cut that found it not writable.
    fenced_poll_at: BTreeMap<NodeId, Instant>,
    /// (majority node, minority peer) → `at` of the first PeerDown after the cut.
    down_at: BTreeMap<(NodeId, NodeId), Instant>,
    majority_fenced: Option<String>,
    lagged: u64,
    last_writable: Option<Vec<bool>>,
}

impl Watch {
    /// Subscribes to every gate now, so nothing after this point is missed.
    fn new(cluster: &LocalCluster) -> Self {
        let gates = cluster.gates();
        let clock = gates.first().map_or_else(Clock::system, |g| g.clock().clone());
        Watch {
            ids: cluster.ids(),
            streams: gates.iter().map(QuorumGate::subscribe).collect(),
            gates,
            clock,
            minority: Vec::new(),
            cut: None,
            heal_at: None,
            lost_at: BTreeMap::new(),
            fenced_poll_at: BTreeMap::new(),
            down_at: BTreeMap::new(),
            majority_fenced: None,
            lagged: 0,
            last_writable: None,
        }
    }

    /// Polls until every gate is writable; the instant it was, or `None` after `bound`.
    /// With `progress`, redraws the progress line; otherwise prints writable-set changes.
    async fn until_all_writable(
        &mut self,
        rep: &mut Reporter,
        bound: Duration,
        progress: bool,
    ) -> Option<Instant> {
        let start = self.clock.now();
        let mut shown = None;
        let mut tick = ticker();
        loop {
            self.drain(rep);
            let writable =
                if progress { self.gates.iter().filter(|g| g.can_write()).count() } else { self.poll(rep) };
            let now = self.clock.now();
            if progress && shown != Some(writable) {
                rep.progress(writable, self.gates.len());
                shown = Some(writable);
            }
            if writable == self.gates.len() {
                return Some(now);
            }
            if now - start >= bound {
                return None;
            }
            tick.tick().await;
        }
    }

    /// Reads every buffered event, records what the measurements need, and reports it.
    fn drain(&mut self, rep: &mut Reporter) {
        for i in 0..self.streams.len() {
            let node = self.ids[i];
            // Bounded: at most the stream's capacity is buffered; a few rounds per call.
            for _ in 0..4_096 {
                match self.streams[i].try_recv() {
                    Ok(Some(event)) => {
                        rep.event(node, &event, self.cut);
                        self.record(node, &event);
                    }
                    Ok(None) | Err(RecvError::Closed) => break,
                    Err(RecvError::Lagged { missed }) => self.lagged += missed,
                    Err(_) => break,
                }
            }
        }
    }

    /// Events that happened while partitioned (`cut <= at < heal`) feed the measurements.
    fn record(&mut self, node: NodeId, event: &QuorumEvent) {
        let Some(cut) = self.cut else { return };
        let at = event.at();
        if at < cut || self.heal_at.is_some_and(|heal| at >= heal) {
            return;
        }
        let in_minority = self.minority.contains(&node);
        match event {
            QuorumEvent::QuorumLost { .. } if in_minority => {
                self.lost_at.entry(node).or_insert(at);
            }
            QuorumEvent::QuorumLost { why, .. } => {
                self.majority_fenced.get_or_insert_with(|| {
                    format!("node {} lost quorum at t={:+.3}s: {why}", node.0, signed_ms(at, cut) / 1e3)
                });
            }
            QuorumEvent::PeerDown { peer, .. } if !in_minority && self.minority.contains(peer) => {
                self.down_at.entry((node, *peer)).or_insert(at);
            }
            _ => {}
        }
    }

    /// Reads every gate once; reports a changed writable set; returns how many are writable.
    fn poll(&mut self, rep: &mut Reporter) -> usize {
        let writable: Vec<bool> = self.gates.iter().map(QuorumGate::can_write).collect();
        let now = self.clock.now();
        if let (Some(cut), None) = (self.cut, self.heal_at) {
            for (id, ok) in self.ids.iter().zip(&writable) {
                if *ok {
                    continue;
                }
                if self.minority.contains(id) {
                    self.fenced_poll_at.entry(*id).or_insert(now);
                } else {
                    self.majority_fenced.get_or_insert_with(|| {
                        format!("node {} was not writable at t={:+.3}s", id.0, signed_ms(now, cut) / 1e3)
                    });
                }
            }
        }
        if let Some(cut) = self.cut {
            if self.last_writable.as_ref() != Some(&writable) {
                let pick = |want: bool| -> Vec<u64> {
                    self.ids.iter().zip(&writable).filter(|(_, w)| **w == want).map(|(id, _)| id.0).collect()
                };
                rep.writable(signed_ms(now, cut) / 1e3, &pick(true), &pick(false));
            }
        }
        let count = writable.iter().filter(|w| **w).count();
        self.last_writable = Some(writable);
        count
    }

    /// Per minority node: time from the cut to its fencing (event `at` preferred).
    fn fence_times(&self, cut: Instant) -> Vec<(u64, Option<Duration>, &'static str)> {
        self.minority
            .iter()
            .map(|id| match (self.lost_at.get(id), self.fenced_poll_at.get(id)) {
                (Some(at), _) => (id.0, Some(*at - cut), "event"),
                (None, Some(at)) => (id.0, Some(*at - cut), "poll"),
                (None, None) => (id.0, None, "never"),
            })
            .collect()
    }

    /// Time from the cut until every majority node had a PeerDown for every minority node.
    fn detect_time(&self, cut: Instant, majority: &[NodeId]) -> Option<Duration> {
        let mut worst = Duration::ZERO;
        for m in majority {
            for p in &self.minority {
                worst = worst.max(*self.down_at.get(&(*m, *p))? - cut);
            }
        }
        Some(worst)
    }
}

fn join(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}
