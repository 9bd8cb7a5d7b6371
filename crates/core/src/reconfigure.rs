//! A quorum definition that changes while the node runs (online membership change). See
//! `docs/reconfiguration.md` for the protocol.
//!
//! ```text
//!   operator's Change ──► propose(): one step at a time, succession check ──► Roster v+1
//!   peer runs v+1     ──► poll_adopt(): a later version some peer runs    ──► Roster v+1
//!                                   driver persists it, then
//!   adopt(now, roster) ──► links (new peers get one, former peers lose theirs)
//!                      ──► detector peers, gate votes, gossip members
//!                      ──► own digest in every heartbeat's terms; peers one version
//!                          away keep lending votes (rule 4), and the joint rule keeps
//!                          every definition a peer runs in force until it moves
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use quorate_proto::{
    check_successor, Change, ChangeError, Instant, Link, NodeId, Roster, RosterError, SuccessionError,
};

use crate::config::CoreConfigError;
use crate::definitions::supersedes;
use crate::node::{sent_log_len, Node};

/// How often a former member still heartbeating this node is sent its definition.
const FORMER_TELL_EVERY: Duration = Duration::from_secs(1);

/// What [`Node::adopt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// The node runs the new definition.
    Running,
    /// The new definition does not list this node: it left (fenced for good in this life,
    /// `Leave` sent to its peers), as after [`Node::shutdown`].
    Removed,
}

/// Why [`Node::adopt`] refused a definition. Nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AdoptError {
    /// The definition does not replace the one this node runs (an earlier version, the
    /// same one, another at version 0, or another of the same version while this node's is
    /// committed).
    #[error("definition version {version} does not replace the version {current} this node runs")]
    Stale {
        /// The version offered.
        version: u64,
        /// The version this node runs.
        current: u64,
    },
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The definition has more members than the detector watches.
    #[error(transparent)]
    Config(#[from] CoreConfigError),
}

