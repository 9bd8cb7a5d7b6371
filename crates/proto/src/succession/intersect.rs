//! The exact check: can a quorum of one definition be disjoint from a quorum of another?
//!
//! Let U be the voters of either definition (observers and strangers hold no votes and are
//! never a tie-breaker, so they never make a set a quorum). Quorums are monotone: adding
//! members to a quorum keeps it one. So a quorum A of `old` and a disjoint quorum B of
//! `new` exist iff some A ⊆ U is a quorum of `old` whose complement U \ A is a quorum of
//! `new` (grow B to U \ A; shrink A to A ∩ U). That is 2^|U| candidate sets A.
//!
//! Voters that look alike to both definitions (the same votes in `old`, the same in `new`,
//! the same tie-breaker roles) are interchangeable, so the search only decides *how many*
//! of each such class go into A: Π (size + 1) candidates over the classes, at most 2^|U|
//! (every voter alike to no other) and a few hundred for a cluster of equal votes.

use core::fmt;

use crate::{NodeId, VoteTable};

/// The most distinct voters two definitions may have together for [`disjoint_quorums`] to
/// check them: the search visits at most 2^24 (about 16.8 million) candidate splits, each in
/// constant time: 43 ms when no two voters are alike, about 1 µs for 24 equal voters (see
/// "Succession" in `docs/design.md`). Observers carry no vote and do not count here.
pub const VOTERS_MAX: usize = 24;

/// The most splits one [`disjoint_quorums`] call visits: 2^[`VOTERS_MAX`].
pub const SPLITS_MAX: u64 = 1 << VOTERS_MAX;

/// Two definitions with more voters together than [`VOTERS_MAX`]: the exact check would
/// cost too much, so the change is refused (go through a definition with fewer voters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the two definitions have {voters} voters together; the safety check covers at most {max}")]
pub struct TooManyVoters {
    /// Distinct voters of the two definitions together.
    pub voters: usize,
    /// [`VOTERS_MAX`].
    pub max: usize,
}

/// A quorum of the current definition and a quorum of the new one that share no member:
/// both could write at the same time. Each set is inclusion-minimal (drop any member and it
/// is no longer a quorum) and lists voters of its own definition only, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    /// A quorum of the current (old) definition.
    pub current: Vec<NodeId>,
    /// A quorum of the new definition, disjoint from `current`.
    pub new: Vec<NodeId>,
}

impl fmt::Display for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is a quorum of the current definition and {} of the new one: both could write",
            IdSet(&self.current),
            IdSet(&self.new)
        )
    }
}

/// `{2,3}`.
struct IdSet<'a>(&'a [NodeId]);

impl fmt::Display for IdSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, id) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{}", id.0)?;
        }
        f.write_str("}")
    }
}

/// A quorum of `old` and a disjoint quorum of `new`, if any exist; `None` proves that every
/// quorum of `new` intersects every quorum of `old`.
///
/// Exact, not a heuristic: it visits every split of the voters of both definitions (up to
/// interchangeable voters, see the module notes). Cost: Π (class size + 1) splits over the
/// classes of alike voters, at most 2^|U| for |U| distinct voters; refused with
/// [`TooManyVoters`] above [`VOTERS_MAX`]. Memory: O(|U|).
pub fn disjoint_quorums(old: &VoteTable, new: &VoteTable) -> Result<Option<Witness>, TooManyVoters> {
    // At most VOTERS_MAX voters make at most 2^VOTERS_MAX splits, so this budget never runs
    // out; if it did, the answer would be unknown, and unknown is a refusal, never a yes.
    let mut budget = SPLITS_MAX;
    match search(old, new, &mut budget)? {
        Search::Disjoint(witness) => Ok(Some(witness)),
        Search::Intersect => Ok(None),
        Search::OutOfBudget { voters } => Err(TooManyVoters { voters, max: VOTERS_MAX }),
    }
}

/// What a budgeted search found.
#[derive(Debug)]
pub(super) enum Search {
    /// Two disjoint quorums.
    Disjoint(Witness),
    /// Every quorum of one intersects every quorum of the other.
    Intersect,
    /// `splits_left` ran out before the search ended: nothing is known.
    OutOfBudget {
        /// Distinct voters of the two definitions together.
        voters: usize,
    },
}

