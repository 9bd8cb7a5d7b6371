//! What a run hands back: a report, the first violation with its replay command, or why
//! the run could not start.

use crate::clock::fmt_ms;
use crate::invariants::Violation;
use crate::report::Stats;

/// Why a simulation could not start.
#[derive(Debug, Clone, PartialEq)]
pub enum SimError {
    /// The core refused the configuration.
    Config(String),
    /// The scenario does not fit the simulator's limits.
    Scenario(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Config(e) => write!(f, "core configuration refused: {e}"),
            SimError::Scenario(e) => write!(f, "scenario not runnable: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

/// A broken invariant with everything needed to understand and replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What broke.
    pub violation: Violation,
    /// The seed.
    pub seed: u64,
    /// The scenario's name.
    pub scenario: String,
    /// The last events before the violation, one per line.
    pub timeline: String,
    /// The command that replays the run.
    pub replay: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.violation;
        writeln!(
            f,
            "VIOLATION of {} at {} ms (seed {}, scenario {})",
            v.invariant,
            fmt_ms(v.at),
            self.seed,
            self.scenario
        )?;
        writeln!(f, "  {}", v.detail)?;
        writeln!(f, "last events (real time):")?;
        f.write_str(&self.timeline)?;
        writeln!(f, "replay: {}", self.replay)
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// The first violation, if any (the run stops there).
    pub failure: Option<Failure>,
    /// Digest of the whole timeline: equal for identical runs.
    pub digest: u64,
    /// The last events, rendered.
    pub timeline: String,
    /// Figures.
    pub stats: Stats,
}
