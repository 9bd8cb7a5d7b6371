//! The operator's hand on a running cluster: `quorate members ...` and `quorate config set`
//! run inside the nodes' namespace against a member's admin endpoint (changes are accepted
//! from loopback only, so the command must run where the node runs), and marks made by
//! other threads added to the timeline.

use super::*;
use crate::faults::Rule;
use crate::netns::Entry;

/// One run of the `quorate` command and what it answered.
#[derive(Debug, Clone)]
pub struct CliRun {
    /// The arguments, `--admin` included.
    pub args: Vec<String>,
    /// The exit code; `None` when a signal ended it (also when it overran its bound).
    pub code: Option<i32>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// `CLOCK_MONOTONIC` µs just before it started.
    pub at_us: u64,
    /// `CLOCK_MONOTONIC` µs just after it exited.
    pub done_us: u64,
}

impl CliRun {
    /// `quorate members add --id 4 ...: exit 0 in 1.23 s`.
    pub fn summary(&self) -> String {
        let code = self.code.map_or_else(|| "killed".to_owned(), |c| format!("exit {c}"));
        format!(
            "quorate {}: {code} in {:.2} s",
            self.args.join(" "),
            self.done_us.saturating_sub(self.at_us) as f64 / 1e6
        )
    }

    /// The run as a harness action for the timeline.
    pub fn mark(&self) -> Mark {
        Mark { at_us: self.at_us, done_us: self.done_us, action: Action::Note, what: self.summary() }
    }

    /// Both outputs, for a failure message.
    pub fn output(&self) -> String {
        format!("stdout: {} | stderr: {}", self.stdout.trim(), self.stderr.trim())
    }
}

/// Runs the `quorate` command and nftables scripts inside the cluster's namespace, from
/// any thread (it does not own the namespace: the [`Cluster`] does).
#[derive(Debug, Clone)]
pub struct Operator {
    entry: Entry,
    bin: PathBuf,
}

impl Operator {
    /// `quorate ARGS --admin 127.0.0.1:(9000 + via)` inside the namespace. Killed if it
    /// runs longer than `limit` (its own `--timeout` should end it first).
    pub fn run(&self, via: u64, args: &[&str], limit: Duration) -> Result<CliRun, String> {
        let admin = format!("127.0.0.1:{}", admin_port(via));
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(["--admin".to_owned(), admin]);
        let mut cmd = self.entry.command(&self.bin);
        cmd.args(&all).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let at_us = monotonic_us();
        let mut child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
        let deadline = Instant::now() + limit;
        // The outputs are a few lines: the pipes cannot fill while we poll.
        while child.try_wait().map_err(|e| format!("wait for quorate {}: {e}", all.join(" ")))?.is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        let out = child.wait_with_output().map_err(|e| format!("quorate {}: {e}", all.join(" ")))?;
        Ok(CliRun {
            args: all,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            at_us,
            done_us: monotonic_us(),
        })
    }

    /// Makes `rules` the complete set of network faults, as [`Cluster::faults`] does; the
    /// caller records the returned mark with [`Cluster::record`].
    pub fn faults(&self, rules: &[Rule], what: &str) -> Result<Mark, String> {
        let at_us = monotonic_us();
        self.entry.nft(&script(rules))?;
        Ok(Mark { at_us, done_us: monotonic_us(), action: Action::Note, what: what.to_owned() })
    }
}

impl Cluster {
    /// The operator's hand on this cluster (not for a bridged one: its nodes have a
    /// namespace each).
    pub fn operator(&self) -> Result<Operator, String> {
        if self.bridge.is_some() {
            return Err("the operator acts in one namespace; a bridged cluster has one per node".into());
        }
        Ok(Operator { entry: self.ns.entry(), bin: self.env.node_bin.clone() })
    }

    /// Adds a harness action made elsewhere (another thread, an [`Operator`]) to the
    /// timeline, in time order.
    pub fn record(&mut self, mark: Mark) {
        let at = self.marks.partition_point(|m| m.at_us <= mark.at_us);
        self.marks.insert(at, mark);
    }
}
