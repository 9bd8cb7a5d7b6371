//! The virtual network: who can reach whom, and what happens to each datagram.
//!
//! A datagram from `a` to `b` is dropped when the directed link is down (a clean partition
//! puts the two ends in different groups and neither is a bridge; a one-way cut names the
//! direction) or with the link's loss probability. Otherwise it arrives after
//! `base(a, b) + jitter`, sometimes plus a reordering delay, and sometimes twice.
//!
//! * `base(a, b)` is fixed per directed link, derived from the seed (so 1000 nodes need no
//!   table of a million links), uniform in `[delay_min, delay_base_max]`.
//! * `jitter = jitter_max * u^3` for `u` uniform in `[0, 1)`: mostly small, mean
//!   `jitter_max / 4`, never above `jitter_max`. Only multiplications, so every platform
//!   computes the same delays.
//! * With probability `reorder`, an extra delay uniform in `[0, reorder_max]`: a later
//!   datagram overtakes this one.
//!
//! Loss of a link is the largest of the base loss, a network-wide burst, and the extra
//! loss of either end node. A loss of 1.0 or more counts as a cut.

use std::collections::BTreeSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::clock::MS;

/// The network's statistical behaviour, fixed for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct NetParams {
    /// Independent loss probability of every datagram on every link. Default 0.
    pub base_loss: f64,
    /// Probability that a delivered datagram is delivered twice. Default 0.01.
    pub dup: f64,
    /// Probability that a datagram gets an extra reordering delay. Default 0.02.
    pub reorder: f64,
    /// Shortest per-link base delay, ns. Default 100 us.
    pub delay_min: u64,
    /// Longest per-link base delay, ns. Default 1 ms.
    pub delay_base_max: u64,
    /// Longest jitter added to the base delay, ns. Default 2 ms.
    pub jitter_max: u64,
    /// Longest reordering delay, ns. Default 20 ms.
    pub reorder_max: u64,
    /// Loss the checkers' model is not told about (not part of [`Net::loss`]). Always 0
    /// outside tests, which raise it to show that the liveness checkers catch fences the
    /// model says cannot happen. Default 0.
    pub unmodelled_loss: f64,
}

impl Default for NetParams {
    fn default() -> Self {
        NetParams {
            base_loss: 0.0,
            dup: 0.01,
            reorder: 0.02,
            delay_min: MS / 10,
            delay_base_max: MS,
            jitter_max: 2 * MS,
            reorder_max: 20 * MS,
            unmodelled_loss: 0.0,
        }
    }
}

impl NetParams {
    /// The longest time any datagram can spend in flight, ns.
    pub fn max_delay(&self) -> u64 {
        self.delay_base_max.max(self.delay_min) + self.jitter_max + self.reorder_max
    }
}

/// Why a datagram was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropWhy {
    /// The directed link was cut (partition or one-way cut).
    Cut,
    /// Random loss.
    Loss,
    /// The receiver was crashed or shut down.
    Down,
    /// The receiver was paused and its socket buffer was full.
    BufferFull,
}

impl DropWhy {
    /// A short lowercase name for timelines.
    pub fn name(self) -> &'static str {
        match self {
            DropWhy::Cut => "cut",
            DropWhy::Loss => "loss",
            DropWhy::Down => "down",
            DropWhy::BufferFull => "buffer-full",
        }
    }
}

/// What the network does with one datagram: delays of the copies that arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Dropped.
    Dropped(DropWhy),
    /// Arrives after the first delay, and again after the second if duplicated.
    Arrives(u64, Option<u64>),
}

/// Connectivity and loss between `n` nodes, indexed `0..n`.
#[derive(Debug, Clone)]
pub struct Net {
    params: NetParams,
    link_seed: u64,
    /// Partition group of each node; links between different groups are down.
    group: Vec<u16>,
    /// Nodes that reach every group (a bridge across a partition).
    bridge: Vec<bool>,
    /// Directed links `(from, to)` cut one way.
    one_way: BTreeSet<(u32, u32)>,
    /// Extra loss on every link touching a node.
    node_loss: Vec<f64>,
    /// Network-wide loss burst (0 when none).
    burst_loss: f64,
}

impl Net {
    /// A fully connected network of `n` nodes; `link_seed` fixes the per-link base delays.
    pub fn new(n: usize, params: NetParams, link_seed: u64) -> Self {
        Net {
            params,
            link_seed,
            group: vec![0; n],
            bridge: vec![false; n],
            one_way: BTreeSet::new(),
            node_loss: vec![0.0; n],
            burst_loss: 0.0,
        }
    }

    /// The parameters the network was built with.
    pub fn params(&self) -> &NetParams {
        &self.params
    }

    /// Whether datagrams from `from` can reach `to` at all right now.
    pub fn link_up(&self, from: usize, to: usize) -> bool {
        let same_side = self.group[from] == self.group[to] || self.bridge[from] || self.bridge[to];
        same_side && !self.one_way.contains(&(idx(from), idx(to))) && self.loss(from, to) < 1.0
    }

    /// The loss probability of the directed link right now.
    pub fn loss(&self, from: usize, to: usize) -> f64 {
        self.params.base_loss.max(self.burst_loss).max(self.node_loss[from]).max(self.node_loss[to])
    }

