//! The test binary's main: picks scenarios, runs them one after another, prints what each
//! measured, and ends with the line `N passed, M failed, K skipped`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::checker::{down_implies_fenced, fenced_is_sound, Report};
use crate::cluster::{make_certs, Cluster, Env, EXIT_WAIT_MAX};
use crate::netns::{harness_runs, remove_stale, Tools};
use crate::scenarios::{all, Scenario};

/// Lines of merged timeline printed for a failed scenario.
const TIMELINE_LINES: usize = 100;
/// Lines of each node's stderr printed for a failed scenario.
const STDERR_LINES: usize = 6;
/// A run with `QE2E_KEEP` leaves this file in its working directory.
const KEPT_MARKER: &str = "KEPT";
/// tmpfs, where the failover scenarios keep their shared directory when it exists.
const SHM_DIR: &str = "/dev/shm";
/// Certificates are made once per run for this many nodes (the largest scenario).
const NODES_MAX: u64 = 5;
/// When this variable is `1` (CI sets it), a suite that cannot run fails instead of
/// skipping: a green run then means every selected scenario ran.
pub const REQUIRED_VAR: &str = "QUORATE_E2E_REQUIRED";

/// Which scenarios to run: libtest-style arguments. Bare words are substring filters
/// (`--exact` makes them whole names), `--skip WORD` excludes, `--list` lists. Other libtest
/// flags (`--nocapture`, `--test-threads N`, ...) are accepted and ignored, so that
/// `cargo test --workspace -- FLAGS` works.
#[derive(Debug, Default)]
struct Args {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
}

impl Args {
    fn parse(args: impl IntoIterator<Item = String>) -> Args {
        let mut out = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--exact" => out.exact = true,
                "--list" => out.list = true,
                "--skip" => out.skips.extend(args.next()),
                "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" => {
                    args.next();
                }
                flag if flag.starts_with('-') => {}
                word => out.filters.push(word.to_owned()),
            }
        }
        out
    }

    fn selects(&self, name: &str) -> bool {
        let hit = |f: &String| if self.exact { name == f } else { name.contains(f.as_str()) };
        (self.filters.is_empty() || self.filters.iter().any(hit))
            && !self.skips.iter().any(|s| name.contains(s.as_str()))
    }
}

enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// The binaries under test.
#[derive(Debug, Clone, Copy)]
pub struct Bins<'a> {
    /// The `quorate` command.
    pub node: &'a Path,
    /// The `quorate-kv` example service.
    pub kv: &'a Path,
    /// The `quorate-failover` example service.
    pub failover: &'a Path,
}

