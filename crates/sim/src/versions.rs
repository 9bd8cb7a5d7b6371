//! Versioned definitions: which definition a node runs, at which version, and which pairs
//! of them lend each other votes (rule 4 of `docs/reconfiguration.md`).
//!
//! A node runs a [`Running`]: one of the run's definitions (an index into
//! [`Model::definitions`]) at a version. The file a node starts from is version 0; a
//! definition adopted while running (a scenario's step, or one a peer pushed and the host
//! followed) carries its own version. Definitions that appear during the run (proposed by
//! a node, [`crate::Fault::Propose`]) are added to the model as they appear
//! ([`Model::intern`]).
//!
//! Two nodes **exchange** votes when they run the same quorums at the same version (equal
//! digests), or versions one apart whose quorums all meet (the succession check). The
//! check is computed here on voter masks, independently of `quorate_proto::succession`,
//! so that a core that lends votes across a pair that fails it shows as a node writable
//! after its cut ([`crate::invariants::fence_bound`]).

use quorate_proto::{NodeId, Roster, TieBreaker, VoteTable};

use crate::model::{Model, Quorum};
use crate::setup::{Definition, Tie};

/// The most voters two definitions may have between them for [`Quorum::meets`] to
/// enumerate their splits (`2^16` masks); beyond it the proto's check decides.
const ENUMERATED_VOTERS_MAX: u32 = 16;

/// The definition a node runs and its version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Running {
    /// An index into [`Model::definitions`].
    pub definition: usize,
    /// 0 for a configuration file's; one more with every change adopted online.
    pub version: u64,
}

impl Model {
    /// Whether nodes running `a` and `b` lend each other votes: equal quorums at one
    /// version, or versions one apart whose quorums all meet.
    pub fn exchanges(&self, a: Running, b: Running) -> bool {
        if a.version == b.version {
            return self.quorum(a.definition).class == self.quorum(b.definition).class;
        }
        a.version.abs_diff(b.version) == 1 && self.meets(a.definition, b.definition)
    }

    /// Whether every quorum of definition `a` meets every quorum of definition `b`.
    pub fn meets(&self, a: usize, b: usize) -> bool {
        self.meets.get(a).and_then(|row| row.get(b)).copied().unwrap_or(false)
    }

    /// The index of `definition` among the run's definitions, added if it is new (a
    /// definition that describes the quorums of one already there is that one).
    pub fn intern(&mut self, definition: Definition) -> usize {
        if let Some(k) = self.definitions.iter().position(|d| d.same_as(&definition)) {
            return k;
        }
        let k = self.definitions.len();
        let q = Quorum::new(&definition, k);
        let row: Vec<bool> = self.quorums.iter().map(|other| q.meets(other)).collect();
        for (j, other) in self.meets.iter_mut().enumerate() {
            other.push(row[j]);
        }
        let mut own = row;
        own.push(true);
        self.meets.push(own);
        self.quorums.push(q);
        self.definitions.push(definition);
        k
    }
}

/// `meets` for every pair of `quorums`.
pub(crate) fn meets_matrix(quorums: &[Quorum]) -> Vec<Vec<bool>> {
    quorums.iter().map(|a| quorums.iter().map(|b| a.meets(b)).collect()).collect()
}

impl Quorum {
    /// Whether every quorum of `self` shares a voter with every quorum of `other`: no
    /// split of their voters gives `self` a quorum on one side and `other` one on the
    /// other (quorums only grow with more voters, so the splits are enough).
    pub fn meets(&self, other: &Quorum) -> bool {
        let all = self.voters() | other.voters();
        if all.count_ones() > ENUMERATED_VOTERS_MAX {
            return match (self.table(), other.table()) {
                (Some(a), Some(b)) => quorate_proto::check_successor(&a, &b).is_ok(),
                _ => false,
            };
        }
        // Every subset of `all`: at most 2^16 rounds.
        let mut side = 0u64;
        loop {
            if self.is_quorum(side) && other.is_quorum(all & !side) {
                return false;
            }
            side = side.wrapping_sub(all) & all;
            if side == 0 {
                return true;
            }
        }
    }

