//! A safe route: single changes from one definition to another, each checked against the
//! one before.
//!
//! Three facts make a route always exist (within the bounds below):
//!
//! * Dropping the tie-breaker (some node -> none) only removes quorums (the exact halves),
//!   and naming one on a strict-majority definition only adds exact halves that contain it,
//!   which meet every strict majority; so both steps are safe on any definition.
//! * Under strict majority, changing one member's votes by one is safe: with T votes on one
//!   side and T + 1 on the other, disjoint quorums would hold at least ⌊T/2⌋ + 1 and
//!   ⌊(T + 1)/2⌋ + 1 votes, T + 2 in all, where two disjoint sets hold at most T + 1 (the
//!   changed member counts once). Adding a member with 1 vote, or removing one that has 1,
//!   is such a step.
//! * Adding or removing an observer changes no quorum.
//!
//! So the plain route is: tie-breaker none, each member's votes one at a time, the target
//! tie-breaker last. The search tries bigger steps first (a member's whole change, then half
//! of it, a quarter...) and also tries keeping the current tie-breaker or switching to the
//! target's first; every step it keeps passed the exact check, and the shortest plan wins.

use super::intersect::{search, Search};
use super::{apply, Change};
use crate::{NodeId, TieBreaker, VoteTable};

/// The longest route [`safe_path`] returns. Halving steps change a member's votes from 1
/// to 1000 in ten steps, so this covers changes far larger than an operator makes at once.
pub const ROUTE_STEPS_MAX: usize = 64;

/// The most candidate splits (see [`disjoint_quorums`](super::disjoint_quorums)) one
/// [`safe_path`] call visits over all the checks it runs: 2^26, four worst-case checks of
/// [`VOTERS_MAX`](super::VOTERS_MAX) voters alike to no other, so a search gives up within
/// about 0.2 s; a cluster of equal votes needs a few dozen splits per check.
pub const ROUTE_SPLITS_MAX: u64 = 1 << 26;

/// Single changes that lead from `old` to `new`, each of which passes
/// [`check_successor`](super::check_successor) against the definition before it. `Some(vec![])`
/// when the two are equal; `None` when no route was found within [`ROUTE_STEPS_MAX`] steps
/// and [`ROUTE_SPLITS_MAX`] splits (or the definitions have too many voters to check).
///
/// The tie-breaker a route ends with is named explicitly ([`TieBreaker::Node`]), which is
/// the same definition as `lowest-id` when that node is the lowest voter.
pub fn safe_path(old: &VoteTable, new: &VoteTable) -> Option<Vec<Change>> {
    let mut splits_left = ROUTE_SPLITS_MAX;
    // Strict majority first: it always finds a route, so it must not be starved by the
    // others; a shorter plan that keeps a tie-breaker replaces it.
    let during = [None, old.tie_breaker(), new.tie_breaker()];
    let mut best: Option<Vec<Change>> = None;
    for (i, tb) in during.iter().enumerate() {
        if during[..i].contains(tb) {
            continue;
        }
        if let Some(route) = plan(old, new, *tb, &mut splits_left) {
            if best.as_ref().is_none_or(|b| route.len() < b.len()) {
                best = Some(route);
            }
        }
    }
    best
}

/// One route that keeps the tie-breaker `during` while members change: switch to it, move
/// every member to its target votes, switch to the target's tie-breaker.
fn plan(
    old: &VoteTable,
    new: &VoteTable,
    during: Option<NodeId>,
    splits_left: &mut u64,
) -> Option<Vec<Change>> {
    let mut route = Route { at: old.clone(), steps: Vec::new(), splits_left };
    if old.tie_breaker() != during && !route.take(tie_breaker_change(during)) {
        return None;
    }
    loop {
        let moves = pending(&route.at, new);
        if moves.is_empty() {
            break;
        }
        if route.steps.len() >= ROUTE_STEPS_MAX {
            return None;
        }
        // The whole of some member's change if one is safe, else the biggest part of one.
        let full = moves.iter().filter_map(|m| m.steps().into_iter().next());
        let partial = moves.iter().flat_map(|m| m.steps().into_iter().skip(1));
        let mut took = false;
        for change in full.chain(partial) {
            if route.take(change) {
                took = true;
                break;
            }
            if *route.splits_left == 0 {
                return None;
            }
        }
        if !took {
            return None;
        }
    }
    if route.at.tie_breaker() != new.tie_breaker() && !route.take(tie_breaker_change(new.tie_breaker())) {
        return None;
    }
    // No member differs and the tie-breaker is the target's: the tables are equal.
    debug_assert_eq!(route.at, *new, "a finished plan ends at its target");
    (route.steps.len() <= ROUTE_STEPS_MAX).then_some(route.steps)
}

