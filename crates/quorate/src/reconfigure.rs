//! Online membership changes in the runtime: the driver's side of
//! `docs/reconfiguration.md`.
//!
//! ```text
//!   admin POST / Node::change ──Request──► driver: core.propose ──► persist ──► transport ──► adopt
//!   after every core step:          core.poll_adopt ──► persist ──► transport ──► adopt
//!                                                       (fsync,      (set_members: new
//!                                                        rename)      members dialed,
//!                                                                     removed ones kept
//!                                                                     LEAVING_GRACE)
//!   Adopted::Removed ──► the node has left: `removed` says at which version; `quorate run` exits
//!   removed while down (never adopted it) ──► members refuse it: see `refused.rs`
//! ```
//!
//! A definition is on disk before the node runs it, and so before any heartbeat announces
//! it. Members that a definition removes stay in the transport for [`LEAVING_GRACE`]: the
//! core tells them at adoption (and again when they heartbeat) that they were removed, and
//! that message needs their connection. After the grace the transport remembers them as
//! former members and tells one that dials in that it is no member: how a member removed
//! while it was down learns it (`refused.rs`). A bad address in a definition a peer sent is
//! logged and counted; the definition is adopted anyway (safety does not depend on
//! dialing, only reachability does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use quorate_core::{Adopted, ProposeError};
use quorate_proto::{Change, NodeId, Roster};
use quorate_transport::MemberAddress;
use tokio::sync::oneshot;

use crate::node::Running;

/// How long a removed member stays in the transport after the definition that removed it
/// is adopted, so that the definition pushed to it (and re-sent when it heartbeats, at most
/// once a second) gets out before its connection is closed.
pub const LEAVING_GRACE: Duration = Duration::from_secs(3);
/// Removed members kept open at once; beyond this the oldest is closed at once (counted).
pub const LEAVING_MAX: usize = 16;
/// Operator changes waiting for the driver; more are refused as busy.
pub(crate) const REQUESTS_MAX: usize = 8;
/// Definitions adopted per driver step: each is one fsync; a later one waits a step.
const ADOPT_PER_STEP_MAX: usize = 4;

/// Why a change was not made. Nothing changed, unless the variant says otherwise.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeRefused {
    /// The core refused it: not a valid change, not a safe successor (with the reason and a
    /// safe route), the previous change still under way (naming the voters that have not
    /// moved), or a later definition not adopted yet (retry).
    #[error(transparent)]
    Propose(#[from] ProposeError),
    /// A node cannot remove itself: it would leave before any peer heard of the change.
    #[error(
        "{id} cannot remove itself (it would leave before any member heard of the change); send \
         the change to another member's admin endpoint"
    )]
    RemovesThisNode {
        /// This node.
        id: NodeId,
    },
    /// An added member needs an address to be dialed at.
    #[error("adding {id} needs its address (--addr HOST:PORT)")]
    MissingAddress {
        /// The member being added.
        id: NodeId,
    },
    /// The new member's address is not `IP:PORT` or `HOST:PORT`, or another member has it.
    #[error("the address {addr:?} of {id} cannot be used: {reason}")]
    BadAddress {
        /// The member being added.
        id: NodeId,
        /// The address given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The new definition could not be written to the data directory.
    #[error("cannot persist the new definition: {0}; nothing changed")]
    Persist(String),
    /// Too many changes are waiting for the node.
    #[error("the node is busy with {REQUESTS_MAX} other changes; retry")]
    Busy,
    /// The timing preset is not one this build knows.
    #[error("no timing preset {name:?}; the presets: {}", crate::timing::TIMING_PRESETS.join(", "))]
    UnknownPreset {
        /// The name asked for.
        name: String,
    },
    /// The cluster's definition already names this preset.
    #[error("the {name} timing preset is already in force (definition version {version})")]
    PresetInForce {
        /// The preset.
        name: String,
        /// The definition that named it.
        version: u64,
    },
    /// The node has stopped (shut down, or removed from the cluster).
    #[error("the node has stopped")]
    Stopped,
}

