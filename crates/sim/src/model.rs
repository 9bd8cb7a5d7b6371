//! The model the checkers hold the cores to: timing, quorum arithmetic (computed here
//! independently of `quorate-gate`), and the documented bounds.
//!
//! Nodes may run different presets and different quorum definitions ([`crate::setup`]):
//! the model keeps one [`Quorum`] per definition and one [`Timing`] per preset, and every
//! bound is stated for a node under its own.
//!
//! * **Fence bound** (guarantee G2): a node cut off at real time `c` from every quorum of
//!   its own definition (voters whose definition exchanges votes with its own, see
//!   [`Model::exchanges`]) is not writable from `c + lease x (1 + rho)` on, with the lease
//!   of its own preset.
//! * **Heal bound** (runs where every node runs one definition): a node that can exchange
//!   heartbeats both ways with a quorum is writable within
//!   `2 x heartbeat_interval + 2 x max_delay + k x heartbeat_interval`, with the longest
//!   interval of any preset in the run,
//!   where `k` is the number of extra heartbeat rounds after which a round trip with a
//!   given voter has failed with probability at most 1e-9 under the links' independent
//!   loss `p`: `(1 - (1 - p)^2)^k <= 1e-9`. Without loss `k = 0`: the node's next heartbeat
//!   (within one interval) reaches the voter (within the delay) and the voter's next
//!   heartbeat (within one more interval) carries the ack back. With gossip on, add
//!   `gossip.fence_hold` (400 ms): a fence check that races the heal can have voters
//!   withhold their acks that long (normally one round trip: the asker releases them
//!   when its check ends; the full hold when a release overtakes its query or is lost).
//!   With disk writes that take up to `d` to land, add `2 d`: a voter acks a node only once
//!   its disk records the floor it owes it, and that write may queue behind the one before.
//! * **Loss bound** for no false fencing: see [`LOSS_BOUND`].

use std::time::Duration;

use quorate_core::Config;

use crate::clock::MS;
use crate::setup::{Definition, Preset, Setup};

/// Rounding slack added to the fence bound: clock conversions floor and ceil to the
/// nanosecond; a microsecond covers them many times over.
pub const FENCE_SLACK: u64 = 1_000;

/// Slack added to the heal bound for scheduling: a node's timer and the checker's wake-up
/// may fall in the same instant in either order.
pub const HEAL_SLACK: u64 = 5 * MS;

/// Probability with which the heal bound may be missed per needed voter (see module docs).
const HEAL_MISS_PROBABILITY: f64 = 1e-9;

/// The documented loss bound of the no-false-fencing guarantee, by **redundancy** `r`:
/// the number of voter links that must all lose their lease at the same time to fence the
/// node (with one vote per voter: the voters it exchanges with, plus itself, minus a
/// quorum, plus one). Index `r - 1`; larger `r` use the last entry.
///
/// A node whose links to such voters lose at most this fraction of datagrams, independently
/// in each direction, is not fenced once it has been writable after its warm-up. A lease
/// lapses on one link when about seven heartbeats in a row fail their round trip (the ack
/// rides on the peer's next heartbeat, so losses in either direction count), so the rate
/// of false fences falls roughly as `loss^(7 r)`; it is never exactly zero. Each bound is
/// a 5% step at which no false fence was measured in 500 to 2000 node-hours and the next
/// step up (or the one after) shows them; the rate at the bound is below about one per
/// 10,000 node-hours by that fall-off. Measured with `quorate-sim --scenario loss-XXpct-N
/// --seeds S --duration 3600` (N = 2, 3, 5, 7 voters give r = 1, 2, 3, 4); figures in
/// `docs/benchmarks.md`, section "Simulator". Measured with every node on the default
/// (lan) preset.
///
/// | r | bound | example                                            |
/// |---|-------|----------------------------------------------------|
/// | 1 | 5%    | a node that needs every voter it can reach         |
/// | 2 | 20%   | 3 voters, all up                                   |
/// | 3 | 35%   | 5 voters all up (every voter and every observer)   |
/// | 4 | 40%   | 7 voters, all up                                   |
pub const LOSS_BOUND: [f64; 4] = [0.05, 0.20, 0.35, 0.40];

/// The timing of one preset, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `lease`.
    pub lease: u64,
    /// `heartbeat_interval`.
    pub interval: u64,
}

/// The quorum arithmetic of one definition, on voter bitmasks (bit `i` is node index `i`;
/// voters have indices below 64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    votes: Vec<u32>,
    voters: u64,
    total: u64,
    tie: Option<usize>,
    /// The first definition of the run that describes the same quorums: two nodes run the
    /// same definition when their classes are equal.
    pub class: usize,
}

