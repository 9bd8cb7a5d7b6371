//! What each peer runs: the terms its heartbeats carry (lease and drift, so the floor this
//! node keeps for it) and its quorum definition, with the definitions received in full.
//!
//! ```text
//!   heartbeat terms ──► heard(): floor owed, digest the peer runs ──► Change
//!   Definition msg  ──► received(): the table behind a digest a peer announced
//!   data directory  ◄── poll_persist(): peers' digests and their tables, when changed
//!   gate            ◄── others(): the distinct other definitions in use (None: unknown)
//!   acks            ◄── exchanges_votes(): same definition, or one version apart
//!   adoption        ◄── newer(): a later version a peer runs, to adopt
//! ```
//!
//! One map from peer to digest is the truth; everything else (the gate's extra quorum
//! conditions, the status's `mismatched`, the record in the data directory) is derived
//! from it when it changes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use quorate_gate::ForeignDefinition;
use quorate_proto::{check_successor, ClusterId, DefinitionDigest, Instant, NodeId, Roster, VoteTable};

use crate::promises::PeerDefinitions;

/// Definitions remembered per peer as ones it ran earlier in its life (see
/// `Definitions::earlier`).
const EARLIER_MAX: usize = 4;

/// How often a peer that runs an unknown definition is asked for it again.
const DEFINITION_RETRY: Duration = Duration::from_secs(1);

/// What a peer's heartbeats say of its terms, as this node honours them.
#[derive(Debug, Clone, Copy, Default)]
struct PeerTerms {
    /// The floor this node keeps for the peer; `None` when its terms cannot be honoured
    /// (it is never acked).
    floor: Option<Duration>,
    /// When this node last asked the peer for its definition.
    asked: Option<Instant>,
}

/// What changed about one peer's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing this node acts on.
    None,
    /// The peer now runs `theirs`, another definition than this node's.
    Mismatch { theirs: DefinitionDigest },
    /// The peer runs this node's definition again.
    Matched,
}

/// Peers' terms and definitions. See the module docs.
#[derive(Debug)]
pub(crate) struct Definitions {
    cluster: ClusterId,
    me: NodeId,
    /// The definition this node runs, and its digest.
    roster: Roster,
    own: DefinitionDigest,
    peer_terms: BTreeMap<NodeId, PeerTerms>,
    /// Definitions peers sent, by digest (only those some peer runs are kept).
    tables: BTreeMap<DefinitionDigest, Roster>,
    /// Those of `tables` one version from this node's, either side, that pass the
    /// succession check against it: peers running them exchange votes with this node.
    adjacent: BTreeSet<DefinitionDigest>,
    /// The digest each peer was last heard running (in this life or, through
    /// [`Definitions::remember`], an earlier one).
    peers: BTreeMap<NodeId, DefinitionDigest>,
    /// Digests each peer ran earlier in its current life, newest last (at most
    /// [`EARLIER_MAX`]). A peer never goes back to one within a life, so a heartbeat that
    /// names one was sent before a change this node already heard of (a datagram overtaken
    /// by the definition pushed on a stream) and is not taken as what the peer runs.
    earlier: BTreeMap<NodeId, Vec<DefinitionDigest>>,
    /// Those of `tables` known only from the data directory, not from the peer in this
    /// life: incomplete (no parent, no addresses), so never offered for adoption.
    recalled: BTreeSet<DefinitionDigest>,
    /// Bumped whenever `peers` or a table it names changes.
    version: u64,
    /// The version the data directory holds.
    written: Option<u64>,
}

impl Definitions {
    pub(crate) fn new(cluster: ClusterId, me: NodeId, roster: Roster) -> Self {
        Definitions {
            cluster,
            me,
            own: roster.digest(cluster),
            roster,
            peer_terms: BTreeMap::new(),
            tables: BTreeMap::new(),
            adjacent: BTreeSet::new(),
            earlier: BTreeMap::new(),
            recalled: BTreeSet::new(),
            peers: BTreeMap::new(),
            version: 0,
            // Nothing known yet, and nothing to write until something is.
            written: Some(0),
        }
    }

    /// The definition this node runs.
    pub(crate) fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Its digest, as heartbeats carry it.
    pub(crate) fn digest(&self) -> DefinitionDigest {
        self.own
    }

    /// Whether `peer` and this node lend each other votes: it runs this node's definition,
    /// or one a version before or after it that passed the succession check (rule 4 of
    /// `docs/reconfiguration.md`).
    pub(crate) fn exchanges_votes(&self, peer: NodeId) -> bool {
        self.foreign(peer).is_none_or(|d| self.adjacent.contains(&d))
    }