/// What an operator asks for: a change to the vote table, or a timing preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Proposal {
    /// `quorate members ...`, `quorate config set quorum.tie_breaker=...`.
    Change(Change),
    /// `quorate config set timing.preset=NAME`.
    Timing(String),
}

impl std::fmt::Display for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proposal::Change(c) => c.fmt(f),
            Proposal::Timing(name) => write!(f, "run the {name} timing preset"),
        }
    }
}

/// An operator's change on its way to the driver.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) change: Proposal,
    pub(crate) address: Option<MemberAddress>,
    pub(crate) reply: oneshot::Sender<Result<Roster, ChangeRefused>>,
}

/// Counters of the runtime's part in definition changes (`/status` `reconfiguration`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Members of an adopted definition left out of the transport: no usable address.
    pub(crate) bad_addresses: AtomicU64,
    /// Removed members kept connected for [`LEAVING_GRACE`].
    pub(crate) leaving_kept: AtomicU64,
    /// Removed members closed before their grace ended ([`LEAVING_MAX`] reached).
    pub(crate) leaving_cut_short: AtomicU64,
    /// Definitions that could not be persisted (retried; not adopted until they are).
    pub(crate) persist_failures: AtomicU64,
    /// Operator changes made on this node.
    pub(crate) proposed: AtomicU64,
    /// Operator changes refused on this node.
    pub(crate) refused: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("proposed", get(&self.proposed)),
            ("refused", get(&self.refused)),
            ("bad_addresses", get(&self.bad_addresses)),
            ("leaving_kept", get(&self.leaving_kept)),
            ("leaving_cut_short", get(&self.leaving_cut_short)),
            ("persist_failures", get(&self.persist_failures)),
        ]
    }
}

/// The driver's membership state: removed members still in the transport, until when.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    leaving: Vec<(NodeId, MemberAddress, tokio::time::Instant)>,
}

impl Membership {
    /// Makes an operator's change: proposes it to the core, persists the result, hands the
    /// new member list to the transport, adopts it. Answers `request.reply`.
    pub(crate) fn propose(&mut self, shared: &Running, request: Request) {
        let result = self.try_propose(shared, &request.change, request.address.as_ref());
        let counter = if result.is_ok() { &shared.reconfig.proposed } else { &shared.reconfig.refused };
        counter.fetch_add(1, Ordering::Relaxed);
        match &result {
            Ok(r) => tracing::info!(change = %request.change, version = r.version, "definition changed here"),
            Err(e) => tracing::info!(change = %request.change, error = %e, "change refused"),
        }
        // The operator may have given up waiting; the change stands either way.
        let _ = request.reply.send(result);
    }

    fn try_propose(
        &mut self,
        shared: &Running,
        proposal: &Proposal,
        address: Option<&MemberAddress>,
    ) -> Result<Roster, ChangeRefused> {
        let me = shared.transport.me();
        if shared.removed.borrow().is_some() {
            return Err(ChangeRefused::Stopped);
        }
        let change = match proposal {
            Proposal::Change(change) => change,
            Proposal::Timing(name) => return self.propose_timing(shared, name),
        };
        if let Change::RemoveMember { id } = change {
            if *id == me {
                return Err(ChangeRefused::RemovesThisNode { id: me });
            }
        }
        let mut core = shared.core.lock();
        let text = match (change, address) {
            (Change::AddMember { id, .. }, None) => return Err(ChangeRefused::MissingAddress { id: *id }),
            (Change::AddMember { id, .. }, Some(addr)) => {
                let taken = core.roster().addresses.iter().find(|(_, a)| **a == addr.to_string());
                if let Some((other, _)) = taken {
                    return Err(ChangeRefused::BadAddress {
                        id: *id,
                        addr: addr.to_string(),
                        reason: format!("{other} has it"),
                    });
                }
                Some(addr.to_string())
            }
            _ => None,
        };
        let roster = core.propose(change, text.as_deref())?;
        if let Some(dir) = shared.data_dir.as_ref() {
            dir.store_roster(&roster).map_err(|e| ChangeRefused::Persist(e.to_string()))?;
        }
        let now = shared.clock.now();
        self.set_transport(shared, core.roster(), &roster);
        match core.adopt(now, roster.clone()) {
            Ok(Adopted::Running) => Ok(roster),
            // Not this node (checked above): it stays a member of its own proposal.
            Ok(Adopted::Removed) => Err(ChangeRefused::Stopped),
            Err(e) => {
                // Only a stopped core refuses its own proposal; say so.
                tracing::warn!(error = %e, "the node refused the definition it proposed");
                Err(ChangeRefused::Stopped)
            }
        }
    }

