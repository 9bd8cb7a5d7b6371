//! Scenarios in which nodes run different configurations: timing presets (lan and wan
//! leases side by side, restarts that switch a node's preset as a rolling change does) and
//! quorum definitions (a 3 -> 5 rollout half done, two tie-breakers, different votes).
//!
//! | name | cluster | what changes |
//! |---|---|---|
//! | `rolling-wan-5` | 5 voters, one definition | each node in turn restarts on wan; the node just switched, or one still on lan, is cut off |
//! | `rollout-3-to-5` | n1-n3 on {n1,n2,n3}, new n4, n5 (wan) on all five | n3, n1, n2 switch to five members in turn; {n1,n2} is cut off between steps |
//! | `tie-breakers-4` | 4 voters; n1, n2 break ties by lowest id, n3, n4 by n3 | 2\|2 splits; n3, n4 switch to lowest id in turn |
//! | `votes-3` | n1, n2 give n1 two votes of four; n3 gives everyone one | {n1} \| {n2,n3} splits; n3 switches |
//! | `random-mixed` | one of the above layouts, presets at random | random fault episodes and switches |
//!
//! Definitions change only while the network is whole and every node runs: a node's new
//! life learns which definitions are in use from its peers' heartbeats, and a node that
//! restarts while cut off from the nodes of another definition cannot know about them (see
//! `docs/benchmarks.md`, section "Simulator"). For the same reason random episodes of runs
//! with several definitions pause nodes instead of crashing them.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::episodes::{at, ms_between, push, random_episode, random_net, Shape, EPISODES_MAX};
use super::scenario::{Scenario, ScenarioError};
use crate::clock::SEC;
use crate::faults::{Fault, Scheduled};
use crate::seed::{stream, SCENARIO};
use crate::setup::{Definition, Preset, Setup, Tie};

/// The names this module builds. All but `random-mixed` (random) and `rollout-restart-5`
/// (run by its own test, with and without the nodes' memory of their peers' definitions)
/// are in [`crate::NAMED`].
pub const MIXED: &[&str] =
    &["rolling-wan-5", "rollout-3-to-5", "tie-breakers-4", "votes-3", "random-mixed", "rollout-restart-5"];

/// The mixed scenario `name` for `seed`, or `None` if `name` is not one of [`MIXED`].
pub(super) fn named(
    name: &str,
    seed: u64,
    nodes: Option<usize>,
    duration: Option<u64>,
) -> Option<Result<Scenario, ScenarioError>> {
    let (default_nodes, default_secs, min, max) = match name {
        "rolling-wan-5" => (5, 31, 3, 7),
        "rollout-3-to-5" => (5, 34, 5, 5),
        "tie-breakers-4" => (4, 26, 4, 4),
        "votes-3" => (3, 24, 3, 3),
        "random-mixed" => (5, 30, 5, 5),
        "rollout-restart-5" => (5, 20, 5, 5),
        _ => return None,
    };
    let n = match ScenarioError::check_size(name, nodes, default_nodes, min, max) {
        Ok(n) => n,
        Err(e) => return Some(Err(e)),
    };
    let mut rng = stream(seed, SCENARIO);
    let mut s = Scenario::plain(name, n, n, duration.unwrap_or(default_secs * SEC));
    s.defaults = (default_nodes, default_secs * SEC);
    match name {
        "rolling-wan-5" => rolling_wan(&mut s, &mut rng),
        "rollout-3-to-5" => rollout(&mut s, &mut rng),
        "tie-breakers-4" => tie_breakers(&mut s, &mut rng),
        "votes-3" => votes(&mut s, &mut rng),
        "rollout-restart-5" => rollout_restart(&mut s, &mut rng),
        _ => random_mixed(&mut s, &mut rng),
    }
    Some(Ok(s))
}

/// The layouts of several definitions: two definitions and which nodes may run which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Definition 0: n1-n3 vote; definition 1: all five vote (n4, n5 only in 1).
    Rollout,
    /// Four voters; definition 0 breaks ties by lowest id, definition 1 by n3.
    TieBreakers,
    /// Three voters; definition 0 gives n1 two votes, definition 1 one each.
    Votes,
}

impl Layout {
    fn nodes(self) -> usize {
        match self {
            Layout::Rollout => 5,
            Layout::TieBreakers => 4,
            Layout::Votes => 3,
        }
    }