impl Quorum {
    /// The arithmetic of `definition`, which is the same as the run's definition `class`.
    pub fn new(definition: &Definition, class: usize) -> Quorum {
        let mut votes = vec![0; 64];
        let mut voters = 0;
        let mut total = 0;
        for &(i, v) in &definition.members {
            if v > 0 && i < 64 {
                votes[i] = v;
                voters |= 1 << i;
                total += u64::from(v);
            }
        }
        Quorum { votes, voters, total, tie: definition.resolved_tie(), class }
    }

    /// The voters, as a mask.
    pub fn voters(&self) -> u64 {
        self.voters
    }

    /// The votes of node `i` (0 for observers and non-members).
    pub fn votes_of(&self, i: usize) -> u32 {
        self.votes.get(i).copied().unwrap_or(0)
    }

    /// The resolved tie-breaker, an index.
    pub fn tie(&self) -> Option<usize> {
        self.tie
    }

    /// Whether node `i` votes.
    pub fn is_voter(&self, i: usize) -> bool {
        self.bit(i) != 0
    }

    /// The bit of voter `i` in a voter mask (0 for observers and non-members).
    pub fn bit(&self, i: usize) -> u64 {
        if i < 64 {
            self.voters & (1 << i)
        } else {
            0
        }
    }

    /// Whether the voters in `mask` form a quorum: more than half the votes, or exactly
    /// half with the tie-breaker among them.
    pub fn is_quorum(&self, mask: u64) -> bool {
        let held = self.held(mask);
        2 * held > self.total || (2 * held == self.total && self.tie.is_some_and(|t| self.bit(t) & mask != 0))
    }

    fn held(&self, mask: u64) -> u64 {
        let mut left = mask & self.voters;
        let mut held = 0;
        // One round per set bit: at most 64.
        while left != 0 {
            held += u64::from(self.votes[left.trailing_zeros() as usize]);
            left &= left - 1;
        }
        held
    }

    /// How many of the voters in `peers` must fail together for `own | peers` to stop
    /// being a quorum; 0 if it is not one, `u32::MAX` if `own` alone is one.
    pub fn redundancy(&self, own: u64, peers: u64) -> u32 {
        if self.is_quorum(own) {
            return u32::MAX;
        }
        let mut left = peers & !own & self.voters;
        let mut removed = 0;
        // Remove the voter worth the most first (the tie-breaker among equals); every
        // removal clears one bit, so the loop ends within 64 rounds.
        for _ in 0..=64 {
            if !self.is_quorum(own | left) {
                return removed;
            }
            let next = self.heaviest(left);
            left &= !next;
            removed += 1;
        }
        removed
    }

    /// The bit of the voter in `mask` with the most votes, the tie-breaker first among equals.
    fn heaviest(&self, mask: u64) -> u64 {
        let mut best = (0u32, false, 0u64);
        let mut left = mask;
        while left != 0 {
            let i = left.trailing_zeros() as usize;
            let key = (self.votes[i], self.tie == Some(i));
            if (key.0, key.1) > (best.0, best.1) || best.2 == 0 {
                best = (key.0, key.1, 1 << i);
            }
            left &= left - 1;
        }
        best.2
    }
}

/// The timing and quorum model of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// `max_clock_drift`, the largest of any configuration in the run.
    pub rho: f64,
    /// Longest time a datagram spends in flight, ns.
    pub max_delay: u64,
    /// Cluster size.
    pub nodes: usize,
    /// One per definition of the scenario, by index.
    pub quorums: Vec<Quorum>,
    /// The timing of each preset in the run.
    pub timings: Vec<(Preset, Timing)>,
    /// Whether every node runs the same definition for the whole run. The liveness
    /// invariants (heal, no false fencing) are checked only then: nodes on different
    /// definitions deliberately lend each other no votes.
    pub uniform: bool,
    /// The longest `heartbeat_interval` of any preset in the run, ns.
    pub interval_max: u64,
    /// What a fence check racing a heal can add to it: `gossip.fence_hold` (0 with gossip off).
    pub fence_hold: u64,
    /// What waiting for disk writes can add to a heal: twice the longest write, ns.
    pub disk_wait: u64,
    /// The definitions behind [`Model::quorums`], by index: the scenario's, then those that
    /// nodes adopted while running ([`Model::intern`]).
    pub definitions: Vec<Definition>,
    /// `meets[a][b]`: every quorum of definition `a` shares a voter with every quorum of
    /// definition `b` (the succession check, computed here on voter masks).
    pub(crate) meets: Vec<Vec<bool>>,
}