    /// Makes the next definition name timing preset `name`, persists it, adopts it and
    /// runs the preset.
    fn propose_timing(&mut self, shared: &Running, name: &str) -> Result<Roster, ChangeRefused> {
        if crate::timing::preset(name).is_none() {
            return Err(ChangeRefused::UnknownPreset { name: name.to_owned() });
        }
        let mut core = shared.core.lock();
        let current = core.roster();
        if current.timing.as_deref() == Some(name) {
            return Err(ChangeRefused::PresetInForce { name: name.to_owned(), version: current.version });
        }
        let before = current.timing.clone();
        let roster = core.propose_timing(name)?;
        if let Some(dir) = shared.data_dir.as_ref() {
            dir.store_roster(&roster).map_err(|e| ChangeRefused::Persist(e.to_string()))?;
        }
        let now = shared.clock.now();
        match core.adopt(now, roster.clone()) {
            Ok(Adopted::Running) => {
                crate::timing::follow(&mut core, &shared.timing_kept, before.as_deref(), &roster, now);
                Ok(roster)
            }
            Ok(Adopted::Removed) => Err(ChangeRefused::Stopped),
            Err(e) => {
                tracing::warn!(error = %e, "the node refused the definition it proposed");
                Err(ChangeRefused::Stopped)
            }
        }
    }

    /// Adopts the later definitions some peer runs (see `quorate_core::Node::poll_adopt`):
    /// each persisted first. Returns the version that removed this node, if one did.
    pub(crate) fn adopt_newer(&mut self, shared: &Running) -> Option<u64> {
        let mut core = shared.core.lock();
        for _ in 0..ADOPT_PER_STEP_MAX {
            let roster = core.poll_adopt()?;
            if let Some(dir) = shared.data_dir.as_ref() {
                if let Err(e) = dir.store_roster(&roster) {
                    // Not adopted until it is on disk; retried at the next step.
                    shared.reconfig.persist_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(version = roster.version, error = %e, "cannot persist a later definition \
                        a peer runs; it is not adopted until it is on disk");
                    return None;
                }
            }
            let version = roster.version;
            if roster.votes.is_member(shared.transport.me()) {
                self.set_transport(shared, core.roster(), &roster);
            }
            let before = core.roster().timing.clone();
            let now = shared.clock.now();
            match core.adopt(now, roster.clone()) {
                Ok(Adopted::Running) => {
                    tracing::info!(version, "adopted a later definition a peer runs");
                    crate::timing::follow(&mut core, &shared.timing_kept, before.as_deref(), &roster, now);
                }
                Ok(Adopted::Removed) => {
                    tracing::warn!(
                        version,
                        "this node was removed from the cluster by definition version \
                        {version}: it has fenced itself and left"
                    );
                    return Some(version);
                }
                Err(e) => {
                    tracing::warn!(version, error = %e, "a later definition was not adopted");
                    return None;
                }
            }
        }
        None
    }

