//! What a scenario's cluster looks like: how many nodes, which program they run, their
//! timing, votes and tie-breaker, and whether they share one loopback or sit on a bridge.

use crate::timing::Timing;

/// The tie-breaker of a cluster with an even number of votes (`[quorum] tie_breaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TieBreaker {
    /// The voter with the lowest id (the default).
    LowestId,
    /// No tie-breaker: exactly half is not a quorum.
    None,
}

/// The members and the tie-breaker one node's file lists ([`Spec::file_of`]).
pub type NodeFile = (&'static [u64], TieBreaker);

/// Which program each node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `quorate run --config node-N.toml`: the bare node.
    Quorate,
    /// `quorate-kv --config node-N.toml --data data-N --http 127.0.0.1:(8000 + N)`: the
    /// example key-value service around the same node.
    Kv,
    /// `quorate-failover run --config node-N.toml --shared DIR/shared --local data-N`
    /// (`--unsafe-no-gate` unless `gated`): the failover example around the same node.
    Failover {
        /// Whether the service writes under the gate.
        gated: bool,
    },
}

/// What to start.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Node ids are 1..=nodes, one vote each.
    pub nodes: u64,
    /// The program every node runs.
    pub program: Program,
    /// Written into every node's config.
    pub timing: Timing,
    /// Written into every node's config.
    pub tie_breaker: TieBreaker,
    /// Nodes that run `preset = "wan"` instead of [`Spec::timing`] (2.5 s lease, 3 s floor,
    /// 250 ms heartbeats): a rolling change of presets, half done.
    pub wan: &'static [u64],
    /// The member list node `id` is configured with: nodes `1..=members_of(id)`. `None`:
    /// every node lists all `nodes`. A rolling change of the member list, half done.
    pub members_of: Option<fn(u64) -> u64>,
    /// Node files that list other members and another tie-breaker than the rest: `Some`
    /// for node `id` overrides [`Spec::members_of`] and [`Spec::tie_breaker`] in its file
    /// (a node that replaces another starts on the definition after the change).
    pub file_of: Option<fn(u64) -> Option<NodeFile>>,
    /// Nodes that [`Cluster::start`] does not start; the scenario starts them.
    pub start_later: &'static [u64],
    /// Nodes `1..=voters` have one vote, the others are observers (votes = 0).
    pub voters: u64,
    /// Whether the nodes gossip (`[gossip] enabled`); off only to measure what gossip costs.
    pub gossip: bool,
    /// Each node in a namespace of its own on a bridge, the members given by name
    /// ([`crate::bridge`]), instead of all on one loopback. Network faults are not available.
    pub bridged: bool,
}

impl Spec {
    /// `nodes` nodes with LAN timing and the default tie-breaker.
    pub fn lan(nodes: u64) -> Spec {
        Spec {
            nodes,
            program: Program::Quorate,
            timing: Timing::LAN,
            tie_breaker: TieBreaker::LowestId,
            wan: &[],
            members_of: None,
            file_of: None,
            start_later: &[],
            voters: nodes,
            gossip: true,
            bridged: false,
        }
    }

    /// Node ids.
    pub fn ids(&self) -> Vec<u64> {
        (1..=self.nodes).collect()
    }

    /// The members in node `id`'s config.
    pub fn members(&self, id: u64) -> Vec<u64> {
        if let Some((members, _)) = self.file_of.and_then(|f| f(id)) {
            return members.to_vec();
        }
        let n = self.members_of.map_or(self.nodes, |f| f(id).min(self.nodes));
        (1..=n).collect()
    }

    /// The tie-breaker in node `id`'s file.
    pub fn tie_breaker_of(&self, id: u64) -> TieBreaker {
        self.file_of.and_then(|f| f(id)).map_or(self.tie_breaker, |(_, tie)| tie)
    }

    /// Node `id`'s timing.
    pub fn timing_of(&self, id: u64) -> Timing {
        if self.wan.contains(&id) {
            Timing::WAN
        } else {
            self.timing
        }
    }

    /// Whether `set` is a quorum: more than half the votes, or exactly half including the
    /// tie-breaker.
    pub fn is_quorum(&self, set: &[u64]) -> bool {
        let n = set.iter().filter(|&&id| id <= self.voters).count() as u64 * 2;
        n > self.voters || (n == self.voters && self.tie_breaker == TieBreaker::LowestId && set.contains(&1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_a_majority_or_half_with_the_lowest_id() {
        let five = Spec::lan(5);
        assert!(five.is_quorum(&[3, 4, 5]));
        assert!(!five.is_quorum(&[1, 2]));
        let four = Spec::lan(4);
        assert!(four.is_quorum(&[1, 2]));
        assert!(!four.is_quorum(&[3, 4]));
        let none = Spec { tie_breaker: TieBreaker::None, ..four };
        assert!(!none.is_quorum(&[1, 2]));
        assert!(none.is_quorum(&[1, 2, 3]));
        let observed = Spec { voters: 3, ..Spec::lan(5) };
        assert!(!observed.is_quorum(&[1, 4, 5]));
        assert!(observed.is_quorum(&[2, 3, 4]));
    }
}
