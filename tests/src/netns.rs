//! A private network namespace per scenario, deleted when its guard is dropped.
//!
//! The namespace has nothing but its own loopback interface, so nothing the nodes send can
//! leave it: every node binds its own `127.0.0.1` port inside it. Commands run inside with
//! `ip netns exec NAME PROGRAM ...`, which enters the namespace and then `exec`s the program,
//! so the child's pid is the program's own (signals reach the node itself).
//!
//! Names are `qe2e-<harness pid>-<n>`. A harness killed before its guards ran leaves its
//! namespaces behind; [`remove_stale`] deletes those of harnesses that no longer run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every namespace this harness creates starts with this.
pub const NAME_PREFIX: &str = "qe2e-";

/// Where `ip netns add NAME` mounts the namespace handle (`/run/netns/NAME`).
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Where `ip netns exec NAME` finds files to bind-mount over `/etc` (`/etc/netns/NAME/hosts`).
pub const NETNS_ETC_DIR: &str = "/etc/netns";

/// The `/etc` overlay directory of namespace `name`; deleted with the namespace.
pub fn etc_dir(name: &str) -> PathBuf {
    Path::new(NETNS_ETC_DIR).join(name)
}

/// The external tools the harness needs, found once.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `ip` from iproute2.
    pub ip: PathBuf,
    /// `nft` from nftables.
    pub nft: PathBuf,
}

impl Tools {
    /// Checks that the suite can run here: root, `ip` and `nft` present, and a namespace
    /// with an nftables table can actually be made. `Err` says why not, in words.
    pub fn probe() -> Result<Tools, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not running as root: network namespaces and nftables need root".into());
        }
        let ip = find_program("ip").ok_or("`ip` (iproute2) not found in PATH, /usr/sbin or /sbin")?;
        let nft = find_program("nft").ok_or("`nft` (nftables) not found in PATH, /usr/sbin or /sbin")?;
        let tools = Tools { ip, nft };
        let mut probe = Namespace::create(&tools, &format!("{NAME_PREFIX}{}-probe", std::process::id()))
            .map_err(|e| format!("cannot create a network namespace: {e}"))?;
        probe
            .nft("table inet qe2e {\n chain input { type filter hook input priority filter; policy accept; }\n}\n")
            .map_err(|e| format!("nftables does not work in a network namespace here: {e}"))?;
        probe.delete().map_err(|e| format!("cannot delete a network namespace: {e}"))?;
        Ok(tools)
    }
}

/// A network namespace, deleted (with every process still inside) on drop.
#[derive(Debug)]
pub struct Namespace {
    /// How to run things inside it.
    entry: Entry,
    deleted: bool,
}

impl Namespace {
    /// Creates the namespace `name` and brings its loopback up.
    pub fn create(tools: &Tools, name: &str) -> Result<Namespace, String> {
        run(Command::new(&tools.ip).args(["netns", "add", name]))?;
        let ns = Namespace { entry: Entry { tools: tools.clone(), name: name.to_owned() }, deleted: false };
        run(Command::new(&tools.ip).args(["-n", name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        self.entry.command(program)
    }

    /// Applies an nftables script (`nft -f -`) inside the namespace, atomically.
    pub fn nft(&self, script: &str) -> Result<String, String> {
        self.entry.nft(script)
    }

    /// Runs `nft ARGS` inside the namespace and returns its output.
    pub fn nft_args(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = self.command(&self.entry.tools.nft);
        cmd.args(args);
        run(&mut cmd)
    }

    /// A handle that runs commands inside from any thread; it does not own the namespace.
    pub fn entry(&self) -> Entry {
        self.entry.clone()
    }

    /// Kills whatever still runs inside and deletes the namespace. Idempotent.
    pub fn delete(&mut self) -> Result<(), String> {
        if self.deleted {
            return Ok(());
        }
        let Entry { tools, name } = &self.entry;
        kill_inside(tools, name);
        run(Command::new(&tools.ip).args(["netns", "del", name]))?;
        // Absent unless a hosts file was written for it (see `bridge.rs`).
        let _ = std::fs::remove_dir_all(etc_dir(name));
        self.deleted = true;
        Ok(())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            eprintln!("qe2e: could not delete network namespace {}: {e}", self.entry.name);
        }
    }
}

/// Runs commands inside a namespace that someone else owns (and deletes): for threads that
/// act while the owner drives the scenario, e.g. a link that flaps while changes are made.
#[derive(Debug, Clone)]
pub struct Entry {
    tools: Tools,
    name: String,
}

impl Entry {
    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(&self.tools.ip);
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Applies an nftables script (`nft -f -`) inside the namespace, atomically.
    pub fn nft(&self, script: &str) -> Result<String, String> {
        let mut cmd = self.command(&self.tools.nft);
        cmd.arg("-f").arg("-");
        run_with_stdin(&mut cmd, script)
    }
}

/// Deletes namespaces named `qe2e-<pid>-...` whose harness process no longer exists, and
/// kills what still runs in them. Returns their names.
pub fn remove_stale(tools: &Tools) -> Vec<String> {
    let Ok(list) = run(Command::new(&tools.ip).args(["netns", "list"])) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else { continue };
        let owner = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if owner.is_some_and(harness_runs) {
            continue;
        }
        kill_inside(tools, name);
        if run(Command::new(&tools.ip).args(["netns", "del", name])).is_ok() {
            removed.push(name.to_owned());
        }
    }
    // Hosts directories of namespaces that are gone, left by a harness killed in between.
    for entry in std::fs::read_dir(NETNS_ETC_DIR).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else { continue };
        let owner = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if !owner.is_some_and(harness_runs) && !Path::new(NETNS_RUN_DIR).join(&name).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    removed
}

/// Whether `pid` is a running harness: a live process (not a zombie) whose command name is
/// that of the suite's test binary (`netns-<hash>`) or the cost bench's (`netns_cost-<hash>`),
/// so that a reused pid does not keep a stale namespace alive.
pub fn harness_runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // Format: `pid (comm) state ...`; comm may contain spaces and parentheses.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { return false };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].split_whitespace().next().unwrap_or("");
    state != "Z" && state != "X" && comm.starts_with("netns")
}

/// SIGKILLs every process inside namespace `name` (SIGKILL also ends stopped processes).
fn kill_inside(tools: &Tools, name: &str) {
    let Ok(pids) = run(Command::new(&tools.ip).args(["netns", "pids", name])) else { return };
    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            // Already gone is fine: it is what we want.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Finds `name` in PATH, then in the sbin directories a non-login root shell may lack.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].into_iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs a command to completion; `Err` carries its stderr when it fails.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).map_err(|e| format!("{cmd:?}: writing stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}\nscript:\n{input}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
