//! `quorate-sim`: run seeded simulations of quorate clusters and check every invariant.
//!
//! ```text
//! quorate-sim --seeds 100 --first-seed 0          # 100 random scenarios
//! quorate-sim --scenario clean-split-5 --seeds 20  # a named scenario, 20 seeds
//! quorate-sim --replay 42 --scenario bridge-5      # one run, with its timeline
//! quorate-sim --scenario clean-split-5 --nodes 1000 --duration 20
//! quorate-sim --scenario random-mixed --seeds 100   # lan and wan, several definitions
//! quorate-sim --scenario reconfigure-random-5 --seeds 1000  # the reconfiguration nemesis
//! ```
//!
//! Exits with status 1 if any run breaks an invariant (after printing the seed, the
//! invariant, the last events and the replay command), 2 on bad arguments.

use std::process::ExitCode;

use clap::Parser;
use quorate_sim::clock::SEC;
use quorate_sim::{run, Bug, Scenario, Stats};

/// Deterministic simulator and split-brain checker for quorate.
#[derive(Debug, Parser)]
#[command(name = "quorate-sim", version)]
struct Args {
    /// Number of seeds to run.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// First seed; runs use first-seed .. first-seed + seeds.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// A named scenario (clean-split-5, asymmetric-5, bridge-5, flapping-3, pause-leader,
    /// rolling-restart-7, loss-30pct-5, loss-XXpct-N, restart-during-fence-check,
    /// rolling-wan-5, rollout-3-to-5, tie-breakers-4, votes-3; random-mixed for random mixed
    /// configurations; rollout-restart-5, a restart in a half-done rollout; grow-online-5 and
    /// reconfigure-random-5, definitions changed while running); random scenarios if absent.
    #[arg(long)]
    scenario: Option<String>,
    /// Replay this one seed and print its timeline.
    #[arg(long)]
    replay: Option<u64>,
    /// Cluster size (more than 7 nodes: 5 voters, the rest observers).
    #[arg(long)]
    nodes: Option<usize>,
    /// Simulated seconds per run (decimals allowed).
    #[arg(long)]
    duration: Option<f64>,
    /// Print every run's one-line result.
    #[arg(long)]
    verbose: bool,
    /// Turn gossip (rows, partition view, fence checks) off, to compare its cost.
    #[arg(long)]
    no_gossip: bool,
    /// Fault injection for replaying checker tests: every restart is given an empty record
    /// instead of what its disk says (the node forgets its earlier lives' promises).
    #[arg(long)]
    forget_promises: bool,
    /// Fault injection for replaying checker tests: every heartbeat arrives with the
    /// receiver's own terms (nodes follow local rules only).
    #[arg(long)]
    local_only_terms: bool,
    /// Fault injection for replaying checker tests: multiply every clock's rate error (above
    /// 1.0 clocks break the drift bound the lease rule assumes).
    #[arg(long, default_value_t = 1.0)]
    drift_scale: f64,
    /// Fault injection for replaying checker tests: plant a bug in one node (repeatable):
    /// forged-ack:N:MS, deaf-to-acks:N:MS, reused-incarnation:N, phantom-fence:N:P:MS,
    /// slow-clock:N:PCT, hasty-proposer:N, stale-preset:N (node ids, milliseconds of simulated time).
    #[arg(long)]
    bug: Vec<Bug>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let duration = args.duration.map(|s| (s.max(0.0) * SEC as f64) as u64);
    let (first, count) = match args.replay {
        Some(seed) => (seed, 1),
        None => (args.first_seed, args.seeds),
    };
    let mut total = Stats::default();
    let mut failed = Vec::new();
    let started = std::time::Instant::now();
    for seed in first..first.saturating_add(count) {
        let scenario = match &args.scenario {
            Some(name) => Scenario::named(name, seed, args.nodes, duration),
            None => Scenario::random(seed, args.nodes, duration),
        };
        let scenario = match scenario {
            Ok(s) => Scenario {
                gossip: !args.no_gossip,
                forget_promises: args.forget_promises,
                local_only_terms: args.local_only_terms,
                drift_scale: args.drift_scale,
                bugs: args.bug.clone(),
                ..s
            },
            Err(e) => {
                eprintln!("quorate-sim: {e}");
                return ExitCode::from(2);
            }
        };
        let report = match run(scenario, seed) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("quorate-sim: {e}");
                return ExitCode::from(2);
            }
        };
        if args.replay.is_some() {
            println!("last events of seed {seed} (real time):\n{}", report.timeline);
        }
        if args.verbose {
            let verdict = if report.failure.is_some() { "FAIL" } else { "ok" };
            println!(
                "seed {seed}: {verdict}, digest {:016x}, {} events, {} PeerFenced",
                report.digest, report.stats.events, report.stats.peer_fenced
            );
        }
        if let Some(f) = &report.failure {
            eprintln!("{f}");
            failed.push(seed);
        }
        total.merge(&report.stats);
    }
    println!("{}", total.render());
    println!("wall time {:.1} s", started.elapsed().as_secs_f64());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED seeds: {failed:?}");
        ExitCode::from(1)
    }
}
