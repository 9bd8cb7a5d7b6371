//! A node removed from the cluster while it was down: it never received the definition that
//! removed it, so it learns it from its members' refusals.
//!
//! ```text
//!   transport: peers that closed our connections with CLOSE_REMOVED (refused_as_non_member)
//!        │  every REFUSAL_CHECK_EVERY, in the driver
//!        ▼
//!   counted = those this node has heard running a definition (this life or, from the data
//!             directory, an earlier one): they accepted it as a member once
//!        │
//!        ├─ counted carry a quorum of the votes of the definition this node runs
//!        │     ──► core.shutdown (fenced for good, Leave queued), Removal::RefusedAsNonMember,
//!        │         an error in the log; `quorate run` exits (code 3)
//!        └─ fewer ──► status shows them (`refused_as_non_member_by`), the node keeps running
//! ```
//!
//! Why this is safe: stopping is always safe (a fenced node writes nothing); the only risk
//! is to liveness, that the node stops while it is still a member. The word it acts on is
//! its members': peers authenticated by the cluster CA, whose votes the core trusts anyway.
//! A member says "not a member" (`CLOSE_REMOVED`) only for an id it had as a member and no
//! longer has, never for one it never knew (a node being added is ignored or refused with
//! another code), and an address change is closed with another code. A refusal counts only
//! from a peer this node once heard, so a node added back with an empty data directory,
//! which members that still remember its removal refuse until they adopt the addition, is
//! not stopped by them. And it takes a quorum: a change that is still spreading (some
//! members removed the node, others not yet) leaves it running.
//!
//! Nothing is written to the data directory on this evidence (it is indirect: the node
//! never saw the definition, nor its version): the next start runs again, and stops again
//! the same way while the members refuse it.

use std::fmt;
use std::time::Duration;

use quorate_proto::NodeId;

use crate::node::Running;

/// How often the driver looks at which peers refuse this node as a non-member.
pub(crate) const REFUSAL_CHECK_EVERY: Duration = Duration::from_millis(200);

/// Why a node left the cluster of its own accord.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    /// A definition this node adopted does not list it. The data directory keeps that
    /// definition, so the node does not start again.
    ByDefinition {
        /// The definition's version.
        version: u64,
    },
    /// Peers carrying a quorum of the votes of the definition this node runs close its
    /// connections saying it is not their member: it was removed by a definition it never
    /// received (it was down), whose version it does not know. Nothing is recorded in the
    /// data directory.
    RefusedAsNonMember {
        /// The peers whose refusals made the quorum, in id order.
        by: Vec<NodeId>,
    },
}

impl Removal {
    /// The version of the definition that removed the node, when it is known.
    pub fn version(&self) -> Option<u64> {
        match self {
            Removal::ByDefinition { version } => Some(*version),
            Removal::RefusedAsNonMember { .. } => None,
        }
    }
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removal::ByDefinition { version } => {
                write!(f, "removed from the cluster by definition version {version}")
            }
            Removal::RefusedAsNonMember { by } => write!(
                f,
                "{} {} refuse it as a non-member: it was removed from the cluster while it was down \
                 (by a definition it never received; its version is unknown)",
                if by.len() == 1 { "member" } else { "members" },
                ids(by)
            ),
        }
    }
}

/// The driver's watch on its members' refusals.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    /// The refusing peers last seen, to log changes only.
    seen: Vec<NodeId>,
    next_check: Option<tokio::time::Instant>,
}

impl Refusals {
    /// Looks at the refusals when [`REFUSAL_CHECK_EVERY`] has passed since the last look;
    /// when the peers refusing this node carry a quorum, shuts the core down and returns the
    /// removal. Does nothing once the node was removed.
    pub(crate) fn check(&mut self, shared: &Running) -> Option<Removal> {
        let now = tokio::time::Instant::now();
        if self.next_check.is_some_and(|at| now < at) || shared.removed.borrow().is_some() {
            return None;
        }
        self.next_check = Some(now + REFUSAL_CHECK_EVERY);
        let refusing = shared.transport.refused_as_non_member();
        let me = shared.transport.me();
        let mut core = shared.core.lock();
        // Only peers that once took this node as a member (see the module docs).
        let counted: Vec<NodeId> =
            refusing.iter().copied().filter(|p| core.peer_version(*p).is_some()).collect();
        let votes = &core.roster().votes;
        if !counted.is_empty() && votes.is_quorum_set(counted.iter().copied()) {
            core.shutdown(shared.clock.now());
            drop(core);
            let removal = Removal::RefusedAsNonMember { by: counted };
            tracing::error!(
                node = me.0,
                "node {me}: {removal}. It has fenced itself for good and leaves. Nothing is written to \
                 its data directory (the evidence is indirect), so a restart runs it again and it stops \
                 again while the members refuse it. To bring the host back: add it again from a running \
                 member, then start it with a file listing the current members and a new, empty data \
                 directory"
            );
            self.seen = refusing;
            return Some(removal);
        }
        drop(core);
        if refusing != self.seen {
            if refusing.is_empty() {
                tracing::info!(node = me.0, "no member refuses this node as a non-member any more");
            } else {
                tracing::warn!(
                    node = me.0,
                    refusing = %ids(&refusing),
                    counted = %ids(&counted),
                    "members refuse this node as a non-member (their definition does not list it); \
                     fewer than a quorum of its definition's votes (counting only members it was \
                     heard by before), so it keeps running: a change may still be spreading"
                );
            }
            self.seen = refusing;
        }
        None
    }
}

/// `1, 2`.
fn ids(ids: &[NodeId]) -> String {
    ids.iter().map(|id| id.0.to_string()).collect::<Vec<_>>().join(", ")
}