    /// The version of the definition `peer` was last heard running, when known.
    pub(crate) fn version_of(&self, peer: NodeId) -> Option<u64> {
        match self.foreign(peer) {
            None => self.peers.contains_key(&peer).then_some(self.roster.version),
            Some(d) => self.tables.get(&d).map(|r| r.version),
        }
    }

    /// Whether this node's definition is committed: version 0, or a quorum of the voters
    /// of the version it follows (its parent) runs it or a later version, this node
    /// included. Until then the parent stays in force beside it ([`Definitions::others`])
    /// and no next change is proposed. Once true it stays true: those voters never go
    /// back, and a node leaves a definition of its version only for a committed one,
    /// which this one then cannot be replaced by.
    pub(crate) fn is_committed(&self) -> bool {
        match &self.roster.parent {
            None => true,
            Some(parent) => parent.is_quorum_set(self.moved_to(self.own, self.roster.version, true)),
        }
    }

    /// The parent's voters not (yet) heard running this node's definition or a later one.
    pub(crate) fn not_moved(&self) -> Vec<NodeId> {
        let Some(parent) = &self.roster.parent else { return Vec::new() };
        let moved: BTreeSet<NodeId> = self.moved_to(self.own, self.roster.version, true).collect();
        parent.members().filter(|(id, v)| *v > 0 && !moved.contains(id)).map(|(id, _)| id).collect()
    }

