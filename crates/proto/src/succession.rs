//! Succession of quorum definitions: one typed change at a time, and the rule a node checks
//! before it adopts a new definition while the cluster runs.
//!
//! Two nodes that run different definitions during a change must never both hold a quorum:
//! a node of the old definition and a node of the new one would then both accept writes.
//! So a definition may only follow another when **every quorum of the new definition
//! intersects every quorum of the old** ([`check_successor`]). The check is exact: it
//! searches every way of splitting the voters of both definitions in two
//! ([`disjoint_quorums`]) and either proves that no split gives both sides a quorum or
//! returns one that does ([`Witness`]). When a change is refused, [`safe_path`] looks for a
//! sequence of single [`Change`]s from the old definition to the new one in which each step
//! passes the check against the one before.
//!
//! ```text
//! operator's Change ─► apply(current, change) ─► candidate definition
//!                      check_successor(current, candidate)
//!                        ├─ Ok: adopt (the protocol spreads it, one change at a time)
//!                        └─ Err(Unsafe { witness, route }): refuse, say why and what is safe
//! ```
//!
//! Everything here is pure: no clock, no I/O, no randomness. Spreading a definition between
//! nodes and refusing the next change until every voter runs the current one are the
//! protocol's job, built on these functions.

mod intersect;
mod route;
#[cfg(test)]
mod tests;

use core::fmt;

pub use intersect::{disjoint_quorums, TooManyVoters, Witness, SPLITS_MAX, VOTERS_MAX};
pub use route::{safe_path, ROUTE_SPLITS_MAX, ROUTE_STEPS_MAX};

use crate::{MembershipError, NodeId, TieBreaker, VoteTable};

/// One change to a quorum definition: what `quorate members add|remove|set-votes` and
/// `quorate config set quorum.tie_breaker=...` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A new member with `votes` votes (0: an observer).
    AddMember {
        /// The new member; it must not be a member yet.
        id: NodeId,
        /// Its votes; 0 makes an observer.
        votes: u32,
    },
    /// A member leaves the definition. The tie-breaker cannot leave (name another first),
    /// nor can the last voter.
    RemoveMember {
        /// The member that leaves.
        id: NodeId,
    },
    /// A member leaves and the tie-breaker changes with it, as one step: how a dead
    /// member is removed when removing it alone is unsafe under the current tie-breaker
    /// (three voters under `lowest-id`: `{1}` would be a quorum of `{1,2}` beside `{2,3}`)
    /// and a separate tie-breaker change first cannot spread (the dead member never runs
    /// it). The tie-breaker is resolved against the remaining members.
    RemoveMemberSetTieBreaker {
        /// The member that leaves.
        id: NodeId,
        /// The tie-breaker from this version on.
        tie_breaker: TieBreaker,
    },
    /// A member's votes change (0: it becomes an observer).
    SetVotes {
        /// The member whose votes change.
        id: NodeId,
        /// Its new number of votes.
        votes: u32,
    },
    /// How an exact half of the votes is decided. `LowestId` is resolved against the
    /// definition the change applies to: the lowest voter id there.
    SetTieBreaker(TieBreaker),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddMember { id, votes: 0 } => write!(f, "add {id} as an observer"),
            Change::AddMember { id, votes } => write!(f, "add {id} with {}", Votes(*votes)),
            Change::RemoveMember { id } => write!(f, "remove {id}"),
            Change::RemoveMemberSetTieBreaker { id, tie_breaker: TieBreaker::None } => {
                write!(f, "remove {id} and set the tie-breaker to none")
            }
            Change::RemoveMemberSetTieBreaker { id, tie_breaker: TieBreaker::LowestId } => {
                write!(f, "remove {id} and set the tie-breaker to the lowest voter id")
            }
            Change::RemoveMemberSetTieBreaker { id, tie_breaker: TieBreaker::Node(tb) } => {
                write!(f, "remove {id} and set the tie-breaker to {tb}")
            }
            Change::SetVotes { id, votes } => write!(f, "give {id} {}", Votes(*votes)),
            Change::SetTieBreaker(TieBreaker::None) => {
                f.write_str("set the tie-breaker to none (strict majority)")
            }
            Change::SetTieBreaker(TieBreaker::LowestId) => {
                f.write_str("set the tie-breaker to the lowest voter id")
            }
            Change::SetTieBreaker(TieBreaker::Node(id)) => write!(f, "set the tie-breaker to {id}"),
        }
    }
}

/// "1 vote", "3 votes".
struct Votes(u32);

impl fmt::Display for Votes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 vote"),
            n => write!(f, "{n} votes"),
        }
    }
}

/// Why a [`Change`] cannot be applied to a definition. Nothing changed when this is
/// returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// `AddMember` of a node that is already a member (use `SetVotes` to change its votes).
    #[error("{id} is already a member; change its votes instead")]
    AlreadyMember {
        /// The node named in the change.
        id: NodeId,
    },
    /// `RemoveMember` or `SetVotes` of a node that is not a member.
    #[error("{id} is not a member")]
    UnknownMember {
        /// The node named in the change.
        id: NodeId,
    },
    /// The change would leave no member with votes, so no set of members could ever be a
    /// quorum again.
    #[error("{id} is the last member with votes; a definition needs at least one voter")]
    LastVoter {
        /// The last voter.
        id: NodeId,
    },
    /// The change would remove the tie-breaker or take its votes away.
    #[error("{id} is the tie-breaker; name another tie-breaker (or none) before it stops voting")]
    TieBreakerLeaves {
        /// The current tie-breaker.
        id: NodeId,
    },
    /// `SetTieBreaker` names a node that is not a voter.
    #[error("tie_breaker {id} is not a member with votes > 0")]
    TieBreakerNotVoter {
        /// The node named as tie-breaker.
        id: NodeId,
    },
    /// The sum of votes would not fit in 32 bits.
    #[error("total votes would exceed {max}", max = u32::MAX)]
    TooManyVotes,
    /// The definition the change leads to is not one (see [`MembershipError`]).
    #[error(transparent)]
    Invalid(MembershipError),
    /// The change leaves the definition as it is (the same votes, the same tie-breaker).
    #[error("nothing to change: {change} leaves the definition as it is")]
    NoChange {
        /// The change that changes nothing.
        change: Change,
    },
}

