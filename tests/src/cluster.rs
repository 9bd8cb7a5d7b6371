//! A cluster of real `quorate run` processes in one namespace, and the harness's actions
//! on it: network faults, signals, restarts, status queries.
//!
//! Every action is recorded as a [`Mark`] stamped with `CLOCK_MONOTONIC` just before it
//! started and just after it completed. Dropping a [`Cluster`] SIGKILLs its processes,
//! deletes its namespace and its working directory, also while a panic unwinds.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;

use crate::bridge::Bridge;
use crate::events::{read_file, Action, Kind, Log, Mark};
use crate::faults::{admin_port, count_script, counters, http_port, port_counters, quic_port, script, Rule};
use crate::netns::{run, Namespace, Tools};
pub use crate::spec::{Program, Spec, TieBreaker};
use crate::timing::monotonic_us;

mod operator;

pub use operator::{CliRun, Operator};

/// The cluster name in every certificate and config.
pub const CLUSTER_NAME: &str = "qe2e";

/// How long a SIGTERMed node may take to fence, tell its peers and exit before the
/// harness SIGKILLs it (the node's own shutdown waits at most 2 s for its transport).
pub const EXIT_WAIT_MAX: Duration = Duration::from_secs(5);

/// How long [`Cluster::check_status_all_writable`] retries: longer than QUIC's 5 s handshake
/// timeout, so that a link whose reconnection is stuck in a handshake gets its chance.
pub const STATUS_WAIT_MAX: Duration = Duration::from_secs(6);

/// How often waits re-read the event files.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What every scenario of one run shares.
#[derive(Debug, Clone)]
pub struct Env {
    /// `ip` and `nft`.
    pub tools: Tools,
    /// The `quorate` binary under test.
    pub node_bin: PathBuf,
    /// The `quorate-kv` binary under test (the example service, [`Program::Kv`]).
    pub kv_bin: PathBuf,
    /// The `quorate-failover` binary under test ([`Program::Failover`]).
    pub failover_bin: PathBuf,
    /// The run's working directory (certificates, one subdirectory per scenario).
    pub work_dir: PathBuf,
    /// The run's directory on tmpfs (`/dev/shm/qe2e-<pid>`, or `work_dir` without it): the
    /// failover scenarios' shared directory lives there (see [`crate::failover`]).
    pub fast_dir: PathBuf,
    /// Keep scenario directories (`QE2E_KEEP=1`) instead of deleting them.
    pub keep: bool,
}

/// A running cluster; see the module docs.
#[derive(Debug)]
pub struct Cluster {
    /// Dropped (deleted) after [`Cluster::drop`] killed the nodes: fields drop last.
    ns: Namespace,
    /// The nodes' own namespaces when [`Spec::bridged`]; `ns` is then the hub.
    bridge: Option<Bridge>,
    env: Env,
    spec: Spec,
    dir: PathBuf,
    children: BTreeMap<u64, Child>,
    marks: Vec<Mark>,
    origin_us: u64,
    nft_us: Vec<u64>,
}

