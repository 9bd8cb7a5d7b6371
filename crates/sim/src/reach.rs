//! Who can exchange heartbeats with a quorum, and since when: the ground truth the
//! checkers compare the cores' decisions with.
//!
//! Recomputed after every fault (partition, cut, loss change, crash, restart, pause,
//! resume), in `O(nodes x voters)`. Between faults connectivity does not change, so the
//! "since" instants are exact. A node **exchanges** with voter `v` of its own definition
//! when both run (not crashed, not paused), both directed links are up, and their
//! definitions lend each other votes ([`Model::exchanges`]: the same one at the same
//! version, or versions one apart that pass the succession check; a node on any other
//! definition lends it no vote). Quorums are those of the node's own definition.
//!
//! * **cut off**: a live node whose exchange set plus itself (if it votes) is not a quorum.
//!   Paused nodes are cut off: they exchange with nobody. A vote is a lease: a voter whose
//!   links with the node were up (each direction at some moment, both running, the same
//!   definition) lends it a vote that lasts a lease after the last such moment, whatever
//!   happens since. So **cut since** is the last instant at which the voters in contact
//!   *since then* (each direction up at or after it, on definitions that exchange votes)
//!   plus the node formed a quorum: the node cannot hold a quorum of leases once a lease
//!   has passed after that instant, even if it never reached that quorum at one moment
//!   (one voter before a partition, another that adopts its definition after it).
//! * **connected**: a running node whose exchange set plus itself is a quorum.
//! * **protected**: connected through links whose loss stays within [`crate::model::LOSS_BOUND`]
//!   for the redundancy those links give (loss-free links only in runs that mix presets,
//!   see [`Model::protecting_loss`]). The no-false-fence and heal invariants apply to
//!   protected nodes.

use crate::host::ProcessState;
use crate::model::Model;
use crate::net::Net;
use crate::versions::Running;

/// What the network currently allows one node, and since when.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeReach {
    /// Since when this live node has been cut off from every quorum.
    pub cut_since: Option<u64>,
    /// Since when this running node has been able to exchange with a quorum.
    pub connected_since: Option<u64>,
    /// Since when it has been connected through links within the loss bound.
    pub protected_since: Option<u64>,
    /// The worst loss on the links that protect it (for the heal bound).
    pub protected_loss: f64,
    /// The worst loss on its links with the voters it exchanges with.
    pub connected_loss: f64,
    /// The redundancy of its protecting links ([`crate::model::Quorum::redundancy`]).
    pub redundancy: u32,
}

/// Connectivity of every node.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    nodes: Vec<NodeReach>,
    all_protected_since: Option<u64>,
    /// `up_until[x][v]`: for voter index `v` (< 64), until when the link from `x` to `v`
    /// was last up with both running on definitions that exchange votes (`u64::MAX`: up
    /// now; 0: never).
    to_voter: Vec<Vec<u64>>,
    /// The same for the link from voter `v` to `x`.
    from_voter: Vec<Vec<u64>>,
}

impl Reach {
    /// No information yet for `n` nodes.
    pub fn new(n: usize) -> Self {
        let voters = n.min(64);
        Reach {
            nodes: vec![NodeReach::default(); n],
            all_protected_since: None,
            to_voter: vec![vec![0; voters]; n],
            from_voter: vec![vec![0; voters]; n],
        }
    }

    /// What node `i` can do.
    pub fn node(&self, i: usize) -> &NodeReach {
        &self.nodes[i]
    }

    /// Since when every live node has been protected (the network is healed).
    pub fn all_protected_since(&self) -> Option<u64> {
        self.all_protected_since
    }

    /// Recomputes everything at real time `now`; `defs[i]` is the definition node `i` runs,
    /// at its version.
    pub fn recompute(
        &mut self,
        now: u64,
        processes: &[ProcessState],
        net: &Net,
        model: &Model,
        defs: &[Running],
    ) {
        let mut all = true;
        for x in 0..self.nodes.len() {
            self.track_links(now, x, processes, net, model, defs);
            let exchange = self.exchange(x, model.quorum(defs[x].definition));
            let fresh = assess(x, exchange, processes, net, model, defs);
            let old = self.nodes[x];
            let keep = |was: Option<u64>, is: bool| if is { Some(was.unwrap_or(now)) } else { None };
            // Never in contact with a quorum: cut since it was first seen cut.
            let cut_since =
                fresh.cut.then(|| match self.last_quorum_contact(x, model.quorum(defs[x].definition)) {
                    0 => old.cut_since.unwrap_or(now),
                    last => last,
                });
            self.nodes[x] = NodeReach {
                cut_since,
                connected_since: keep(old.connected_since, fresh.connected),
                protected_since: keep(old.protected_since, fresh.protected.is_some()),
                protected_loss: fresh.protected.map_or(0.0, |(loss, _)| loss),
                connected_loss: fresh.connected_loss,
                redundancy: fresh.protected.map_or(0, |(_, r)| r),
            };
            all &= processes[x] == ProcessState::Down || fresh.protected.is_some();
        }
        self.all_protected_since = if all { Some(self.all_protected_since.unwrap_or(now)) } else { None };
    }
}

