//! The reconfiguration nemesis: random online changes of the definition raced by random
//! faults.
//!
//! | name | cluster | what happens |
//! |---|---|---|
//! | `reconfigure-random-5` | n1-n5 voters (ties: lowest id or none), n6-n8 slots for members to add | every 0.3 to 2.5 s a random change is proposed on a random running member (add a slot with 1 or 0 votes, remove a member, set a member's votes to 0-2, set the tie-breaker); random partitions, one-way cuts, bridges, flapping links, crashes and restarts (disk kept), pauses and loss race them; random network and disk delays |
//!
//! A change goes through `Node::propose` on the chosen node, so the core's rules decide:
//! one change at a time, safe successors only. Refusals are expected and counted by
//! reason ([`crate::Changes`]). What a node accepts it persists and adopts; its peers
//! follow when they hear it; an added member's host starts on a file that lists the
//! change's members; a removed member leaves and never starts again. Every checker judges
//! each node under the definition and version it runs at that step.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::episodes::{at, ms_between, push, random_faults, random_net, Shape};
use super::scenario::{Scenario, ScenarioError};
use crate::clock::SEC;
use crate::faults::Fault;
use crate::seed::{stream, SCENARIO};
use crate::setup::{Definition, Tie};

/// The names this module builds.
pub const RECONFIGURE: &[&str] = &["reconfigure-random-5"];

/// Members at the start.
const MEMBERS: usize = 5;

/// Slots for members added while running.
const SPARES: usize = 3;

/// The scenario `name` for `seed`, or `None` if `name` is not one of [`RECONFIGURE`].
pub(super) fn named(
    name: &str,
    seed: u64,
    nodes: Option<usize>,
    duration: Option<u64>,
) -> Option<Result<Scenario, ScenarioError>> {
    if name != "reconfigure-random-5" {
        return None;
    }
    let size = MEMBERS + SPARES;
    let n = match ScenarioError::check_size(name, nodes, size, size, size) {
        Ok(n) => n,
        Err(e) => return Some(Err(e)),
    };
    let duration = duration.unwrap_or(30 * SEC);
    let mut rng = stream(seed, SCENARIO);
    let mut s = Scenario::plain(name, n, MEMBERS, duration);
    s.defaults = (n, 30 * SEC);
    s.spares = SPARES;
    let tie = if rng.random_bool(0.5) { Tie::LowestId } else { Tie::None };
    let first: Vec<usize> = (0..MEMBERS).collect();
    s.definitions = vec![Definition::voters(&first, tie)];
    s.net = random_net(&mut rng);
    s.disk_delay_max = if rng.random_bool(0.5) { 0 } else { ms_between(&mut rng, 1, 20) };
    s.faults = random_faults(Shape { nodes: n, voters: MEMBERS }, duration, &mut rng);
    proposals(&mut s, &mut rng);
    Some(Ok(s))
}

/// A random change every 0.3 to 2.5 s, from 1 s to 2 s before the end.
fn proposals(s: &mut Scenario, rng: &mut ChaCha8Rng) {
    let mut t = at(1_000) + ms_between(rng, 0, 500);
    while t + at(2_000) < s.duration {
        push(&mut s.faults, t, Fault::Propose { node: None, pick: rng.random(), grow: false });
        t += ms_between(rng, 300, 2_500);
    }
    storms(s, rng);
    s.faults.sort_by_key(|f| f.at);
}

/// [`STORMS`] bursts of changes on one side of a partition: two members and the slots for
/// new members is cut off from the rest, and is asked for four
/// members to add (or, with no slot left, random changes) in quick succession; the network
/// heals 2 to 4 s later. The first comes early, while slots are left. The
/// one-change-at-a-time rule is what keeps the growing side from a quorum of a later
/// version disjoint from the other side's quorum of the earlier one.
fn storms(s: &mut Scenario, rng: &mut ChaCha8Rng) {
    for k in 0..STORMS {
        let t = match k {
            0 => ms_between(rng, 1_200, 3_000),
            _ => ms_between(rng, 4_000, s.duration / crate::clock::MS - 6_000),
        };
        let x = rng.random_range(0..MEMBERS);
        let mut side = vec![x];
        let mut rest = Vec::new();
        let other = (x + rng.random_range(1..MEMBERS)) % MEMBERS;
        for k in (0..MEMBERS).filter(|k| *k != x) {
            if k == other {
                side.push(k);
            } else {
                rest.push(k);
            }
        }
        side.extend(MEMBERS..s.nodes);
        push(&mut s.faults, t, Fault::Partition { groups: vec![rest, side] });
        let mut at_ms = t;
        for _ in 0..4 {
            at_ms += ms_between(rng, 100, 500);
            push(&mut s.faults, at_ms, Fault::Propose { node: Some(x), pick: rng.random(), grow: true });
        }
        push(&mut s.faults, at_ms + ms_between(rng, 2_000, 4_000), Fault::Heal);
    }
}

/// Bursts of changes on one side of a partition per run ([`storms`]).
const STORMS: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nemesis_proposes_throughout_and_keeps_slots_for_added_members() {
        let s = Scenario::named("reconfigure-random-5", 3, None, None).unwrap_or_else(|e| panic!("{e}"));
        let proposals = s.faults.iter().filter(|f| matches!(f.fault, Fault::Propose { .. })).count();
        assert!(proposals >= 10, "{proposals}");
        assert_eq!((s.nodes, s.spares, s.definitions[0].members.len()), (8, 3, 5));
        assert!(s.changes_online());
        assert!(s.faults.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(Scenario::named("reconfigure-random-5", 3, Some(5), None).is_err());
    }
}
