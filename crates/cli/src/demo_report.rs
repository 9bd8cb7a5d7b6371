//! What `quorate demo` prints: live lines for a person, or JSON lines for a program, and the
//! summary with its verdict.
//!
//! Human output goes to stdout, except the redrawn "waiting for quorum" progress line, which
//! goes to stderr (and only when stderr is a terminal does it redraw in place). With `--json`
//! every line on stdout is one JSON object: events (`quorate::events::event_json`, plus
//! `t_ms` since the cut once there is one), phase records (`"phase": ...`), and last the
//! summary (`"summary": "demo"`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use quorate::testing::SCHEDULING_MARGIN;
use quorate::{Epoch, Instant, NodeId, QuorumEvent};
use serde_json::{json, Value};

/// Prints in the chosen format.
#[derive(Debug)]
pub(crate) struct Reporter {
    json: bool,
    tty: bool,
    progress_open: bool,
}

impl Reporter {
    /// A reporter for `--json` (or not).
    pub(crate) fn new(json: bool) -> Self {
        Reporter { json, tty: std::io::stderr().is_terminal(), progress_open: false }
    }

    /// A phase record (JSON only): `{"phase": name, "mono_us": .., ...fields}`.
    pub(crate) fn phase(&self, name: &str, fields: Value) {
        if !self.json {
            return;
        }
        let mut line = json!({ "phase": name, "mono_us": quorate::clock::monotonic_us() });
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        emit(&line);
    }

    /// A line for a person (human mode only).
    pub(crate) fn say(&mut self, text: &str) {
        if self.json {
            return;
        }
        self.end_progress();
        println!("{text}");
    }

    /// The "waiting for quorum" line on stderr, redrawn in place on a terminal.
    pub(crate) fn progress(&mut self, writable: usize, total: usize) {
        if self.json {
            return;
        }
        let text = format!("waiting for quorum: {writable}/{total} writable");
        if self.tty {
            eprint!("\r{text}   ");
            let _ = std::io::stderr().flush();
            self.progress_open = true;
        } else {
            eprintln!("{text}");
        }
    }

    /// Ends a redrawn progress line so the next output starts on a fresh line.
    pub(crate) fn end_progress(&mut self) {
        if self.progress_open {
            eprintln!();
            self.progress_open = false;
        }
    }

    /// An event from `node`'s gate. JSON: every event. Human: quorum changes after the cut.
    pub(crate) fn event(&mut self, node: NodeId, event: &QuorumEvent, cut: Option<Instant>) {
        if self.json {
            let mut line = quorate::events::event_json(node, event);
            if let (Some(cut), Some(obj)) = (cut, line.as_object_mut()) {
                obj.insert("t_ms".into(), json!(round2(signed_ms(event.at(), cut))));
            }
            emit(&line);
            return;
        }
        let Some(cut) = cut else { return };
        let t = signed_ms(event.at(), cut) / 1_000.0;
        match event {
            QuorumEvent::QuorumLost { epoch, why, .. } => self.say(&format!(
                "t={t:+.2}s  node {}: fenced, its quorum #{} ended: {why}",
                node.0,
                stretch(*epoch)
            )),
            QuorumEvent::QuorumGained { epoch, held_votes, .. } => self.say(&format!(
                "t={t:+.2}s  node {}: writable again, quorum #{} (new fencing epoch), holding {held_votes} votes",
                node.0,
                stretch(*epoch)
            )),
            _ => {}
        }
    }

    /// The set of writable nodes changed (during the partition or the heal).
    pub(crate) fn writable(&mut self, t: f64, writable: &[u64], fenced: &[u64]) {
        if self.json {
            self.phase(
                "writable",
                json!({ "t_ms": round2(t * 1_000.0), "writable": writable, "fenced": fenced }),
            );
            return;
        }
        self.say(&format!("t={t:+.2}s  writable: {} | fenced: {}", list(writable), list(fenced)));
    }

    /// The summary: a block and a verdict line, or the final JSON line.
    pub(crate) fn summary(&mut self, s: &Summary) {
        if self.json {
            emit(&s.to_json());
            return;
        }
        self.end_progress();
        print!("{}", s.render());
    }
}