/// A route being built.
struct Route<'a> {
    at: VoteTable,
    steps: Vec<Change>,
    splits_left: &'a mut u64,
}

impl Route<'_> {
    /// Takes `change` if it applies and passes the exact check; says whether it did.
    fn take(&mut self, change: Change) -> bool {
        let Ok(next) = apply(&self.at, &change) else {
            return false;
        };
        match search(&self.at, &next, self.splits_left) {
            Ok(Search::Intersect) => {
                self.at = next;
                self.steps.push(change);
                true
            }
            Ok(Search::Disjoint(_) | Search::OutOfBudget { .. }) | Err(_) => false,
        }
    }
}

fn tie_breaker_change(tb: Option<NodeId>) -> Change {
    Change::SetTieBreaker(match tb {
        Some(id) => TieBreaker::Node(id),
        None => TieBreaker::None,
    })
}

/// How one member differs between where the route is and where it goes.
#[derive(Debug, Clone, Copy)]
struct Move {
    id: NodeId,
    /// Votes now; `None`: not a member.
    from: Option<u32>,
    /// Votes in the target; `None`: not a member.
    to: Option<u32>,
}

impl Move {
    /// The changes that bring this member closer to its target, biggest first: the whole
    /// change, then half-way, a quarter... down to one vote (and, to add a voter, adding it
    /// as an observer). Each of them leaves the member strictly closer, so a route ends.
    fn steps(&self) -> Vec<Change> {
        let id = self.id;
        match (self.from, self.to) {
            (None, Some(to)) => {
                let mut steps: Vec<Change> =
                    toward(0, to).into_iter().map(|votes| Change::AddMember { id, votes }).collect();
                // As an observer: never changes a quorum (the only step when `to` is 0).
                steps.push(Change::AddMember { id, votes: 0 });
                steps
            }
            (Some(from), Some(to)) => {
                toward(from, to).into_iter().map(|votes| Change::SetVotes { id, votes }).collect()
            }
            (Some(from), None) => {
                let mut steps = vec![Change::RemoveMember { id }];
                // `toward` starts with 0 votes, the same step for quorums as removing: skip it.
                steps.extend(toward(from, 0).into_iter().skip(1).map(|votes| Change::SetVotes { id, votes }));
                // Removing it and dropping the tie-breaker at once: one step that needs no
                // earlier change to spread to it (a dead member never runs one).
                steps.push(Change::RemoveMemberSetTieBreaker { id, tie_breaker: TieBreaker::None });
                steps
            }
            (None, None) => Vec::new(),
        }
    }

    /// Adds first, then changed votes, then removals (replacing a member adds before it
    /// removes); by id within each.
    fn rank(&self) -> (u8, NodeId) {
        let kind = match (self.from, self.to) {
            (None, _) => 0,
            (Some(_), Some(_)) => 1,
            (Some(_), None) => 2,
        };
        (kind, self.id)
    }
}

/// Every member whose presence or votes differ between `at` and `target`, in [`Move::rank`]
/// order.
fn pending(at: &VoteTable, target: &VoteTable) -> Vec<Move> {
    let mut ids: Vec<NodeId> = at.members().chain(target.members()).map(|(id, _)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    let votes_in = |t: &VoteTable, id| t.is_member(id).then(|| t.votes(id));
    let mut moves: Vec<Move> = ids
        .into_iter()
        .map(|id| Move { id, from: votes_in(at, id), to: votes_in(target, id) })
        .filter(|m| m.from != m.to)
        .collect();
    moves.sort_by_key(Move::rank);
    moves
}

/// Vote counts between `from` (excluded) and `to` (included), `to` first, then each half as
/// far from `from` as the one before, ending one vote from `from`. Empty when they are equal.
pub(super) fn toward(from: u32, to: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut x = to;
    while x != from {
        out.push(x);
        x = if x > from { from + (x - from) / 2 } else { from - (from - x) / 2 };
    }
    out
}
