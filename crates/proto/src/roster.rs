//! [`Roster`]: one version of the cluster's definition, as it changes while the cluster runs
//! (`docs/reconfiguration.md`): the vote table, the address each member is dialed at, and a
//! version that rises by one per change.
//!
//! ```text
//!   file (version 0) ──► Roster ──next(change)──► Roster v+1 ──► check_successor(v, v+1)
//!                          │ digest(): version 0 hashes as the vote table alone
//!                          ▼
//!                    RosterMessage on the wire (from_message checks it like any input)
//! ```
//!
//! The digest covers the votes, the tie-breaker, (from version 1) the version and the
//! timing preset when one is named: two nodes with equal digests run the same version of the
//! same quorum rule. Addresses are not in it: they do not decide quorums, and one version has
//! one list of them anyway (it was proposed once and travels whole).
//!
//! The timing preset is a name only (`"lan"`, `"wan"`): what it means is the runtime's
//! business, the core never reads it. It changes by its own kind of step
//! ([`Roster::with_timing`]) rather than a [`Change`], because it leaves the votes as they are
//! (the succession check passes trivially) and a [`Change`] is a vote-table edit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::succession::{apply, Change, ChangeError};
use crate::{ClusterId, DefinitionDigest, DefinitionParts, Incarnation, MembershipError, NodeId, VoteTable};

/// The longest member address carried, in bytes (a DNS name is at most 253, plus a port).
pub const ADDRESS_BYTES_MAX: usize = 261;

/// The longest timing preset name carried, in bytes.
pub const TIMING_NAME_BYTES_MAX: usize = 32;

/// One version of the cluster's definition. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    /// Rises by one with every change; 0 for the definition a configuration file gives.
    pub version: u64,
    /// The members, their votes and the resolved tie-breaker.
    pub votes: VoteTable,
    /// Where each member is dialed (`HOST:PORT` or `IP:PORT`); a member without one is
    /// never dialed and only accepted.
    pub addresses: BTreeMap<NodeId, String>,
    /// The vote table of the version this one follows (`None` at version 0). Until a
    /// quorum of its voters runs this version, a node keeps it in force beside this one
    /// (see `docs/reconfiguration.md`, "Committed"): two changes made to the same version
    /// at once, each a safe successor of it but not of each other, then never let two
    /// disjoint quorums write.
    pub parent: Option<VoteTable>,
    /// The timing preset every node runs from this version on, by name; `None` until an
    /// online change names one (each node then runs the timing of its own file).
    pub timing: Option<String>,
}

/// A [`Roster`] on the wire: the answer to a definition request, from nodes whose version
/// is above 0 (an older build drops it as a kind it does not know, and counts it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterMessage {
    /// The sender. Must match the node the transport authenticated.
    pub from: NodeId,
    /// The sender's current life.
    pub incarnation: Incarnation,
    /// The definition's version.
    pub version: u64,
    /// Every member: id, votes, address (empty: none), in id order.
    pub members: Vec<(NodeId, u32, String)>,
    /// The resolved tie-breaker; `None` when an exact half never wins.
    pub tie_breaker: Option<NodeId>,
    /// The version this one follows, as `(id, votes)` pairs and its tie-breaker (see
    /// [`Roster::parent`]); `None` at version 0.
    pub parent: Option<DefinitionParts>,
    /// The timing preset by name, once an online change named one.
    pub timing: Option<String>,
}

/// Why a [`RosterMessage`] is not a roster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    /// The members and tie-breaker are not a vote table.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// An address is longer than [`ADDRESS_BYTES_MAX`].
    #[error("the address of {id} is {len} bytes; at most {ADDRESS_BYTES_MAX} are accepted")]
    AddressTooLong {
        /// The member.
        id: NodeId,
        /// Its address's length in bytes.
        len: usize,
    },
    /// A timing preset name is empty, longer than [`TIMING_NAME_BYTES_MAX`], or not
    /// lowercase letters, digits and `-`.
    #[error("timing preset name {name:?} is not 1 to {TIMING_NAME_BYTES_MAX} of a-z, 0-9 and -")]
    BadTimingName {
        /// The name, cut to [`TIMING_NAME_BYTES_MAX`] bytes.
        name: String,
    },
}

impl Roster {
    /// Version 0: the definition a configuration file gives.
    pub fn initial(votes: VoteTable, addresses: BTreeMap<NodeId, String>) -> Self {
        Roster { version: 0, votes, addresses, parent: None, timing: None }
    }