/// Runs the suite with the binaries `bins` and `args` from the command line.
pub fn main(bins: Bins<'_>, args: impl IntoIterator<Item = String>) -> ExitCode {
    let args = Args::parse(args);
    let scenarios: Vec<Scenario> = all().into_iter().filter(|s| args.selects(s.name)).collect();
    let filtered_out = all().len() - scenarios.len();
    if args.list {
        for s in &scenarios {
            println!("{}: test", s.name);
        }
        return ExitCode::SUCCESS;
    }
    let suite = Instant::now();
    let required = std::env::var(REQUIRED_VAR).is_ok_and(|v| v == "1");
    let outcomes: Vec<Outcome> = match Tools::probe() {
        Err(reason) if required => {
            println!("qe2e: the real-process partition suite cannot run here: {reason}");
            println!("qe2e: {REQUIRED_VAR}=1: a scenario that cannot run is a failure");
            for s in &scenarios {
                println!("FAILED  {}: could not run: {reason}", s.name);
            }
            scenarios.iter().map(|_| Outcome::Failed).collect()
        }
        Err(reason) => {
            warn_skipped(&reason, scenarios.len());
            for s in &scenarios {
                println!("SKIPPED {}: {reason}", s.name);
            }
            scenarios.iter().map(|_| Outcome::Skipped).collect()
        }
        Ok(tools) => run_all(tools, bins, &scenarios),
    };
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let failed = count(|o| matches!(o, Outcome::Failed));
    println!();
    println!(
        "qe2e: suite wall time {:.1} s{}",
        suite.elapsed().as_secs_f64(),
        if filtered_out > 0 { format!("; {filtered_out} scenarios filtered out") } else { String::new() }
    );
    println!(
        "{} passed, {failed} failed, {} skipped",
        count(|o| matches!(o, Outcome::Passed)),
        count(|o| matches!(o, Outcome::Skipped))
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Says, on stdout and stderr where a developer cannot miss it, that nothing was checked.
fn warn_skipped(reason: &str, scenarios: usize) {
    let banner = format!(
        "\n{line}\nqe2e: WARNING: {scenarios} real-process scenarios SKIPPED, none of them ran.\n\
         qe2e: reason: {reason}\n\
         qe2e: this run proves nothing about real processes; run as root with `ip` and `nft`, \
         or set {REQUIRED_VAR}=1 to make this a failure (CI does).\n{line}\n",
        line = "=".repeat(78)
    );
    println!("{banner}");
    eprintln!("{banner}");
}

/// Removes the run's working directory on drop unless asked to keep it.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn run_all(tools: Tools, bins: Bins<'_>, scenarios: &[Scenario]) -> Vec<Outcome> {
    for stale in remove_stale(&tools) {
        println!("qe2e: removed stale network namespace {stale} of an earlier run");
    }
    remove_stale_dirs(&std::env::temp_dir());
    remove_stale_dirs(Path::new(SHM_DIR));
    let keep = std::env::var_os("QE2E_KEEP").is_some();
    let work = WorkDir { path: std::env::temp_dir().join(format!("qe2e-{}", std::process::id())), keep };
    let fast = WorkDir {
        path: match Path::new(SHM_DIR).is_dir() {
            true => Path::new(SHM_DIR).join(format!("qe2e-{}", std::process::id())),
            false => work.path.clone(),
        },
        keep,
    };
    if keep {
        println!(
            "qe2e: QE2E_KEEP set: files stay in {} (failover shared directories in {})",
            work.path.display(),
            fast.path.display()
        );
    }
    let _ = std::fs::create_dir_all(&work.path);
    if keep {
        // Tells later runs' stale-directory cleanup to leave this one alone.
        let _ = std::fs::write(work.path.join(KEPT_MARKER), "");
        let _ = std::fs::create_dir_all(&fast.path)
            .and_then(|()| std::fs::write(fast.path.join(KEPT_MARKER), ""));
    }
    let env = Env {
        tools,
        node_bin: bins.node.to_owned(),
        kv_bin: bins.kv.to_owned(),
        failover_bin: bins.failover.to_owned(),
        work_dir: work.path.clone(),
        fast_dir: fast.path.clone(),
        keep,
    };
    let prepared = std::fs::create_dir_all(&work.path)
        .map_err(|e| format!("create {}: {e}", work.path.display()))
        .and_then(|()| make_certs(bins.node, &work.path.join("certs"), NODES_MAX));
    scenarios
        .iter()
        .map(|s| match &prepared {
            Ok(()) => run_one(&env, s),
            Err(e) => {
                println!("FAILED {}: cannot prepare the run: {e}", s.name);
                Outcome::Failed
            }
        })
        .collect()
}

/// Removes `qe2e-<pid>` working directories of harnesses that no longer run (killed
/// before their guards ran).
fn remove_stale_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix("qe2e-")).and_then(|p| p.parse::<u32>().ok());
        let kept = entry.path().join(KEPT_MARKER).exists();
        if pid.is_some_and(|pid| !harness_runs(pid)) && entry.path().is_dir() && !kept {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn run_one(env: &Env, scenario: &Scenario) -> Outcome {
    println!("\n--- {}: {}", scenario.name, scenario.about);
    let started = Instant::now();
    let report = catch_unwind(AssertUnwindSafe(|| run_cluster(env, scenario)))
        .unwrap_or_else(|panic| Report { failures: vec![panic_text(&*panic)], ..Report::default() });
    let took = started.elapsed().as_secs_f64();
    if report.failures.is_empty() {
        println!("ok      {} ({took:.1} s)", scenario.name);
        Outcome::Passed
    } else {
        for f in &report.failures {
            println!("    failure: {f}");
        }
        println!("FAILED  {} ({took:.1} s)", scenario.name);
        Outcome::Failed
    }
}

/// Starts the cluster, drives it, stops it, checks the log; prints as it goes. The
/// cluster (processes, namespace, files) is gone when this returns or unwinds.
fn run_cluster(env: &Env, scenario: &Scenario) -> Report {
    let mut report = Report::default();
    let mut cluster = match Cluster::start(env, scenario.name, scenario.spec) {
        Ok(c) => c,
        Err(e) => {
            report.failures.push(format!("cannot start the cluster: {e}"));
            return report;
        }
    };
    let driven = catch_unwind(AssertUnwindSafe(|| (scenario.drive)(&mut cluster)));
    let (log, exits) = cluster.stop_all();
    match driven {
        Ok(Ok(check)) => check(&log, &mut report),
        Ok(Err(e)) => report.failures.push(e),
        Err(panic) => report.failures.push(panic_text(&*panic)),
    }
    report.check(
        &format!("every running node exits 0 within {EXIT_WAIT_MAX:?} of SIGTERM"),
        if exits.is_empty() { Ok("yes".into()) } else { Err(exits.join("; ")) },
    );
    report.check(
        "nobody writable while a quorum considers it down (G1/G2)",
        down_implies_fenced(&log, &scenario.spec),
    );
    report.check("every peer_fenced is about a node that cannot write (G7)", fenced_is_sound(&log));
    if !log.errors.is_empty() {
        report.failures.push(format!("unparsable event lines: {}", log.errors.join("; ")));
    }
    if cluster.nft_max_us() > 0 {
        report.info("slowest nft command", format!("{:.1} ms", cluster.nft_max_us() as f64 / 1e3));
    }
    for line in &report.lines {
        println!("    {line}");
    }
    if !report.failures.is_empty() {
        println!("    merged timeline (node events by their at_us, harness actions by when they began):");
        print!("{}", log.timeline(TIMELINE_LINES));
        for id in scenario.spec.ids() {
            println!("    stderr of node {id} (last {STDERR_LINES} lines):");
            for line in cluster.stderr_tail(id, STDERR_LINES).lines() {
                println!("      {line}");
            }
        }
    }
    report
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let msg = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    format!("panicked: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Args {
        Args::parse(words.iter().map(|s| s.to_string()))
    }

    #[test]
    fn filters_select_by_substring_and_ignore_libtest_flags() {
        let a = args(&["--nocapture", "--test-threads", "2", "clean-split-5"]);
        assert!(a.selects("clean-split-5"));
        assert!(!a.selects("tie-break-4"));
        assert!(args(&[]).selects("anything"));
        assert!(!args(&["--skip", "loss"]).selects("random-loss-30"));
        assert!(!args(&["--exact", "split"]).selects("clean-split-5"));
    }
}