impl Model {
    /// The model of a run of `nodes` nodes with these `definitions`, in which nodes run
    /// the `setups` with their configurations (every setup used, at start or after a
    /// restart). `disk_delay_max` is the longest time a write to a node's disk takes.
    pub fn new(
        definitions: &[Definition],
        setups: &[(Setup, &Config)],
        nodes: usize,
        max_delay: u64,
        disk_delay_max: u64,
    ) -> Self {
        let quorums: Vec<Quorum> = definitions
            .iter()
            .map(|d| {
                let class = definitions.iter().position(|e| e.same_as(d)).unwrap_or(0);
                Quorum::new(d, class)
            })
            .collect();
        let classes = setups.iter().map(|(s, _)| quorums.get(s.definition).map_or(usize::MAX, |q| q.class));
        let uniform = classes.collect::<std::collections::BTreeSet<usize>>().len() <= 1;
        let mut timings: Vec<(Preset, Timing)> = Vec::new();
        for (s, c) in setups {
            if !timings.iter().any(|(p, _)| *p == s.preset) {
                let t = Timing { lease: nanos(c.gate.lease), interval: nanos(c.detector.heartbeat_interval) };
                timings.push((s.preset, t));
            }
        }
        let hold = |c: &Config| if c.gossip.enabled { nanos(c.gossip.fence_hold) } else { 0 };
        let meets = crate::versions::meets_matrix(&quorums);
        Model {
            rho: setups.iter().map(|(_, c)| c.gate.max_clock_drift).fold(0.0, f64::max),
            max_delay,
            nodes,
            quorums,
            uniform,
            interval_max: timings.iter().map(|(_, t)| t.interval).max().unwrap_or(0),
            timings,
            fence_hold: setups.iter().map(|(_, c)| hold(c)).max().unwrap_or(0),
            disk_wait: 2 * disk_delay_max,
            definitions: definitions.to_vec(),
            meets,
        }
    }

    /// The arithmetic of definition `d` (the first definition if `d` is out of range,
    /// which [`crate::Sim::new`] refuses).
    pub fn quorum(&self, d: usize) -> &Quorum {
        debug_assert!(d < self.quorums.len(), "definition {d} checked in Sim::new");
        &self.quorums[d.min(self.quorums.len().saturating_sub(1))]
    }

    /// The timing of `preset` (zero if the run never uses it).
    pub fn timing(&self, preset: Preset) -> Timing {
        let t = self.timings.iter().find(|(p, _)| *p == preset).map(|(_, t)| *t);
        t.unwrap_or(Timing { lease: 0, interval: 0 })
    }

    /// Fencing deadline of a node on `preset` after a cut at `c`: `c + lease x (1 + rho)`
    /// plus rounding slack.
    pub fn fence_deadline(&self, preset: Preset, c: u64) -> u64 {
        c + (self.timing(preset).lease as f64 * (1.0 + self.rho)).ceil() as u64 + FENCE_SLACK
    }

    /// Longest time to become writable once a quorum is reachable over links of loss at
    /// most `loss` (see the module docs).
    pub fn heal_bound(&self, loss: f64) -> u64 {
        let rounds = extra_rounds(loss);
        let interval = self.interval_max;
        2 * interval + 2 * self.max_delay + rounds * interval + HEAL_SLACK + self.fence_hold + self.disk_wait
    }

    /// The loss up to which links with redundancy `r` protect a node in this run: the
    /// documented [`LOSS_BOUND`] when every node runs one preset (where it was measured),
    /// none at all (loss-free links only) in runs that mix presets. A lan node holding a
    /// wan node's vote renews it with that node's heartbeats, 3.6 per lease instead of 9,
    /// so the same loss lapses leases far more often.
    pub fn protecting_loss(&self, r: u32) -> Option<f64> {
        let bound = Model::loss_bound(r)?;
        Some(if self.timings.len() <= 1 { bound } else { 0.0 })
    }

    /// The loss bound for redundancy `r` (0 means none: not a quorum).
    pub fn loss_bound(r: u32) -> Option<f64> {
        let i = usize::try_from(r).unwrap_or(usize::MAX);
        match i {
            0 => None,
            _ => Some(LOSS_BOUND[(i - 1).min(LOSS_BOUND.len() - 1)]),
        }
    }
}

