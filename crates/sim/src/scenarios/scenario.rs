//! What a scenario is: a cluster, its network and its fault schedule, the names it can
//! have, the limits it must fit, and why one could not be built. The catalogue
//! ([`crate::scenarios`]) builds them.

use crate::clock::SEC;
use crate::faults::{Bug, Cue, Scheduled};
use crate::net::NetParams;
use crate::setup::{Definition, Setup};

/// The named scenarios, as accepted by `--scenario`. `loss-XXpct-N` also accepts any loss
/// percentage and voter count; `random-mixed` gives random scenarios of mixed
/// configurations ([`crate::scenarios::mixed`]).
pub const NAMED: &[&str] = &[
    "clean-split-5",
    "asymmetric-5",
    "bridge-5",
    "flapping-3",
    "pause-leader",
    "rolling-restart-7",
    "loss-30pct-5",
    "restart-during-fence-check",
    "rolling-wan-5",
    "rollout-3-to-5",
    "tie-breakers-4",
    "votes-3",
    "grow-online-5",
    "reconfigure-random-5",
];

/// Clusters up to this size make every node a voter.
pub const ALL_VOTERS_MAX: usize = 7;

/// Voters in clusters larger than [`ALL_VOTERS_MAX`]; the other nodes are observers.
pub const LARGE_CLUSTER_VOTERS: usize = 5;

/// Largest cluster the simulator builds (the detector tracks at most 4096 peers).
pub const NODES_MAX: usize = 4096;

/// Most voters: the checkers keep voter sets in 64-bit masks.
pub const VOTERS_MAX: usize = 64;

/// Why a scenario could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioError {
    /// Not one of [`NAMED`] nor `loss-XXpct-N`.
    Unknown(String),
    /// The cluster is too small or too large for the scenario.
    BadSize {
        /// The scenario.
        scenario: String,
        /// Nodes asked for.
        nodes: usize,
        /// Smallest size it supports.
        min: usize,
        /// Largest size it supports.
        max: usize,
    },
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScenarioError::Unknown(name) => {
                write!(f, "unknown scenario {name:?}; known: {} (and loss-XXpct-N)", NAMED.join(", "))
            }
            ScenarioError::BadSize { scenario, nodes, min, max } => {
                write!(f, "scenario {scenario} needs {min} to {max} nodes, not {nodes}")
            }
        }
    }
}

impl std::error::Error for ScenarioError {}

impl ScenarioError {
    /// The size scenario `name` runs at: `nodes` when given, else `default`, refused
    /// unless within `min..=max` (and [`NODES_MAX`]).
    pub(crate) fn check_size(
        name: &str,
        nodes: Option<usize>,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ScenarioError> {
        let n = nodes.unwrap_or(default);
        if n < min || n > max.min(NODES_MAX) {
            return Err(ScenarioError::BadSize { scenario: name.to_string(), nodes: n, min, max });
        }
        Ok(n)
    }
}

/// A cluster, its network and its fault schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `random` or one of [`NAMED`].
    pub name: String,
    /// Cluster size; node ids are `1..=nodes`.
    pub nodes: usize,
    /// Nodes `1..=voters` have one vote each in the standard definition; the others are
    /// observers.
    pub voters: usize,
    /// The quorum definitions nodes run; scenarios of one definition have just
    /// [`Definition::standard`].
    pub definitions: Vec<Definition>,
    /// What each node runs when it starts (index = node index); a
    /// [`crate::Fault::RestartAs`] changes it.
    pub setups: Vec<Setup>,
    /// Simulated real time, ns.
    pub duration: u64,
    /// Delay, loss, duplication and reordering.
    pub net: NetParams,
    /// Faults in time order.
    pub faults: Vec<Scheduled>,
    /// Faults timed from protocol messages rather than the clock.
    pub cues: Vec<Cue>,
    /// Multiplies every node's clock rate error. 1.0 (always, outside tests) keeps clocks
    /// within `max_clock_drift`; tests raise it to show the checkers catch a broken clock.
    pub drift_scale: f64,
    /// Gossip of reachability rows and fence checks on (the default) or off.
    pub gossip: bool,
    /// Longest time a write to a node's disk takes to land, ns; each write takes a random
    /// time up to this (0: writes land at once). A crash before a write lands loses it.
    pub disk_delay_max: u64,
    /// Every restart is given an empty record instead of what its disk says, as if the data
    /// directory were lost: the earlier lives' promises (fence holds, floors) are forgotten.
    /// Always false outside tests, which set it to show the checkers catch what that breaks.
    pub forget_promises: bool,
    /// Every heartbeat reaches its receiver carrying the receiver's own terms (lease, drift,
    /// definition digest) instead of the sender's, as if nodes had only local rules: no
    /// floor raised for a longer lease, no definition mismatch noticed. Always false outside
    /// tests, which set it to show the checkers catch what the cross-node rules prevent.
    pub local_only_terms: bool,
    /// Bugs planted in nodes on purpose ([`Bug`]). Always empty outside tests, which plant
    /// one to show the checker aimed at it reports the run.
    pub bugs: Vec<Bug>,
    /// The default size and duration, to print a replay command that omits them.
    pub defaults: (usize, u64),
    /// The last `spares` nodes are not started with the others: each waits, down, until a
    /// change adds it as a member ([`crate::Fault::Propose`]), and then starts on a file
    /// that lists the members of that change.
    pub spares: usize,
}

