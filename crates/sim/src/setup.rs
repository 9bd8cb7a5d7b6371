//! What each node runs: a timing preset and a quorum definition.
//!
//! A scenario lists the definitions in use ([`Definition`]: members with their votes, and a
//! tie-breaker) and gives each node a [`Setup`] (a preset and one of those definitions). A
//! restart may switch a node's setup ([`crate::Fault::RestartAs`]), as a rolling change of
//! configuration does. Node numbers are indices `0..n`; node ids are `index + 1`.

use std::fmt;
use std::time::Duration;

use quorate_core::{Config, Member};
use quorate_detector::DetectorConfig;
use quorate_gate::TieBreaker;
use quorate_proto::{ClusterId, NodeId};

/// The lease of the [`Preset::Wan`] preset: long enough for its 3 s floor to absorb
/// cross-region jitter, short enough for the lease rule (below 3 s x 0.99 / 1.01).
pub const WAN_LEASE: Duration = Duration::from_millis(2_500);

/// A timing preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Preset {
    /// The defaults (`DetectorConfig::lan()`): heartbeats every 100 ms, down floor 1 s,
    /// lease 900 ms.
    Lan,
    /// `DetectorConfig::wan()`: heartbeats every 250 ms, down floor 3 s; lease 2.5 s.
    Wan,
}

impl Preset {
    /// Sets `config`'s detector timing and lease to this preset.
    pub fn apply(self, config: &mut Config) {
        match self {
            Preset::Lan => {
                config.detector = DetectorConfig::lan();
                config.gate.lease = quorate_gate::GateConfig::default().lease;
            }
            Preset::Wan => {
                config.detector = DetectorConfig::wan();
                config.gate.lease = WAN_LEASE;
            }
        }
    }

    /// The name a definition gives it (`Roster::timing`), as the runtime knows it.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Lan => "lan",
            Preset::Wan => "wan",
        }
    }

    /// The preset `name` names, if it is one.
    pub fn from_name(name: &str) -> Option<Preset> {
        [Preset::Lan, Preset::Wan].into_iter().find(|p| p.name() == name)
    }

    /// The other preset.
    pub fn flipped(self) -> Preset {
        match self {
            Preset::Lan => Preset::Wan,
            Preset::Wan => Preset::Lan,
        }
    }
}

/// How an exact half of the votes is decided (see `quorate_gate::TieBreaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tie {
    /// The half holding the voter with the lowest id.
    LowestId,
    /// The half holding this node (an index).
    Node(usize),
    /// Never: strict majority only.
    None,
}

/// A quorum definition: who is a member, with how many votes, and the tie-breaker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Definition {
    /// (node index, votes); 0 votes makes an observer.
    pub members: Vec<(usize, u32)>,
    /// How an exact half is decided.
    pub tie: Tie,
}

impl Definition {
    /// Nodes `0..nodes`, of which `0..voters` have one vote each; the lowest id breaks ties.
    pub fn standard(nodes: usize, voters: usize) -> Definition {
        let members = (0..nodes).map(|i| (i, u32::from(i < voters))).collect();
        Definition { members, tie: Tie::LowestId }
    }

    /// One vote for each of `voters`, no observers.
    pub fn voters(voters: &[usize], tie: Tie) -> Definition {
        Definition { members: voters.iter().map(|&i| (i, 1)).collect(), tie }
    }

    /// The votes of node `i` (0 if not a member or an observer).
    pub fn votes(&self, i: usize) -> u32 {
        self.members.iter().find(|(m, _)| *m == i).map_or(0, |(_, v)| *v)
    }

    /// Whether node `i` is a member.
    pub fn contains(&self, i: usize) -> bool {
        self.members.iter().any(|(m, _)| *m == i)
    }

    /// The member with votes and the highest index (for the 64-voter limit).
    pub fn last_voter(&self) -> Option<usize> {
        self.members.iter().filter(|(_, v)| *v > 0).map(|(m, _)| *m).max()
    }

    /// The tie-breaker as an index, resolved as the gate resolves it.
    pub fn resolved_tie(&self) -> Option<usize> {
        match self.tie {
            Tie::LowestId => self.members.iter().filter(|(_, v)| *v > 0).map(|(m, _)| *m).min(),
            Tie::Node(i) => Some(i),
            Tie::None => None,
        }
    }

    /// Whether two definitions describe the same quorums (the core compares them by a
    /// digest of members, votes and the resolved tie-breaker).
    pub fn same_as(&self, other: &Definition) -> bool {
        let mut a = self.members.clone();
        let mut b = other.members.clone();
        a.sort_unstable();
        b.sort_unstable();
        a == b && self.resolved_tie() == other.resolved_tie()
    }

    /// A core configuration for node `me` on this definition with `preset` timing.
    pub fn config(&self, cluster: ClusterId, me: usize, preset: Preset, gossip: bool) -> Config {
        let members = self.members.iter().map(|&(i, votes)| Member { id: id(i), votes }).collect();
        let mut config = Config::new(cluster, id(me), members);
        config.gate.tie_breaker = match self.tie {
            Tie::LowestId => TieBreaker::LowestId,
            Tie::Node(i) => TieBreaker::Node(id(i)),
            Tie::None => TieBreaker::None,
        };
        preset.apply(&mut config);
        config.gossip.enabled = gossip;
        config
    }
}

/// What one node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Setup {
    /// Its timing.
    pub preset: Preset,
    /// Its definition: an index into the scenario's definitions.
    pub definition: usize,
}

impl Setup {
    /// The default preset on the first definition.
    pub const STANDARD: Setup = Setup { preset: Preset::Lan, definition: 0 };
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, definition {}", self.preset.name(), self.definition)
    }
}

fn id(i: usize) -> NodeId {
    NodeId(i as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_compare_by_their_resolved_quorums() {
        let low = Definition::voters(&[0, 1, 2, 3], Tie::LowestId);
        assert!(low.same_as(&Definition::voters(&[3, 2, 1, 0], Tie::Node(0))));
        assert!(!low.same_as(&Definition::voters(&[0, 1, 2, 3], Tie::Node(2))));
        assert!(!low.same_as(&Definition::voters(&[0, 1, 2], Tie::LowestId)));
        assert_eq!(Definition::standard(5, 3).votes(4), 0);
        assert!(Definition::standard(5, 3).contains(4));
    }

    #[test]
    fn presets_pass_the_core_rules_on_every_definition() {
        let cluster = ClusterId::from_name("t");
        for preset in [Preset::Lan, Preset::Wan] {
            let c = Definition::voters(&[0, 1, 2, 3], Tie::Node(2)).config(cluster, 1, preset, true);
            assert_eq!(c.clone().check().err(), None, "{preset:?}");
        }
        let wan = Definition::standard(3, 3).config(cluster, 0, Preset::Wan, true);
        assert_eq!(wan.gate.lease, WAN_LEASE);
        assert_eq!(wan.detector.down_after_min, Duration::from_secs(3));
    }
}