    fn definitions(self) -> Vec<Definition> {
        match self {
            Layout::Rollout => {
                vec![
                    Definition::voters(&[0, 1, 2], Tie::LowestId),
                    Definition::voters(&[0, 1, 2, 3, 4], Tie::LowestId),
                ]
            }
            Layout::TieBreakers => vec![
                Definition::voters(&[0, 1, 2, 3], Tie::LowestId),
                Definition::voters(&[0, 1, 2, 3], Tie::Node(2)),
            ],
            Layout::Votes => vec![
                Definition { members: vec![(0, 2), (1, 1), (2, 1)], tie: Tie::LowestId },
                Definition::voters(&[0, 1, 2], Tie::LowestId),
            ],
        }
    }
}

/// Each of the five voters in turn restarts on the wan preset (lease 2.5 s, floor 3 s) and,
/// 1.5 s later, one node is cut off for 3.5 s: on even turns the node just switched (its
/// lan peers must not call it down while it may still hold their votes), on odd turns a
/// node still on lan, or a random one once all run wan.
fn rolling_wan(s: &mut Scenario, rng: &mut ChaCha8Rng) {
    let n = s.nodes;
    let mut t = at(2_000);
    for node in 0..n.min(5) {
        push(
            &mut s.faults,
            t,
            Fault::RestartAs { node, setup: Setup { preset: Preset::Wan, definition: 0 } },
        );
        let still_lan: Vec<usize> = (node + 1..n).collect();
        let cut = if node % 2 == 0 || still_lan.is_empty() {
            node
        } else {
            still_lan[rng.random_range(0..still_lan.len())]
        };
        let rest: Vec<usize> = (0..n).filter(|x| *x != cut).collect();
        let start = t + ms_between(rng, 1_400, 1_600);
        push(&mut s.faults, start, Fault::Partition { groups: vec![rest, vec![cut]] });
        push(&mut s.faults, start + at(3_500), Fault::Heal);
        t += at(5_500);
    }
}

/// The 3 -> 5 rollout: n1-n3 run three members, the new n4 and n5 (wan) run five. Between
/// the steps (n3, then n1, then n2 restarts on five members) {n1,n2} is cut off from
/// {n3,n4,n5} for 3 s.
fn rollout(s: &mut Scenario, rng: &mut ChaCha8Rng) {
    s.definitions = Layout::Rollout.definitions();
    let three = Setup { preset: Preset::Lan, definition: 0 };
    s.setups = vec![
        three,
        three,
        three,
        Setup { preset: Preset::Wan, definition: 1 },
        Setup { preset: Preset::Wan, definition: 1 },
    ];
    let mut t = at(2_000) + ms_between(rng, 0, 500);
    let split = || Fault::Partition { groups: vec![vec![0, 1], vec![2, 3, 4]] };
    push(&mut s.faults, t, split());
    push(&mut s.faults, t + at(3_000), Fault::Heal);
    for node in [2, 0, 1] {
        t += at(5_000);
        push(
            &mut s.faults,
            t,
            Fault::RestartAs { node, setup: Setup { preset: Preset::Lan, definition: 1 } },
        );
        t += at(3_000) + ms_between(rng, 0, 500);
        push(&mut s.faults, t, split());
        push(&mut s.faults, t + at(3_000), Fault::Heal);
    }
}