/// Applies one change to `table` and returns the new definition; `table` is left as it
/// was. The resolved tie-breaker stays the same node unless the change names another, so a
/// new member with a lower id does not silently take the tie over.
pub fn apply(table: &VoteTable, change: &Change) -> Result<VoteTable, ChangeError> {
    let (mut members, mut tie_breaker) = table.parts();
    let voters = members.iter().filter(|(_, v)| *v > 0).count();
    match *change {
        Change::AddMember { id, votes } => {
            if table.is_member(id) {
                return Err(ChangeError::AlreadyMember { id });
            }
            members.push((id, votes));
        }
        Change::RemoveMemberSetTieBreaker { id, tie_breaker: rule } => {
            if !table.is_member(id) {
                return Err(ChangeError::UnknownMember { id });
            }
            if table.votes(id) > 0 && voters == 1 {
                return Err(ChangeError::LastVoter { id });
            }
            members.retain(|(m, _)| *m != id);
            let votes_of = |x: NodeId| members.iter().find(|(m, _)| *m == x).map_or(0, |(_, v)| *v);
            tie_breaker = match rule {
                TieBreaker::None => None,
                TieBreaker::LowestId => members.iter().find(|(_, v)| *v > 0).map(|(id, _)| *id),
                TieBreaker::Node(tb) if votes_of(tb) > 0 => Some(tb),
                TieBreaker::Node(tb) => return Err(ChangeError::TieBreakerNotVoter { id: tb }),
            };
        }
        Change::RemoveMember { id } | Change::SetVotes { id, votes: 0 } => {
            if !table.is_member(id) {
                return Err(ChangeError::UnknownMember { id });
            }
            if table.votes(id) > 0 && voters == 1 {
                return Err(ChangeError::LastVoter { id });
            }
            if tie_breaker == Some(id) {
                return Err(ChangeError::TieBreakerLeaves { id });
            }
            match change {
                Change::RemoveMember { .. } => members.retain(|(m, _)| *m != id),
                _ => set_votes(&mut members, id, 0),
            }
        }
        Change::SetVotes { id, votes } => {
            if !table.is_member(id) {
                return Err(ChangeError::UnknownMember { id });
            }
            set_votes(&mut members, id, votes);
        }
        Change::SetTieBreaker(rule) => {
            tie_breaker = match rule {
                TieBreaker::None => None,
                TieBreaker::LowestId => members.iter().find(|(_, v)| *v > 0).map(|(id, _)| *id),
                TieBreaker::Node(id) if table.votes(id) > 0 => Some(id),
                TieBreaker::Node(id) => return Err(ChangeError::TieBreakerNotVoter { id }),
            };
        }
    }
    let next = VoteTable::from_parts(&members, tie_breaker).map_err(|e| match e {
        MembershipError::TooManyVotes => ChangeError::TooManyVotes,
        // Every other refusal of the table was checked above in the change's own words;
        // should one slip through, it still comes back as an error, never as a panic.
        other => ChangeError::Invalid(other),
    })?;
    if next == *table {
        return Err(ChangeError::NoChange { change: *change });
    }
    Ok(next)
}

fn set_votes(members: &mut [(NodeId, u32)], id: NodeId, votes: u32) {
    for (m, v) in members.iter_mut() {
        if *m == id {
            *v = votes;
        }
    }
}

/// A new definition that would let two disjoint quorums exist while nodes switch over:
/// the proof ([`Witness`]) and, when one was found, a sequence of single changes that gets
/// to the same definition safely. Its `Display` is the reason an operator reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeChange {
    /// A quorum of the current definition and a disjoint quorum of the new one.
    pub witness: Witness,
    /// Single changes from the current definition to the new one, each of which passes
    /// [`check_successor`] against the definition before it; `None` when [`safe_path`]
    /// found none within its bounds.
    pub route: Option<Vec<Change>>,
}

impl fmt::Display for UnsafeChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.witness)?;
        match &self.route {
            Some(route) => {
                f.write_str("; a safe sequence, one change at a time: ")?;
                for (i, step) in route.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}. {step}", i + 1)?;
                }
                Ok(())
            }
            None => write!(f, "; no safe sequence of at most {ROUTE_STEPS_MAX} single changes was found"),
        }
    }
}

/// Why a definition may not follow another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SuccessionError {
    /// Some quorum of the current definition and some quorum of the new one are disjoint.
    #[error("{0}")]
    Unsafe(UnsafeChange),
    /// The two definitions have more voters together than the exact check covers.
    #[error(transparent)]
    TooManyVoters(#[from] TooManyVoters),
}

/// Whether a node running `old` may adopt `new`: `Ok` when every quorum of `new` intersects
/// every quorum of `old`, so that nodes on either side of the switch can never both write.
///
/// Cost: one [`disjoint_quorums`] call, and on refusal one [`safe_path`] search.
pub fn check_successor(old: &VoteTable, new: &VoteTable) -> Result<(), SuccessionError> {
    match disjoint_quorums(old, new)? {
        None => Ok(()),
        Some(witness) => Err(SuccessionError::Unsafe(UnsafeChange { witness, route: safe_path(old, new) })),
    }
}