impl Reach {
    /// Updates until when each link between `x` and the voters was up (see the fields).
    fn track_links(
        &mut self,
        now: u64,
        x: usize,
        processes: &[ProcessState],
        net: &Net,
        model: &Model,
        defs: &[Running],
    ) {
        for v in 0..self.to_voter[x].len() {
            let both = v != x
                && processes[x] == ProcessState::Running
                && processes[v] == ProcessState::Running
                && model.exchanges(defs[x], defs[v]);
            for (slot, up) in [
                (&mut self.to_voter[x][v], both && net.link_up(x, v)),
                (&mut self.from_voter[x][v], both && net.link_up(v, x)),
            ] {
                if up {
                    *slot = u64::MAX;
                } else if *slot == u64::MAX {
                    *slot = now;
                }
            }
        }
    }

    /// The voters of `q` that `x` exchanges with now: both directions up (see
    /// [`Reach::track_links`], which has just recorded them).
    fn exchange(&self, x: usize, q: &crate::model::Quorum) -> u64 {
        (0..self.to_voter[x].len())
            .filter(|&v| {
                q.is_voter(v) && self.to_voter[x][v] == u64::MAX && self.from_voter[x][v] == u64::MAX
            })
            .fold(0, |mask, v| mask | 1 << v)
    }

    /// The last instant at which the voters in contact with `x` since then (both directions
    /// up at or after it), plus `x` itself, formed a quorum of `q`; 0 if they never did.
    fn last_quorum_contact(&self, x: usize, q: &crate::model::Quorum) -> u64 {
        let mut contacts: Vec<(u64, usize)> = (0..self.to_voter[x].len())
            .filter(|&v| v != x && q.is_voter(v))
            .map(|v| (self.to_voter[x][v].min(self.from_voter[x][v]), v))
            .filter(|&(until, _)| until > 0)
            .collect();
        contacts.sort_unstable_by(|a, b| b.cmp(a));
        let mut mask = q.bit(x);
        for (until, v) in contacts {
            mask |= 1 << v;
            if q.is_quorum(mask) {
                return until;
            }
        }
        0
    }
}

struct Assessment {
    cut: bool,
    connected: bool,
    connected_loss: f64,
    /// (worst loss, redundancy) when protected.
    protected: Option<(f64, u32)>,
}

/// What node `x`, exchanging with the voters in `exchange`, can do.
fn assess(
    x: usize,
    exchange: u64,
    processes: &[ProcessState],
    net: &Net,
    model: &Model,
    defs: &[Running],
) -> Assessment {
    if processes[x] == ProcessState::Down {
        return Assessment { cut: false, connected: false, connected_loss: 0.0, protected: None };
    }
    let q = model.quorum(defs[x].definition);
    let own = q.bit(x);
    let running = processes[x] == ProcessState::Running;
    let quorum = q.is_quorum(own | exchange);
    let connected = running && quorum;
    let mut protected = None;
    if connected {
        // Try the most demanding redundancy first: its loss bound is the most generous.
        for r in (1..=crate::model::LOSS_BOUND.len() as u32).rev() {
            let Some(bound) = model.protecting_loss(r) else { continue };
            let (low, worst) = links_within(x, exchange, bound, net);
            let have = q.redundancy(own, low);
            if have >= r {
                protected = Some((worst, have));
                break;
            }
        }
    }
    let (_, connected_loss) = links_within(x, exchange, 1.0, net);
    Assessment { cut: !quorum, connected, connected_loss, protected }
}