impl Cluster {
    /// Creates namespace `qe2e-<pid>-<name>`, writes the configs and starts every node.
    pub fn start(env: &Env, name: &str, spec: Spec) -> Result<Cluster, String> {
        let origin_us = monotonic_us();
        let ns_name = format!("{}{}-{name}", crate::netns::NAME_PREFIX, std::process::id());
        let ns = Namespace::create(&env.tools, &ns_name)?;
        let bridge = if spec.bridged { Some(Bridge::create(&env.tools, &ns, &spec.ids())?) } else { None };
        let dir = env.work_dir.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut cluster = Cluster {
            ns,
            bridge,
            env: env.clone(),
            spec,
            dir,
            children: BTreeMap::new(),
            marks: Vec::new(),
            origin_us,
            nft_us: Vec::new(),
        };
        for id in spec.ids() {
            let path = cluster.config_path(id);
            std::fs::write(&path, cluster.config(id))
                .map_err(|e| format!("write {}: {e}", path.display()))?;
        }
        for id in spec.ids().into_iter().filter(|id| !spec.start_later.contains(id)) {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// The cluster's shape.
    pub fn spec(&self) -> Spec {
        self.spec
    }

    /// Node `id`'s config file.
    fn config(&self, id: u64) -> String {
        // A voter needs a data directory; the kv service takes its --data unless told otherwise.
        let data_dir = match self.spec.program {
            Program::Quorate => format!("data_dir = \"{}\"\n", self.data_dir(id).display()),
            Program::Kv | Program::Failover { .. } => String::new(),
        };
        // Bridged, a node binds every address of its namespace and the members are named.
        let (listen, member) = match self.spec.bridged {
            true => ("0.0.0.0", crate::bridge::host_name as fn(u64) -> String),
            false => ("127.0.0.1", (|_| "127.0.0.1".to_owned()) as fn(u64) -> String),
        };
        let mut s = format!(
            "[node]\ncluster = \"{CLUSTER_NAME}\"\nid = {id}\nlisten = \"{listen}:{}\"\nadmin = \"127.0.0.1:{}\"\nevents_out = \"{}\"\n{data_dir}\n",
            quic_port(id),
            admin_port(id),
            self.events_path(id).display()
        );
        for m in self.spec.members(id) {
            let votes = u64::from(m <= self.spec.voters);
            s.push_str(&format!(
                "[[members]]\nid = {m}\naddr = \"{}:{}\"\nvotes = {votes}\n\n",
                member(m),
                quic_port(m)
            ));
        }
        s.push_str(&format!("[tls]\ndir = \"{}\"\n\n", self.env.work_dir.join("certs").display()));
        if self.spec.wan.contains(&id) {
            s.push_str("[timing]\npreset = \"wan\"\n");
        } else {
            s.push_str(&self.spec.timing.toml());
        }
        let tie = match self.spec.tie_breaker_of(id) {
            TieBreaker::LowestId => "lowest-id",
            TieBreaker::None => "none",
        };
        s.push_str(&format!("\n[quorum]\ntie_breaker = \"{tie}\"\n"));
        if !self.spec.gossip {
            s.push_str("\n[gossip]\nenabled = false\n");
        }
        s
    }

    fn config_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.toml"))
    }

    fn events_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("events-{id}.jsonl"))
    }

    /// Node `id`'s data directory: `[node] data_dir` of a bare node, `--data` of a
    /// [`Program::Kv`] node (its database `kv.redb` and the node's state live there).
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("data-{id}"))
    }

    /// The directory every [`Program::Failover`] node shares (claims and the log).
    pub fn shared_dir(&self) -> PathBuf {
        self.env.fast_dir.join(self.dir.file_name().unwrap_or_default()).join("shared")
    }

    /// The namespace's handle for `setns(2)` (`ip netns add` mounts it there): a thread that
    /// enters it reaches the nodes' loopback addresses.
    pub fn netns_path(&self) -> PathBuf {
        Path::new(crate::netns::NETNS_RUN_DIR).join(self.ns.name())
    }

    fn stderr_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("stderr-{id}.log"))
    }

    /// Records a harness action that `f` performs.
    fn act<T>(&mut self, action: Action, what: String, f: impl FnOnce(&mut Self) -> T) -> (T, Mark) {
        let at_us = monotonic_us();
        let out = f(self);
        let mark = Mark { at_us, done_us: monotonic_us(), action, what };
        self.marks.push(mark.clone());
        (out, mark)
    }

    /// Records a phase of the scenario.
    pub fn note(&mut self, what: &str) -> Mark {
        self.act(Action::Note, what.to_owned(), |_| ()).1
    }

    /// Starts node `id`'s process (inside the namespace), appending to its events file.
    pub fn spawn(&mut self, id: u64) -> Result<Mark, String> {
        self.spawn_with_env(id, &[])
    }

    /// Like [`Cluster::spawn`], with `env` added to the process's environment (for example
    /// a preloaded library that sets its wall clock back). `ip netns exec` passes the
    /// environment on and `exec`s the node, so the pid is still the node's own.
    pub fn spawn_with_env(&mut self, id: u64, env: &[(&str, &str)]) -> Result<Mark, String> {
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(self.stderr_path(id))
            .map_err(|e| format!("open stderr log of node {id}: {e}"))?;
        let mut cmd = match self.spec.program {
            Program::Quorate => {
                let mut cmd = self.node_ns(id).command(&self.env.node_bin);
                cmd.arg("run").arg("--config").arg(self.config_path(id));
                cmd
            }
            Program::Kv => {
                let mut cmd = self.node_ns(id).command(&self.env.kv_bin);
                cmd.arg("--config").arg(self.config_path(id)).arg("--data").arg(self.data_dir(id));
                cmd.arg("--http").arg(format!("127.0.0.1:{}", http_port(id)));
                cmd
            }
            Program::Failover { gated } => {
                let mut cmd = self.node_ns(id).command(&self.env.failover_bin);
                cmd.arg("run").arg("--config").arg(self.config_path(id));
                cmd.arg("--shared").arg(self.shared_dir()).arg("--local").arg(self.data_dir(id));
                if !gated {
                    cmd.arg("--unsafe-no-gate");
                }
                cmd
            }
        };
        cmd.envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        let what = match env {
            [] => format!("start node {id}"),
            _ => {
                let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("start node {id} with {}", vars.join(" "))
            }
        };
        let (child, mark) =
            self.act(Action::Start(id), what, |_| cmd.spawn().map_err(|e| format!("{cmd:?}: {e}")));
        self.children.insert(id, child?);
        Ok(mark)
    }

    /// The namespace the nodes run in (the hub of a bridged cluster).
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// The namespace node `id` runs in.
    fn node_ns(&self, id: u64) -> &Namespace {
        self.bridge.as_ref().and_then(|b| b.namespace(id)).unwrap_or(&self.ns)
    }

    /// The bridge of a [`Spec::bridged`] cluster.
    pub fn bridge(&self) -> Option<&Bridge> {
        self.bridge.as_ref()
    }

    /// Moves stopped node `id` of a bridged cluster to a new namespace and address, and
    /// points its name there in every hosts file ([`Bridge::move_node`]).
    pub fn move_node(&mut self, id: u64) -> Result<Mark, String> {
        if self.children.contains_key(&id) {
            return Err(format!("node {id} still runs; stop it before moving it"));
        }
        let what = format!("move node {id} to a new namespace and address, same name");
        let (r, mut m) = self.act(Action::Note, what, |c| match c.bridge.as_mut() {
            Some(b) => b.move_node(id),
            None => Err("not a bridged cluster".to_owned()),
        });
        let addr = r?;
        m.what = format!("{} ({} -> {addr})", m.what, crate::bridge::host_name(id));
        if let Some(last) = self.marks.last_mut() {
            last.what = m.what.clone();
        }
        Ok(m)
    }

    /// Node `id`'s process id, while it runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.children.get(&id).map(Child::id)
    }

    fn signal(&self, id: u64, sig: Signal) -> Result<(), String> {
        let child = self.children.get(&id).ok_or_else(|| format!("node {id} is not running"))?;
        kill_process(Pid::from_child(child), sig).map_err(|e| format!("signal node {id}: {e}"))
    }

    /// SIGSTOP: the node's process is paused (and keeps its state).
    pub fn pause(&mut self, id: u64) -> Result<Mark, String> {
        let (r, m) = self.act(Action::Note, format!("SIGSTOP node {id}"), |c| c.signal(id, Signal::STOP));
        r.map(|()| m)
    }

    /// SIGCONT: a paused node runs again.
    pub fn resume(&mut self, id: u64) -> Result<Mark, String> {
        let (r, m) = self.act(Action::Note, format!("SIGCONT node {id}"), |c| c.signal(id, Signal::CONT));
        r.map(|()| m)
    }

    /// SIGKILL: a crash. Returns once the process is gone.
    pub fn kill(&mut self, id: u64) -> Result<Mark, String> {
        let (r, m) = self.act(Action::Stop(id), format!("SIGKILL node {id}"), |c| {
            c.signal(id, Signal::KILL)?;
            if let Some(mut child) = c.children.remove(&id) {
                child.wait().map_err(|e| format!("wait for node {id}: {e}"))?;
            }
            Ok::<(), String>(())
        });
        r.map(|()| m)
    }

    /// SIGTERM: a graceful leave (the node fences, tells its peers, exits 0). Returns once
    /// the process exited; fails if it had already exited, exits with another status, or
    /// takes longer than [`EXIT_WAIT_MAX`] (then it is SIGKILLed).
    pub fn terminate(&mut self, id: u64) -> Result<Mark, String> {
        let (r, m) = self.act(Action::Stop(id), format!("SIGTERM node {id}, wait for its exit"), |c| {
            let mut child = c.children.remove(&id).ok_or_else(|| format!("node {id} is not running"))?;
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("node {id} had already exited ({status}) before SIGTERM"));
            }
            kill_process(Pid::from_child(&child), Signal::TERM)
                .map_err(|e| format!("signal node {id}: {e}"))?;
            let deadline = Instant::now() + EXIT_WAIT_MAX;
            loop {
                match child.try_wait() {
                    Ok(Some(status)) if status.success() => return Ok(()),
                    Ok(Some(status)) => return Err(format!("node {id} exited with {status} after SIGTERM")),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(format!("node {id} did not exit within {EXIT_WAIT_MAX:?} of SIGTERM"));
                    }
                }
            }
        });
        r.map(|()| m)
    }

    /// Makes `rules` the complete set of network faults (`&[]` heals everything).
    pub fn faults(&mut self, rules: &[Rule], what: &str) -> Result<Mark, String> {
        if self.bridge.is_some() {
            return Err("network faults act on one namespace's loopback; a bridged cluster has none".into());
        }
        let text = script(rules);
        let (r, m) = self.act(Action::Note, what.to_owned(), |c| c.ns.nft(&text));
        r?;
        self.nft_us.push(m.done_us - m.at_us);
        Ok(m)
    }

    /// Removes every network fault.
    pub fn heal(&mut self) -> Result<Mark, String> {
        self.faults(&[], "heal: remove every network fault")
    }

    /// (datagrams seen, datagrams dropped) by the current fault rules' counters.
    pub fn dropped(&self) -> Result<(u64, u64), String> {
        self.ns.nft_args(&["list", "chain", "inet", "qe2e", "input"]).map(|l| counters(&l))
    }

    /// Counts the datagrams from source port `sport` to each of `targets` from now on
    /// (see [`crate::faults::count_script`]); read them with [`Cluster::counted_from`].
    pub fn count_from(&mut self, sport: u16, targets: &[u64]) -> Result<(), String> {
        self.ns.nft(&count_script(sport, targets)).map(|_| ())
    }

    /// (node, datagrams) counted since [`Cluster::count_from`].
    pub fn counted_from(&self) -> Result<Vec<(u64, u64)>, String> {
        self.ns.nft_args(&["list", "table", "inet", "qe2e_count"]).map(|l| port_counters(&l))
    }

    /// The slowest `nft` command so far, in microseconds.
    pub fn nft_max_us(&self) -> u64 {
        self.nft_us.iter().copied().max().unwrap_or(0)
    }

    /// Reads every events file now.
    pub fn log(&self) -> Log {
        let mut events = Vec::new();
        let mut errors = Vec::new();
        for id in self.spec.ids() {
            let (e, err) = read_file(&self.events_path(id));
            events.extend(e);
            errors.extend(err);
        }
        Log::new(events, self.marks.clone(), errors, self.origin_us)
    }

    /// Waits until `done` holds for the logs; `Err` names `what` after `timeout`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Log) -> bool,
    ) -> Result<Log, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if done(&log) {
                return Ok(log);
            }
            if Instant::now() >= deadline {
                return Err(format!("timed out after {timeout:?} waiting until {what}"));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until every running node's log says it is writable; returns when (by the
    /// nodes' own stamps: the latest `quorum_gained` among them).
    pub fn wait_all_writable(&self, timeout: Duration) -> Result<u64, String> {
        let running: Vec<u64> = self.children.keys().copied().collect();
        let log = self.wait_until("every running node is writable", timeout, |log| {
            let now = monotonic_us();
            running.iter().all(|&id| log.writable_at(id, now))
        })?;
        let now = monotonic_us();
        Ok(running.iter().filter_map(|&id| log.quorum_state(id, now)).map(|e| e.at_us).max().unwrap_or(now))
    }

    /// Node `id`'s `/status` document, read with `quorate status --json` inside the namespace.
    pub fn status(&self, id: u64) -> Result<Value, String> {
        let mut cmd = self.node_ns(id).command(&self.env.node_bin);
        cmd.args(["status", "--json", "--admin", &format!("127.0.0.1:{}", admin_port(id))]);
        let out = run(&mut cmd)?;
        serde_json::from_str(&out).map_err(|e| format!("status of node {id}: {e}: {out}"))
    }

    /// Asks every running node's admin endpoint whether it is writable, checks that the
    /// epoch it reports is the one of its last `quorum_gained` event, and that it sees every
    /// peer reachable over a live connection (all faults are healed when this is called).
    ///
    /// Retries for up to [`STATUS_WAIT_MAX`] (a link may still be reconnecting) and says so
    /// when the first answer was not yet right.
    pub fn check_status_all_writable(&self) -> Result<String, String> {
        let started = Instant::now();
        let mut first_problem = None;
        loop {
            match self.status_once() {
                Ok(text) => {
                    return Ok(match first_problem {
                        None => text,
                        Some(p) => format!(
                            "{text}, {:.1} s after the first try ({p})",
                            started.elapsed().as_secs_f64()
                        ),
                    })
                }
                Err(p) if started.elapsed() < STATUS_WAIT_MAX => {
                    first_problem.get_or_insert(p);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(p) => return Err(format!("after {STATUS_WAIT_MAX:?}: {p}")),
            }
        }
    }

    fn status_once(&self) -> Result<String, String> {
        let log = self.log();
        let now = monotonic_us();
        let mut problems = Vec::new();
        for &id in self.children.keys() {
            let status = self.status(id)?;
            let writable = status.get("writable").and_then(Value::as_bool);
            let epoch = status.get("epoch").and_then(Value::as_u64);
            let logged =
                log.quorum_state(id, now).filter(|e| e.kind == Kind::QuorumGained).and_then(|e| e.epoch);
            if writable != Some(true) {
                problems.push(format!("node {id} says writable = {writable:?}: {}", status["why_not"]));
            } else if epoch != logged {
                problems.push(format!(
                    "node {id} reports epoch {epoch:?}, its log's last quorum_gained has {logged:?}"
                ));
            }
            for peer in status.get("peers").and_then(Value::as_array).into_iter().flatten() {
                let state = peer.get("state").and_then(Value::as_str).unwrap_or("?");
                let connected = peer.get("connected").and_then(Value::as_bool).unwrap_or(false);
                if state != "reachable" || !connected {
                    problems.push(format!(
                        "node {id} sees node {} as {state} ({}), last heard {} ms ago",
                        peer["id"],
                        if connected { "connected" } else { "no connection" },
                        peer["last_heard_ms_ago"]
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(format!(
                "/status of all {} nodes: writable, epochs match the logs, every peer reachable and connected",
                self.children.len()
            ))
        } else {
            Err(problems.join("; "))
        }
    }

    /// The last `lines` lines of node `id`'s stderr.
    pub fn stderr_tail(&self, id: u64, lines: usize) -> String {
        let text = std::fs::read_to_string(self.stderr_path(id)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops every node gracefully (SIGTERM; SIGKILL after [`EXIT_WAIT_MAX`]) and returns
    /// the complete log, and what went wrong with each node that did not exit 0 in time
    /// (a clean exit is part of what the nodes promise). Call [`Cluster::note`] with the
    /// end of the checked span first.
    pub fn stop_all(&mut self) -> (Log, Vec<String>) {
        let ids: Vec<u64> = self.children.keys().copied().collect();
        let mut exits = Vec::new();
        for id in ids {
            // A node paused by a failed scenario must run to be able to exit.
            let _ = self.signal(id, Signal::CONT);
            if let Err(e) = self.terminate(id) {
                exits.push(e);
            }
        }
        (self.log(), exits)
    }

    /// Where the scenario's files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            // SIGKILL also ends a stopped process; errors mean it is gone already.
            let _ = child.kill();
            let _ = child.wait();
        }
        // The namespace field's own drop then deletes the namespace.
        if !self.env.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
            let _ = std::fs::remove_dir_all(self.shared_dir());
        }
    }
}

/// Writes the cluster CA and certificates for nodes 1..=`nodes` into `dir` (outside any
/// namespace: no network involved).
pub fn make_certs(node_bin: &Path, dir: &Path, nodes: u64) -> Result<(), String> {
    let ids: Vec<String> = (1..=nodes).map(|i| i.to_string()).collect();
    run(std::process::Command::new(node_bin)
        .args(["certs", "init", "--cluster", CLUSTER_NAME, "--nodes", &ids.join(","), "--dir"])
        .arg(dir))
    .map(|_| ())
}
