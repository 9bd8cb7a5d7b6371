//! Gossip of reachability rows (scuttlebutt) and the partition view, sans-IO.
//!
//! Every member owns one row: its view of each peer it watches ([`View`]: heard, suspect,
//! down, left), stamped with the row version at which each entry last changed. The owner
//! raises the version only when an entry changes, so an idle cluster's rows stand still and
//! a peer that holds version `v` needs only the entries stamped after `v`. Heartbeats carry
//! the digest (every row's version) when it changed, while the peer is behind, and now and
//! then; a peer that sees a newer version asks for it:
//!
//! ```text
//!   A ── Heartbeat { .., digest_A }        ──► B     (A's rows changed)
//!   A ◄── Gossip { digest_B }               ── B     (request: B lacks something)
//!   A ── Gossip { digest_A, rows B lacks }  ──► B     (reply)
//!   A ◄── Gossip { rows A lacks }           ── B     (push, if B held news for A; its reply is empty)
//! ```
//!
//! [`RowTable`] holds this node's row and the freshest copy of every other member's,
//! merges what arrives (highest version per row wins; a delta applies only on top of the
//! version it was cut from), and answers digests within a byte budget. A row counts
//! (is fresh) while its owner is heard: by this node, or by the owner of a row that counts
//! ([`RowTable::mark_heard`]), so a dead or cut-off owner's row stops counting as soon as
//! the rows of those who heard it say so. [`RowTable::view`] turns the fresh rows into the
//! [`crate::PartitionView`] (who hears whom, connected components, one-way links) and
//! [`RowTable::liveness`] tells a dead peer from an unreachable one.
//!
//! Everything is bounded: rows by the member list, entries per row by the member list,
//! bytes per message by the caller's budget. Input from the network never panics; what
//! cannot be used is refused and counted ([`MergeOutcome`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use quorate_proto::{Incarnation, Instant, NodeId, RowDelta, RowEntry, RowVersion, View};

/// Bytes a delta costs before its entries, as [`RowTable::deltas_for`] budgets (an upper
/// bound of postcard's encoding: ids, incarnation and versions as varints).
const DELTA_OVERHEAD_BYTES: usize = 40;
/// Bytes one entry costs at most in postcard's encoding.
const ENTRY_BYTES: usize = 24;

/// One member's row as this node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The owner's life when it wrote this version.
    pub incarnation: Incarnation,
    /// The row's version.
    pub version: u64,
    /// What the owner thinks of each peer it watches, by peer.
    pub entries: BTreeMap<NodeId, RowEntry>,
}

#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) row: Row,
    /// When (this node's clock) the version last rose.
    pub(crate) updated: Instant,
    /// The last time this copy was known to be the owner's current row: a newer version
    /// arrived, or the owner's own digest named this version.
    pub(crate) confirmed: Instant,
    /// The last time the owner was found heard ([`RowTable::mark_heard`]).
    pub(crate) heard: Option<Instant>,
}

impl Stored {
    /// Whether the row counts at `now`: its owner was marked heard within `fresh_for`.
    pub(crate) fn counts(&self, now: Instant, fresh_for: Duration) -> bool {
        self.heard.is_some_and(|h| now - h <= fresh_for)
    }
}

/// What [`RowTable::merge`] did with a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Applied: the row is newer now.
    Applied,
    /// Not newer than what is held (a duplicate, or a reordered older copy).
    Stale,
    /// A delta cut from a version this node does not hold; the next exchange carries what
    /// is missing.
    Gap,
    /// The owner is not a member, or is this node (only this node writes its own row).
    UnknownOwner,
    /// More entries than members, or an entry about a non-member.
    Malformed,
}

/// Counts of what gossip merged and refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounters {
    /// Deltas applied.
    pub applied: u64,
    /// Deltas not newer than the row held.
    pub stale: u64,
    /// Deltas cut from a version not held.
    pub gaps: u64,
    /// Deltas from an unknown owner, or claiming this node's row.
    pub unknown_owner: u64,
    /// Deltas with too many entries or entries about non-members.
    pub malformed: u64,
}