/// The search behind [`disjoint_quorums`], counting each split it visits against
/// `splits_left` (so that a caller that runs many checks can bound their sum).
pub(super) fn search(
    old: &VoteTable,
    new: &VoteTable,
    splits_left: &mut u64,
) -> Result<Search, TooManyVoters> {
    let classes = classes(old, new);
    let voters: usize = classes.iter().map(|c| c.ids.len()).sum();
    if voters > VOTERS_MAX {
        return Err(TooManyVoters { voters, max: VOTERS_MAX });
    }
    let old_tb = classes.iter().position(|c| c.old_tb);
    let new_tb = classes.iter().position(|c| c.new_tb);
    // taken[i]: how many of class i are in A. The odometer starts at A = {} (B = U).
    let mut taken = vec![0usize; classes.len()];
    let mut held_old: u64 = 0;
    let mut held_new: u64 = classes.iter().map(|c| c.new_votes * c.ids.len() as u64).sum();
    loop {
        if *splits_left == 0 {
            return Ok(Search::OutOfBudget { voters });
        }
        *splits_left -= 1;
        let old_tb_in_a = old_tb.is_some_and(|i| taken[i] > 0);
        let new_tb_in_b = new_tb.is_some_and(|i| taken[i] < classes[i].ids.len());
        if old.is_quorum(held_old, old_tb_in_a) && new.is_quorum(held_new, new_tb_in_b) {
            return Ok(Search::Disjoint(witness(old, new, &classes, &taken)));
        }
        // Next split: add one more member of the first class that has one left, emptying the
        // classes before it (a mixed-radix counter; totals kept up to date as it turns).
        let mut i = 0;
        loop {
            let Some(class) = classes.get(i) else {
                return Ok(Search::Intersect);
            };
            let k = taken[i];
            if k < class.ids.len() {
                taken[i] = k + 1;
                held_old += class.old_votes;
                // Class i still has a member in B, whose new votes are in held_new.
                held_new -= class.new_votes;
                break;
            }
            held_old -= class.old_votes * k as u64;
            held_new += class.new_votes * k as u64;
            taken[i] = 0;
            i += 1;
        }
    }
}

/// Voters that are alike to both definitions.
#[derive(Debug)]
struct Class {
    old_votes: u64,
    new_votes: u64,
    old_tb: bool,
    new_tb: bool,
    ids: Vec<NodeId>,
}

fn classes(old: &VoteTable, new: &VoteTable) -> Vec<Class> {
    let mut ids: Vec<NodeId> =
        old.members().chain(new.members()).filter(|(_, v)| *v > 0).map(|(id, _)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut classes: Vec<Class> = Vec::new();
    for id in ids {
        let key = (
            u64::from(old.votes(id)),
            u64::from(new.votes(id)),
            old.tie_breaker() == Some(id),
            new.tie_breaker() == Some(id),
        );
        match classes.iter_mut().find(|c| (c.old_votes, c.new_votes, c.old_tb, c.new_tb) == key) {
            Some(class) => class.ids.push(id),
            None => classes.push(Class {
                old_votes: key.0,
                new_votes: key.1,
                old_tb: key.2,
                new_tb: key.3,
                ids: vec![id],
            }),
        }
    }
    classes
}

/// The split the search stopped at, as two minimal quorums: the first `taken[i]` members of
/// each class go to A, the rest to B; then each side drops members (highest id first) while
/// it stays a quorum, which drops every member that holds no vote in its definition.
fn witness(old: &VoteTable, new: &VoteTable, classes: &[Class], taken: &[usize]) -> Witness {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (class, k) in classes.iter().zip(taken) {
        let (to_a, to_b) = class.ids.split_at((*k).min(class.ids.len()));
        a.extend_from_slice(to_a);
        b.extend_from_slice(to_b);
    }
    Witness { current: minimal(old, a), new: minimal(new, b) }
}

/// Drops members of the quorum `set` while it stays a quorum of `table`; quorums are
/// monotone, so one pass leaves a set from which no member can be dropped.
fn minimal(table: &VoteTable, mut set: Vec<NodeId>) -> Vec<NodeId> {
    set.sort_unstable();
    let mut i = set.len();
    while i > 0 {
        i -= 1;
        let id = set.remove(i);
        if !table.is_quorum_set(set.iter().copied()) {
            set.insert(i, id);
        }
    }
    set
}