/// Extra heartbeat rounds so that a round trip over links with loss `loss` each way has
/// failed with probability at most [`HEAL_MISS_PROBABILITY`].
fn extra_rounds(loss: f64) -> u64 {
    if loss <= 0.0 {
        return 0;
    }
    let fail = 1.0 - (1.0 - loss.min(0.99)).powi(2);
    (HEAL_MISS_PROBABILITY.ln() / fail.ln()).ceil().max(0.0) as u64
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A model of `voters` voters (one vote each, lowest id breaks ties) out of `nodes`, all on
/// the lan preset with gossip on, for unit tests.
#[cfg(test)]
pub(crate) fn test_model(voters: usize, nodes: usize) -> Model {
    let def = Definition::standard(nodes, voters);
    let config = def.config(quorate_proto::ClusterId(1), 0, Preset::Lan, true);
    let mut m = Model::new(&[def], &[(Setup::STANDARD, &config)], nodes, 23 * MS, 0);
    m.timings = vec![(Preset::Lan, Timing { lease: 900 * MS, interval: 100 * MS })];
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::Tie;

    #[test]
    fn quorum_is_a_strict_majority_or_half_with_the_lowest_voter() {
        let m = test_model(4, 4);
        let q = m.quorum(0);
        assert!(q.is_quorum(0b0011) && !q.is_quorum(0b1100) && q.is_quorum(0b1110));
        let m = test_model(5, 5);
        assert!(!m.quorum(0).is_quorum(0b00011) && m.quorum(0).is_quorum(0b11100));
    }

    #[test]
    fn votes_and_tie_breakers_follow_the_definition() {
        // n1 has two votes of four: alone it is half, and it breaks ties.
        let heavy = Definition { members: vec![(0, 2), (1, 1), (2, 1)], tie: Tie::LowestId };
        let q = Quorum::new(&heavy, 0);
        assert!(q.is_quorum(0b001) && !q.is_quorum(0b110));
        // Four voters, n3 breaks ties: {n3,n4} is a quorum, {n1,n2} is not.
        let q = Quorum::new(&Definition::voters(&[0, 1, 2, 3], Tie::Node(2)), 0);
        assert!(q.is_quorum(0b1100) && !q.is_quorum(0b0011));
        let strict = Quorum::new(&Definition::voters(&[0, 1, 2, 3], Tie::None), 0);
        assert!(!strict.is_quorum(0b0011) && strict.is_quorum(0b0111));
        // A 3-member definition ignores nodes 4 and 5.
        let three = Quorum::new(&Definition::voters(&[0, 1, 2], Tie::LowestId), 0);
        assert!(!three.is_quorum(0b11001) && three.bit(4) == 0);
    }

    #[test]
    fn redundancy_counts_the_voters_that_must_fail_together() {
        let m = test_model(5, 5);
        let q = m.quorum(0);
        // Voter 2 reaching all four others: quorum of 3 out of 5 survives two failures.
        assert_eq!(q.redundancy(q.bit(2), 0b11011), 3);
        // An observer reaching all five voters needs three: three failures fence it.
        assert_eq!(q.redundancy(0, 0b11111), 3);
        // A voter reaching exactly two others: either failure fences it.
        assert_eq!(q.redundancy(q.bit(0), 0b00110), 1);
        assert_eq!(q.redundancy(q.bit(0), 0b00010), 0);
        // Two voters: node 1 alone is a quorum (tie-breaker), node 2 needs node 1.
        let two = test_model(2, 2);
        let q2 = two.quorum(0);
        assert_eq!(q2.redundancy(q2.bit(0), 0b10), u32::MAX);
        assert_eq!(q2.redundancy(q2.bit(1), 0b01), 1);
        assert_eq!(test_model(3, 3).quorum(0).redundancy(1, 0b110), 2);
    }

    #[test]
    fn bounds_follow_the_documented_formulas() {
        let m = test_model(5, 5);
        assert_eq!(m.fence_deadline(Preset::Lan, 0), 909 * MS + FENCE_SLACK);
        assert_eq!(m.heal_bound(0.0), 200 * MS + 46 * MS + HEAL_SLACK + 400 * MS);
        // 10% loss each way: a round trip fails 19% of the time; 13 rounds reach 1e-9.
        assert_eq!(extra_rounds(0.10), 13);
        assert_eq!(Model::loss_bound(0), None);
        assert_eq!(Model::loss_bound(9), Some(LOSS_BOUND[3]));
    }

    #[test]
    fn each_node_is_held_to_its_own_lease_and_mixed_definitions_are_not_uniform() {
        let defs = [Definition::voters(&[0, 1, 2], Tie::LowestId), Definition::standard(5, 5)];
        let cluster = quorate_proto::ClusterId(1);
        let lan = defs[0].config(cluster, 0, Preset::Lan, true);
        let wan = defs[1].config(cluster, 3, Preset::Wan, true);
        let lan_setup = Setup { preset: Preset::Lan, definition: 0 };
        let wan_setup = Setup { preset: Preset::Wan, definition: 1 };
        let m = Model::new(&defs, &[(lan_setup, &lan), (wan_setup, &wan)], 5, 0, 0);
        assert_eq!(m.fence_deadline(Preset::Wan, 0), 2_525 * MS + FENCE_SLACK);
        assert_eq!(m.fence_deadline(Preset::Lan, 0), 909 * MS + FENCE_SLACK);
        assert_eq!(m.interval_max, 250 * MS);
        assert!(!m.uniform);
        assert_ne!(m.quorum(0).class, m.quorum(1).class);
        assert_eq!(m.protecting_loss(2), Some(0.0), "mixed presets: loss-free links only");
        assert_eq!(test_model(3, 3).protecting_loss(2), Some(LOSS_BOUND[1]));
    }
}
