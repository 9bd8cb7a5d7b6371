//! The succession rule against the examples an operator meets, and against an independent
//! brute-force oracle.

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

use super::*;
use crate::DefinitionParts;

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn ids(list: &[u64]) -> Vec<NodeId> {
    list.iter().map(|i| NodeId(*i)).collect()
}

/// Nodes `1..=voters`, one vote each.
fn cluster(voters: u64, tb: TieBreaker) -> VoteTable {
    weighted(&(1..=voters).map(|id| (id, 1)).collect::<Vec<_>>(), tb)
}

fn weighted(members: &[(u64, u32)], tb: TieBreaker) -> VoteTable {
    match VoteTable::new(members.iter().map(|(id, v)| (NodeId(*id), *v)), tb) {
        Ok(t) => t,
        Err(e) => panic!("test table invalid: {e}"),
    }
}

fn applied(table: &VoteTable, change: Change) -> VoteTable {
    match apply(table, &change) {
        Ok(t) => t,
        Err(e) => panic!("{change} refused: {e}"),
    }
}

fn refusal(old: &VoteTable, new: &VoteTable) -> UnsafeChange {
    match check_successor(old, new) {
        Err(SuccessionError::Unsafe(u)) => u,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Walks `route` from `old`: every step applies, passes the check, and the walk ends at `new`.
fn assert_route(old: &VoteTable, new: &VoteTable, route: &[Change]) {
    let mut at = old.clone();
    for step in route {
        let next = applied(&at, *step);
        assert_eq!(check_successor(&at, &next), Ok(()), "{step} from {at:?}");
        at = next;
    }
    assert_eq!(&at, new, "route {route:?} ends elsewhere");
}

const LOWEST: TieBreaker = TieBreaker::LowestId;
const STRICT: TieBreaker = TieBreaker::None;

#[test]
fn three_to_five_voters_in_one_step_is_refused_and_routed_through_strict_majority() {
    let (old, new) = (cluster(3, LOWEST), cluster(5, LOWEST));
    let refused = refusal(&old, &new);
    assert!(
        old.is_quorum_set(refused.witness.current.clone()) && new.is_quorum_set(refused.witness.new.clone())
    );
    let route = vec![
        Change::SetTieBreaker(STRICT),
        Change::AddMember { id: n(4), votes: 1 },
        Change::AddMember { id: n(5), votes: 1 },
        Change::SetTieBreaker(TieBreaker::Node(n(1))),
    ];
    assert_eq!(refused.route.as_deref(), Some(&route[..]));
    assert_route(&old, &new, &route);
    // Without a tie-breaker the jump is refused too: {1,2} of three beside {3,4,5} of five.
    let refused = refusal(&cluster(3, STRICT), &cluster(5, STRICT));
    assert_eq!(refused.witness, Witness { current: ids(&[1, 2]), new: ids(&[3, 4, 5]) });
    assert_eq!(safe_path(&cluster(3, STRICT), &cluster(5, STRICT)).map(|r| r.len()), Some(2));
}

#[test]
fn three_to_four_needs_strict_majority_and_the_refusal_names_both_quorums() {
    let refused = refusal(&cluster(3, LOWEST), &cluster(4, LOWEST));
    assert_eq!(refused.witness, Witness { current: ids(&[2, 3]), new: ids(&[1, 4]) });
    assert_eq!(
        refused.to_string(),
        "{2,3} is a quorum of the current definition and {1,4} of the new one: both could write; \
         a safe sequence, one change at a time: 1. set the tie-breaker to none (strict majority), \
         2. add node 4 with 1 vote, 3. set the tie-breaker to node 1"
    );
    assert_eq!(check_successor(&cluster(3, STRICT), &cluster(4, STRICT)), Ok(()));
    assert_eq!(check_successor(&cluster(3, LOWEST), &cluster(4, STRICT)), Ok(()));
}

#[test]
fn removing_one_voter_of_five_is_safe_under_strict_majority_only() {
    let five = cluster(5, STRICT);
    let four = applied(&five, Change::RemoveMember { id: n(5) });
    assert_eq!(check_successor(&five, &four), Ok(()));
    assert_eq!(safe_path(&five, &four), Some(vec![Change::RemoveMember { id: n(5) }]));
    // With node 1 breaking ties, {1,4} is a half of the four and {2,3,5} a majority of five.
    let five = cluster(5, LOWEST);
    let four = applied(&five, Change::RemoveMember { id: n(5) });
    let refused = refusal(&five, &four);
    assert_eq!(refused.witness, Witness { current: ids(&[2, 3, 5]), new: ids(&[1, 4]) });
    assert_eq!(
        refused.route,
        // The removal and the dropped tie-breaker in one step (a dead member can be removed
        // so: no earlier change has to reach it), then node 1 breaks ties again.
        Some(vec![
            Change::RemoveMemberSetTieBreaker { id: n(5), tie_breaker: STRICT },
            Change::SetTieBreaker(TieBreaker::Node(n(1))),
        ])
    );
}

#[test]
fn replacing_a_node_goes_one_member_at_a_time() {
    let old = cluster(3, STRICT);
    let new = weighted(&[(1, 1), (2, 1), (6, 1)], STRICT);
    assert_eq!(refusal(&old, &new).witness, Witness { current: ids(&[1, 3]), new: ids(&[2, 6]) });
    let route = vec![Change::AddMember { id: n(6), votes: 1 }, Change::RemoveMember { id: n(3) }];
    assert_eq!(safe_path(&old, &new), Some(route.clone()));
    assert_route(&old, &new, &route);
    // Remove-then-add is checked the same way and is safe too.
    let removed = applied(&old, Change::RemoveMember { id: n(3) });
    assert_eq!(check_successor(&old, &removed), Ok(()));
    assert_eq!(check_successor(&removed, &new), Ok(()));
    // With node 1 breaking ties neither order is safe: {1,6} is half of four, {1} half of two.
    let (old, new) = (cluster(3, LOWEST), weighted(&[(1, 1), (2, 1), (6, 1)], LOWEST));
    for first in [Change::AddMember { id: n(6), votes: 1 }, Change::RemoveMember { id: n(3) }] {
        assert!(check_successor(&old, &applied(&old, first)).is_err(), "{first}");
    }
    let route = refusal(&old, &new).route;
    assert_eq!(route.as_ref().map(Vec::len), Some(4));
    assert_route(&old, &new, route.as_deref().unwrap_or_default());
}

#[test]
fn switching_the_tie_breaker_on_an_even_cluster_goes_through_strict_majority() {
    let old = cluster(4, LOWEST);
    let new = applied(&old, Change::SetTieBreaker(TieBreaker::Node(n(2))));
    let refused = refusal(&old, &new);
    assert_eq!(refused.witness, Witness { current: ids(&[1, 3]), new: ids(&[2, 4]) });
    assert_eq!(
        refused.route,
        Some(vec![Change::SetTieBreaker(STRICT), Change::SetTieBreaker(TieBreaker::Node(n(2)))])
    );
    // With an odd number of votes no half exists, so the switch is one safe step.
    let old = cluster(3, LOWEST);
    assert_eq!(check_successor(&old, &applied(&old, Change::SetTieBreaker(TieBreaker::Node(n(3))))), Ok(()));
}

#[test]
fn big_vote_changes_are_routed_in_halving_steps() {
    let old = cluster(3, STRICT);
    let new = weighted(&[(1, 1000), (2, 1), (3, 1)], STRICT);
    let route = refusal(&old, &new).route.unwrap_or_default();
    assert!(!route.is_empty() && route.len() <= 20, "{route:?}");
    assert_route(&old, &new, &route);
    let back = safe_path(&new, &old).unwrap_or_default();
    assert!(!back.is_empty() && back.len() <= 20, "{back:?}");
    assert_route(&new, &old, &back);
}

#[test]
fn routes_longer_than_the_bound_are_not_offered() {
    let two = cluster(2, STRICT);
    let with_observers = |count: u64, tb: TieBreaker| {
        let mut members = vec![(1, 1), (2, 1)];
        members.extend((3..3 + count).map(|id| (id, 0)));
        weighted(&members, tb)
    };
    let route = safe_path(&two, &with_observers(ROUTE_STEPS_MAX as u64, STRICT));
    assert_eq!(route.map(|r| r.len()), Some(ROUTE_STEPS_MAX));
    assert_eq!(safe_path(&two, &with_observers(ROUTE_STEPS_MAX as u64 + 1, STRICT)), None);
    // The closing tie-breaker step counts too.
    let tb = TieBreaker::Node(n(1));
    assert_eq!(safe_path(&two, &with_observers(ROUTE_STEPS_MAX as u64 - 1, tb)).map(|r| r.len()), Some(64));
    assert_eq!(safe_path(&two, &with_observers(ROUTE_STEPS_MAX as u64, tb)), None);
}

#[test]
fn of_equally_short_routes_the_one_that_keeps_the_tie_breaker_longest_wins() {
    // Three voters have no exact half, so the tie-breaker may switch at either end; strict
    // majority in between would cost a step more.
    let old = cluster(3, LOWEST);
    let new = weighted(&[(1, 1), (2, 1), (3, 1), (4, 0)], TieBreaker::Node(n(2)));
    assert_eq!(
        safe_path(&old, &new),
        Some(vec![Change::AddMember { id: n(4), votes: 0 }, Change::SetTieBreaker(TieBreaker::Node(n(2)))])
    );
}

#[test]
fn equal_and_observer_only_changes_need_no_route() {
    let three = cluster(3, LOWEST);
    assert_eq!(safe_path(&three, &three), Some(vec![]));
    let with_observer = applied(&three, Change::AddMember { id: n(9), votes: 0 });
    assert_eq!(check_successor(&three, &with_observer), Ok(()));
    assert_eq!(safe_path(&three, &with_observer), Some(vec![Change::AddMember { id: n(9), votes: 0 }]));
    assert_eq!(safe_path(&with_observer, &three), Some(vec![Change::RemoveMember { id: n(9) }]));
}

#[test]
fn too_many_voters_is_a_typed_refusal_not_a_long_search() {
    let (big, bigger) = (cluster(24, LOWEST), cluster(25, LOWEST));
    assert!(disjoint_quorums(&big, &big).is_ok());
    let e = TooManyVoters { voters: 25, max: VOTERS_MAX };
    assert_eq!(disjoint_quorums(&big, &bigger), Err(e.clone()));
    assert_eq!(check_successor(&bigger, &bigger), Err(SuccessionError::TooManyVoters(e)));
    assert_eq!(safe_path(&big, &bigger), None);
    // Observers do not count towards the bound.
    let mut members: Vec<(u64, u32)> = (1..=24).map(|id| (id, 1)).collect();
    members.extend((25..=40).map(|id| (id, 0)));
    assert_eq!(disjoint_quorums(&big, &weighted(&members, LOWEST)), Ok(None));
}

#[test]
fn the_search_visits_each_split_once_and_stops_when_its_budget_ends() {
    use super::intersect::{search, Search};
    // Weights 1..=5 make every voter its own class: 2^5 splits, all of them visited.
    let old = weighted(&[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)], STRICT);
    let mut left = 100;
    assert!(matches!(search(&old, &old, &mut left), Ok(Search::Intersect)));
    assert_eq!(left, 100 - 32);
    // Equal votes form one class: six splits (0 to 5 members in A).
    let mut left = 100;
    assert!(matches!(search(&cluster(5, STRICT), &cluster(5, STRICT), &mut left), Ok(Search::Intersect)));
    assert_eq!(left, 100 - 6);
    let mut left = 31;
    assert!(matches!(search(&old, &old, &mut left), Ok(Search::OutOfBudget { voters: 5 })));
    assert_eq!(left, 0);
}

#[test]
fn apply_refuses_what_no_definition_can_be() {
    let three = cluster(3, LOWEST);
    let cases = [
        (Change::AddMember { id: n(2), votes: 1 }, ChangeError::AlreadyMember { id: n(2) }),
        (Change::RemoveMember { id: n(7) }, ChangeError::UnknownMember { id: n(7) }),
        (Change::SetVotes { id: n(7), votes: 1 }, ChangeError::UnknownMember { id: n(7) }),
        (Change::SetVotes { id: n(7), votes: 0 }, ChangeError::UnknownMember { id: n(7) }),
        (Change::RemoveMember { id: n(1) }, ChangeError::TieBreakerLeaves { id: n(1) }),
        (Change::SetVotes { id: n(1), votes: 0 }, ChangeError::TieBreakerLeaves { id: n(1) }),
        (Change::SetTieBreaker(TieBreaker::Node(n(7))), ChangeError::TieBreakerNotVoter { id: n(7) }),
        (
            Change::SetVotes { id: n(2), votes: 1 },
            ChangeError::NoChange { change: Change::SetVotes { id: n(2), votes: 1 } },
        ),
        (Change::SetTieBreaker(LOWEST), ChangeError::NoChange { change: Change::SetTieBreaker(LOWEST) }),
        (Change::AddMember { id: n(4), votes: u32::MAX }, ChangeError::TooManyVotes),
        (Change::SetVotes { id: n(3), votes: u32::MAX }, ChangeError::TooManyVotes),
    ];
    for (change, want) in cases {
        assert_eq!(apply(&three, &change), Err(want), "{change}");
    }
    let solo = weighted(&[(1, 2), (2, 0)], STRICT);
    for change in [Change::RemoveMember { id: n(1) }, Change::SetVotes { id: n(1), votes: 0 }] {
        assert_eq!(apply(&solo, &change), Err(ChangeError::LastVoter { id: n(1) }), "{change}");
    }
    assert_eq!(
        apply(&solo, &Change::SetTieBreaker(TieBreaker::Node(n(2)))),
        Err(ChangeError::TieBreakerNotVoter { id: n(2) })
    );
    // An observer leaves or stops being one freely; the last voter may keep its place.
    assert!(apply(&solo, &Change::RemoveMember { id: n(2) }).is_ok());
    assert_eq!(applied(&solo, Change::SetVotes { id: n(1), votes: 1 }).votes(n(1)), 1);
}

#[test]
fn apply_changes_exactly_what_it_names() {
    let table = weighted(&[(2, 1), (3, 1)], LOWEST);
    assert_eq!(table.tie_breaker(), Some(n(2)));
    // A lower id joining does not take the tie over; naming the rule again resolves it anew.
    let joined = applied(&table, Change::AddMember { id: n(1), votes: 1 });
    assert_eq!(joined.parts(), (vec![(n(1), 1), (n(2), 1), (n(3), 1)], Some(n(2))));
    assert_eq!(applied(&joined, Change::SetTieBreaker(LOWEST)).tie_breaker(), Some(n(1)));
    assert_eq!(applied(&joined, Change::SetTieBreaker(STRICT)).tie_breaker(), None);
    let removed = applied(&joined, Change::RemoveMember { id: n(3) });
    assert_eq!(removed.parts(), (vec![(n(1), 1), (n(2), 1)], Some(n(2))));
    let observer = applied(&joined, Change::SetVotes { id: n(3), votes: 0 });
    assert_eq!(observer.parts(), (vec![(n(1), 1), (n(2), 1), (n(3), 0)], Some(n(2))));
    let heavier = applied(&joined, Change::SetVotes { id: n(3), votes: 4 });
    assert_eq!(heavier.parts(), (vec![(n(1), 1), (n(2), 1), (n(3), 4)], Some(n(2))));
    assert_eq!(table.parts(), (vec![(n(2), 1), (n(3), 1)], Some(n(2))), "the input is unchanged");
    // The lowest *voter*: an observer with a lower id is passed over.
    let observer_first = weighted(&[(1, 0), (2, 1), (3, 1)], STRICT);
    assert_eq!(applied(&observer_first, Change::SetTieBreaker(LOWEST)).tie_breaker(), Some(n(2)));
}

#[test]
fn changes_read_as_an_operator_would_write_them() {
    let shown = [
        (Change::AddMember { id: n(6), votes: 1 }, "add node 6 with 1 vote"),
        (Change::AddMember { id: n(6), votes: 0 }, "add node 6 as an observer"),
        (Change::RemoveMember { id: n(3) }, "remove node 3"),
        (Change::SetVotes { id: n(2), votes: 3 }, "give node 2 3 votes"),
        (Change::SetTieBreaker(LOWEST), "set the tie-breaker to the lowest voter id"),
    ];
    for (change, text) in shown {
        assert_eq!(change.to_string(), text);
    }
    let lost = UnsafeChange { witness: Witness { current: ids(&[1]), new: ids(&[2]) }, route: None };
    assert_eq!(
        lost.to_string(),
        format!(
            "{{1}} is a quorum of the current definition and {{2}} of the new one: both could write; \
             no safe sequence of at most {ROUTE_STEPS_MAX} single changes was found"
        )
    );
}

#[test]
fn route_steps_shrink_toward_the_target() {
    assert_eq!(route::toward(1, 10), vec![10, 5, 3, 2]);
    assert_eq!(route::toward(10, 1), vec![1, 6, 8, 9]);
    assert_eq!(route::toward(0, 1), vec![1]);
    assert_eq!(route::toward(4, 4), Vec::<u32>::new());
}

// ---- the oracle: every pair of disjoint member sets, quorums computed from the parts ----

/// Whether `set` is a quorum of the definition `parts`, straight from the rule's words:
/// more than half of all votes, or exactly half with the tie-breaker inside.
fn oracle_quorum(parts: &DefinitionParts, set: &[NodeId]) -> bool {
    let (members, tb) = parts;
    let total: u64 = members.iter().map(|(_, v)| u64::from(*v)).sum();
    let held: u64 = members.iter().filter(|(id, _)| set.contains(id)).map(|(_, v)| u64::from(*v)).sum();
    2 * held > total || (2 * held == total && tb.is_some_and(|t| set.contains(&t)))
}

/// Every pair (A, B) of disjoint subsets of the members of either definition; the first
/// pair with A a quorum of `old` and B one of `new`.
fn oracle_disjoint(old: &VoteTable, new: &VoteTable) -> Option<(Vec<NodeId>, Vec<NodeId>)> {
    let (po, pn) = (old.parts(), new.parts());
    let mut all: Vec<NodeId> = po.0.iter().chain(pn.0.iter()).map(|(id, _)| *id).collect();
    all.sort_unstable();
    all.dedup();
    let subset = |mask: u32| -> Vec<NodeId> {
        (0..all.len()).filter(|i| mask >> i & 1 == 1).map(|i| all[i]).collect()
    };
    let count = 1u32 << all.len();
    for a in 0..count {
        for b in (0..count).filter(|b| a & b == 0) {
            let (sa, sb) = (subset(a), subset(b));
            if oracle_quorum(&po, &sa) && oracle_quorum(&pn, &sb) {
                return Some((sa, sb));
            }
        }
    }
    None
}

/// Two definitions over nodes 1..=6: each node is in each definition or not, with 0-3
/// votes, and each definition has no tie-breaker, the lowest voter or a named voter.
fn definitions() -> impl Strategy<Value = (VoteTable, VoteTable)> {
    let side = (proptest::collection::vec(proptest::option::of(0u32..4), 6), 0u8..3, 0usize..6);
    (side.clone(), side).prop_filter_map("a definition needs a voter", |(a, b)| Some((build(a)?, build(b)?)))
}

fn build((votes, kind, pick): (Vec<Option<u32>>, u8, usize)) -> Option<VoteTable> {
    let members: Vec<(NodeId, u32)> =
        votes.iter().enumerate().filter_map(|(i, v)| v.map(|v| (NodeId(i as u64 + 1), v))).collect();
    let voters: Vec<NodeId> = members.iter().filter(|(_, v)| *v > 0).map(|(id, _)| *id).collect();
    let tb = match kind {
        0 => TieBreaker::None,
        1 => TieBreaker::LowestId,
        _ => TieBreaker::Node(*voters.get(pick % voters.len().max(1))?),
    };
    VoteTable::new(members, tb).ok()
}

/// The property both the real check and a broken one are held to.
fn agrees_with_oracle(
    check: fn(&VoteTable, &VoteTable) -> Option<Witness>,
    old: &VoteTable,
    new: &VoteTable,
) -> Result<(), TestCaseError> {
    let expected = oracle_disjoint(old, new);
    let found = check(old, new);
    prop_assert_eq!(found.is_some(), expected.is_some(), "check {:?}, oracle {:?}", found, expected);
    if let Some(w) = found {
        let (po, pn) = (old.parts(), new.parts());
        prop_assert!(oracle_quorum(&po, &w.current) && oracle_quorum(&pn, &w.new), "{:?}", w);
        prop_assert!(w.current.iter().all(|id| !w.new.contains(id)), "{:?} overlap", w);
        for (set, parts) in [(&w.current, &po), (&w.new, &pn)] {
            for i in 0..set.len() {
                let mut less = set.clone();
                less.remove(i);
                prop_assert!(!oracle_quorum(parts, &less), "{:?} is not minimal", set);
            }
        }
    }
    Ok(())
}

fn exact(old: &VoteTable, new: &VoteTable) -> Option<Witness> {
    disjoint_quorums(old, new).ok().flatten()
}

/// A deliberately wrong check: it forgets the tie-breakers (treats both as strict majority).
fn ignoring_tie_breaker(old: &VoteTable, new: &VoteTable) -> Option<Witness> {
    let strict = |t: &VoteTable| VoteTable::from_parts(&t.parts().0, None).ok();
    disjoint_quorums(&strict(old)?, &strict(new)?).ok().flatten()
}

proptest! {
    #[test]
    fn disjoint_quorums_agrees_with_the_brute_force_oracle((old, new) in definitions()) {
        agrees_with_oracle(exact, &old, &new)?;
        prop_assert_eq!(check_successor(&old, &new).is_ok(), oracle_disjoint(&old, &new).is_none());
    }

    #[test]
    fn every_step_of_every_safe_path_passes_the_oracle((old, new) in definitions()) {
        let route = safe_path(&old, &new);
        prop_assert!(route.is_some(), "no route from {:?} to {:?}", old, new);
        let route = route.unwrap_or_default();
        prop_assert!(route.len() <= ROUTE_STEPS_MAX);
        let mut at = old.clone();
        for step in &route {
            let next = apply(&at, step);
            prop_assert!(next.is_ok(), "{} refused: {:?}", step, next);
            let next = next.unwrap_or_else(|_| at.clone());
            prop_assert!(oracle_disjoint(&at, &next).is_none(), "{} from {:?} is unsafe", step, at);
            at = next;
        }
        prop_assert_eq!(&at, &new);
        if oracle_disjoint(&old, &new).is_none() && old != new {
            prop_assert!(!route.is_empty());
        }
    }
}

#[test]
fn the_oracle_catches_a_check_that_ignores_the_tie_breaker() {
    // The known case: three to four with node 1 breaking ties.
    let (old, new) = (cluster(3, LOWEST), cluster(4, LOWEST));
    assert_eq!(ignoring_tie_breaker(&old, &new), None, "the broken check calls it safe");
    assert_eq!(oracle_disjoint(&old, &new), Some((ids(&[2, 3]), ids(&[1, 4]))));
    assert!(agrees_with_oracle(ignoring_tie_breaker, &old, &new).is_err());
    assert!(agrees_with_oracle(exact, &old, &new).is_ok());
    // And the property test itself finds such a case on its own.
    let mut runner = TestRunner::deterministic();
    let outcome =
        runner.run(&definitions(), |(old, new)| agrees_with_oracle(ignoring_tie_breaker, &old, &new));
    assert!(outcome.is_err(), "the oracle missed the broken check");
}

#[test]
fn a_removal_with_its_tie_breaker_is_one_step_checked_like_any_other() {
    let three = cluster(3, LOWEST);
    let removed = Change::RemoveMemberSetTieBreaker { id: n(3), tie_breaker: STRICT };
    let two = applied(&three, removed);
    assert_eq!((two.is_member(n(3)), two.tie_breaker()), (false, None));
    assert_eq!(check_successor(&three, &two), Ok(()));
    assert_eq!(removed.to_string(), "remove node 3 and set the tie-breaker to none");
    // The tie-breaker is resolved among the members that stay, and must be one of them.
    let two = applied(&three, Change::RemoveMemberSetTieBreaker { id: n(1), tie_breaker: LOWEST });
    assert_eq!(two.tie_breaker(), Some(n(2)));
    let gone = Change::RemoveMemberSetTieBreaker { id: n(1), tie_breaker: TieBreaker::Node(n(1)) };
    assert_eq!(apply(&three, &gone), Err(ChangeError::TieBreakerNotVoter { id: n(1) }));
    // Keeping node 1 as tie-breaker while removing node 3 is the unsafe plain removal.
    let kept =
        applied(&three, Change::RemoveMemberSetTieBreaker { id: n(3), tie_breaker: TieBreaker::Node(n(1)) });
    assert!(check_successor(&three, &kept).is_err());
    assert_eq!(
        apply(&cluster(1, STRICT), &Change::RemoveMemberSetTieBreaker { id: n(1), tie_breaker: STRICT }),
        Err(ChangeError::LastVoter { id: n(1) })
    );
}
