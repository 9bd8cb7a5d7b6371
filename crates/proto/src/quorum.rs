//! Quorum math: who votes, how many votes make a quorum, and until when a set of vote
//! leases forms one.
//!
//! A set of members is a quorum when it holds more than half of all configured votes, or
//! exactly half and includes the tie-breaker. Any two quorums share at least one vote:
//! two disjoint sets cannot both hold more than half, and two disjoint halves cannot both
//! contain the one tie-breaker. That intersection is what makes split brain impossible.

use std::collections::BTreeMap;

use crate::{ClusterId, DefinitionDigest, Instant, NodeId};

/// A definition as plain data: every member's `(id, votes)` in id order, and the resolved
/// tie-breaker (`None`: an exact half never wins).
pub type DefinitionParts = (Vec<(NodeId, u32)>, Option<NodeId>);

/// How an exact half of the votes is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TieBreaker {
    /// The half that contains the voter with the lowest node id is a quorum. The default:
    /// a 2|2 split of four nodes keeps one side writable instead of none.
    #[default]
    LowestId,
    /// The half that contains this node is a quorum. It must be a voter.
    Node(NodeId),
    /// An exact half is never a quorum (strict majority only).
    None,
}

/// Why a membership cannot form quorums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The same node id appears twice in the member list.
    #[error("{id} is listed twice in the members")]
    DuplicateMember {
        /// The repeated id.
        id: NodeId,
    },
    /// Every member is an observer, so no set of members can ever be a quorum.
    #[error("no member has votes; at least one member needs votes > 0")]
    NoVoters,
    /// This node is not in the member list.
    #[error("this node ({id}) is not in the member list")]
    NotAMember {
        /// This node's id.
        id: NodeId,
    },
    /// The named tie-breaker is not a voting member.
    #[error("tie_breaker {id} is not a member with votes > 0")]
    TieBreakerNotVoter {
        /// The configured tie-breaker.
        id: NodeId,
    },
    /// The sum of votes does not fit in 32 bits.
    #[error("total votes exceed {max}", max = u32::MAX)]
    TooManyVotes,
}

/// The configured members and their votes, with the quorum rule resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteTable {
    votes: BTreeMap<NodeId, u32>,
    total: u64,
    tie_breaker: Option<NodeId>,
}

impl VoteTable {
    /// Builds the table from `(id, votes)` pairs; `votes = 0` makes an observer.
    pub fn new(
        members: impl IntoIterator<Item = (NodeId, u32)>,
        tie_breaker: TieBreaker,
    ) -> Result<Self, MembershipError> {
        let mut votes = BTreeMap::new();
        let mut total: u64 = 0;
        for (id, v) in members {
            if votes.insert(id, v).is_some() {
                return Err(MembershipError::DuplicateMember { id });
            }
            total += u64::from(v);
        }
        if total == 0 {
            return Err(MembershipError::NoVoters);
        }
        if total > u64::from(u32::MAX) {
            return Err(MembershipError::TooManyVotes);
        }
        let tie_breaker = match tie_breaker {
            TieBreaker::None => None,
            TieBreaker::LowestId => votes.iter().find(|(_, v)| **v > 0).map(|(id, _)| *id),
            TieBreaker::Node(id) => match votes.get(&id) {
                Some(v) if *v > 0 => Some(id),
                _ => return Err(MembershipError::TieBreakerNotVoter { id }),
            },
        };
        Ok(VoteTable { votes, total, tie_breaker })
    }

    /// Sum of all configured votes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Votes of `id`; 0 for observers and for nodes that are not members.
    pub fn votes(&self, id: NodeId) -> u32 {
        self.votes.get(&id).copied().unwrap_or(0)
    }

    /// Whether `id` is a configured member (voter or observer).
    pub fn is_member(&self, id: NodeId) -> bool {
        self.votes.contains_key(&id)
    }

