//! The model the checkers hold the cores to: timing, quorum arithmetic (computed here
//! independently of `quorate-gate`), and the documented bounds.
//!
//! * **Fence bound** (guarantee G2): a node cut off from every quorum at real time `c` is
//!   not writable from `c + lease x (1 + rho)` on.
//! * **Heal bound**: a node that can exchange heartbeats both ways with a quorum is
//!   writable within `2 x heartbeat_interval + 2 x max_delay + k x heartbeat_interval`,
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

use quorate_core::Config;

use crate::clock::MS;

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
/// `docs/benchmarks.md`, section "Simulator".
///
/// | r | bound | example                                            |
/// |---|-------|----------------------------------------------------|
/// | 1 | 5%    | a node that needs every voter it can reach         |
/// | 2 | 20%   | 3 voters, all up                                   |
/// | 3 | 35%   | 5 voters all up (every voter and every observer)   |
/// | 4 | 40%   | 7 voters, all up                                   |
pub const LOSS_BOUND: [f64; 4] = [0.05, 0.20, 0.35, 0.40];

/// The timing and quorum model of one run. Voters are nodes `0..voters` with one vote
/// each; the tie-breaker is the lowest voter id (the gate's default), node index 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// `lease`, ns.
    pub lease: u64,
    /// `max_clock_drift`.
    pub rho: f64,
    /// `heartbeat_interval`, ns.
    pub interval: u64,
    /// Longest time a datagram spends in flight, ns.
    pub max_delay: u64,
    /// Number of voters.
    pub voters: usize,
    /// Cluster size.
    pub nodes: usize,
    /// What a fence check racing a heal can add to it: `gossip.fence_hold` (0 with gossip off).
    pub fence_hold: u64,
    /// What waiting for disk writes can add to a heal: twice the longest write, ns.
    pub disk_wait: u64,
}

impl Model {
    /// The model for a cluster configured with `config`, `voters` voters out of `nodes`.
    /// `disk_delay_max` is the longest time a write to a node's disk takes to land.
    pub fn new(config: &Config, voters: usize, nodes: usize, max_delay: u64, disk_delay_max: u64) -> Self {
        Model {
            lease: nanos(config.gate.lease),
            rho: config.gate.max_clock_drift,
            interval: nanos(config.detector.heartbeat_interval),
            max_delay,
            voters,
            nodes,
            fence_hold: if config.gossip.enabled { nanos(config.gossip.fence_hold) } else { 0 },
            disk_wait: 2 * disk_delay_max,
        }
    }

    /// Whether node `i` votes.
    pub fn is_voter(&self, i: usize) -> bool {
        i < self.voters
    }

    /// The bit of voter `i` in a voter mask (0 for observers).
    pub fn bit(&self, i: usize) -> u64 {
        if self.is_voter(i) && i < 64 {
            1 << i
        } else {
            0
        }
    }

    /// Whether the voters in `mask` form a quorum: more than half, or exactly half with
    /// the tie-breaker (voter 0).
    pub fn is_quorum(&self, mask: u64) -> bool {
        let held = u64::from(mask.count_ones());
        let total = self.voters as u64;
        2 * held > total || (2 * held == total && mask & 1 == 1)
    }

    /// How many of the voters in `peers` must fail together for `own | peers` to stop
    /// being a quorum; 0 if it is not one, `u32::MAX` if `own` alone is one.
    pub fn redundancy(&self, own: u64, peers: u64) -> u32 {
        if self.is_quorum(own) {
            return u32::MAX;
        }
        let mut left = peers & !own;
        let mut removed = 0;
        // Remove the tie-breaker first (it is worth the most), then any voter; every
        // removal clears one bit, so the loop ends within 64 rounds.
        for _ in 0..=64 {
            if !self.is_quorum(own | left) {
                return removed;
            }
            let next = if left & 1 == 1 { 1 } else { left & left.wrapping_neg() };
            left &= !next;
            removed += 1;
        }
        removed
    }

    /// Fencing deadline after a cut at `c`: `c + lease x (1 + rho)` plus rounding slack.
    pub fn fence_deadline(&self, c: u64) -> u64 {
        c + (self.lease as f64 * (1.0 + self.rho)).ceil() as u64 + FENCE_SLACK
    }

    /// Longest time to become writable once a quorum is reachable over links of loss at
    /// most `loss` (see the module docs).
    pub fn heal_bound(&self, loss: f64) -> u64 {
        let rounds = extra_rounds(loss);
        2 * self.interval
            + 2 * self.max_delay
            + rounds * self.interval
            + HEAL_SLACK
            + self.fence_hold
            + self.disk_wait
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

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(voters: usize) -> Model {
        Model {
            lease: 900 * MS,
            rho: 0.01,
            interval: 100 * MS,
            max_delay: 23 * MS,
            voters,
            nodes: voters,
            fence_hold: 400 * MS,
            disk_wait: 0,
        }
    }

    #[test]
    fn quorum_is_a_strict_majority_or_half_with_the_lowest_voter() {
        let m = model(4);
        assert!(m.is_quorum(0b0011) && !m.is_quorum(0b1100) && m.is_quorum(0b1110));
        let m = model(5);
        assert!(!m.is_quorum(0b00011) && m.is_quorum(0b11100));
    }

    #[test]
    fn redundancy_counts_the_voters_that_must_fail_together() {
        let m = model(5);
        // Voter 2 reaching all four others: quorum of 3 out of 5 survives two failures.
        assert_eq!(m.redundancy(m.bit(2), 0b11011), 3);
        // An observer reaching all five voters needs three: three failures fence it.
        assert_eq!(m.redundancy(0, 0b11111), 3);
        // A voter reaching exactly two others: either failure fences it.
        assert_eq!(m.redundancy(m.bit(0), 0b00110), 1);
        assert_eq!(m.redundancy(m.bit(0), 0b00010), 0);
        // Two voters: node 1 alone is a quorum (tie-breaker), node 2 needs node 1.
        let two = model(2);
        assert_eq!(two.redundancy(two.bit(0), 0b10), u32::MAX);
        assert_eq!(two.redundancy(two.bit(1), 0b01), 1);
        assert_eq!(model(3).redundancy(1, 0b110), 2);
    }

    #[test]
    fn bounds_follow_the_documented_formulas() {
        let m = model(5);
        assert_eq!(m.fence_deadline(0), 909 * MS + FENCE_SLACK);
        assert_eq!(m.heal_bound(0.0), 200 * MS + 46 * MS + HEAL_SLACK + 400 * MS);
        // 10% loss each way: a round trip fails 19% of the time; 13 rounds reach 1e-9.
        assert_eq!(extra_rounds(0.10), 13);
        assert_eq!(Model::loss_bound(0), None);
        assert_eq!(Model::loss_bound(9), Some(LOSS_BOUND[3]));
    }
}
