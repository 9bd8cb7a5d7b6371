//! The `quorate-failover` command: `run` one node of the service, or `check` what the nodes
//! left in the shared directory.
//!
//! ```text
//!   quorate-failover run --config node.toml --shared DIR --local DIR [--unsafe-no-gate]
//!     SharedDir::open ─► Node::start(config, data_dir = --local unless set) ─► gate.subscribe()
//!     ─► Engine::start (controller + writer threads) ─► events ─► triggers, until SIGINT / SIGTERM
//!     ─► engine stops (no append after this) ─► node.shutdown() ─► counters on stderr
//!   quorate-failover check --shared DIR --acks FILE...
//!     claims + log + ack logs ─► check::analyse ─► verdict (exit 0: one writer, log intact)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use quorate::{Config, Node, QuorumEvent, RecvError};

use crate::check::analyse;
use crate::engine::{Engine, Mode, Settings, Trigger};
use crate::shared::{read_acks, SharedDir, ACKS_FILE};

const AFTER_HELP: &str = r#"The config file is the one `quorate run --config` reads ([node], [[members]], [tls],
[timing], [quorum]); see `quorate run --help`. Every node of one service names the same
--shared directory and its own --local directory.

Exit codes:
  0  run: stopped by SIGINT/SIGTERM; check: one writer at every moment, log intact
  1  run: could not start or a thread failed; check: split brain or a damaged log
  2  invalid configuration, flags, or an unreadable directory"#;

/// Active/passive failover on a shared directory, with the quorum gate or (for comparison)
/// without.
#[derive(Debug, Parser)]
#[command(name = "quorate-failover", version, after_help = AFTER_HELP)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs one node of the service.
    Run(RunArgs),
    /// Reads the claims, the log and ack logs and says whether two nodes wrote at once.
    Check(CheckArgs),
}

/// `quorate-failover run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The node's TOML config (the `quorate run --config` format).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The directory all nodes share (claims and the log). Created if missing.
    #[arg(long, value_name = "DIR")]
    pub shared: PathBuf,
    /// This node's own directory: its ack log, and the node's state unless the config file
    /// sets `[node] data_dir`. Created if missing.
    #[arg(long, value_name = "DIR")]
    pub local: PathBuf,
    /// Ignore the quorum gate: take over when the active node is considered down (a
    /// heartbeat timeout) and append without a permit. Splits the brain; for comparison only.
    #[arg(long)]
    pub unsafe_no_gate: bool,
    /// The work of one request: the time between the decision to write (the permit, or
    /// the role without the gate) and the commit.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = parse_duration)]
    pub pace: Duration,
    /// How often each node reads the latest claim.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub claims_poll: Duration,
    /// With --unsafe-no-gate: how often the active node checks that the latest claim is
    /// still its own (a failover script's monitor interval).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub monitor: Duration,
}

/// `quorate-failover check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The shared directory.
    #[arg(long, value_name = "DIR")]
    pub shared: PathBuf,
    /// Each node's ack log (`LOCAL/acks.jsonl`), or its local directory.
    #[arg(long, value_name = "FILE")]
    pub acks: Vec<PathBuf>,
}

/// The longest duration a flag accepts.
const DURATION_FLAG_MAX: Duration = Duration::from_secs(3_600);

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() || d > DURATION_FLAG_MAX {
        return Err(format!(
            "must be more than 0 and at most {}",
            humantime::format_duration(DURATION_FLAG_MAX)
        ));
    }
    Ok(d)
}

/// Why the command did not succeed.
#[derive(Debug)]
enum Failure {
    Usage(String),
    Runtime(String),
}