/// What the demo measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    /// Cluster size.
    pub(crate) nodes: usize,
    /// The nodes cut off (the smaller side).
    pub(crate) minority: Vec<u64>,
    /// The rest.
    pub(crate) majority: Vec<u64>,
    /// Heartbeat interval in use.
    pub(crate) heartbeat_interval: Duration,
    /// Vote lease.
    pub(crate) lease: Duration,
    /// Down floor.
    pub(crate) down_after_min: Duration,
    /// Clock drift bound (fraction).
    pub(crate) max_clock_drift: f64,
    /// From start until every node was writable; `None` if that never happened in time.
    pub(crate) quorate_after: Option<Duration>,
    /// Per minority node: time from the cut until it was fenced, and how that was seen
    /// ("event" = the `at` of its QuorumLost, "poll" = first poll not writable).
    pub(crate) fence: Vec<(u64, Option<Duration>, &'static str)>,
    /// From the cut until every majority node saw every minority node down.
    pub(crate) detect: Option<Duration>,
    /// If a majority node lost writes during the partition: which and when.
    pub(crate) majority_fenced: Option<String>,
    /// How long the partition was held.
    pub(crate) held: Duration,
    /// From lifting the partition until every node was writable; `None` if not in time.
    pub(crate) heal: Option<Duration>,
    /// Events missed because a subscription lagged (measurement falls back to polls).
    pub(crate) lagged: u64,
}

impl Summary {
    /// `lease x (1 + drift) + margin`: the most the slowest minority node may take.
    pub(crate) fn fence_bound(&self) -> Duration {
        quorate::testing::fence_bound(self.lease, self.max_clock_drift)
    }

    /// The slowest minority node's fencing time; `None` if one never fenced.
    pub(crate) fn fence_max(&self) -> Option<Duration> {
        if self.fence.is_empty() {
            return None;
        }
        self.fence.iter().map(|(_, d, _)| *d).collect::<Option<Vec<_>>>()?.into_iter().max()
    }

    /// Whether the run showed what it should, and why not in words.
    pub(crate) fn verdict(&self) -> (bool, String) {
        if self.quorate_after.is_none() {
            return (false, "FAIL: the cluster never became writable on every node".into());
        }
        let bound = self.fence_bound();
        let mut problems = Vec::new();
        let never: Vec<String> =
            self.fence.iter().filter(|(_, d, _)| d.is_none()).map(|(n, ..)| n.to_string()).collect();
        if !never.is_empty() {
            problems.push(format!(
                "SPLIT BRAIN: minority node(s) {} stayed writable through the partition",
                never.join(" ")
            ));
        }
        if let Some(worst) = self.fence_max().filter(|d| *d > bound) {
            problems.push(format!(
                "the minority fenced after {} ms, over the {} ms bound",
                ms(worst),
                ms(bound)
            ));
        }
        if let Some(detail) = &self.majority_fenced {
            problems.push(format!("the majority lost writes: {detail}"));
        }
        if self.heal.is_none() {
            problems.push("the cluster did not become writable everywhere after healing".into());
        }
        if !problems.is_empty() {
            return (false, format!("FAIL: {}", problems.join("; ")));
        }
        let worst = self.fence_max().unwrap_or_default();
        (
            true,
            format!(
                "OK: the minority fenced itself within {} ms (bound {} ms), the majority kept accepting \
                 writes, and the cluster healed in {} ms",
                ms(worst),
                ms(bound),
                ms(self.heal.unwrap_or_default())
            ),
        )
    }

    /// The final JSON line.
    pub(crate) fn to_json(&self) -> Value {
        let (ok, verdict) = self.verdict();
        let by_node: serde_json::Map<String, Value> = self
            .fence
            .iter()
            .map(|(n, d, how)| (n.to_string(), json!({ "ms": d.map(ms), "seen_by": how })))
            .collect();
        json!({
            "summary": "demo",
            "nodes": self.nodes,
            "minority": self.minority,
            "majority": self.majority,
            "heartbeat_interval_ms": ms(self.heartbeat_interval),
            "lease_ms": ms(self.lease),
            "down_after_min_ms": ms(self.down_after_min),
            "max_clock_drift": self.max_clock_drift,
            "quorate_after_ms": self.quorate_after.map(ms),
            "fence_ms": self.fence_max().map(ms),
            "fence_bound_ms": ms(self.fence_bound()),
            "fence_ms_by_node": by_node,
            "detect_ms": self.detect.map(ms),
            "majority_fenced": self.majority_fenced.is_some(),
            "held_ms": ms(self.held),
            "heal_ms": self.heal.map(ms),
            "events_missed": self.lagged,
            "ok": ok,
            "verdict": verdict,
        })
    }