    /// Decides the fate of one datagram from `from` to `to`.
    pub fn route(&self, from: usize, to: usize, rng: &mut ChaCha8Rng) -> Fate {
        if !self.link_up(from, to) {
            return Fate::Dropped(DropWhy::Cut);
        }
        let loss = self.loss(from, to);
        if loss > 0.0 && rng.random_bool(loss.min(1.0)) {
            return Fate::Dropped(DropWhy::Loss);
        }
        let hidden = self.params.unmodelled_loss;
        if hidden > 0.0 && rng.random_bool(hidden.min(1.0)) {
            return Fate::Dropped(DropWhy::Loss);
        }
        let first = self.delay(from, to, rng);
        let dup = self.params.dup > 0.0 && rng.random_bool(self.params.dup.min(1.0));
        let second = if dup { Some(self.delay(from, to, rng)) } else { None };
        Fate::Arrives(first, second)
    }

    /// Whether any partition, cut, bridge or extra loss is in force.
    pub fn is_healed(&self) -> bool {
        self.group.iter().all(|g| *g == 0)
            && self.one_way.is_empty()
            && self.burst_loss == 0.0
            && self.node_loss.iter().all(|l| *l == 0.0)
    }

    /// Puts node `node` in partition group `group`.
    pub fn set_group(&mut self, node: usize, group: u16) {
        self.group[node] = group;
    }

    /// Makes `node` a bridge (reaches every group) or not.
    pub fn set_bridge(&mut self, node: usize, on: bool) {
        self.bridge[node] = on;
    }

    /// Cuts (`cut = true`) or restores the directed link `from -> to`.
    pub fn set_one_way(&mut self, from: usize, to: usize, cut: bool) {
        if cut {
            self.one_way.insert((idx(from), idx(to)));
        } else {
            self.one_way.remove(&(idx(from), idx(to)));
        }
    }

    /// Sets the extra loss of every link touching `node`.
    pub fn set_node_loss(&mut self, node: usize, loss: f64) {
        self.node_loss[node] = loss.clamp(0.0, 1.0);
    }

    /// Sets the network-wide loss burst (0 ends it).
    pub fn set_burst_loss(&mut self, loss: f64) {
        self.burst_loss = loss.clamp(0.0, 1.0);
    }

    /// Removes every partition, cut, bridge and extra loss; the base loss stays.
    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
        self.bridge.iter_mut().for_each(|b| *b = false);
        self.one_way.clear();
        self.node_loss.iter_mut().for_each(|l| *l = 0.0);
        self.burst_loss = 0.0;
    }

    fn delay(&self, from: usize, to: usize, rng: &mut ChaCha8Rng) -> u64 {
        let p = &self.params;
        let span = p.delay_base_max.saturating_sub(p.delay_min);
        let base =
            p.delay_min + splitmix(self.link_seed ^ ((idx(from) as u64) << 32 | idx(to) as u64)) % (span + 1);
        let u: f64 = rng.random();
        // jitter_max * u^3 <= jitter_max: the cast stays in range.
        let jitter = (p.jitter_max as f64 * u * u * u) as u64;
        let extra = if p.reorder > 0.0 && rng.random_bool(p.reorder.min(1.0)) {
            rng.random_range(0..=p.reorder_max)
        } else {
            0
        };
        // Never zero: a datagram cannot arrive in the instant it was sent.
        (base + jitter + extra).max(1)
    }
}

/// Node indices fit in 32 bits: the simulator refuses more than `u32::MAX` nodes.
fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// SplitMix64: a fixed, well-mixed hash of a 64-bit value.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn clean_partition_cuts_both_ways_and_a_bridge_sees_both_sides() {
        let mut net = Net::new(3, NetParams::default(), 1);
        net.set_group(0, 1);
        assert!(!net.link_up(0, 1) && !net.link_up(1, 0));
        assert!(net.link_up(1, 2));
        net.set_bridge(2, true);
        assert!(net.link_up(0, 2) && net.link_up(2, 0));
        net.heal();
        assert!(net.link_up(0, 1) && net.is_healed());
    }

    #[test]
    fn one_way_cut_drops_one_direction_only() {
        let mut net = Net::new(2, NetParams::default(), 1);
        net.set_one_way(0, 1, true);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(net.route(0, 1, &mut rng), Fate::Dropped(DropWhy::Cut));
        assert!(matches!(net.route(1, 0, &mut rng), Fate::Arrives(..)));
    }

    #[test]
    fn delays_stay_within_max_delay_and_loss_rate_matches() {
        let params = NetParams { base_loss: 0.3, dup: 0.0, ..NetParams::default() };
        let max = params.max_delay();
        let net = Net::new(4, params, 9);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut lost = 0;
        for i in 0..10_000 {
            match net.route(i % 4, (i + 1) % 4, &mut rng) {
                Fate::Dropped(DropWhy::Loss) => lost += 1,
                Fate::Arrives(d, None) => assert!(d >= 1 && d <= max),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!((2_700..3_300).contains(&lost), "{lost}");
    }
}