/// Parses the command line, runs the subcommand, returns the exit code.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match args.command {
        Command::Check(check) => return check_main(&check),
        Command::Run(run) => {
            init_logging();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("quorate-failover")
                .build()
                .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
                .and_then(|rt| rt.block_on(run_node(run)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("quorate-failover: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("quorate-failover: {msg}");
            ExitCode::from(1)
        }
    }
}

async fn run_node(args: RunArgs) -> Result<(), Failure> {
    let mut config = Config::load(&args.config).map_err(|e| Failure::Usage(e.to_string()))?;
    if config.data_dir.is_none() {
        config.data_dir = Some(args.local.clone());
    }
    std::fs::create_dir_all(&args.local)
        .map_err(|e| Failure::Runtime(format!("cannot create {}: {e}", args.local.display())))?;
    let shared = SharedDir::open(&args.shared).map_err(|e| Failure::Runtime(e.to_string()))?;
    let mode = if args.unsafe_no_gate { Mode::Naive { monitor: args.monitor } } else { Mode::Gated };
    let id = config.id;
    let node = Node::start(config).await.map_err(|e| match e {
        quorate::StartError::Config(e) => Failure::Usage(e.to_string()),
        other => Failure::Runtime(format!("cannot start node {}: {other}", id.0)),
    })?;
    let gate = node.gate();
    // Subscribe before the engine runs so that no PeerFenced is missed.
    let mut events = gate.subscribe();
    let settings = Settings { node: id.0, mode, pace: args.pace, claims_poll: args.claims_poll };
    let engine = match Engine::start(settings, gate, shared, &args.local.join(ACKS_FILE)) {
        Ok(e) => e,
        Err(e) => {
            node.shutdown().await;
            return Err(Failure::Runtime(e.to_string()));
        }
    };
    let triggers = engine.triggers();
    let follower = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(QuorumEvent::PeerFenced { peer, at, .. }) => {
                    triggers.send(Trigger::Fenced { peer: peer.0, at });
                }
                Ok(QuorumEvent::PeerDown { peer, .. }) => triggers.send(Trigger::Down { peer: peer.0 }),
                Ok(_) => {}
                // A missed PeerFenced delays a takeover until the next one; it never causes one.
                Err(RecvError::Lagged { missed }) => tracing::warn!(missed, "missed quorum events"),
                Err(_) => break,
            }
        }
    });
    if args.unsafe_no_gate {
        tracing::warn!(
            "--unsafe-no-gate: takeover on a timeout, appends without a permit: split brain ahead"
        );
    }
    eprintln!(
        "quorate-failover node {}: shared {}, {}",
        id.0,
        args.shared.display(),
        if args.unsafe_no_gate { "WITHOUT the gate" } else { "gated" }
    );

    let signal = quorate::shutdown_signal().await;
    eprintln!("{signal}: stopping the writer, leaving");
    follower.abort();
    let role = engine.role();
    let summary = engine.counters().summary();
    let clean = engine.stop();
    node.shutdown().await;
    eprintln!("node {} stopped as {role:?}: {summary}", id.0);
    if clean {
        Ok(())
    } else {
        Err(Failure::Runtime("a thread of the engine panicked".into()))
    }
}

fn check_main(args: &CheckArgs) -> ExitCode {
    let read = || -> Result<_, String> {
        let shared = SharedDir::open(&args.shared).map_err(|e| e.to_string())?;
        let log = shared.read_log().map_err(|e| e.to_string())?;
        let claims = shared.claims().map_err(|e| e.to_string())?;
        let mut acks = Vec::new();
        for path in &args.acks {
            let path = if path.is_dir() { path.join(ACKS_FILE) } else { path.clone() };
            acks.extend(read_acks(&path).map_err(|e| e.to_string())?.items);
        }
        Ok(analyse(&log.items, &log.bad, &claims, &acks))
    };
    let analysis = match read() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("quorate-failover check: {e}");
            return ExitCode::from(2);
        }
    };
    let one = analysis.one_writer();
    let intact = analysis.log_intact();
    for line in analysis.handovers() {
        println!("handover: {line}");
    }
    for (label, r) in [("writers", &one), ("log", &intact)] {
        match r {
            Ok(t) => println!("{label}: {t}"),
            Err(t) => println!("{label}: FAILED: {t}"),
        }
    }
    if one.is_ok() && intact.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,quorate::node=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_must_be_positive_and_bounded() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