    /// This node (when `me_too`) and the peers heard running `digest` (of `version`) or a
    /// later version.
    fn moved_to(
        &self,
        digest: DefinitionDigest,
        version: u64,
        me_too: bool,
    ) -> impl Iterator<Item = NodeId> + '_ {
        let me = me_too.then_some(self.me);
        let peers = self
            .peers
            .iter()
            .filter(move |(_, d)| **d == digest || self.roster_of(**d).is_some_and(|r| r.version > version));
        me.into_iter().chain(peers.map(|(p, _)| *p))
    }

    /// The roster behind `digest`, when known (this node's own included).
    fn roster_of(&self, digest: DefinitionDigest) -> Option<&Roster> {
        if digest == self.own {
            Some(&self.roster)
        } else {
            self.tables.get(&digest)
        }
    }

    /// A definition some peer runs that this node should adopt: a later version, or one
    /// of the same version (another change made at once) that is committed (a quorum of
    /// its parent's voters runs it) while this node's is not. The latest, lowest digest
    /// first among equals.
    pub(crate) fn newer(&self) -> Option<&Roster> {
        // Asked on every heartbeat sent (`Node::may_ack`) and every timer: commitment, which
        // walks the peers, only when another definition of this version is on the table.
        let mut own_committed = None;
        self.tables
            .iter()
            .filter(|(d, _)| !self.recalled.contains(d))
            .filter(|(d, r)| {
                r.version > self.roster.version
                    || (r.version == self.roster.version
                        && **d != self.own
                        && !*own_committed.get_or_insert_with(|| self.is_committed())
                        && r.parent
                            .as_ref()
                            .is_some_and(|p| p.is_quorum_set(self.moved_to(**d, r.version, false))))
            })
            .max_by(|(da, a), (db, b)| a.version.cmp(&b.version).then(db.cmp(da)))
            .map(|(_, r)| r)
    }

    /// The definition `peer` was last heard running, when it is not this node's.
    pub(crate) fn foreign(&self, peer: NodeId) -> Option<DefinitionDigest> {
        self.peers.get(&peer).copied().filter(|d| *d != self.own)
    }

    /// The definition `peer` runs: `own`, or the other one once it arrived; `None` while
    /// that one is unknown.
    pub(crate) fn of(&self, peer: NodeId) -> Option<&VoteTable> {
        match self.foreign(peer) {
            None => Some(&self.roster.votes),
            Some(d) => self.tables.get(&d).map(|r| &r.votes),
        }
    }

    /// The floor kept for `peer` by its terms: `None` if never heard, `Some(None)` if its
    /// terms cannot be honoured.
    pub(crate) fn floor(&self, peer: NodeId) -> Option<Option<Duration>> {
        self.peer_terms.get(&peer).map(|t| t.floor)
    }

    /// A fresh heartbeat from `peer` at `now` said it needs `floor` (`None`: cannot be
    /// honoured) and runs `digest`. Returns what changed, and whether to ask the peer for
    /// its definition now.
    pub(crate) fn heard(
        &mut self,
        now: Instant,
        peer: NodeId,
        floor: Option<Duration>,
        digest: DefinitionDigest,
    ) -> (Change, bool) {
        let mut entry = self.peer_terms.get(&peer).copied().unwrap_or_default();
        // Floors only grow within this life: an ack given under an older, longer lease of
        // the peer may still be held.
        entry.floor = floor.map(|f| entry.floor.map_or(f, |old| old.max(f)));
        let stale = self.earlier.get(&peer).is_some_and(|e| e.contains(&digest));
        let change = if stale { Change::None } else { self.set(peer, digest) };
        if change != Change::None {
            entry.asked = None;
        }
        let theirs = self.foreign(peer);
        let ask = theirs.is_some_and(|d| !self.tables.contains_key(&d))
            && entry.asked.is_none_or(|at| now >= at + DEFINITION_RETRY);
        if ask {
            entry.asked = Some(now);
        }
        self.peer_terms.insert(peer, entry);
        (change, ask)
    }

    /// Records that `peer` runs `digest`.
    fn set(&mut self, peer: NodeId, digest: DefinitionDigest) -> Change {
        let before = self.foreign(peer);
        match self.peers.insert(peer, digest) {
            Some(old) if old == digest => {}
            old => {
                self.version += 1;
                if let Some(old) = old {
                    let earlier = self.earlier.entry(peer).or_default();
                    earlier.retain(|d| *d != digest);
                    earlier.push(old);
                    if earlier.len() > EARLIER_MAX {
                        earlier.remove(0);
                    }
                }
            }
        }
        let after = self.foreign(peer);
        if before == after {
            return Change::None;
        }
        self.forget_unused();
        match after {
            Some(theirs) => Change::Mismatch { theirs },
            None => Change::Matched,
        }
    }

    /// `peer` was heard in a new life: what it ran before says nothing of what it may run
    /// now (a restart can start from another file).
    pub(crate) fn new_life(&mut self, peer: NodeId) {
        self.earlier.remove(&peer);
    }

    /// This node now runs `roster` (the one it ran is kept as the definition of any peer
    /// still running it), among the peers `peers` (what was kept about others is
    /// forgotten). Returns, in peer order, each peer whose standing changed.
    pub(crate) fn set_own(&mut self, roster: Roster, peers: &BTreeSet<NodeId>) -> Vec<(NodeId, Change)> {
        let before: BTreeMap<NodeId, Option<DefinitionDigest>> =
            peers.iter().map(|&p| (p, self.foreign(p))).collect();
        let digest = roster.digest(self.cluster);
        let previous = std::mem::replace(&mut self.roster, roster);
        let old = std::mem::replace(&mut self.own, digest);
        self.peers.retain(|p, _| peers.contains(p));
        self.peer_terms.retain(|p, _| peers.contains(p));
        self.earlier.retain(|p, _| peers.contains(p));
        if old != digest {
            self.tables.insert(old, previous);
        }
        self.tables.remove(&digest);
        self.forget_unused();
        self.adjacent = self.tables.keys().copied().filter(|d| self.is_adjacent(d)).collect();
        self.version += 1;
        let mut changes = Vec::new();
        for (peer, was) in before {
            let now = self.foreign(peer);
            let change = match now {
                _ if now == was => continue,
                Some(theirs) => Change::Mismatch { theirs },
                None => Change::Matched,
            };
            changes.push((peer, change));
        }
        changes
    }

    /// Whether the table behind `digest` is one version from this node's and passes the
    /// succession check against it (the later one must be a safe successor of the earlier).
    fn is_adjacent(&self, digest: &DefinitionDigest) -> bool {
        let Some(theirs) = self.tables.get(digest) else { return false };
        let own = &self.roster;
        let result = if theirs.version == own.version.saturating_add(1) {
            check_successor(&own.votes, &theirs.votes)
        } else if own.version == theirs.version.saturating_add(1) {
            check_successor(&theirs.votes, &own.votes)
        } else {
            return false;
        };
        result.is_ok()
    }

    /// Drops the tables no peer runs.
    fn forget_unused(&mut self) {
        let in_use: BTreeSet<DefinitionDigest> = self.peers.values().copied().collect();
        self.tables.retain(|d, _| in_use.contains(d));
        self.adjacent.retain(|d| in_use.contains(d));
        self.recalled.retain(|d| in_use.contains(d));
    }

    /// `peer` sent `roster` as the definition it runs (pushed when it started or adopted
    /// one, or in answer to a request). Taken as what the peer runs when nothing was heard
    /// of it yet or the roster replaces what was (see [`supersedes`]): so a definition
    /// pushed before the heartbeats that announce it is known when they arrive, and
    /// nobody is fenced for the round trip it would take to ask. Otherwise kept only when
    /// it is the definition the peer's heartbeats announce (a stale one is ignored).
    /// Returns what changed about the peer, and whether the roster was new here.
    pub(crate) fn received(&mut self, peer: NodeId, roster: Roster) -> (Change, bool) {
        let digest = roster.digest(self.cluster);
        // A definition the peer ran earlier in its life is a push overtaken by a later one.
        let earlier = self.earlier.get(&peer).is_some_and(|e| e.contains(&digest));
        let replaces = match self.peers.get(&peer) {
            _ if earlier => false,
            None => true,
            Some(d) if *d == digest => false,
            Some(d) => self.roster_of(*d).is_some_and(|r| supersedes(roster.version, digest, r.version, *d)),
        };
        let change = if replaces { self.set(peer, digest) } else { Change::None };
        let recalled = self.recalled.contains(&digest);
        if self.foreign(peer) != Some(digest) || (self.tables.contains_key(&digest) && !recalled) {
            return (change, false);
        }
        self.recalled.remove(&digest);
        self.tables.insert(digest, roster);
        if self.is_adjacent(&digest) {
            self.adjacent.insert(digest);
        }
        self.version += 1;
        (change, true)
    }

    /// Takes in what an earlier life recorded: peers among `peers` only. Returns the
    /// changes, in peer order.
    pub(crate) fn remember(
        &mut self,
        remembered: &PeerDefinitions,
        peers: &BTreeSet<NodeId>,
    ) -> Vec<(NodeId, Change)> {
        let mut tables = BTreeMap::new();
        for (version, (members, tie_breaker)) in &remembered.tables {
            if let Ok(votes) = VoteTable::from_parts(members, *tie_breaker) {
                // The record keeps no parent, timing or addresses: a remembered table
                // serves the joint rule and adjacency, never adoption (see `recalled`).
                let roster = Roster {
                    version: *version,
                    votes,
                    addresses: BTreeMap::new(),
                    parent: None,
                    timing: None,
                };
                tables.insert(roster.digest(self.cluster), roster);
            }
        }
        let mut changes = Vec::new();
        for &(peer, digest) in &remembered.peers {
            if !peers.contains(&peer) {
                continue;
            }
            let change = self.set(peer, digest);
            if let Some(t) =
                tables.get(&digest).filter(|_| digest != self.own && !self.tables.contains_key(&digest))
            {
                self.recalled.insert(digest);
                self.tables.insert(digest, t.clone());
                if self.is_adjacent(&digest) {
                    self.adjacent.insert(digest);
                }
            }
            changes.push((peer, change));
        }
        // What the directory holds is what was read, unless entries were left out above.
        if self.record() == *remembered {
            self.written = Some(self.version);
        }
        changes
    }

    /// The distinct other definitions in use, `None` for one not received yet.
    pub(crate) fn others(&self) -> Vec<Option<VoteTable>> {
        let digests: BTreeSet<DefinitionDigest> =
            self.peers.values().copied().filter(|d| *d != self.own).collect();
        let mut others: Vec<Option<VoteTable>> =
            digests.iter().map(|d| self.tables.get(d).map(|r| r.votes.clone())).collect();
        if let Some(parent) = self.roster.parent.as_ref().filter(|_| !self.is_committed()) {
            others.push(Some(parent.clone()));
        }
        others
    }

    /// Peers on another definition, for the status.
    pub(crate) fn mismatched(&self) -> Vec<ForeignDefinition> {
        self.peers
            .iter()
            .filter(|(_, d)| **d != self.own)
            .map(|(peer, digest)| ForeignDefinition {
                peer: *peer,
                digest: *digest,
                version: self.tables.get(digest).map(|r| r.version),
                members: self.tables.get(digest).map(|r| r.votes.parts()),
            })
            .collect()
    }

    /// The record for the data directory when it differs from what it holds.
    pub(crate) fn poll_persist(&self) -> Option<PeerDefinitions> {
        (self.written != Some(self.version)).then(|| self.record())
    }

    /// The driver wrote `record`; a record no longer current is asked for again.
    pub(crate) fn persisted(&mut self, record: &PeerDefinitions) {
        if self.record() == *record {
            self.written = Some(self.version);
        }
    }

    fn record(&self) -> PeerDefinitions {
        let peers: Vec<(NodeId, DefinitionDigest)> = self.peers.iter().map(|(p, d)| (*p, *d)).collect();
        let digests: BTreeSet<DefinitionDigest> = peers.iter().map(|(_, d)| *d).collect();
        let tables = digests
            .iter()
            .filter_map(|d| if *d == self.own { Some(&self.roster) } else { self.tables.get(d) })
            .map(|r| (r.version, r.votes.parts()))
            .collect();
        PeerDefinitions { peers, tables }
    }
}

/// Whether a peer that ran `current` (with `current_digest`) now runs `version` (with
/// `digest`), as it says: a later version, or (from version 1) another of the same version
/// (two changes made at once; a node moves to the one committed). Two files that differ at
/// version 0 are the operator's to reconcile: a node never leaves its file for another.
pub(crate) fn supersedes(
    version: u64,
    digest: DefinitionDigest,
    current: u64,
    current_digest: DefinitionDigest,
) -> bool {
    version > current || (version == current && version > 0 && digest != current_digest)
}

#[cfg(test)]
mod tests;