    /// Closes the removed members whose grace has ended.
    pub(crate) fn expire(&mut self, shared: &Running) {
        let now = tokio::time::Instant::now();
        if !self.leaving.iter().any(|(_, _, until)| *until <= now) {
            return;
        }
        self.leaving.retain(|(_, _, until)| *until > now);
        let core = shared.core.lock();
        let roster = core.roster().clone();
        drop(core);
        self.apply(shared, &roster);
    }

    /// The next instant [`Membership::expire`] has something to do.
    pub(crate) fn next_expiry(&self) -> Option<tokio::time::Instant> {
        self.leaving.iter().map(|(_, _, until)| *until).min()
    }

    /// Hands `next`'s members to the transport, keeping those that `current` lists and
    /// `next` does not for [`LEAVING_GRACE`].
    fn set_transport(&mut self, shared: &Running, current: &Roster, next: &Roster) {
        let me = shared.transport.me();
        let until = tokio::time::Instant::now() + LEAVING_GRACE;
        for (id, _) in current.votes.members().filter(|(id, _)| *id != me && !next.votes.is_member(*id)) {
            let Some((addr, _)) = shared.transport.resolution(id) else { continue };
            self.leaving.retain(|(other, _, _)| *other != id);
            if self.leaving.len() >= LEAVING_MAX {
                self.leaving.remove(0);
                shared.reconfig.leaving_cut_short.fetch_add(1, Ordering::Relaxed);
            }
            self.leaving.push((id, addr, until));
            shared.reconfig.leaving_kept.fetch_add(1, Ordering::Relaxed);
        }
        // A member added back is a member again, not leaving.
        self.leaving.retain(|(id, _, _)| !next.votes.is_member(*id));
        self.apply(shared, next);
    }

    /// Sets the transport's members: `roster`'s, plus those still leaving.
    fn apply(&self, shared: &Running, roster: &Roster) {
        let me = shared.transport.me();
        let mut members = members_of(shared, roster, me);
        members.extend(self.leaving.iter().map(|(id, addr, _)| (*id, addr.clone())));
        let passive = passive_of(roster, me);
        if let Err(e) = shared.transport.set_members(members, &passive) {
            shared.reconfig.bad_addresses.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(version = roster.version, error = %e, "the transport refused the new member list; \
                it keeps the previous one (the definition is adopted anyway)");
        }
    }
}

/// Where `roster`'s members (but `me`) are dialed: the address the definition gives, or,
/// when it gives none or one that does not parse, the one the transport has now. A member
/// with neither is left out (logged and counted): it is still counted in quorums, it just
/// cannot be reached from here.
fn members_of(shared: &Running, roster: &Roster, me: NodeId) -> Vec<(NodeId, MemberAddress)> {
    let mut out = Vec::new();
    for (id, _) in roster.votes.members().filter(|(id, _)| *id != me) {
        let parsed = roster.address(id).map(str::parse::<MemberAddress>);
        match parsed {
            Some(Ok(addr)) => out.push((id, addr)),
            other => {
                let known = shared.transport.resolution(id).map(|(addr, _)| addr);
                let why = match &other {
                    Some(Err(e)) => e.to_string(),
                    _ => "no address".to_owned(),
                };
                shared.reconfig.bad_addresses.fetch_add(1, Ordering::Relaxed);
                match known {
                    Some(addr) => {
                        tracing::warn!(peer = id.0, version = roster.version, %why, kept = %addr,
                            "a member's address in the definition cannot be used; the one known is kept");
                        out.push((id, addr));
                    }
                    None => tracing::warn!(peer = id.0, version = roster.version, %why,
                        "a member's address in the definition cannot be used; it is not dialed or accepted"),
                }
            }
        }
    }
    out
}

/// Members this node does not dial under `roster`: for an observer, the other observers
/// (it heartbeats, polls and gossips with voters only).
pub(crate) fn passive_of(roster: &Roster, me: NodeId) -> Vec<NodeId> {
    if roster.votes.votes(me) > 0 {
        return Vec::new();
    }
    roster.votes.members().filter(|&(id, votes)| votes == 0 && id != me).map(|(id, _)| id).collect()
}