/// The 3 -> 5 rollout half done (n3 switched, n1 and n2 not), then n1 and n2 in turn crash
/// and restart on three members, cut off from n3 (both ways) from the crash until 1 to 2 s
/// after the restart; the other node on three members is reachable. A new life that knew
/// no other definition until it heard a peer running one would be writable on {n1,n2} (the
/// other acks it at once) while n3 cannot tell it that five members are in use (n3's
/// definition push and heartbeats do not get through), and n4, which never hears n1 or n2
/// (they are not members of each other's lists), is writable on {n3,n4,n5}. The node's disk
/// remembers its peers' definitions; with `forget_promises` the quorum-intersection
/// checker reports the split brain (`tests/mixed.rs`). (With n3 reachable at the restart,
/// the reply to the new life's definition push tells it at once, and the memory no longer
/// matters.)
fn rollout_restart(s: &mut Scenario, rng: &mut ChaCha8Rng) {
    s.definitions = Layout::Rollout.definitions();
    let (three, five) =
        (Setup { preset: Preset::Lan, definition: 0 }, Setup { preset: Preset::Lan, definition: 1 });
    s.setups = vec![three, three, three, five, five];
    push(&mut s.faults, at(2_000), Fault::RestartAs { node: 2, setup: five });
    let mut t = at(4_500);
    for k in 0..5 {
        let node = k % 2;
        t += ms_between(rng, 0, 500);
        // The new life cannot reach n3 (which runs five members) at first, only the other
        // node on three: what it knows of n3 comes from its disk alone.
        let restart = t + ms_between(rng, 100, 300);
        push(&mut s.faults, t, Fault::Crash { node });
        push(&mut s.faults, t, Fault::CutOneWay { from: node, to: 2 });
        push(&mut s.faults, t, Fault::CutOneWay { from: 2, to: node });
        push(&mut s.faults, restart, Fault::Restart { node });
        let rejoin = restart + ms_between(rng, 1_000, 2_000);
        push(&mut s.faults, rejoin, Fault::RestoreOneWay { from: node, to: 2 });
        push(&mut s.faults, rejoin, Fault::RestoreOneWay { from: 2, to: node });
        t += at(3_000);
    }
}

/// Four voters, n1 and n2 breaking ties by lowest id, n3 and n4 by n3: each pair alone would
/// be a quorum of its own definition. 2|2 splits both ways, then n3 and n4 switch to lowest
/// id in turn, each followed by a {n1,n2} | {n3,n4} split.
fn tie_breakers(s: &mut Scenario, rng: &mut ChaCha8Rng) {
    s.definitions = Layout::TieBreakers.definitions();
    let (low, by3) =
        (Setup { preset: Preset::Lan, definition: 0 }, Setup { preset: Preset::Lan, definition: 1 });
    s.setups = vec![low, low, by3, by3];
    let mut t = at(2_000) + ms_between(rng, 0, 500);
    for groups in [[[0, 1], [2, 3]], [[0, 2], [1, 3]]] {
        push(&mut s.faults, t, Fault::Partition { groups: groups.iter().map(|g| g.to_vec()).collect() });
        push(&mut s.faults, t + at(3_000), Fault::Heal);
        t += at(5_000);
    }
    for node in [2, 3] {
        push(&mut s.faults, t, Fault::RestartAs { node, setup: low });
        t += at(3_000) + ms_between(rng, 0, 500);
        push(&mut s.faults, t, Fault::Partition { groups: vec![vec![0, 1], vec![2, 3]] });
        push(&mut s.faults, t + at(3_000), Fault::Heal);
        t += at(4_000);
    }
}

/// n1 and n2 give n1 two votes of four (so n1 alone is half, with the tie-breaker); n3 gives
/// every node one vote. {n1} | {n2,n3} and {n2} | {n1,n3} splits; then n3 switches and
/// {n1} is cut off again.
fn votes(s: &mut Scenario, rng: &mut ChaCha8Rng) {
    s.definitions = Layout::Votes.definitions();
    let heavy = Setup { preset: Preset::Lan, definition: 0 };
    s.setups = vec![heavy, heavy, Setup { preset: Preset::Lan, definition: 1 }];
    let mut t = at(2_000) + ms_between(rng, 0, 500);
    for alone in [0, 1] {
        let rest: Vec<usize> = (0..3).filter(|x| *x != alone).collect();
        push(&mut s.faults, t, Fault::Partition { groups: vec![rest, vec![alone]] });
        push(&mut s.faults, t + at(3_000), Fault::Heal);
        t += at(5_000);
    }
    push(&mut s.faults, t, Fault::RestartAs { node: 2, setup: heavy });
    t += at(3_000) + ms_between(rng, 0, 500);
    push(&mut s.faults, t, Fault::Partition { groups: vec![vec![1, 2], vec![0]] });
    push(&mut s.faults, t + at(3_000), Fault::Heal);
}