    /// All members with their votes, in id order.
    pub fn members(&self) -> impl Iterator<Item = (NodeId, u32)> + '_ {
        self.votes.iter().map(|(id, v)| (*id, *v))
    }

    /// The members node `me` exchanges heartbeats with: every other member if `me` is a
    /// voter; only the voters if `me` is an observer. Observers never heartbeat each other,
    /// so an observer's load depends on the number of voters, not on the cluster's size,
    /// and a voter's grows with the cluster (it acks every observer).
    pub fn peers_of(&self, me: NodeId) -> Vec<NodeId> {
        let observer = self.votes(me) == 0;
        self.votes.iter().filter(|(id, v)| **id != me && (!observer || **v > 0)).map(|(id, _)| *id).collect()
    }

    /// A digest of this definition in `cluster`: equal digests count votes the same way.
    ///
    /// 64-bit FNV-1a over a canonical byte string (cluster id, then every member's id and
    /// votes in id order, then the resolved tie-breaker), stable across versions and
    /// platforms. `lowest-id` and the same node named explicitly give the same digest: they
    /// decide every split alike.
    pub fn digest(&self, cluster: ClusterId) -> DefinitionDigest {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut bytes = Vec::with_capacity(8 + 12 * self.votes.len() + 9);
        bytes.extend_from_slice(&cluster.0.to_le_bytes());
        for (id, v) in &self.votes {
            bytes.extend_from_slice(&id.0.to_le_bytes());
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        match self.tie_breaker {
            Some(id) => {
                bytes.push(1);
                bytes.extend_from_slice(&id.0.to_le_bytes());
            }
            None => bytes.push(0),
        }
        let hash = bytes.iter().fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
        DefinitionDigest(hash.to_le_bytes())
    }

    /// The members as `(id, votes)` pairs and the resolved tie-breaker: what a peer needs
    /// to rebuild this table ([`VoteTable::from_parts`]).
    pub fn parts(&self) -> DefinitionParts {
        (self.members().collect(), self.tie_breaker)
    }

    /// Rebuilds a table a peer sent as [`VoteTable::parts`]; the same checks as
    /// [`VoteTable::new`] apply (a peer's definition is input like any other).
    pub fn from_parts(
        members: &[(NodeId, u32)],
        tie_breaker: Option<NodeId>,
    ) -> Result<Self, MembershipError> {
        let rule = match tie_breaker {
            Some(id) => TieBreaker::Node(id),
            None => TieBreaker::None,
        };
        VoteTable::new(members.iter().copied(), rule)
    }

    /// The resolved tie-breaker, if exact halves can win.
    pub fn tie_breaker(&self) -> Option<NodeId> {
        self.tie_breaker
    }

    /// The smallest number of votes that is a quorum without the tie-breaker's help:
    /// a strict majority.
    pub fn majority(&self) -> u64 {
        self.total / 2 + 1
    }

    /// Whether `held` votes form a quorum; `has_tie_breaker` says whether the tie-breaker
    /// is among the holders.
    pub fn is_quorum(&self, held: u64, has_tie_breaker: bool) -> bool {
        2 * held > self.total || (2 * held == self.total && has_tie_breaker && self.tie_breaker.is_some())
    }

    /// Whether the set of members `ids` is a quorum.
    pub fn is_quorum_set(&self, ids: impl IntoIterator<Item = NodeId>) -> bool {
        let mut held = 0;
        let mut tb = false;
        for id in ids {
            held += u64::from(self.votes(id));
            tb |= Some(id) == self.tie_breaker;
        }
        self.is_quorum(held, tb)
    }

    /// The last instant until which the holders of unexpired leases form a quorum, given
    /// `own` (this node, whose own vote never expires) and each peer's lease end.
    ///
    /// Returns [`Instant::ZERO`] when even the full set of leases alive at `now` is not a
    /// quorum. The set of live leases only shrinks as time passes, so the answer is the
    /// lease end at which accumulating leases from the longest-lived down first reaches a
    /// quorum: that is the earliest expiry among the quorum that lives longest.
    pub fn quorum_deadline(
        &self,
        now: Instant,
        own: NodeId,
        leases: impl IntoIterator<Item = (NodeId, Instant)>,
    ) -> Instant {
        let mut live: Vec<(Instant, NodeId)> = leases
            .into_iter()
            .filter(|(id, until)| *until > now && *id != own && self.votes(*id) > 0)
            .map(|(id, until)| (until, id))
            .collect();
        live.push((Instant::MAX, own));
        live.sort_unstable_by(|a, b| b.cmp(a));
        let mut held = 0;
        let mut tb = false;
        for (until, id) in live {
            held += u64::from(self.votes(id));
            tb |= Some(id) == self.tie_breaker;
            if self.is_quorum(held, tb) {
                return until;
            }
        }
        Instant::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accessors_report_the_table() {
        let t = table(&[2, 1, 0], TieBreaker::Node(NodeId(2)));
        assert_eq!(t.total(), 3);
        assert!(t.is_member(NodeId(3)) && !t.is_member(NodeId(4)));
        assert_eq!(t.tie_breaker(), Some(NodeId(2)));
        assert_eq!(table(&[1, 1], TieBreaker::None).tie_breaker(), None);
    }

    #[test]
    fn majority_is_the_smallest_strict_majority_of_all_votes() {
        for (votes, majority) in
            [(&[1][..], 1), (&[1, 1], 2), (&[1, 1, 1], 2), (&[1, 1, 1, 1], 3), (&[2, 1, 0], 2)]
        {
            let t = table(votes, TieBreaker::None);
            assert_eq!(t.majority(), majority, "{votes:?}");
            assert!(t.is_quorum(majority, false) && !t.is_quorum(majority - 1, false), "{votes:?}");
        }
    }

    #[test]
    fn digest_tells_definitions_apart_and_ignores_how_the_tie_breaker_was_named() {
        let cluster = ClusterId(7);
        let three = table(&[1, 1, 1], TieBreaker::LowestId);
        let named = table(&[1, 1, 1], TieBreaker::Node(NodeId(1)));
        assert_eq!(three.digest(cluster), named.digest(cluster));
        let different = [
            table(&[1, 1, 1], TieBreaker::None),
            table(&[1, 1, 1], TieBreaker::Node(NodeId(3))),
            table(&[1, 1, 1, 1, 1], TieBreaker::LowestId),
            table(&[2, 1, 1], TieBreaker::LowestId),
            table(&[1, 1, 0], TieBreaker::LowestId),
        ];
        for other in &different {
            assert_ne!(three.digest(cluster), other.digest(cluster), "{other:?}");
        }
        assert_ne!(three.digest(cluster), three.digest(ClusterId(8)));
        let (members, tb) = three.parts();
        assert_eq!(VoteTable::from_parts(&members, tb).ok(), Some(three.clone()));
        assert!(VoteTable::from_parts(&[(NodeId(1), 1), (NodeId(1), 1)], None).is_err());
        assert!(VoteTable::from_parts(&[(NodeId(1), 1)], Some(NodeId(9))).is_err());
    }

    fn table(votes: &[u32], tb: TieBreaker) -> VoteTable {
        let members = votes.iter().enumerate().map(|(i, v)| (NodeId(i as u64 + 1), *v));
        match VoteTable::new(members, tb) {
            Ok(t) => t,
            Err(e) => panic!("test table invalid: {e}"),
        }
    }

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().map(|i| NodeId(*i)).collect()
    }

    /// (votes per node 1..=n, tie-breaker, holders, expected quorum)
    #[test]
    fn quorum_table_for_one_to_nine_nodes_weights_observers_and_ties() {
        use TieBreaker::*;
        let cases: &[(&[u32], TieBreaker, &[u64], bool)] = &[
            // one node
            (&[1], None, &[1], true),
            (&[1], None, &[], false),
            // two nodes: a half needs the tie-breaker
            (&[1, 1], None, &[1], false),
            (&[1, 1], LowestId, &[1], true),
            (&[1, 1], LowestId, &[2], false),
            (&[1, 1], Node(NodeId(2)), &[2], true),
            (&[1, 1], Node(NodeId(2)), &[1], false),
            (&[1, 1], None, &[1, 2], true),
            // three nodes
            (&[1, 1, 1], LowestId, &[1], false),
            (&[1, 1, 1], LowestId, &[2, 3], true),
            (&[1, 1, 1], None, &[1, 3], true),
            // four nodes: 2|2 split
            (&[1, 1, 1, 1], LowestId, &[1, 2], true),
            (&[1, 1, 1, 1], LowestId, &[3, 4], false),
            (&[1, 1, 1, 1], None, &[1, 2], false),
            (&[1, 1, 1, 1], None, &[1, 2, 3], true),
            // five nodes
            (&[1, 1, 1, 1, 1], LowestId, &[1, 2], false),
            (&[1, 1, 1, 1, 1], LowestId, &[3, 4, 5], true),
            // six nodes
            (&[1; 6], LowestId, &[1, 5, 6], true),
            (&[1; 6], LowestId, &[2, 3, 4], false),
            (&[1; 6], Node(NodeId(4)), &[2, 3, 4], true),
            (&[1; 6], None, &[1, 2, 3, 4], true),
            // seven nodes
            (&[1; 7], LowestId, &[1, 2, 3], false),
            (&[1; 7], LowestId, &[4, 5, 6, 7], true),
            // eight nodes
            (&[1; 8], LowestId, &[1, 2, 3, 4], true),
            (&[1; 8], LowestId, &[5, 6, 7, 8], false),
            // nine nodes
            (&[1; 9], None, &[1, 2, 3, 4], false),
            (&[1; 9], None, &[1, 2, 3, 4, 5], true),
            // weighted votes: node 1 carries 3 of 5
            (&[3, 1, 1], None, &[1], true),
            (&[3, 1, 1], None, &[2, 3], false),
            // weighted exact half: 2 of 4
            (&[2, 1, 1], LowestId, &[1], true),
            (&[2, 1, 1], LowestId, &[2, 3], false),
            (&[2, 1, 1], None, &[1], false),
            // observers (0 votes) never tip the balance
            (&[1, 1, 1, 0, 0], None, &[1, 4, 5], false),
            (&[1, 1, 1, 0, 0], None, &[1, 2, 4], true),
            (&[0, 1, 1], LowestId, &[1, 2], true), // lowest *voter* is node 2
            (&[0, 1, 1], LowestId, &[1, 3], false),
        ];
        for (i, (votes, tb, holders, want)) in cases.iter().enumerate() {
            let t = table(votes, *tb);
            assert_eq!(
                t.is_quorum_set(ids(holders)),
                *want,
                "case {i}: votes {votes:?}, tie-breaker {tb:?}, holders {holders:?}"
            );
        }
    }

    #[test]
    fn observers_track_only_voters_and_voters_track_everyone() {
        let t = table(&[1, 1, 0, 0], TieBreaker::None);
        assert_eq!(t.peers_of(NodeId(1)), ids(&[2, 3, 4]));
        assert_eq!(t.peers_of(NodeId(3)), ids(&[1, 2]));
    }

    #[test]
    fn invalid_memberships_are_refused() {
        let n = |i| NodeId(i);
        assert_eq!(
            VoteTable::new([(n(1), 1), (n(1), 1)], TieBreaker::None),
            Err(MembershipError::DuplicateMember { id: n(1) })
        );
        assert_eq!(VoteTable::new([(n(1), 0)], TieBreaker::None), Err(MembershipError::NoVoters));
        assert_eq!(
            VoteTable::new([(n(1), 1), (n(2), 0)], TieBreaker::Node(n(2))),
            Err(MembershipError::TieBreakerNotVoter { id: n(2) })
        );
        assert_eq!(
            VoteTable::new([(n(1), u32::MAX), (n(2), 1)], TieBreaker::None),
            Err(MembershipError::TooManyVotes)
        );
    }

    #[test]
    fn deadline_is_expiry_of_the_longest_lived_quorum() {
        let t = table(&[1, 1, 1, 1, 1], TieBreaker::None);
        let at = |ms: u64| Instant::from_nanos(ms * 1_000_000);
        let leases = [(NodeId(2), at(500)), (NodeId(3), at(900)), (NodeId(4), at(700)), (NodeId(5), at(100))];
        // me + 3 (900) + 4 (700) = 3 of 5: quorum until 700.
        assert_eq!(t.quorum_deadline(at(0), NodeId(1), leases), at(700));
        // At 600 lease 5 and 2 are gone, still 700.
        assert_eq!(t.quorum_deadline(at(600), NodeId(1), leases), at(700));
        // At 700 only me + 3 remain.
        assert_eq!(t.quorum_deadline(at(700), NodeId(1), leases), Instant::ZERO);
    }

    #[test]
    fn single_voter_cluster_is_quorate_forever_and_observer_needs_leases() {
        let solo = table(&[1], TieBreaker::None);
        assert_eq!(solo.quorum_deadline(Instant::ZERO, NodeId(1), []), Instant::MAX);
        let t = table(&[0, 1, 1], TieBreaker::None);
        let until = Instant::from_nanos(50);
        assert_eq!(t.quorum_deadline(Instant::ZERO, NodeId(1), [(NodeId(2), until)]), Instant::ZERO);
        assert_eq!(
            t.quorum_deadline(Instant::ZERO, NodeId(1), [(NodeId(2), until), (NodeId(3), until)]),
            until
        );
    }

    #[test]
    fn leases_of_observers_and_strangers_do_not_count() {
        let t = table(&[1, 1, 0], TieBreaker::None);
        let far = Instant::from_nanos(1_000);
        assert_eq!(
            t.quorum_deadline(Instant::ZERO, NodeId(1), [(NodeId(3), far), (NodeId(9), far)]),
            Instant::ZERO
        );
    }

    proptest! {
        /// Any two quorums intersect, for any weights and tie-breaker.
        #[test]
        fn any_two_quorums_intersect(
            votes in proptest::collection::vec(0u32..4, 1..9),
            tb_kind in 0u8..3,
            a in proptest::collection::vec(any::<bool>(), 9),
            b in proptest::collection::vec(any::<bool>(), 9),
        ) {
            prop_assume!(votes.iter().any(|v| *v > 0));
            let tb = match tb_kind { 0 => TieBreaker::None, 1 => TieBreaker::LowestId, _ => {
                let first = votes.iter().position(|v| *v > 0).unwrap_or(0);
                TieBreaker::Node(NodeId(first as u64 + 1))
            } };
            let t = table(&votes, tb);
            let set = |mask: &[bool]| -> Vec<NodeId> {
                (0..votes.len()).filter(|i| mask[*i]).map(|i| NodeId(i as u64 + 1)).collect()
            };
            let (sa, sb) = (set(&a), set(&b));
            if t.is_quorum_set(sa.clone()) && t.is_quorum_set(sb.clone()) {
                let shared_votes: u64 = sa.iter().filter(|id| sb.contains(id)).map(|id| u64::from(t.votes(*id))).sum();
                prop_assert!(shared_votes > 0, "quorums {:?} and {:?} share no vote", sa, sb);
            }
        }

        /// The deadline is exactly the boundary: quorum just before it, none at it.
        #[test]
        fn deadline_matches_brute_force(
            votes in proptest::collection::vec(0u32..3, 2..8),
            ends in proptest::collection::vec(0u64..1000, 8),
            now in 0u64..1000,
        ) {
            prop_assume!(votes.iter().any(|v| *v > 0));
            let t = table(&votes, TieBreaker::LowestId);
            let me = NodeId(1);
            let leases: Vec<(NodeId, Instant)> = (2..=votes.len() as u64)
                .map(|i| (NodeId(i), Instant::from_nanos(ends[i as usize - 1])))
                .collect();
            let holders_at = |at: u64| -> Vec<NodeId> {
                let mut h: Vec<NodeId> = leases.iter().filter(|(_, u)| u.as_nanos() > at).map(|(id, _)| *id).collect();
                h.push(me);
                h
            };
            let d = t.quorum_deadline(Instant::from_nanos(now), me, leases.clone());
            if d == Instant::ZERO {
                prop_assert!(!t.is_quorum_set(holders_at(now)));
            } else if d == Instant::MAX {
                prop_assert!(t.is_quorum_set([me]));
            } else {
                prop_assert!(d.as_nanos() > now);
                prop_assert!(t.is_quorum_set(holders_at(d.as_nanos() - 1)));
                prop_assert!(!t.is_quorum_set(holders_at(d.as_nanos())));
            }
        }
    }
}
