//! What each peer runs: the terms its heartbeats carry (lease and drift, so the floor this
//! node keeps for it) and its quorum definition, with the definitions received in full.
//!
//! ```text
//!   heartbeat terms ──► heard(): floor owed, digest the peer runs ──► Change
//!   Definition msg  ──► received(): the table behind a digest a peer announced
//!   data directory  ◄── poll_persist(): peers' digests and their tables, when changed
//!   gate            ◄── others(): the distinct other definitions in use (None: unknown)
//! ```
//!
//! One map from peer to digest is the truth; everything else (the gate's extra quorum
//! conditions, the status's `mismatched`, the record in the data directory) is derived
//! from it when it changes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use quorate_gate::ForeignDefinition;
use quorate_proto::{ClusterId, DefinitionDigest, Instant, NodeId, VoteTable};

use crate::promises::PeerDefinitions;

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
    own: DefinitionDigest,
    peer_terms: BTreeMap<NodeId, PeerTerms>,
    /// Definitions peers sent, by digest (only those some peer runs are kept).
    tables: BTreeMap<DefinitionDigest, VoteTable>,
    /// The digest each peer was last heard running (in this life or, through
    /// [`Definitions::remember`], an earlier one).
    peers: BTreeMap<NodeId, DefinitionDigest>,
    /// Bumped whenever `peers` or a table it names changes.
    version: u64,
    /// The version the data directory holds.
    written: Option<u64>,
}

impl Definitions {
    pub(crate) fn new(cluster: ClusterId, own: DefinitionDigest) -> Self {
        Definitions {
            cluster,
            own,
            peer_terms: BTreeMap::new(),
            tables: BTreeMap::new(),
            peers: BTreeMap::new(),
            version: 0,
            // Nothing known yet, and nothing to write until something is.
            written: Some(0),
        }
    }

    /// The definition `peer` was last heard running, when it is not this node's.
    pub(crate) fn foreign(&self, peer: NodeId) -> Option<DefinitionDigest> {
        self.peers.get(&peer).copied().filter(|d| *d != self.own)
    }

    /// The definition `peer` runs: `own`, or the other one once it arrived; `None` while
    /// that one is unknown.
    pub(crate) fn of<'a>(&'a self, peer: NodeId, own: &'a VoteTable) -> Option<&'a VoteTable> {
        match self.foreign(peer) {
            None => Some(own),
            Some(d) => self.tables.get(&d),
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
        let change = self.set(peer, digest);
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
        if self.peers.insert(peer, digest) != Some(digest) {
            self.version += 1;
        }
        let after = self.foreign(peer);
        if before == after {
            return Change::None;
        }
        let in_use: BTreeSet<DefinitionDigest> = self.peers.values().copied().collect();
        self.tables.retain(|d, _| in_use.contains(d));
        match after {
            Some(theirs) => Change::Mismatch { theirs },
            None => Change::Matched,
        }
    }

    /// This node now runs `own` instead of `previous` (kept as the table of any peer still
    /// running it), among the peers `peers` (what was kept about others is forgotten).
    /// Returns, in peer order, each peer whose standing changed.
    pub(crate) fn set_own(
        &mut self,
        own: DefinitionDigest,
        previous: VoteTable,
        peers: &BTreeSet<NodeId>,
    ) -> Vec<(NodeId, Change)> {
        let before: BTreeMap<NodeId, Option<DefinitionDigest>> =
            peers.iter().map(|&p| (p, self.foreign(p))).collect();
        let old = std::mem::replace(&mut self.own, own);
        self.peers.retain(|p, _| peers.contains(p));
        self.peer_terms.retain(|p, _| peers.contains(p));
        if old != own {
            self.tables.insert(old, previous);
        }
        let in_use: BTreeSet<DefinitionDigest> = self.peers.values().copied().collect();
        self.tables.retain(|d, _| in_use.contains(d));
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

    /// `peer` sent `table`. Kept when it is the definition the peer's heartbeats announce;
    /// returns whether it was new.
    pub(crate) fn received(&mut self, peer: NodeId, table: VoteTable) -> bool {
        let digest = table.digest(self.cluster);
        // Only the definition the peer's heartbeats announce counts: a stale or
        // inconsistent one is ignored.
        if self.foreign(peer) != Some(digest) || self.tables.contains_key(&digest) {
            return false;
        }
        self.tables.insert(digest, table);
        self.version += 1;
        true
    }

    /// Takes in what an earlier life recorded: peers among `peers` only. Returns the
    /// changes, in peer order.
    pub(crate) fn remember(
        &mut self,
        remembered: &PeerDefinitions,
        peers: &BTreeSet<NodeId>,
        own: &VoteTable,
    ) -> Vec<(NodeId, Change)> {
        let mut tables = BTreeMap::new();
        for (members, tie_breaker) in &remembered.tables {
            if let Ok(table) = VoteTable::from_parts(members, *tie_breaker) {
                tables.insert(table.digest(self.cluster), table);
            }
        }
        let mut changes = Vec::new();
        for &(peer, digest) in &remembered.peers {
            if !peers.contains(&peer) {
                continue;
            }
            let change = self.set(peer, digest);
            if let Some(t) = tables.get(&digest).filter(|_| digest != self.own) {
                self.tables.insert(digest, t.clone());
            }
            changes.push((peer, change));
        }
        // What the directory holds is what was read, unless entries were left out above.
        if self.record(own) == *remembered {
            self.written = Some(self.version);
        }
        changes
    }

    /// The distinct other definitions in use, `None` for one not received yet.
    pub(crate) fn others(&self) -> Vec<Option<VoteTable>> {
        let digests: BTreeSet<DefinitionDigest> =
            self.peers.values().copied().filter(|d| *d != self.own).collect();
        digests.iter().map(|d| self.tables.get(d).cloned()).collect()
    }

    /// Peers on another definition, for the status.
    pub(crate) fn mismatched(&self) -> Vec<ForeignDefinition> {
        self.peers
            .iter()
            .filter(|(_, d)| **d != self.own)
            .map(|(peer, digest)| ForeignDefinition {
                peer: *peer,
                digest: *digest,
                members: self.tables.get(digest).map(VoteTable::parts),
            })
            .collect()
    }

    /// The record for the data directory when it differs from what it holds.
    pub(crate) fn poll_persist(&self, own: &VoteTable) -> Option<PeerDefinitions> {
        (self.written != Some(self.version)).then(|| self.record(own))
    }

    /// The driver wrote `record`; a record no longer current is asked for again.
    pub(crate) fn persisted(&mut self, record: &PeerDefinitions, own: &VoteTable) {
        if self.record(own) == *record {
            self.written = Some(self.version);
        }
    }

    fn record(&self, own: &VoteTable) -> PeerDefinitions {
        let peers: Vec<(NodeId, DefinitionDigest)> = self.peers.iter().map(|(p, d)| (*p, *d)).collect();
        let digests: BTreeSet<DefinitionDigest> = peers.iter().map(|(_, d)| *d).collect();
        let tables = digests
            .iter()
            .filter_map(|d| if *d == self.own { Some(own) } else { self.tables.get(d) })
            .map(VoteTable::parts)
            .collect();
        PeerDefinitions { peers, tables }
    }
}
