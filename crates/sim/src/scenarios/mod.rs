//! Scenarios: a cluster, a network and a fault schedule, all derived from one seed.
//!
//! Named scenarios reproduce the partitions people worry about; [`Scenario::random`]
//! composes random episodes of every fault kind; [`mixed`] scenarios give nodes different
//! presets and quorum definitions. Every episode ends healed (network healed, crashed nodes
//! restarted, paused nodes resumed) and is followed by a quiet stretch, so the heal
//! invariant gets checked after each one.
//!
//! Cluster shape: up to [`ALL_VOTERS_MAX`] nodes all vote; larger clusters have
//! [`LARGE_CLUSTER_VOTERS`] voters and the rest observers. Observers heartbeat only voters
//! and voters heartbeat everyone, so an observer's load stays constant as the cluster grows
//! while each voter's grows linearly; five voters survive two failures at a fifth of the
//! cost per voter-pair that every-node-votes would have.
//!
//! | file | what it holds |
//! |---|---|
//! | `scenario.rs` | what a scenario is, its names and limits |
//! | `episodes.rs` | building blocks of fault schedules, random networks and random episodes |
//! | `uniform.rs` | the named scenarios of one configuration |
//! | `mixed.rs` | the named and random scenarios of mixed configurations |
//! | `online.rs` | definitions changed while the nodes run (online membership change) |
//! | `reconfigure.rs` | the reconfiguration nemesis: random changes proposed while faults race them |

mod episodes;
pub mod mixed;
pub mod online;
pub mod reconfigure;
mod scenario;
mod uniform;

use rand::Rng;

use crate::clock::SEC;
use crate::seed::{stream, SCENARIO};
use episodes::{ms_between, random_faults, random_net, Shape};
pub use scenario::{
    Scenario, ScenarioError, ALL_VOTERS_MAX, LARGE_CLUSTER_VOTERS, NAMED, NODES_MAX, VOTERS_MAX,
};

impl Scenario {
    /// The named scenario for `seed`, with `nodes` and `duration` (ns) overriding its
    /// defaults.
    pub fn named(
        name: &str,
        seed: u64,
        nodes: Option<usize>,
        duration: Option<u64>,
    ) -> Result<Scenario, ScenarioError> {
        if let Some(online) = online::named(name, seed, nodes, duration) {
            return online;
        }
        if let Some(nemesis) = reconfigure::named(name, seed, nodes, duration) {
            return nemesis;
        }
        match mixed::named(name, seed, nodes, duration) {
            Some(mixed) => mixed,
            None => uniform::named(name, seed, nodes, duration),
        }
    }

    /// A random scenario for `seed`: random network behaviour and random fault episodes.
    /// `nodes` defaults to 5, `duration` to 30 s.
    pub fn random(seed: u64, nodes: Option<usize>, duration: Option<u64>) -> Result<Scenario, ScenarioError> {
        let nodes = nodes.unwrap_or(5);
        if !(2..=NODES_MAX).contains(&nodes) {
            return Err(ScenarioError::BadSize { scenario: "random".into(), nodes, min: 2, max: NODES_MAX });
        }
        let voters = if nodes <= ALL_VOTERS_MAX { nodes } else { LARGE_CLUSTER_VOTERS };
        let duration = duration.unwrap_or(30 * SEC);
        let mut rng = stream(seed, SCENARIO);
        let net = random_net(&mut rng);
        let faults = random_faults(Shape { nodes, voters }, duration, &mut rng);
        // Half the runs write to disk at once, the others take up to 20 ms per write.
        let disk_delay_max = if rng.random_bool(0.5) { 0 } else { ms_between(&mut rng, 1, 20) };
        let mut s = Scenario::plain("random", nodes, voters, duration);
        s.net = net;
        s.faults = faults;
        s.disk_delay_max = disk_delay_max;
        s.defaults = (5, 30 * SEC);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_scenario_builds_at_default_and_large_sizes() {
        for name in NAMED {
            let s = Scenario::named(name, 7, None, None).unwrap_or_else(|e| panic!("{e}"));
            assert!(s.faults.iter().all(|f| f.fault.max_node().is_none_or(|n| n < s.nodes)), "{name}");
            if mixed::MIXED.contains(name)
                || online::ONLINE.contains(name)
                || reconfigure::RECONFIGURE.contains(name)
            {
                // Their definitions name every node: a fixed size (see `mixed`, `online`).
                continue;
            }
            let big = Scenario::named(name, 7, Some(200), None).unwrap_or_else(|e| panic!("{e}"));
            assert!(big.voters <= ALL_VOTERS_MAX && big.nodes == 200, "{name}");
        }
    }

    #[test]
    fn same_seed_gives_the_same_random_scenario_and_seeds_differ() {
        let a = Scenario::random(11, None, None);
        assert_eq!(a, Scenario::random(11, None, None));
        assert_ne!(a, Scenario::random(12, None, None));
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        assert!(a.faults.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(a.faults.iter().all(|f| f.at + 4 * SEC <= a.duration + 4 * SEC));
    }

    #[test]
    fn loss_names_parse_and_unknown_names_are_refused() {
        let s = Scenario::named("loss-45pct-3", 1, None, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.nodes, s.voters), (3, 3));
        assert!((s.net.base_loss - 0.45).abs() < 1e-12);
        assert!(matches!(Scenario::named("nope", 1, None, None), Err(ScenarioError::Unknown(_))));
        assert!(matches!(Scenario::named("bridge-5", 1, Some(3), None), Err(ScenarioError::BadSize { .. })));
    }
}