impl Scenario {
    /// `nodes` nodes of which `voters` vote, all on the standard definition and the lan
    /// preset, a default network, disks that write at once, no faults; `duration` ns.
    pub(crate) fn plain(name: &str, nodes: usize, voters: usize, duration: u64) -> Scenario {
        Scenario {
            name: name.to_string(),
            nodes,
            voters,
            definitions: vec![Definition::standard(nodes, voters)],
            setups: vec![Setup::STANDARD; nodes],
            duration,
            net: NetParams::default(),
            faults: Vec::new(),
            cues: Vec::new(),
            drift_scale: 1.0,
            gossip: true,
            disk_delay_max: 0,
            forget_promises: false,
            local_only_terms: false,
            bugs: Vec::new(),
            defaults: (nodes, duration),
            spares: 0,
        }
    }

    /// Whether definitions change while nodes run: changes proposed, or members to add.
    pub fn changes_online(&self) -> bool {
        self.spares > 0 || self.faults.iter().any(|f| matches!(f.fault, crate::Fault::Propose { .. }))
    }

    /// The command that replays this scenario for `seed`.
    pub fn replay_command(&self, seed: u64) -> String {
        let mut cmd = format!("cargo run -p quorate-sim --release -- --replay {seed}");
        if self.name != "random" {
            cmd.push_str(&format!(" --scenario {}", self.name));
        }
        if self.nodes != self.defaults.0 {
            cmd.push_str(&format!(" --nodes {}", self.nodes));
        }
        if self.duration != self.defaults.1 {
            cmd.push_str(&format!(" --duration {}", fmt_secs(self.duration)));
        }
        if self.forget_promises {
            cmd.push_str(" --forget-promises");
        }
        if self.local_only_terms {
            cmd.push_str(" --local-only-terms");
        }
        if self.drift_scale != 1.0 {
            cmd.push_str(&format!(" --drift-scale {}", self.drift_scale));
        }
        for bug in &self.bugs {
            cmd.push_str(&format!(" --bug {bug}"));
        }
        cmd
    }
}

/// Formats ns as seconds for the command line (`--duration` takes decimals).
fn fmt_secs(ns: u64) -> String {
    if ns % SEC == 0 {
        format!("{}", ns / SEC)
    } else {
        format!("{}.{:09}", ns / SEC, ns % SEC).trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MS;

    #[test]
    fn replay_command_names_only_what_differs_from_the_defaults() {
        let s = Scenario::named("bridge-5", 3, Some(50), Some(2_500 * MS)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.replay_command(3),
            "cargo run -p quorate-sim --release -- --replay 3 --scenario bridge-5 --nodes 50 --duration 2.5"
        );
    }
}