    /// The digest heartbeats carry: the vote table's own at version 0 (so a cluster that
    /// never changed online keeps the digests it always had), and from version 1 the same
    /// hash continued over the version, then over the timing preset's name when one is
    /// named (a definition without one keeps the digest it had before presets existed).
    pub fn digest(&self, cluster: ClusterId) -> DefinitionDigest {
        let base = self.votes.digest(cluster);
        if self.version == 0 {
            return base;
        }
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut bytes = Vec::with_capacity(17 + TIMING_NAME_BYTES_MAX);
        bytes.push(b'v');
        bytes.extend_from_slice(&self.version.to_le_bytes());
        if let Some(name) = &self.timing {
            bytes.push(b't');
            // The length first, so no name is a prefix of another's encoding.
            bytes.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            bytes.extend_from_slice(name.as_bytes());
        }
        let start = u64::from_le_bytes(base.0);
        let hash = bytes.iter().fold(start, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
        DefinitionDigest(hash.to_le_bytes())
    }

    /// The next version: `change` applied, with `address` for a member it adds (ignored
    /// otherwise). A removed member's address goes with it. `self` is left as it was.
    pub fn next(&self, change: &Change, address: Option<&str>) -> Result<Roster, ChangeError> {
        let votes = apply(&self.votes, change)?;
        let mut addresses = self.addresses.clone();
        addresses.retain(|id, _| votes.is_member(*id));
        if let (Change::AddMember { id, .. }, Some(addr)) = (change, address) {
            addresses.insert(*id, addr.to_owned());
        }
        let parent = Some(self.votes.clone());
        let timing = self.timing.clone();
        Ok(Roster { version: self.version.saturating_add(1), votes, addresses, parent, timing })
    }

    /// The next version with the timing preset `name`: votes, tie-breaker and addresses as
    /// they are. Refuses a name that is not 1 to [`TIMING_NAME_BYTES_MAX`] bytes of `a-z`,
    /// `0-9` and `-`; whether the runtime knows the preset is its own check.
    pub fn with_timing(&self, name: &str) -> Result<Roster, RosterError> {
        check_timing_name(name)?;
        Ok(Roster {
            version: self.version.saturating_add(1),
            timing: Some(name.to_owned()),
            parent: Some(self.votes.clone()),
            ..self.clone()
        })
    }

    /// Where `id` is dialed, if it has an address.
    pub fn address(&self, id: NodeId) -> Option<&str> {
        self.addresses.get(&id).map(String::as_str)
    }

    /// This roster as `from`'s message.
    pub fn to_message(&self, from: NodeId, incarnation: Incarnation) -> RosterMessage {
        let members = self
            .votes
            .members()
            .map(|(id, v)| (id, v, self.addresses.get(&id).cloned().unwrap_or_default()))
            .collect();
        RosterMessage {
            from,
            incarnation,
            version: self.version,
            members,
            tie_breaker: self.votes.tie_breaker(),
            parent: self.parent.as_ref().map(VoteTable::parts),
            timing: self.timing.clone(),
        }
    }

    /// The roster a peer sent, with the checks any definition from a peer gets.
    pub fn from_message(m: &RosterMessage) -> Result<Roster, RosterError> {
        let mut addresses = BTreeMap::new();
        for (id, _, addr) in &m.members {
            if addr.len() > ADDRESS_BYTES_MAX {
                return Err(RosterError::AddressTooLong { id: *id, len: addr.len() });
            }
            if !addr.is_empty() {
                addresses.insert(*id, addr.clone());
            }
        }
        let pairs: Vec<(NodeId, u32)> = m.members.iter().map(|(id, v, _)| (*id, *v)).collect();
        let votes = VoteTable::from_parts(&pairs, m.tie_breaker)?;
        let parent = match &m.parent {
            Some((members, tie_breaker)) => Some(VoteTable::from_parts(members, *tie_breaker)?),
            None => None,
        };
        if let Some(name) = &m.timing {
            check_timing_name(name)?;
        }
        Ok(Roster { version: m.version, votes, addresses, parent, timing: m.timing.clone() })
    }
}

/// A timing preset name as a roster carries it: 1 to [`TIMING_NAME_BYTES_MAX`] bytes of
/// `a-z`, `0-9` and `-`.
pub fn check_timing_name(name: &str) -> Result<(), RosterError> {
    let fits = (1..=TIMING_NAME_BYTES_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if fits {
        return Ok(());
    }
    let cut: String = name.chars().take(TIMING_NAME_BYTES_MAX).collect();
    Err(RosterError::BadTimingName { name: cut })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TieBreaker;

    fn three() -> Roster {
        let votes = VoteTable::new((1..=3).map(|i| (NodeId(i), 1)), TieBreaker::None)
            .unwrap_or_else(|e| panic!("{e}"));
        let addresses = (1..=3).map(|i| (NodeId(i), format!("10.0.0.{i}:7000"))).collect();
        Roster::initial(votes, addresses)
    }

    #[test]
    fn version_zero_keeps_the_vote_tables_digest_and_later_versions_differ() {
        let r = three();
        assert_eq!(r.digest(ClusterId(7)), r.votes.digest(ClusterId(7)));
        let v1 = Roster { version: 1, ..r.clone() };
        let v2 = Roster { version: 2, ..r.clone() };
        assert_ne!(v1.digest(ClusterId(7)), r.digest(ClusterId(7)));
        assert_ne!(v1.digest(ClusterId(7)), v2.digest(ClusterId(7)));
        assert_ne!(v1.digest(ClusterId(7)), v1.digest(ClusterId(8)));
        // Addresses do not decide quorums and are not hashed.
        let mut moved = v1.clone();
        moved.addresses.insert(NodeId(1), "elsewhere:1".into());
        assert_eq!(moved.digest(ClusterId(7)), v1.digest(ClusterId(7)));
    }

    #[test]
    fn a_timing_step_keeps_the_votes_enters_the_digest_and_later_versions_keep_it() {
        let r = three();
        let wan = r.with_timing("wan").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((wan.version, wan.timing.as_deref(), &wan.votes), (1, Some("wan"), &r.votes));
        let plain = Roster { version: 1, ..r.clone() };
        assert_ne!(wan.digest(ClusterId(7)), plain.digest(ClusterId(7)), "the name is hashed");
        let lan = r.with_timing("lan").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(wan.digest(ClusterId(7)), lan.digest(ClusterId(7)));
        let grown = wan.next(&Change::AddMember { id: NodeId(4), votes: 1 }, None);
        assert_eq!(grown.map(|g| g.timing), Ok(Some("wan".to_owned())));
        for bad in ["", "WAN", "w an", &"x".repeat(TIMING_NAME_BYTES_MAX + 1)] {
            assert!(matches!(r.with_timing(bad), Err(RosterError::BadTimingName { .. })), "{bad:?}");
        }
        let mut m = wan.to_message(NodeId(1), Incarnation(1));
        assert_eq!(Roster::from_message(&m).as_ref(), Ok(&wan));
        m.timing = Some("x".repeat(1000));
        assert!(
            matches!(Roster::from_message(&m), Err(RosterError::BadTimingName { name }) if name.len() == 32)
        );
    }

    #[test]
    fn next_adds_with_its_address_and_removes_with_it() {
        let r = three();
        let added = r.next(&Change::AddMember { id: NodeId(4), votes: 1 }, Some("n4:7000"));
        let added = added.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((added.version, added.address(NodeId(4))), (1, Some("n4:7000")));
        assert_eq!(added.parent.as_ref(), Some(&r.votes), "a change names the version it follows");
        let removed =
            added.next(&Change::RemoveMember { id: NodeId(2) }, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((removed.version, removed.address(NodeId(2))), (2, None));
        assert_eq!(
            r.next(&Change::RemoveMember { id: NodeId(9) }, None),
            Err(ChangeError::UnknownMember { id: NodeId(9) })
        );
    }

    #[test]
    fn a_roster_survives_its_message_and_bad_ones_are_refused() {
        let r = three()
            .next(&Change::AddMember { id: NodeId(5), votes: 0 }, None)
            .unwrap_or_else(|e| panic!("{e}"));
        let m = r.to_message(NodeId(1), Incarnation(3));
        assert_eq!(Roster::from_message(&m), Ok(r));
        let mut long = m.clone();
        long.members[0].2 = "x".repeat(ADDRESS_BYTES_MAX + 1);
        assert!(matches!(Roster::from_message(&long), Err(RosterError::AddressTooLong { .. })));
        let mut dup = m;
        dup.members[1].0 = NodeId(1);
        assert!(matches!(Roster::from_message(&dup), Err(RosterError::Membership(_))));
    }
}