impl MergeCounters {
    fn count(&mut self, outcome: MergeOutcome) {
        let slot = match outcome {
            MergeOutcome::Applied => &mut self.applied,
            MergeOutcome::Stale => &mut self.stale,
            MergeOutcome::Gap => &mut self.gaps,
            MergeOutcome::UnknownOwner => &mut self.unknown_owner,
            MergeOutcome::Malformed => &mut self.malformed,
        };
        *slot += 1;
    }
}

/// This node's row and the freshest copy of every other member's. See the module docs.
#[derive(Debug, Clone)]
pub struct RowTable {
    pub(crate) me: NodeId,
    pub(crate) members: BTreeSet<NodeId>,
    /// Members whose rows are gossiped (all members unless [`RowTable::with_owners`]).
    owners: BTreeSet<NodeId>,
    pub(crate) own: Row,
    pub(crate) rows: BTreeMap<NodeId, Stored>,
    /// Rises whenever any row held changes (this node's or a merged one).
    generation: u64,
    counters: MergeCounters,
}

impl RowTable {
    /// A table for node `me` in its life `incarnation`, in a cluster of `members` (this
    /// node included or not; it is added).
    pub fn new(me: NodeId, incarnation: Incarnation, members: impl IntoIterator<Item = NodeId>) -> Self {
        let mut members: BTreeSet<NodeId> = members.into_iter().collect();
        members.insert(me);
        RowTable {
            me,
            owners: members.clone(),
            members,
            own: Row { incarnation, version: 0, entries: BTreeMap::new() },
            rows: BTreeMap::new(),
            generation: 0,
            counters: MergeCounters::default(),
        }
    }

    /// Gossips only the rows of `owners` (members among them): other members' rows are
    /// refused, and this node's own row stays local unless it is one of them. A cluster of
    /// a few voters and many observers gossips the voters' rows only, so the rows and the
    /// digest stay as small as the voter set while every row still covers every member.
    pub fn with_owners(mut self, owners: impl IntoIterator<Item = NodeId>) -> Self {
        self.owners = owners.into_iter().filter(|o| self.members.contains(o)).collect();
        self
    }

    /// The member list changed while running: from now on the table covers `members` (this
    /// node is added) and takes the rows of `owners` among them. Rows of owners no longer
    /// taken are dropped; this node's row forgets entries about non-members (a new version,
    /// so peers take the change).
    pub fn set_members(
        &mut self,
        members: impl IntoIterator<Item = NodeId>,
        owners: impl IntoIterator<Item = NodeId>,
    ) {
        let mut members: BTreeSet<NodeId> = members.into_iter().collect();
        members.insert(self.me);
        self.owners = owners.into_iter().filter(|o| members.contains(o)).collect();
        self.members = members;
        let owners = &self.owners;
        self.rows.retain(|owner, _| owners.contains(owner));
        let before = self.own.entries.len();
        let kept = &self.members;
        self.own.entries.retain(|peer, _| kept.contains(peer));
        if self.own.entries.len() != before {
            self.own.version += 1;
        }
        self.generation += 1;
    }

    fn publishes_own(&self) -> bool {
        self.owners.contains(&self.me)
    }

    /// Updates this node's row from its current views of the peers it watches (call once
    /// per gossip round). Entries that changed are restamped with a new version; a call
    /// that changes nothing leaves the row, its version and the digest as they were.
    /// Returns whether the row changed.
    pub fn refresh_own(
        &mut self,
        views: impl IntoIterator<Item = (NodeId, View, Option<Incarnation>)>,
    ) -> bool {
        let next = self.own.version + 1;
        let mut changed = false;
        for (peer, view, incarnation) in views {
            if peer == self.me || !self.members.contains(&peer) {
                continue;
            }
            let entry = RowEntry { peer, view, incarnation, changed: next };
            match self.own.entries.get_mut(&peer) {
                Some(e) if e.view == view && e.incarnation == incarnation => {}
                Some(e) => {
                    *e = entry;
                    changed = true;
                }
                None => {
                    self.own.entries.insert(peer, entry);
                    changed = true;
                }
            }
        }
        if changed {
            self.own.version = next;
            self.generation += 1;
        }
        changed
    }