/// A random layout with random presets, random fault episodes and random switches.
///
/// Half the runs keep one definition (3 to 7 voters) and mix presets: every fault kind,
/// and switches flip a node's preset. The others take one of the layouts of two
/// definitions: episodes pause nodes instead of crashing them, and switches move a node to
/// the other definition (where it is a member) or flip its preset, always with the network
/// whole. Loss stays within 5% and reordering within 50 ms: a lan node renews a wan node's
/// vote only 3.6 times a lease, and a datagram held for seconds is as good as lost.
fn random_mixed(s: &mut Scenario, rng: &mut ChaCha8Rng) {
    let layout = match rng.random_range(0..4) {
        0 => Some(Layout::TieBreakers),
        1 => Some(Layout::Votes),
        _ => None,
    };
    let nodes = layout.map_or_else(|| rng.random_range(3..=7), Layout::nodes);
    *s = Scenario::plain("random-mixed", nodes, nodes, s.duration);
    // The seed picks the size: a replay names no --nodes.
    s.defaults = (nodes, 30 * SEC);
    s.definitions = layout.map_or_else(|| vec![Definition::standard(nodes, nodes)], Layout::definitions);
    let preset = |rng: &mut ChaCha8Rng| if rng.random_bool(0.5) { Preset::Lan } else { Preset::Wan };
    s.setups = (0..nodes)
        .map(|i| {
            let definition = match layout {
                None => 0,
                Some(Layout::Rollout) if i >= 3 => 1,
                Some(_) => rng.random_range(0..2),
            };
            Setup { preset: preset(rng), definition }
        })
        .collect();
    s.net = random_net(rng);
    s.net.base_loss = s.net.base_loss.min(0.05);
    s.net.reorder_max = s.net.reorder_max.min(at(50));
    s.disk_delay_max = if rng.random_bool(0.5) { 0 } else { ms_between(rng, 1, 20) };
    let shape = Shape { nodes, voters: nodes };
    let mut setups = s.setups.clone();
    let mut t = at(1_500) + ms_between(rng, 0, 1_000);
    for _ in 0..EPISODES_MAX {
        let hold = ms_between(rng, 200, 4_000);
        if t + hold + at(4_000) > s.duration {
            break;
        }
        if rng.random_bool(0.3) {
            let node = rng.random_range(0..nodes);
            let mut next = setups[node];
            let other = 1 - next.definition.min(1);
            if layout.is_some() && s.definitions[other].contains(node) && rng.random_bool(0.7) {
                next.definition = other;
            } else {
                next.preset = next.preset.flipped();
            }
            setups[node] = next;
            push(&mut s.faults, t, Fault::RestartAs { node, setup: next });
            t += ms_between(rng, 2_500, 4_000);
            continue;
        }
        let kinds = if rng.random_bool(0.3) { 2 } else { 1 };
        for _ in 0..kinds {
            random_episode(shape, t, hold, layout.is_none(), rng, &mut s.faults);
        }
        push(&mut s.faults, t + hold, Fault::Heal);
        t += hold + ms_between(rng, 2_500, 4_000);
    }
    s.faults.sort_by_key(|f: &Scheduled| f.at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mixed_scenario_builds_and_switches_only_to_definitions_it_is_a_member_of() {
        for name in MIXED {
            for seed in 0..40 {
                let s = Scenario::named(name, seed, None, None).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(s.setups.len(), s.nodes, "{name}");
                let switched = s.faults.iter().filter_map(|f| match &f.fault {
                    Fault::RestartAs { node, setup } => Some((*node, *setup)),
                    _ => None,
                });
                for (node, setup) in s.setups.iter().copied().enumerate().chain(switched) {
                    assert!(
                        s.definitions[setup.definition].contains(node),
                        "{name} seed {seed}: n{}",
                        node + 1
                    );
                }
                assert!(s.faults.windows(2).all(|w| w[0].at <= w[1].at), "{name}");
            }
        }
        assert!(matches!(Scenario::named("votes-3", 1, Some(4), None), Err(ScenarioError::BadSize { .. })));
    }

    #[test]
    fn random_mixed_runs_cover_every_layout_and_both_presets() {
        let runs: Vec<Scenario> = (0..60)
            .map(|seed| Scenario::named("random-mixed", seed, None, None).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        for defs in [1, 2] {
            assert!(runs.iter().any(|s| s.definitions.len() == defs));
        }
        assert!(runs.iter().any(|s| s.setups.iter().any(|x| x.preset == Preset::Wan)));
        assert!(runs.iter().any(|s| s.faults.iter().any(|f| matches!(f.fault, Fault::RestartAs { .. }))));
        assert!(runs.iter().all(|s| s.net.base_loss <= 0.05));
    }
}