/// The voters of `exchange` whose links with `x` lose at most `bound` both ways, and the
/// worst loss among them.
fn links_within(x: usize, exchange: u64, bound: f64, net: &Net) -> (u64, f64) {
    let mut low = 0;
    let mut worst: f64 = 0.0;
    for v in 0..64 {
        if exchange & (1 << v) == 0 {
            continue;
        }
        let loss = net.loss(x, v).max(net.loss(v, x));
        if loss <= bound {
            low |= 1 << v;
            worst = worst.max(loss);
        }
    }
    (low, worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NetParams;

    fn on(defs: &[usize]) -> Vec<Running> {
        defs.iter().map(|&definition| Running { definition, version: 0 }).collect()
    }

    fn model(voters: usize, nodes: usize) -> Model {
        crate::model::test_model(voters, nodes)
    }

    #[test]
    fn minority_is_cut_off_since_the_partition_and_majority_stays_protected() {
        let m = model(5, 5);
        let mut net = Net::new(5, NetParams::default(), 0);
        let processes = vec![ProcessState::Running; 5];
        let mut reach = Reach::new(5);
        reach.recompute(0, &processes, &net, &m, &[Running::default(); 5]);
        assert_eq!(reach.node(0).protected_since, Some(0));
        assert_eq!(reach.all_protected_since(), Some(0));
        net.set_group(0, 1);
        net.set_group(1, 1);
        reach.recompute(7, &processes, &net, &m, &[Running::default(); 5]);
        assert_eq!(reach.node(0).cut_since, Some(7));
        assert_eq!(reach.node(2).protected_since, Some(0), "majority keeps its stretch");
        assert_eq!(reach.node(2).redundancy, 1);
        assert_eq!(reach.all_protected_since(), None);
    }

    #[test]
    fn paused_node_is_cut_off_and_lossy_links_are_not_protected() {
        let m = model(3, 4);
        let mut net = Net::new(4, NetParams::default(), 0);
        let mut processes = vec![ProcessState::Running; 4];
        processes[3] = ProcessState::Paused;
        let mut reach = Reach::new(4);
        reach.recompute(0, &processes, &net, &m, &[Running::default(); 4]);
        assert_eq!(reach.node(3).cut_since, Some(0));
        assert_eq!(reach.node(3).connected_since, None);
        net.set_burst_loss(0.5);
        reach.recompute(5, &processes, &net, &m, &[Running::default(); 4]);
        assert_eq!(reach.node(0).connected_since, Some(0));
        assert_eq!(reach.node(0).protected_since, None);
    }

    #[test]
    fn a_voter_on_another_definition_lends_no_reach() {
        use crate::setup::{Definition, Preset, Setup, Tie};
        // Four voters; n1, n2 break ties by lowest id, n3, n4 by n3.
        let defs = [
            Definition::voters(&[0, 1, 2, 3], Tie::LowestId),
            Definition::voters(&[0, 1, 2, 3], Tie::Node(2)),
        ];
        let cluster = quorate_proto::ClusterId(1);
        let c0 = defs[0].config(cluster, 0, Preset::Lan, true);
        let c1 = defs[1].config(cluster, 2, Preset::Lan, true);
        let s0 = Setup { preset: Preset::Lan, definition: 0 };
        let s1 = Setup { preset: Preset::Lan, definition: 1 };
        let m = Model::new(&defs, &[(s0, &c0), (s1, &c1)], 4, 0, 0);
        let net = Net::new(4, NetParams::default(), 0);
        let mut reach = Reach::new(4);
        reach.recompute(0, &[ProcessState::Running; 4], &net, &m, &on(&[0, 0, 1, 1]));
        // Connected to everyone, yet each pair holds only half, and n1's half is a quorum of
        // its own definition while n3's is a quorum of its own.
        assert_eq!(reach.node(0).connected_since, Some(0));
        assert_eq!(reach.node(2).connected_since, Some(0));
        assert_eq!(reach.node(1).cut_since, None);
        let strict = [Definition::voters(&[0, 1, 2, 3], Tie::None), defs[1].clone()];
        let m = Model::new(&strict, &[(s0, &c0), (s1, &c1)], 4, 0, 0);
        reach.recompute(1, &[ProcessState::Running; 4], &net, &m, &on(&[0, 0, 1, 1]));
        assert_eq!(
            reach.node(0).cut_since,
            Some(1),
            "half of a strict majority, the rest on another definition"
        );
    }

    #[test]
    fn cut_since_is_the_last_instant_a_quorum_of_leases_could_have_been_lent() {
        let m = model(5, 5);
        let mut net = Net::new(5, NetParams::default(), 0);
        let processes = vec![ProcessState::Running; 5];
        let mut reach = Reach::new(5);
        reach.recompute(0, &processes, &net, &m, &[Running::default(); 5]);
        // n5 with n1 only from 10: n2, n3, n4 were in contact until then.
        for (node, group) in [(0, 1), (4, 1)] {
            net.set_group(node, group);
        }
        reach.recompute(10, &processes, &net, &m, &[Running::default(); 5]);
        assert_eq!(reach.node(4).cut_since, Some(10));
        // From 20 n5 reaches n2 instead of n1: never a quorum at one instant, but n1's and
        // n2's leases together (n1 lent until 20) make {n1,n2,n5} a quorum until 20.
        net.heal();
        for (node, group) in [(1, 1), (4, 1)] {
            net.set_group(node, group);
        }
        reach.recompute(20, &processes, &net, &m, &[Running::default(); 5]);
        assert_eq!(reach.node(4).cut_since, Some(20), "n1 until 20 completes a quorum with n2 and n5");
        // A one-way cut counts from the moment the direction went down.
        net.heal();
        reach.recompute(30, &processes, &net, &m, &[Running::default(); 5]);
        assert_eq!(reach.node(4).cut_since, None);
        for v in 0..4 {
            net.set_one_way(v, 4, true);
        }
        reach.recompute(40, &processes, &net, &m, &[Running::default(); 5]);
        assert_eq!(reach.node(4).cut_since, Some(40), "n5 hears nobody: no ack reaches it");
    }
}
