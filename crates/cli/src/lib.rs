//! `quorate`: the command line of the quorate split-brain guard.
//!
//! ```text
//!   quorate certs init   development CA and node certificates (mutual TLS between nodes)
//!   quorate run          one node: heartbeats over QUIC, quorum gate, /status and /metrics
//!   quorate status       a running node's view of the cluster, from its admin address
//!   quorate members      add, remove a member or change its votes while the cluster runs
//!   quorate config set   quorum.tie_breaker while the cluster runs
//!   quorate demo         a whole cluster in one process that partitions itself and heals
//! ```
//!
//! Every subcommand returns a `Failure` instead of exiting, so that [`main`] is the one
//! place that maps outcomes to exit codes: 0 success, 1 a runtime failure or a wrong outcome,
//! 2 bad flags or an invalid configuration, 3 (`quorate run`) the members refuse the node as
//! a non-member.
//!
//! The command is this library's [`main`], so that every binary that is the `quorate`
//! command (the package's own, and the end-to-end suite's node under test) compiles it once.

mod certs;
mod certs_show;
mod demo;
mod demo_report;
#[cfg(test)]
mod deploy_check;
mod http;
mod members;
mod run;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The exit codes, shown under every `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success (for `demo`: the minority fenced in time, the majority stayed writable, the cluster healed)
  1  runtime failure (cannot bind, cannot read certificates, node unreachable) or, for `demo`, a wrong outcome
  2  usage error: bad flags or an invalid configuration (the message names the field)";

/// quorate keeps a storage cluster from accepting writes on both sides of a network
/// partition: each node heartbeats its peers over QUIC and holds a write gate that closes as
/// soon as it no longer holds a majority of vote leases.
#[derive(Debug, Parser)]
#[command(name = "quorate", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Development certificates: a cluster CA and one certificate per node.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Run one node until SIGINT or SIGTERM.
    #[command(after_help = run::AFTER_HELP)]
    Run(run::RunArgs),
    /// Show a running node's view of the cluster (from its admin address).
    #[command(after_help = status::AFTER_HELP)]
    Status(status::StatusArgs),
    /// Change the members while the cluster runs (sent to a member's admin endpoint).
    #[command(subcommand, after_help = members::AFTER_HELP)]
    Members(members::MembersCommand),
    /// Change a setting while the cluster runs (sent to a member's admin endpoint).
    #[command(subcommand, after_help = members::AFTER_HELP)]
    Config(members::ConfigCommand),
    /// Start a local cluster over real QUIC, cut off a minority, and measure how fast it fences.
    #[command(after_help = demo::AFTER_HELP)]
    Demo(demo::DemoArgs),
}

/// Why a command did not succeed, and so which exit code it ends with.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad flags or an invalid configuration: exit 2.
    Usage(String),
    /// Something the command needs failed (I/O, network, node startup): exit 1.
    Runtime(String),
    /// The command ran to the end but the outcome it checks was wrong; it has said so
    /// already: exit 1.
    Outcome,
    /// `quorate run`: the members refuse the node as a non-member (it was removed while it
    /// was down); it fenced itself and left, with nothing recorded: exit 3.
    NotAMember(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Runtime(_) | Failure::Outcome => 1,
            Failure::NotAMember(_) => 3,
        }
    }
}

/// The `quorate` command: parses the process's arguments, runs the subcommand, and returns
/// its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let result = match cli.command {
        Command::Certs(cmd) => certs::run(cmd),
        Command::Run(args) => with_current_thread_runtime(|| run::run(args)),
        Command::Status(args) => with_current_thread_runtime(|| status::run(args)),
        Command::Members(cmd) => with_current_thread_runtime(|| members::members(cmd)),
        Command::Config(cmd) => with_current_thread_runtime(|| members::config(cmd)),
        Command::Demo(args) => with_runtime(|| demo::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            match &failure {
                Failure::Usage(msg) | Failure::Runtime(msg) | Failure::NotAMember(msg) => {
                    eprintln!("quorate: {msg}")
                }
                Failure::Outcome => {}
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Runs `f`'s future on a tokio runtime on this one thread: what `quorate run` needs. One
/// node is a few small tasks (the driver, the QUIC endpoint and a task per connection, the
/// admin server) that each run for microseconds when a datagram or a timer arrives; on one
/// thread they hand work to each other without waking a second thread or moving between
/// threads, which saves about a fifth of an idle node's CPU compared with a multi-threaded
/// runtime (`docs/benchmarks.md`). Nothing here blocks the thread for long: the event log is
/// written on tokio's blocking pool, and the data directory is written (rarely) with fsync
/// from the driver, which delays that node's own sends by one fsync, not its gate (the gate
/// decides by the clock, not by the runtime).
fn with_current_thread_runtime<F, Fut>(f: F) -> Result<(), Failure>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("quorate")
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(f())
}

/// Runs `f`'s future on a multi-threaded tokio runtime: the demo runs a whole cluster in
/// one process, and its nodes must not queue behind one another on one thread.
fn with_runtime<F, Fut>(f: F) -> Result<(), Failure>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("quorate")
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(f())
}

/// Logs go to stderr, filtered by `RUST_LOG`. `run` logs at info by default (an operator
/// wants to see the transport start and connect), except the node's own per-event log lines,
/// which `run` replaces with plainer ones of its own; `status` and `certs` only warn; `demo` only
/// shows errors, because the partition it stages makes the transport warn about the very
/// links the demo cut, and the demo reports its outcome itself.
fn init_logging(command: &Command) {
    let default = match command {
        Command::Run(_) => "info,quorate::node=warn",
        Command::Demo(_) => "error",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Parses a human duration such as `100ms`, `1.5s` or `2m`.
/// The node id `quorate run`'s flags give, if the command is `run` (for the deploy checks).
#[cfg(test)]
pub(crate) fn run_id(cli: &Cli) -> Option<u64> {
    match &cli.command {
        Command::Run(args) => args.id(),
        _ => None,
    }
}

pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e}; write e.g. \"100ms\" or \"1s\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_exit_2_and_failures_exit_1() {
        assert_eq!(Failure::Usage(String::new()).exit_code(), 2);
        assert_eq!(Failure::Runtime(String::new()).exit_code(), 1);
        assert_eq!(Failure::Outcome.exit_code(), 1);
    }
}
