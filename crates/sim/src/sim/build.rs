//! Building a run: the scenario checked against the simulator's limits, one core
//! configuration per setup in use (each checked by the core's rules), the model, and one
//! host per node with its drifting clock.

use std::collections::BTreeMap;

use quorate_core::Config;
use quorate_proto::ClusterId;
use rand::Rng;

use super::heal_timer::HealTimer;
use super::queue::Queue;
use super::{Sim, SimError, SWEEP_EVERY_STEP_MAX};
use crate::acks::AckLedger;
use crate::clock::{fraction_to_ppb, SimClock, SEC};
use crate::faults::{Bug, Fault};
use crate::host::Host;
use crate::invariants;
use crate::model::Model;
use crate::net::Net;
use crate::reach::Reach;
use crate::report::Stats;
use crate::scenarios::{Scenario, VOTERS_MAX};
use crate::seed::{stream, DISKS, NETWORK, NODES};
use crate::setup::{Preset, Setup};
use crate::timeline::Timeline;
use crate::world::World;

/// The simulated cluster's name (its id is derived from it).
const CLUSTER_NAME: &str = "quorate-sim";

impl Sim {
    /// Builds the cluster of `scenario` for `seed`; nodes start at real time zero.
    pub fn new(scenario: Scenario, seed: u64) -> Result<Sim, SimError> {
        let n = scenario.nodes;
        if scenario.voters == 0 || scenario.voters > VOTERS_MAX || scenario.voters > n {
            return Err(SimError::Scenario(format!("{} voters of {n} nodes", scenario.voters)));
        }
        let cued = scenario.cues.iter().flat_map(|c| c.then.iter().map(|(_, f)| f));
        if let Some(bad) =
            scenario.faults.iter().map(|f| &f.fault).chain(cued).filter_map(Fault::max_node).find(|m| *m >= n)
        {
            return Err(SimError::Scenario(format!("a fault names node index {bad}, cluster has {n}")));
        }
        if let Some(bad) = scenario.bugs.iter().find(|b| b.max_node() >= n) {
            return Err(SimError::Scenario(format!("bug {bad} names a node the cluster of {n} lacks")));
        }
        let configs = configs_of(&scenario, ClusterId::from_name(CLUSTER_NAME))?;
        let used: Vec<(Setup, &Config)> = configs.iter().map(|(s, c)| (*s, c)).collect();
        let mut model =
            Model::new(&scenario.definitions, &used, n, scenario.net.max_delay(), scenario.disk_delay_max);
        // Definitions proposed while running are not known ahead: the liveness checkers
        // are held to runs of one definition only.
        model.uniform &= !scenario.changes_online();
        let mut node_rng = stream(seed, NODES);
        let rho_ppb = fraction_to_ppb(model.rho * scenario.drift_scale);
        let hosts = (0..n)
            .map(|i| {
                let offset = node_rng.random_range(0..1_000_000 * SEC);
                // Half the clocks sit at an edge of the drift bound (the worst case the
                // lease rule must survive), the others anywhere within it.
                let stretch = match node_rng.random_range(0..4) {
                    0 => rho_ppb,
                    1 => -rho_ppb,
                    _ => node_rng.random_range(-rho_ppb..=rho_ppb),
                };
                let wall = node_rng.random_range(0..1_000);
                // A planted slow clock replaces the drawn rate (the draws stay the same, so
                // the rest of the run is unchanged).
                let slow = scenario.bugs.iter().find_map(|b| match *b {
                    Bug::SlowClock { node, pct } if node == i => Some(i64::from(pct) * 10_000_000),
                    _ => None,
                });
                let stretch = slow.unwrap_or(stretch);
                let mut host = Host::new(i, SimClock::new(offset, stretch), wall, scenario.setups[i]);
                host.commissioned = i + scenario.spares < n;
                host
            })
            .collect();
        let link_seed = node_rng.random();
        let world = World {
            now: 0,
            hosts,
            net: Net::new(n, scenario.net.clone(), link_seed),
            reach: Reach::new(n),
            model,
            timeline: Timeline::new(),
            acks: AckLedger::default(),
            step: 0,
        };
        Ok(Sim {
            world,
            seed,
            configs,
            cluster: ClusterId::from_name(CLUSTER_NAME),
            checkers: invariants::all(n),
            queue: Queue::default(),
            net_rng: stream(seed, NETWORK),
            node_rng,
            disk_rng: stream(seed, DISKS),
            stats: Stats::default(),
            violation: None,
            sweep_each_step: n <= SWEEP_EVERY_STEP_MAX,
            heal_timer: HealTimer::default(),
            connected_ns: 0,
            same_instant: (u64::MAX, 0, 0),
            started: false,
            processed: 0,
            cues_fired: vec![false; scenario.cues.len()],
            phantom: None,
            phantom_done: false,
            following: false,
            scenario,
        })
    }
}

/// Every setup the run uses (at start or after a restart) with its configuration, each
/// checked by the core's rules; and every node a member of each definition it runs.
fn configs_of(scenario: &Scenario, cluster: ClusterId) -> Result<BTreeMap<Setup, Config>, SimError> {
    let n = scenario.nodes;
    if scenario.setups.len() != n {
        return Err(SimError::Scenario(format!("{} setups for {n} nodes", scenario.setups.len())));
    }
    let restarts = scenario
        .faults
        .iter()
        .map(|f| &f.fault)
        .chain(scenario.cues.iter().flat_map(|c| c.then.iter().map(|(_, f)| f)));
    // An online switch keeps the node's preset, whichever it runs then: both are checked.
    let switched = restarts.flat_map(|f| match f {
        Fault::RestartAs { node, setup } => vec![(*node, *setup)],
        Fault::Adopt { node, definition } => [Preset::Lan, Preset::Wan]
            .into_iter()
            .map(|preset| (*node, Setup { preset, definition: *definition }))
            .collect(),
        _ => Vec::new(),
    });
    let mut configs = BTreeMap::new();
    let started = scenario.setups.iter().copied().enumerate().take(n.saturating_sub(scenario.spares));
    // Proposals may switch the cluster's timing preset online: the other preset is used too.
    let proposing = scenario.faults.iter().any(|f| matches!(f.fault, Fault::Propose { .. }));
    let flipped = started
        .clone()
        .filter(|_| proposing)
        .map(|(i, s)| (i, Setup { preset: s.preset.flipped(), definition: s.definition }));
    for (i, setup) in started.chain(switched).chain(flipped) {
        let Some(definition) = scenario.definitions.get(setup.definition) else {
            return Err(SimError::Scenario(format!(
                "n{} runs definition {}, of {}",
                i + 1,
                setup.definition,
                scenario.definitions.len()
            )));
        };
        if !definition.contains(i) {
            return Err(SimError::Scenario(format!(
                "n{} runs definition {} but is not a member",
                i + 1,
                setup.definition
            )));
        }
        if definition.last_voter().is_some_and(|v| v >= VOTERS_MAX) {
            return Err(SimError::Scenario(format!(
                "definition {}: voters must be among the first {VOTERS_MAX} nodes",
                setup.definition
            )));
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = configs.entry(setup) {
            let config = definition.config(cluster, i, setup.preset, scenario.gossip);
            config.clone().check().map_err(|e| SimError::Config(e.to_string()))?;
            slot.insert(config);
        }
    }
    Ok(configs)
}
