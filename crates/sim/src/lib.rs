//! Deterministic simulator and split-brain checker for quorate.
//!
//! It runs the very `quorate_core::Node` the runtime ships, many of them, on a virtual
//! clock and a hostile virtual network, and checks the guarantees of `docs/guarantees.md`
//! at every step:
//!
//! ```text
//!   seed ──► Scenario (cluster shape, each node's preset and quorum definition, network,
//!                      fault schedule, cues)
//!        ──► Sim: event heap of (real time, seq) ──► Node::handle_datagram / handle_timeout
//!                 per-node drifting clocks (|rate error| <= rho), per-link delay, loss,
//!                 duplication, reordering; partitions, one-way cuts, bridges, flapping,
//!                 crashes, restarts (some onto another preset or definition), pauses,
//!                 loss bursts; a disk per host that survives crashes (Memory::Durable)
//!        ──► invariants/*: lease safety, fence bound, quorum intersection,
//!                 no false fencing, heal, epoch monotonic, PeerFenced sound
//!        ──► RunReport: first violation (seed, timeline, replay command), digest, figures
//! ```
//!
//! One seed derives every choice, so the same seed and the same code give the same run,
//! bit for bit ([`RunReport::digest`]). A failure prints the command that replays it:
//! `cargo run -p quorate-sim --release -- --replay SEED [--scenario NAME]`.
//!
//! ```no_run
//! use quorate_sim::{run, Scenario};
//! let scenario = Scenario::named("clean-split-5", 42, None, None)?;
//! let report = run(scenario, 42)?;
//! if let Some(failure) = &report.failure {
//!     eprintln!("{failure}");
//! }
//! println!("{}", report.stats.render());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod acks;
pub mod clock;
pub mod faults;
pub mod host;
pub mod invariants;
pub mod model;
pub mod net;
pub mod reach;
pub mod report;
pub mod scenarios;
pub mod seed;
pub mod setup;
pub mod sim;
pub mod timeline;
pub mod versions;
pub mod wire;
pub mod world;

pub use faults::{Bug, Cue, Fault, Scheduled, Signal};
pub use model::{Model, LOSS_BOUND};
pub use net::NetParams;
pub use report::{Changes, Stats, Summary};
pub use scenarios::{Scenario, ScenarioError, NAMED};
pub use setup::{Definition, Preset, Setup, Tie};
pub use sim::{run, Failure, RunReport, Sim, SimError};
