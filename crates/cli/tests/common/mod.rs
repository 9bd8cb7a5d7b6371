//! Helpers for tests that run the built `quorate` binary: temporary directories, free
//! loopback ports, child processes that are always killed and always waited for, and the
//! steps of the tests that run a cluster of `quorate run` processes (start a node, read its
//! status, run a command, wait, show the nodes' logs).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn quorate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_quorate"))
}

/// A directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "quorate-cli-{tag}-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished command left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs `cmd` to completion, killing it (and failing the test) if it takes longer than
/// `limit`. Output is read on threads so a chatty child never blocks on a full pipe.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Finished {
    let started = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    match status {
        Some(status) => Finished { status, stdout, stderr, took: started.elapsed() },
        None => panic!("command did not finish within {limit:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
    }
}

/// Child processes that are killed and reaped when the guard drops, also when a test
/// panics half-way.
#[derive(Default)]
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `n` distinct loopback UDP ports that were free a moment ago.
pub fn free_udp_ports(n: usize) -> Vec<u16> {
    free_ports(n, || UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).unwrap())
}

/// `n` distinct loopback TCP ports that were free a moment ago.
pub fn free_tcp_ports(n: usize) -> Vec<u16> {
    free_ports(n, || TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).unwrap())
}

fn free_ports(n: usize, mut one: impl FnMut() -> u16) -> Vec<u16> {
    let mut ports = Vec::with_capacity(n);
    for _ in 0..100 {
        let p = one();
        if !ports.contains(&p) {
            ports.push(p);
        }
        if ports.len() == n {
            return ports;
        }
    }
    panic!("could not find {n} distinct free ports");
}

/// Addresses for a cluster of `n` nodes on loopback: each node's admin endpoint
/// (`127.0.0.1:PORT`, node `i + 1` at index `i`) and the `--peer ID=127.0.0.1:PORT` list of
/// their QUIC addresses.
pub fn loopback_cluster(n: usize) -> (Vec<String>, Vec<String>) {
    let admin = free_tcp_ports(n).iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let peers =
        free_udp_ports(n).iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1)).collect();
    (admin, peers)
}

/// Node ids whose logs [`logs`] looks for.
const LOGGED_NODES_MAX: usize = 16;

/// A node's status as JSON (`quorate status --json`); `None` while it does not answer.
pub fn status(admin: &str) -> Option<serde_json::Value> {
    let mut cmd = quorate();
    cmd.args(["status", "--json", "--admin", admin]);
    let done = run_bounded(cmd, Duration::from_secs(10));
    (done.code() == Some(0)).then(|| serde_json::from_str(&done.stdout).ok()).flatten()
}

/// Every `node-N.log` in `dir` that exists, in id order, for a failure message.
pub fn logs(dir: &Path) -> String {
    (1..=LOGGED_NODES_MAX)
        .filter_map(|i| {
            let log = std::fs::read_to_string(dir.join(format!("node-{i}.log"))).ok()?;
            Some(format!("--- node {i} ---\n{log}"))
        })
        .collect()
}

/// Starts `quorate run` for node `id` with its certificates in `dir/certs`, its data in
/// `dir/data-ID` and its output appended to `dir/node-ID.log`.
pub fn start(dir: &Path, id: usize, admin: &str, peers: &[String]) -> Child {
    let log = File::options().create(true).append(true).open(dir.join(format!("node-{id}.log"))).unwrap();
    let mut cmd = quorate();
    cmd.arg("run")
        .args(["--id", &id.to_string(), "--admin", admin])
        .arg("--tls-dir")
        .arg(dir.join("certs"))
        .arg("--data-dir")
        .arg(dir.join(format!("data-{id}")));
    for p in peers {
        cmd.args(["--peer", p]);
    }
    cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
    cmd.spawn().unwrap()
}

/// Runs `quorate ARGS`, for at most 40 s.
pub fn cli(args: &[&str]) -> Finished {
    let mut cmd = quorate();
    cmd.args(args);
    run_bounded(cmd, Duration::from_secs(40))
}

/// Polls `done` every 200 ms for up to 15 s; fails naming `what`, with the logs of `dir`.
pub fn wait(dir: &Path, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within 15 s\n{}", logs(dir));
        thread::sleep(Duration::from_millis(200));
    }
}