    /// Rises whenever a row held here changes: a digest sent under an older generation
    /// is out of date.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Marks, at `now`, every owner that is heard: by this node (its own row says heard or
    /// suspect), or by an owner already marked, as that owner's row says. What a row tells
    /// counts while its owner was marked within the freshness window.
    pub fn mark_heard(&mut self, now: Instant) {
        let heard_in = |row: &Row| -> Vec<NodeId> {
            row.entries.values().filter(|e| e.view.hears()).map(|e| e.peer).collect()
        };
        let mut reached = BTreeSet::new();
        let mut queue = heard_in(&self.own);
        while let Some(owner) = queue.pop() {
            if owner == self.me || !reached.insert(owner) {
                continue;
            }
            if let Some(s) = self.rows.get(&owner) {
                queue.extend(heard_in(&s.row));
            }
        }
        for (owner, s) in &mut self.rows {
            if reached.contains(owner) {
                s.heard = Some(now);
            }
        }
    }

    /// `from`'s digest arrived at `now` from `from` itself: if it names the version of
    /// `from`'s row held here, that copy is known current.
    pub fn confirm(&mut self, now: Instant, from: NodeId, digest: &[RowVersion]) {
        let Some(s) = self.rows.get_mut(&from) else { return };
        let current = digest
            .iter()
            .any(|v| v.owner == from && v.incarnation == s.row.incarnation && v.version == s.row.version);
        if current {
            s.confirmed = now;
        }
    }

    /// Whether the digest `theirs` names a row newer than the one held here (or one not
    /// held at all), among the rows this table takes.
    pub fn is_behind(&self, theirs: &[RowVersion]) -> bool {
        theirs.iter().any(|v| {
            if v.owner == self.me || !self.owners.contains(&v.owner) {
                return false;
            }
            match self.rows.get(&v.owner) {
                Some(s) => (v.incarnation, v.version) > (s.row.incarnation, s.row.version),
                None => true,
            }
        })
    }

    /// This node's row.
    pub fn own(&self) -> &Row {
        &self.own
    }

    /// The row of `owner` as held here (this node's own row for `me`).
    pub fn row(&self, owner: NodeId) -> Option<&Row> {
        if owner == self.me {
            return Some(&self.own);
        }
        self.rows.get(&owner).map(|s| &s.row)
    }

    /// When the row of `owner` last rose in version (this node's clock).
    pub fn updated(&self, owner: NodeId) -> Option<Instant> {
        self.rows.get(&owner).map(|s| s.updated)
    }

    /// What merging refused and applied so far.
    pub fn counters(&self) -> MergeCounters {
        self.counters
    }

    /// Merges one delta received at `now`. See [`MergeOutcome`].
    pub fn merge(&mut self, now: Instant, delta: &RowDelta) -> MergeOutcome {
        let outcome = self.merge_inner(now, delta);
        self.counters.count(outcome);
        outcome
    }

    fn merge_inner(&mut self, now: Instant, delta: &RowDelta) -> MergeOutcome {
        if delta.owner == self.me || !self.owners.contains(&delta.owner) {
            return MergeOutcome::UnknownOwner;
        }
        if delta.entries.len() > self.members.len()
            || delta.entries.iter().any(|e| !self.members.contains(&e.peer) || e.peer == delta.owner)
        {
            return MergeOutcome::Malformed;
        }
        let held = self.rows.get(&delta.owner).map(|s| (s.row.incarnation, s.row.version));
        let replace = match (held, delta.base) {
            (Some((inc, _)), _) if delta.incarnation < inc => return MergeOutcome::Stale,
            (Some((inc, version)), _) if delta.incarnation == inc && delta.version <= version => {
                return MergeOutcome::Stale
            }
            (_, None) => true,
            (Some((inc, version)), Some(base)) if delta.incarnation == inc && base <= version => false,
            _ => return MergeOutcome::Gap,
        };
        let stored = self.rows.entry(delta.owner).or_insert_with(|| Stored {
            row: Row { incarnation: delta.incarnation, version: 0, entries: BTreeMap::new() },
            updated: now,
            confirmed: now,
            heard: None,
        });
        if replace {
            stored.row.entries.clear();
        }
        stored.row.incarnation = delta.incarnation;
        stored.row.version = delta.version;
        stored.updated = now;
        stored.confirmed = now;
        self.generation += 1;
        for e in &delta.entries {
            stored.row.entries.insert(e.peer, *e);
        }
        MergeOutcome::Applied
    }