    /// The vote table of these quorums (voters only), for the proto's check.
    fn table(&self) -> Option<VoteTable> {
        let voters = (0..64).filter(|&i| self.is_voter(i));
        let members: Vec<(NodeId, u32)> = voters.map(|i| (NodeId(i as u64 + 1), self.votes_of(i))).collect();
        let tie = self.tie().map_or(TieBreaker::None, |t| TieBreaker::Node(NodeId(t as u64 + 1)));
        VoteTable::new(members, tie).ok()
    }
}

/// The simulator's definition of a roster's vote table (node ids `1..` are indices `0..`).
pub fn definition_of(roster: &Roster) -> Definition {
    let members = roster.votes.members().map(|(id, v)| (index(id), v)).collect();
    let tie = roster.votes.tie_breaker().map_or(Tie::None, |t| Tie::Node(index(t)));
    Definition { members, tie }
}

fn index(id: NodeId) -> usize {
    usize::try_from(id.0.saturating_sub(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::Tie;

    fn q(voters: &[usize], tie: Tie) -> Quorum {
        Quorum::new(&Definition::voters(voters, tie), 0)
    }

    #[test]
    fn one_voter_added_or_removed_under_strict_majority_meets_and_two_do_not() {
        let three = q(&[0, 1, 2], Tie::None);
        let four = q(&[0, 1, 2, 3], Tie::None);
        let five = q(&[0, 1, 2, 3, 4], Tie::None);
        assert!(three.meets(&four) && four.meets(&five) && four.meets(&three));
        // {n1,n2} of three and {n3,n4,n5} of five.
        assert!(!three.meets(&five));
        // Four with the lowest id breaking ties: {n1,n2} is a quorum, and {n3,n4,n5} of five.
        assert!(!q(&[0, 1, 2, 3], Tie::LowestId).meets(&five));
        assert!(three.meets(&three));
    }

    #[test]
    fn a_version_apart_exchanges_when_the_quorums_meet_and_never_two_apart() {
        let defs = [
            Definition::voters(&[0, 1, 2], Tie::None),
            Definition::voters(&[0, 1, 2, 3], Tie::None),
            Definition::voters(&[0, 1, 2, 3, 4], Tie::None),
        ];
        let config = defs[0].config(quorate_proto::ClusterId(1), 0, crate::Preset::Lan, true);
        let mut m = Model::new(&defs, &[(crate::Setup::STANDARD, &config)], 5, 0, 0);
        let at = |definition, version| Running { definition, version };
        assert!(m.exchanges(at(0, 0), at(0, 0)));
        assert!(!m.exchanges(at(0, 0), at(1, 0)), "two files at version 0");
        assert!(m.exchanges(at(0, 0), at(1, 1)) && m.exchanges(at(2, 2), at(1, 1)));
        assert!(!m.exchanges(at(0, 1), at(2, 2)), "three and five voters do not meet");
        assert!(!m.exchanges(at(1, 1), at(1, 3)), "two versions apart");
        assert!(!m.exchanges(at(1, 2), at(2, 2)), "one version, two definitions");
        // A definition proposed while running joins the model once.
        let k = m.intern(Definition::voters(&[1, 2, 3, 4], Tie::None));
        assert_eq!((k, m.intern(Definition::voters(&[4, 3, 2, 1], Tie::None))), (3, 3));
        assert!(m.exchanges(at(2, 2), at(3, 3)) && !m.exchanges(at(0, 0), at(3, 1)));
        assert_eq!(m.intern(defs[1].clone()), 1);
    }

    #[test]
    fn the_enumeration_agrees_with_the_proto_check() {
        let defs = [
            q(&[0, 1, 2], Tie::None),
            q(&[0, 1, 2, 3], Tie::LowestId),
            q(&[0, 1, 2, 3], Tie::Node(3)),
            q(&[0, 1, 2, 3, 4], Tie::None),
            q(&[1, 2, 3, 4], Tie::None),
            Quorum::new(&Definition { members: vec![(0, 2), (1, 1), (2, 1)], tie: Tie::None }, 0),
        ];
        for a in &defs {
            for b in &defs {
                let (Some(ta), Some(tb)) = (a.table(), b.table()) else { panic!("tables") };
                assert_eq!(a.meets(b), quorate_proto::check_successor(&ta, &tb).is_ok(), "{a:?} {b:?}");
            }
        }
    }
}