/// Why [`Node::propose`] refused a change. Nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// The change cannot apply to the current definition.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// The new definition could let two disjoint quorums exist while nodes switch over
    /// (the reason, and a safe sequence of single changes when one was found).
    #[error(transparent)]
    Unsafe(#[from] SuccessionError),
    /// The previous change is still under way: these voters of the current definition
    /// have not been heard running it yet (one change at a time).
    #[error(
        "the change to version {version} is still under way: {} not heard running it yet",
        list(waiting)
    )]
    Pending {
        /// The version this node runs.
        version: u64,
        /// Its voters not heard running it (or later).
        waiting: Vec<NodeId>,
    },
    /// Votes this node lent to peers that the change would leave two versions behind may
    /// still be held (see `docs/reconfiguration.md`, rule 7): the change can be made once
    /// they expire, within `wait` (a removed member's, or a lagging observer's, until it
    /// follows).
    #[error(
        "votes this node lent to {} (a version behind) may still be held for up to {} ms; \
         retry once they expire",
        list(peers), wait.as_millis()
    )]
    VotesLent {
        /// The peers that may hold them.
        peers: Vec<NodeId>,
        /// The longest they may be held from now.
        wait: Duration,
    },
    /// A peer runs a later definition that this node has not adopted yet; propose the
    /// change again once it has.
    #[error(
        "a peer runs definition version {newer}, later than this node's {current}; retry once it is adopted"
    )]
    Behind {
        /// The version this node runs.
        current: u64,
        /// The later version a peer runs.
        newer: u64,
    },
    /// The timing preset name cannot be carried (see [`Roster::with_timing`]).
    #[error(transparent)]
    Timing(#[from] RosterError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

fn list(ids: &[NodeId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl Node {
    /// The definition this node runs, with its version and its members' addresses.
    pub fn roster(&self) -> &Roster {
        self.definitions.roster()
    }

    /// The version of the definition `peer` was last heard running; `None` while unknown
    /// (never heard, or another definition not received yet).
    pub fn peer_version(&self, peer: NodeId) -> Option<u64> {
        self.definitions.version_of(peer)
    }

    /// `change` as the next version of this node's definition, when it may be made now:
    /// every voter of the current definition has been heard running it and it is
    /// committed (one change at a time), no peer runs a later one, no peer that may hold
    /// a vote this node lent would be left two versions behind, and the result passes the
    /// succession check.
    /// `address` is where a member that the change adds is dialed.
    ///
    /// Nothing changes here: the driver persists the returned definition and then hands
    /// it to [`Node::adopt`]; the peers follow when they hear it.
    pub fn propose(&self, change: &Change, address: Option<&str>) -> Result<Roster, ProposeError> {
        let current = self.ready_for_a_change()?;
        let next = current.next(change, address)?;
        check_successor(&current.votes, &next.votes)?;
        self.no_votes_left_behind(&next)?;
        Ok(next)
    }

    /// The next version of this node's definition with the timing preset `name` (votes,
    /// tie-breaker and addresses unchanged, so the succession check passes trivially),
    /// under the same one-change-at-a-time rule as [`Node::propose`]. The core does not
    /// read the name: the driver that adopts the definition runs the timing it names
    /// ([`Node::set_timing`]). As for `propose`, nothing changes here.
    pub fn propose_timing(&self, name: &str) -> Result<Roster, ProposeError> {
        let next = self.ready_for_a_change()?.with_timing(name)?;
        self.no_votes_left_behind(&next)?;
        Ok(next)
    }

    /// Refuses `next` while a peer it would leave two versions behind may still hold a
    /// vote this node lent it (rule 7 of `docs/reconfiguration.md`).
    fn no_votes_left_behind(&self, next: &Roster) -> Result<(), ProposeError> {
        let peers = self.adoption_waits_for(self.last_now, next.version);
        if peers.is_empty() {
            return Ok(());
        }
        let until = self.lent_until(&peers);
        let wait = Duration::from_nanos(until.as_nanos().saturating_sub(self.last_now.as_nanos()));
        Err(ProposeError::VotesLent { peers, wait })
    }

    /// The definition in force, when a change may be made now: the node runs, no peer
    /// runs a later definition, every voter was heard running this one, and it is
    /// committed.
    fn ready_for_a_change(&self) -> Result<&Roster, ProposeError> {
        if self.stopped {
            return Err(ProposeError::Stopped);
        }
        let current = self.definitions.roster();
        if let Some(newer) = self.definitions.newer() {
            return Err(ProposeError::Behind { current: current.version, newer: newer.version });
        }
        let waiting: Vec<NodeId> = current
            .votes
            .members()
            .filter(|&(id, votes)| votes > 0 && id != self.me)
            .map(|(id, _)| id)
            .filter(|&id| self.definitions.version_of(id).is_none_or(|v| v < current.version))
            .collect();
        if !waiting.is_empty() {
            return Err(ProposeError::Pending { version: current.version, waiting });
        }
        // Committed: a quorum of the previous version's voters runs this one, so no other
        // change of this version can be (two changes made at once on two sides of a
        // partition).
        if !self.definitions.is_committed() {
            let waiting = self.definitions.not_moved();
            return Err(ProposeError::Pending { version: current.version, waiting });
        }
        Ok(current)
    }

    /// The peers that would be left two versions behind by this node running `version`
    /// while they may still hold a vote it lent them: it waits until those votes expire.
    ///
    /// Why: a writer counts a vote for a lease after it was lent, whatever the lender does
    /// meanwhile. The proof that two writers share a vote (`docs/reconfiguration.md`) needs
    /// every vote a writer of version `a` holds to come from a voter at most one version
    /// from `a` *while the writer holds it*; a voter that moved on twice (the writer cut
    /// off, not hearing it) could otherwise lend its vote under a definition two versions
    /// on, whose quorums need not meet the writer's (the simulator found it: a writer on
    /// version 7 holding the vote of a voter already on version 9, whose only voter wrote
    /// alone).
    pub(crate) fn adoption_waits_for(&self, now: Instant, version: u64) -> Vec<NodeId> {
        self.lent
            .iter()
            .filter(|(peer, until)| **until > now && self.leaves_behind(**peer, version))
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Whether this node running `version` would be two or more versions ahead of
    /// `peer` (whose version is unknown counts as behind).
    pub(crate) fn leaves_behind(&self, peer: NodeId, version: u64) -> bool {
        self.definitions.version_of(peer).is_none_or(|v| v.saturating_add(1) < version)
    }

    /// When the wait of [`Node::poll_adopt`] for votes lent ends, if it waits.
    pub(crate) fn poll_adopt_wait(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        let next = self.definitions.newer()?;
        self.lent
            .iter()
            .filter(|(peer, until)| **until > self.last_now && self.leaves_behind(**peer, next.version))
            .map(|(_, until)| *until)
            .max()
    }

    /// The latest instant until which any of `peers` may hold a vote this node lent it.
    fn lent_until(&self, peers: &[NodeId]) -> Instant {
        peers.iter().filter_map(|p| self.lent.get(p)).copied().max().unwrap_or(self.last_now)
    }

    /// This node acked `peer` at `now`: the peer may hold its vote for the floor kept for it.
    pub(crate) fn lent_to(&mut self, now: Instant, peer: NodeId) {
        let floor = self.definitions.floor(peer).flatten().unwrap_or_default();
        self.lent.insert(peer, now.saturating_add(floor));
    }

    /// A later definition some peer runs, which this node should adopt: the driver
    /// persists it and then calls [`Node::adopt`]. `None` when there is none, the node
    /// has stopped, or a vote it lent to a peer the definition would leave two versions
    /// behind may still be held (no new one goes out meanwhile; [`Node::poll_timeout`]
    /// wakes the driver when the wait ends).
    pub fn poll_adopt(&self) -> Option<Roster> {
        if self.stopped {
            return None;
        }
        let next = self.definitions.newer()?;
        // Not while a peer it would leave two versions behind may hold its vote.
        if !self.adoption_waits_for(self.last_now, next.version).is_empty() {
            return None;
        }
        Some(next.clone())
    }

    /// From `now` this node runs `roster`: the members it heartbeats, watches and gossips
    /// with, and the quorums its gate counts. The driver has persisted it first (the node
    /// announces it in its next heartbeat).
    ///
    /// Peers that stay members keep their links, detector history and the leases they
    /// lent; new members start unheard; former members are forgotten. A peer still on the
    /// previous version keeps lending its vote (one version apart), and the joint rule
    /// keeps its definition in force until it moves.
    ///
    /// A definition that is not the next version, or not a safe successor of the current
    /// one (this node missed a change, or two were proposed at once), is adopted as a
    /// fresh start: every lease held is dropped and no ack goes out until every vote this
    /// node lent has expired, so nothing it promised under the old definition counts
    /// under the new one.
    ///
    /// A definition that does not list this node makes it leave ([`Adopted::Removed`]).
    pub fn adopt(&mut self, now: Instant, roster: Roster) -> Result<Adopted, AdoptError> {
        let now = self.advance(now);
        if self.stopped {
            return Err(AdoptError::Stopped);
        }
        let current = self.definitions.roster();
        let digest = roster.digest(self.cluster);
        // Another definition of the same version replaces this node's only while this
        // node's is not committed (see `Definitions::is_committed`).
        let same_version_allowed = roster.version > current.version || !self.definitions.is_committed();
        if !supersedes(roster.version, digest, current.version, self.definitions.digest())
            || !same_version_allowed
        {
            return Err(AdoptError::Stale { version: roster.version, current: current.version });
        }
        if !roster.votes.is_member(self.me) {
            self.shutdown(now);
            return Ok(Adopted::Removed);
        }
        let step = roster.version == current.version.saturating_add(1)
            && check_successor(&current.votes, &roster.votes).is_ok();
        self.run(now, roster)?;
        if !step {
            self.gate.drop_leases(now);
            self.ledger.hold_acks_until(now.saturating_add(self.ledger.owed_floor()));
            self.counters.definitions_skipped += 1;
            self.drain_gate(now);
        }
        self.counters.definitions_adopted += 1;
        self.settle(now);
        Ok(Adopted::Running)
    }

    /// Switches every part to `roster`, of which this node is a member.
    fn run(&mut self, now: Instant, roster: Roster) -> Result<(), CoreConfigError> {
        let peers: BTreeSet<_> = roster.votes.peers_of(self.me).into_iter().collect();
        self.detector.set_peers(now, peers.iter().copied())?;
        let removed: Vec<NodeId> =
            self.links.keys().filter(|id| !roster.votes.is_member(**id)).copied().collect();
        let lease = Duration::from_micros(u64::from(self.terms.lease_us));
        let log_len = sent_log_len(lease, self.interval);
        let gone: Vec<_> = self.links.keys().filter(|id| !peers.contains(id)).copied().collect();
        for id in gone {
            if let Some(link) = self.links.remove(&id) {
                self.former_links.insert(id, link);
            }
        }
        for &id in &peers {
            let link = self.former_links.remove(&id).unwrap_or_else(|| Link::new(log_len));
            self.links.entry(id).or_insert(link);
        }
        self.fenced.retain(|id| peers.contains(id));
        self.terms.definition = roster.digest(self.cluster);
        if let Some(s) = self.gossip.as_mut() {
            s.gossiper.set_definition(&roster.votes);
        }
        self.gate.set_votes(now, roster.votes.clone());
        let changes = self.definitions.set_own(roster, &peers);
        for (peer, change) in changes {
            self.definition_changed(now, peer, change);
        }
        self.gate.set_other_definitions(now, self.definitions.others());
        self.drain_gate(now);
        self.status_clock.touch();
        // Ahead of the heartbeats that announce it; and a removed member learns it was.
        for &peer in &peers {
            self.push_definition(peer);
        }
        self.announce.pushed_to_all(now, &peers);
        for peer in removed {
            self.former_told.insert(peer, now);
            self.push_definition(peer);
        }
        Ok(())
    }

    /// A heartbeat came from `from`, which this node does not exchange with. If it is a
    /// former member (it may not know it was removed: it heard nothing since), it is sent
    /// this node's definition, at most once per [`FORMER_TELL_EVERY`].
    pub(crate) fn tell_former_member(&mut self, now: Instant, from: NodeId) {
        if !self.former_links.contains_key(&from) {
            return;
        }
        if self.former_told.get(&from).is_some_and(|at| now < at.saturating_add(FORMER_TELL_EVERY)) {
            return;
        }
        self.former_told.insert(from, now);
        self.push_definition(from);
    }
}