    /// The versions of every row held, this node's own first (if it publishes it).
    pub fn digest(&self) -> Vec<RowVersion> {
        self.versions().collect()
    }

    /// [`RowTable::digest`] without building it: what heartbeats ask before they carry one.
    fn versions(&self) -> impl Iterator<Item = RowVersion> + '_ {
        let own = RowVersion { owner: self.me, incarnation: self.own.incarnation, version: self.own.version };
        let own = self.publishes_own().then_some(own);
        let others = self.rows.iter().map(|(&owner, s)| RowVersion {
            owner,
            incarnation: s.row.incarnation,
            version: s.row.version,
        });
        own.into_iter().chain(others)
    }

    /// How many rows the digest names.
    pub fn digest_len(&self) -> usize {
        self.rows.len() + usize::from(self.publishes_own())
    }

    /// Whether the digest `theirs` lacks a row held here or holds an older version of it.
    pub fn is_ahead_of(&self, theirs: &[RowVersion]) -> bool {
        self.versions().any(|o| {
            theirs
                .iter()
                .find(|t| t.owner == o.owner)
                .is_none_or(|t| (t.incarnation, t.version) < (o.incarnation, o.version))
        })
    }

    /// The rows (or their changes) that a peer whose digest is `digest` lacks, this node's
    /// own row first, within about `budget` encoded bytes. `start` rotates where the other
    /// rows begin, so that a small budget still spreads every row over several rounds.
    pub fn deltas_for(&self, digest: &[RowVersion], budget: usize, start: usize) -> Vec<RowDelta> {
        // Only members' entries matter; a hostile digest cannot make this allocate more.
        let theirs: BTreeMap<NodeId, (Incarnation, u64)> = digest
            .iter()
            .filter(|v| self.members.contains(&v.owner))
            .map(|v| (v.owner, (v.incarnation, v.version)))
            .collect();
        let mut out = Vec::new();
        let mut spent = 0usize;
        let n = self.rows.len();
        let others = self.rows.iter().cycle().skip(if n == 0 { 0 } else { start % n }).take(n);
        let own = self.publishes_own().then_some((self.me, &self.own));
        let all = own.into_iter().chain(others.map(|(&o, s)| (o, &s.row)));
        for (owner, row) in all {
            let delta = match theirs.get(&owner) {
                Some(&(inc, version)) if inc == row.incarnation && version >= row.version => continue,
                Some(&(inc, _)) if inc > row.incarnation => continue,
                Some(&(inc, version)) if inc == row.incarnation => RowDelta {
                    owner,
                    incarnation: row.incarnation,
                    version: row.version,
                    base: Some(version),
                    entries: row.entries.values().filter(|e| e.changed > version).copied().collect(),
                },
                _ => RowDelta {
                    owner,
                    incarnation: row.incarnation,
                    version: row.version,
                    base: None,
                    entries: row.entries.values().copied().collect(),
                },
            };
            let cost = DELTA_OVERHEAD_BYTES + ENTRY_BYTES * delta.entries.len();
            if spent + cost > budget {
                continue;
            }
            spent += cost;
            out.push(delta);
        }
        out
    }

    /// Owners marked heard ([`RowTable::mark_heard`]) within `fresh_for` before `now`, with
    /// this node.
    pub(crate) fn fresh(&self, now: Instant, fresh_for: Duration) -> BTreeMap<NodeId, &Row> {
        let mut fresh: BTreeMap<NodeId, &Row> =
            self.rows.iter().filter(|(_, s)| s.counts(now, fresh_for)).map(|(&o, s)| (o, &s.row)).collect();
        fresh.insert(self.me, &self.own);
        fresh
    }

    /// Owners (this node included) whose fresh rows say `peer` is down.
    pub fn accusers(&self, now: Instant, fresh_for: Duration, peer: NodeId) -> Vec<NodeId> {
        self.fresh(now, fresh_for)
            .into_iter()
            .filter(|(_, row)| row.entries.get(&peer).is_some_and(|e| e.view == View::Down))
            .map(|(owner, _)| owner)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{group_name, Liveness};

    const FRESH: Duration = Duration::from_secs(2);

    fn t(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    /// A table for `me` in a cluster of `n`, holding rows in which each owner hears exactly
    /// the members `hears(owner)` lists (and considers every other member down).
    fn cluster(me: u64, n: u64, hears: impl Fn(u64) -> Vec<u64>) -> RowTable {
        let members = 1..=n;
        let views = |owner: u64| {
            let heard = hears(owner);
            (1..=n).filter(move |&p| p != owner).map(move |p| {
                let view = if heard.contains(&p) { View::Heard } else { View::Down };
                (NodeId(p), view, Some(Incarnation(p)))
            })
        };
        let mut table = RowTable::new(NodeId(me), Incarnation(me), members.clone().map(NodeId));
        table.refresh_own(views(me));
        for owner in members.filter(|&o| o != me) {
            let mut theirs = RowTable::new(NodeId(owner), Incarnation(owner), (1..=n).map(NodeId));
            theirs.refresh_own(views(owner));
            for delta in theirs.deltas_for(&[], usize::MAX, 0).into_iter().filter(|d| d.owner.0 == owner) {
                assert_eq!(table.merge(t(100), &delta), MergeOutcome::Applied);
            }
        }
        table.mark_heard(t(100));
        table
    }

    #[test]
    fn highest_version_wins_and_deltas_apply_only_on_their_base() {
        let mut a = RowTable::new(NodeId(1), Incarnation(1), ids(&[1, 2, 3]));
        let mut b = RowTable::new(NodeId(2), Incarnation(2), ids(&[1, 2, 3]));
        b.refresh_own([(NodeId(1), View::Heard, Some(Incarnation(1))), (NodeId(3), View::Heard, None)]);
        let full = b.deltas_for(&a.digest(), usize::MAX, 0);
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].base, None);
        assert_eq!(a.merge(t(1), &full[0]), MergeOutcome::Applied);
        assert_eq!(a.merge(t(2), &full[0]), MergeOutcome::Stale, "a duplicate is not newer");

        // A round that changes nothing keeps the version: a's copy stays current.
        assert!(
            !b.refresh_own([(NodeId(1), View::Heard, Some(Incarnation(1))), (NodeId(3), View::Heard, None)])
        );
        assert!(b.deltas_for(&a.digest(), usize::MAX, 0).is_empty(), "nothing changed, nothing to send");
        // Node 3 turns suspect (version 2), then down (version 3): a delta from a's version
        // carries node 3's entry alone.
        assert!(
            b.refresh_own([(NodeId(1), View::Heard, Some(Incarnation(1))), (NodeId(3), View::Suspect, None)])
        );
        let skipped = b.deltas_for(&a.digest(), usize::MAX, 0);
        let generation = b.generation();
        b.refresh_own([(NodeId(1), View::Heard, Some(Incarnation(1))), (NodeId(3), View::Down, None)]);
        assert_eq!(b.generation(), generation + 1);
        let delta = b.deltas_for(&a.digest(), usize::MAX, 0);
        assert_eq!(delta[0].base, Some(1));
        assert_eq!(delta[0].entries.len(), 1);
        assert_eq!(delta[0].entries[0].view, View::Down);
        assert_eq!(a.merge(t(3), &delta[0]), MergeOutcome::Applied);
        assert_eq!(a.merge(t(4), &skipped[0]), MergeOutcome::Stale, "an older delta arriving late");
        let row = a.row(NodeId(2)).map(|r| (r.version, r.entries.len(), r.entries[&NodeId(3)].view));
        assert_eq!(row, Some((3, 2, View::Down)));

        // A delta cut from a version a never held is refused, not half-applied.
        let gap = RowDelta { base: Some(7), version: 9, ..delta[0].clone() };
        assert_eq!(a.merge(t(5), &gap), MergeOutcome::Gap);
        // A new life replaces the row whole, and the old life can no longer win.
        let mut reborn = RowTable::new(NodeId(2), Incarnation(20), ids(&[1, 2, 3]));
        reborn.refresh_own([(NodeId(1), View::Unknown, None)]);
        let fresh = reborn.deltas_for(&a.digest(), usize::MAX, 0);
        assert_eq!(fresh[0].base, None, "a's digest names another life");
        assert_eq!(a.merge(t(6), &fresh[0]), MergeOutcome::Applied);
        assert_eq!(a.merge(t(7), &delta[0]), MergeOutcome::Stale);
        assert_eq!(a.counters().applied, 3);
    }

    #[test]
    fn hostile_deltas_are_refused_and_counted() {
        let mut a = RowTable::new(NodeId(1), Incarnation(1), ids(&[1, 2, 3]));
        let entry = |p| RowEntry { peer: NodeId(p), view: View::Heard, incarnation: None, changed: 1 };
        let delta = |owner, entries: Vec<RowEntry>| RowDelta {
            owner: NodeId(owner),
            incarnation: Incarnation(1),
            version: 1,
            base: None,
            entries,
        };
        assert_eq!(a.merge(t(1), &delta(1, vec![entry(2)])), MergeOutcome::UnknownOwner, "own row");
        assert_eq!(a.merge(t(1), &delta(9, vec![entry(2)])), MergeOutcome::UnknownOwner);
        assert_eq!(a.merge(t(1), &delta(2, vec![entry(9)])), MergeOutcome::Malformed);
        assert_eq!(a.merge(t(1), &delta(2, vec![entry(1); 5])), MergeOutcome::Malformed);
        assert_eq!(a.merge(t(1), &delta(2, vec![entry(2)])), MergeOutcome::Malformed, "about itself");
        assert_eq!(a.row(NodeId(2)), None);
        let c = a.counters();
        assert_eq!((c.unknown_owner, c.malformed, c.applied), (2, 3, 0));
    }

    #[test]
    fn deltas_respect_the_byte_budget_and_rotate() {
        let table = cluster(1, 20, |o| (1..=20).filter(|&p| p != o).collect());
        let all = table.deltas_for(&[], usize::MAX, 0);
        assert_eq!(all.len(), 20);
        let budget = 2_000;
        let some = table.deltas_for(&[], budget, 0);
        let cost: usize = some.iter().map(|d| DELTA_OVERHEAD_BYTES + ENTRY_BYTES * d.entries.len()).sum();
        assert!(cost <= budget && !some.is_empty() && some.len() < 20, "{} rows, {cost} bytes", some.len());
        assert_eq!(some[0].owner, NodeId(1), "own row first");
        let later = table.deltas_for(&[], budget, 7);
        assert_ne!(some[1].owner, later[1].owner, "a different start spreads other rows");
        // An up-to-date peer needs nothing.
        assert!(table.deltas_for(&table.digest(), usize::MAX, 0).is_empty());
    }

    #[test]
    fn clean_split_is_two_components_seen_from_inside() {
        let side = |o: u64| if o <= 2 { vec![1, 2] } else { vec![3, 4, 5] };
        let mut minority = cluster(1, 5, side);
        // Nobody on this side hears the other side's owners: their rows do not count, so
        // the other side is unseen, while 2 (heard here) is in 1's group.
        let view = minority.view(t(200), FRESH, 1);
        assert_eq!(view.components, vec![ids(&[1, 2])]);
        assert_eq!(view.unseen, ids(&[3, 4, 5]));
        assert_eq!(view.to_string(), "partition A: {1,2}; unseen: {3,4,5}");
        // Once 1 hears 3 again, 3's row counts, and through it 4's and 5's: both groups
        // show, joined by the link 1 reports.
        minority.refresh_own([(NodeId(3), View::Heard, Some(Incarnation(3)))]);
        minority.mark_heard(t(300));
        let view = minority.view(t(300), FRESH, 1);
        assert_eq!(view.unseen, Vec::<NodeId>::new());
        assert_eq!(view.one_way, vec![(NodeId(1), NodeId(3))], "3's row says it does not hear 1");
        assert_eq!(view.components, vec![ids(&[1, 2]), ids(&[3, 4, 5])]);
        // Rows marked at 300 ms stop counting once the window passes without a new mark:
        // only what 1's own row says is left.
        let later = minority.view(t(300) + FRESH + Duration::from_millis(1), FRESH, 1);
        assert_eq!((later.components, later.unseen), (vec![ids(&[1, 2, 3])], ids(&[4, 5])));
    }

    #[test]
    fn a_row_counts_while_someone_heard_hears_its_owner() {
        // A chain: 1 hears 2, 2 hears 3, 3 hears 4; nobody hears 5.
        let chain = cluster(1, 5, |o| match o {
            1 => vec![2],
            2 => vec![3],
            3 => vec![4],
            _ => vec![],
        });
        let counted: Vec<NodeId> = chain.fresh(t(100), FRESH).into_keys().collect();
        assert_eq!(counted, ids(&[1, 2, 3, 4]));
        assert_eq!(chain.updated(NodeId(5)), Some(t(100)), "held, just not counted");
        // A row that never changes still counts while its owner is heard.
        let idle = cluster(1, 3, |o| (1..=3).filter(|&p| p != o).collect());
        assert_eq!(idle.fresh(t(100), FRESH).len(), 3);
    }

    #[test]
    fn a_digest_from_the_owner_confirms_its_row() {
        let mut table = cluster(1, 3, |o| (1..=3).filter(|&p| p != o).collect());
        let held = table.row(NodeId(2)).map(|r| (r.incarnation, r.version));
        let Some((incarnation, version)) = held else { panic!("no row of 2") };
        let named = |version| vec![RowVersion { owner: NodeId(2), incarnation, version }];
        // 1 lost 3 at 150 ms; 2's row (merged at 100 ms) says it hears 3: no evidence yet.
        assert_eq!(table.liveness(t(200), FRESH, NodeId(3), View::Down, t(150)), Liveness::DownEverywhere);
        // A newer version named by 2 is no confirmation; the version held, named by
        // someone other than 2, neither.
        table.confirm(t(210), NodeId(2), &named(version + 1));
        table.confirm(t(210), NodeId(3), &named(version));
        assert_eq!(table.liveness(t(220), FRESH, NodeId(3), View::Down, t(150)), Liveness::DownEverywhere);
        // 2 itself names the version held: its row is current after the loss.
        table.confirm(t(230), NodeId(2), &named(version));
        assert_eq!(
            table.liveness(t(240), FRESH, NodeId(3), View::Down, t(150)),
            Liveness::Indirect { via: ids(&[2]) }
        );
        assert!(table.is_behind(&named(version + 1)));
        assert!(!table.is_behind(&named(version)));
    }

    #[test]
    fn one_way_links_and_bridges_are_named() {
        // Everyone hears everyone, except that 3 does not hear 2 (2 still hears 3).
        let table = cluster(1, 5, |o| (1..=5).filter(|&p| p != o && !(o == 3 && p == 2)).collect());
        let view = table.view(t(200), FRESH, 1);
        assert_eq!(view.one_way, vec![(NodeId(2), NodeId(3))]);
        assert_eq!(view.components, vec![ids(&[1, 2, 3, 4, 5])], "2 and 3 are still joined through others");
        assert_eq!(view.to_string(), "partition A: {1,2,3,4,5}; node 2 sees 3 one-way");

        // Bridge: 3 hears both sides, {1,2} and {4,5} do not hear each other.
        let bridge = cluster(1, 5, |o| match o {
            1 | 2 => vec![1, 2, 3],
            3 => vec![1, 2, 4, 5],
            _ => vec![3, 4, 5],
        });
        let view = bridge.view(t(200), FRESH, 1);
        assert_eq!(view.components, vec![ids(&[1, 2, 3, 4, 5])], "one component through the bridge");
        assert!(view.one_way.is_empty());
    }

    #[test]
    fn corroboration_ignores_a_lone_accuser() {
        // Node 4 is degraded: it hears nobody. Everyone else hears everyone.
        let table = cluster(1, 5, |o| if o == 4 { vec![] } else { (1..=5).filter(|&p| p != o).collect() });
        let alone = table.view(t(200), FRESH, 1);
        assert_eq!(alone.one_way.len(), 4, "without corroboration 4's accusations cut it off: {alone}");
        let corroborated = table.view(t(200), FRESH, 2);
        assert_eq!(corroborated.components, vec![ids(&[1, 2, 3, 4, 5])]);
        assert!(corroborated.one_way.is_empty(), "{corroborated}");
    }

    #[test]
    fn liveness_tells_a_crash_from_an_unreachable_peer() {
        // 1 lost 3 at t=50; 2 still hears 3 (rows merged at t=100).
        let cut = cluster(1, 5, |o| match o {
            1 => vec![2, 4, 5],
            3 => vec![2, 4, 5],
            _ => (1..=5).filter(|&p| p != o).collect(),
        });
        let live = cut.liveness(t(200), FRESH, NodeId(3), View::Down, t(50));
        assert_eq!(live, Liveness::Indirect { via: ids(&[2, 4, 5]) });
        // Rows older than the loss are no evidence.
        assert_eq!(cut.liveness(t(200), FRESH, NodeId(3), View::Down, t(150)), Liveness::DownEverywhere);
        assert_eq!(cut.liveness(t(200), FRESH, NodeId(2), View::Heard, t(0)), Liveness::Direct);

        let crashed = cluster(1, 5, |o| (1..=5).filter(|&p| p != o && p != 3).collect());
        assert_eq!(crashed.liveness(t(200), FRESH, NodeId(3), View::Down, t(50)), Liveness::DownEverywhere);
        let alone = RowTable::new(NodeId(1), Incarnation(1), ids(&[1, 2, 3]));
        assert_eq!(alone.liveness(t(200), FRESH, NodeId(3), View::Down, t(50)), Liveness::Unknown);
        assert_eq!(alone.liveness(t(200), FRESH, NodeId(3), View::Left, t(50)), Liveness::Left);
    }

    #[test]
    fn only_the_owners_rows_are_gossiped() {
        // Node 4 is an observer: its row stays local, nobody accepts one from it.
        let mut observer =
            RowTable::new(NodeId(4), Incarnation(4), ids(&[1, 2, 3, 4])).with_owners(ids(&[1, 2, 3]));
        observer.refresh_own([(NodeId(1), View::Heard, None)]);
        assert!(observer.digest().is_empty());
        assert!(observer.deltas_for(&[], usize::MAX, 0).is_empty());
        let mut voter =
            RowTable::new(NodeId(1), Incarnation(1), ids(&[1, 2, 3, 4])).with_owners(ids(&[1, 2, 3]));
        voter.refresh_own([(NodeId(4), View::Heard, None)]);
        let from_observer = RowDelta {
            owner: NodeId(4),
            incarnation: Incarnation(4),
            version: 1,
            base: None,
            entries: vec![],
        };
        assert_eq!(voter.merge(t(1), &from_observer), MergeOutcome::UnknownOwner);
        let deltas = voter.deltas_for(&[], usize::MAX, 0);
        assert_eq!(observer.merge(t(1), &deltas[0]), MergeOutcome::Applied);
        // The observer still appears in views, through the voters that hear it.
        observer.mark_heard(t(1));
        let view = observer.view(t(1), FRESH, 1);
        assert_eq!(view.components, vec![ids(&[1, 4])]);
    }

    #[test]
    fn group_names_continue_past_z() {
        assert_eq!(group_name(0), "A");
        assert_eq!(group_name(25), "Z");
        assert_eq!(group_name(26), "AA");
        assert_eq!(group_name(27), "AB");
    }
}