    /// The human summary block, ending with the verdict line.
    pub(crate) fn render(&self) -> String {
        let mut out = String::from("\nsummary\n");
        let line = |out: &mut String, label: &str, value: String| {
            out.push_str(&format!("  {label:<34}{value}\n"));
        };
        match self.quorate_after {
            Some(d) => line(&mut out, "all nodes writable after", format!("{} ms", ms(d))),
            None => line(&mut out, "all nodes writable after", "never (gave up)".into()),
        }
        if self.quorate_after.is_some() {
            let bound = format!(
                "(bound: lease {} x {:.2} + {} ms = {} ms)",
                humantime::format_duration(self.lease),
                1.0 + self.max_clock_drift,
                SCHEDULING_MARGIN.as_millis(),
                ms(self.fence_bound())
            );
            let fence = match self.fence_max() {
                Some(d) => format!("{} ms  {bound}", ms(d)),
                None => format!("NEVER  {bound}"),
            };
            line(&mut out, "minority fenced after", fence);
            for (n, d, how) in &self.fence {
                let v = d.map_or("never".to_owned(), |d| format!("{} ms ({how})", ms(d)));
                line(&mut out, &format!("  node {n}"), v);
            }
            let detect = match self.detect {
                Some(d) => format!(
                    "{} ms  (down_after_min {})",
                    ms(d),
                    humantime::format_duration(self.down_after_min)
                ),
                None => "not every PeerDown seen while partitioned".into(),
            };
            line(&mut out, "majority saw the minority down", detect);
            let majority = match &self.majority_fenced {
                None => format!("yes, for all {} ms of the partition", ms(self.held)),
                Some(detail) => format!("NO: {detail}"),
            };
            line(&mut out, "majority stayed writable", majority);
            let heal = self.heal.map_or("not within the time limit".to_owned(), |d| format!("{} ms", ms(d)));
            line(&mut out, "every node writable after healing", heal);
            if self.lagged > 0 {
                line(&mut out, "events missed (lagged)", self.lagged.to_string());
            }
        }
        out.push('\n');
        out.push_str(&self.verdict().1);
        out.push('\n');
        out
    }
}

fn emit(line: &Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Milliseconds with two decimals, as a number.
pub(crate) fn ms(d: Duration) -> f64 {
    round2(d.as_secs_f64() * 1_000.0)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `at - origin` in milliseconds, negative when `at` is earlier.
pub(crate) fn signed_ms(at: Instant, origin: Instant) -> f64 {
    (i128::from(at.as_nanos()) - i128::from(origin.as_nanos())) as f64 / 1e6
}

/// Which stretch of quorum in this node's life an epoch is (its low bits): "#2" reads
/// better than the full 60-bit epoch, which JSON output still carries.
fn stretch(epoch: Epoch) -> u64 {
    epoch.0 & ((1 << Epoch::GAIN_BITS) - 1)
}

fn list(ids: &[u64]) -> String {
    if ids.is_empty() {
        return "-".into();
    }
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Summary {
        Summary {
            nodes: 5,
            minority: vec![1, 2],
            majority: vec![3, 4, 5],
            heartbeat_interval: Duration::from_millis(100),
            lease: Duration::from_millis(900),
            down_after_min: Duration::from_secs(1),
            max_clock_drift: 0.01,
            quorate_after: Some(Duration::from_millis(300)),
            fence: vec![
                (1, Some(Duration::from_millis(850)), "event"),
                (2, Some(Duration::from_millis(870)), "poll"),
            ],
            detect: Some(Duration::from_millis(1_100)),
            majority_fenced: None,
            held: Duration::from_secs(3),
            heal: Some(Duration::from_millis(200)),
            lagged: 0,
        }
    }

    #[test]
    fn default_lan_bound_is_lease_with_drift_plus_margin() {
        assert_eq!(ms(good().fence_bound()), 959.0);
    }

    #[test]
    fn a_clean_run_is_ok_and_reports_the_slowest_minority_node() {
        let s = good();
        assert!(s.verdict().0, "{}", s.verdict().1);
        let j = s.to_json();
        assert_eq!(j["fence_ms"], json!(870.0));
        assert_eq!(j["majority_fenced"], json!(false));
        assert_eq!(j["ok"], json!(true));
    }

    #[test]
    fn a_minority_node_that_never_fenced_is_split_brain() {
        let mut s = good();
        s.fence[1].1 = None;
        let (ok, text) = s.verdict();
        assert!(!ok && text.contains("SPLIT BRAIN") && text.contains('2'), "{text}");
        assert_eq!(s.to_json()["fence_ms"], Value::Null);
    }

    #[test]
    fn slow_fencing_a_fenced_majority_or_no_heal_each_fail() {
        let mut slow = good();
        slow.fence[0].1 = Some(Duration::from_millis(1_000));
        assert!(!slow.verdict().0);
        let mut fenced = good();
        fenced.majority_fenced = Some("node 3 at +0.9s".into());
        assert!(!fenced.verdict().0);
        let mut unhealed = good();
        unhealed.heal = None;
        assert!(!unhealed.verdict().0);
    }

    #[test]
    fn signed_ms_is_negative_before_the_origin() {
        let a = Instant::from_nanos(1_000_000);
        let b = Instant::from_nanos(3_500_000);
        assert_eq!(signed_ms(a, b), -2.5);
        assert_eq!(signed_ms(b, a), 2.5);
    }
}
