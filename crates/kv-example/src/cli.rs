//! The `quorate-kv` command: one node of the example service.
//!
//! ```text
//!   quorate-kv --config node.toml --data DIR --http ADDR
//!     Store::open(DIR/kv.redb) ─► bind ADDR ─► Node::start(config, data_dir = DIR unless set)
//!     ─► gate.subscribe()
//!     ─► Service + event watcher ─► HTTP until SIGINT / SIGTERM
//!     ─► node.shutdown() (the gate fences first: later writes get 503) ─► drain HTTP ─► close the database
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use quorate::{Config, Node};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http;
use crate::service::{GateMode, Service};
use crate::store::{Durability, Store};

/// The database file inside `--data`.
pub const DB_FILE: &str = "kv.redb";

const AFTER_HELP: &str = r#"The config file is the one `quorate run --config` reads ([node], [[members]], [tls],
[timing], [quorum]); see `quorate run --help`.

  PUT /kv/{key}   body = UTF-8 value (at most 64 KiB); key percent-encoded, at most 256 bytes
                  200 {"epoch","seq",...} once committed; 503 {"error":"not quorate: ..."} when fenced
  GET /kv/{key}   the value in this node's database, also while fenced (may be stale)
  GET /status     mode (writable / read-only and why), gate, store, counters, recent events

Exit codes:
  0  stopped by SIGINT/SIGTERM
  1  could not start (address in use, database or data directory locked or unreadable, certificates)
  2  invalid configuration or flags"#;

/// One node of the quorate-kv example: a key-value service on redb whose every write
/// passes through the quorum gate.
#[derive(Debug, Parser)]
#[command(name = "quorate-kv", version, after_help = AFTER_HELP)]
pub struct Args {
    /// The node's TOML config (the `quorate run --config` format).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Directory for the database file (created if missing). Unless the config file sets
    /// `[node] data_dir`, the node keeps its incarnation here too (`quorate.state`).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Address for the HTTP API, e.g. 127.0.0.1:8001.
    #[arg(long, value_name = "ADDR")]
    pub http: SocketAddr,
    /// `immediate`: every acknowledged write is on disk (fsync). `none`: no flush, for
    /// benchmarks only.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Immediate)]
    pub durability: DurabilityArg,
    /// Skip the quorum gate on writes. Benchmarks only: removes the split-brain protection.
    #[arg(long)]
    pub bypass_gate: bool,
}

/// `--durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// fsync on every commit.
    Immediate,
    /// No flush.
    None,
}

/// Why the command did not succeed: 2 for usage, 1 for the rest.
#[derive(Debug)]
enum Failure {
    Usage(String),
    Runtime(String),
}

/// Parses the command line, runs the node, returns the exit code.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_logging();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("quorate-kv")
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("quorate-kv: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("quorate-kv: {msg}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    let mut config = Config::load(&args.config).map_err(|e| Failure::Usage(e.to_string()))?;
    // The node's state lives next to the database unless the config file puts it elsewhere:
    // one directory to back up, and the node's lock guards the database as well.
    if config.data_dir.is_none() {
        config.data_dir = Some(args.data.clone());
    }
    // Every rule before anything is created: a node that cannot start leaves no database.
    config.check().map_err(|e| Failure::Usage(e.to_string()))?;
    let durability = match args.durability {
        DurabilityArg::Immediate => Durability::Immediate,
        DurabilityArg::None => Durability::None,
    };
    let gate_mode = if args.bypass_gate { GateMode::Bypass } else { GateMode::Enforce };
    std::fs::create_dir_all(&args.data)
        .map_err(|e| Failure::Runtime(format!("cannot create {}: {e}", args.data.display())))?;
    let db_path = args.data.join(DB_FILE);
    let store = Store::open(&db_path, durability)
        .map_err(|e| Failure::Runtime(format!("cannot open {}: {e}", db_path.display())))?;
    let listener = TcpListener::bind(args.http)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot bind {}: {e}", args.http)))?;

    let id = config.id;
    let node = Node::start(config).await.map_err(|e| match e {
        quorate::StartError::Config(e) => Failure::Usage(e.to_string()),
        other => Failure::Runtime(format!("cannot start node {}: {other}", id.0)),
    })?;
    let gate = node.gate();
    // Subscribe before the service exists so that no quorum change is missed.
    let events = gate.subscribe();
    let service = Service::new(id, gate, std::sync::Arc::new(store), durability, gate_mode);
    let watcher = tokio::spawn(service.clone().watch_events(events));
    let (stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(http::serve(listener, http::router(service.clone()), stop_rx));
    if gate_mode == GateMode::Bypass {
        tracing::warn!("--bypass-gate: writes skip the quorum gate; no split-brain protection");
    }
    eprintln!(
        "quorate-kv node {}: http://{}/status, database {}, durability {}",
        id.0,
        args.http,
        db_path.display(),
        crate::service::durability_name(durability)
    );

    let signal = quorate::shutdown_signal().await;
    eprintln!("{signal}: fencing, leaving, closing the database");
    node.shutdown().await;
    let _ = stop.send(true);
    let _ = server.await;
    watcher.abort();
    // The last handle to the store: the database closes here.
    drop(service);
    Ok(())
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
