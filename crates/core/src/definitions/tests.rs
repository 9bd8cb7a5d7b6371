//! The table of what each peer runs, rule by rule (`docs/reconfiguration.md`, rules 4-6):
//! who exchanges votes, what is adopted, when a definition is committed, which heartbeat
//! digests are stale, and what the data directory keeps.

use std::collections::{BTreeMap, BTreeSet};

use quorate_proto::{Change, ClusterId, DefinitionDigest, Instant, NodeId, Roster, TieBreaker, VoteTable};

use super::{Change as PeerChange, Definitions};
use crate::promises::PeerDefinitions;

const CLUSTER: ClusterId = ClusterId(7);

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn table(ids: &[u64], tie: TieBreaker) -> VoteTable {
    VoteTable::new(ids.iter().map(|&i| (n(i), 1)), tie).unwrap_or_else(|e| panic!("{e}"))
}

/// Version 0 of nodes 1-3, strict majority.
fn v0() -> Roster {
    Roster::initial(table(&[1, 2, 3], TieBreaker::None), BTreeMap::new())
}

fn next(r: &Roster, change: Change) -> Roster {
    r.next(&change, Some("n:1")).unwrap_or_else(|e| panic!("{e}"))
}

fn add(r: &Roster, id: u64) -> Roster {
    next(r, Change::AddMember { id: n(id), votes: 1 })
}

fn digest(r: &Roster) -> DefinitionDigest {
    r.digest(CLUSTER)
}

/// Node 1's table, running `own`, among peers 2-5.
fn node1(own: Roster) -> Definitions {
    Definitions::new(CLUSTER, n(1), own)
}

/// `peer` is heard on `r` and its definition arrives.
fn runs(d: &mut Definitions, peer: u64, r: &Roster) {
    d.heard(Instant::ZERO, n(peer), None, digest(r));
    d.received(n(peer), r.clone());
}

fn peers(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().map(|&i| n(i)).collect()
}

#[test]
fn votes_cross_one_version_that_passes_the_check_and_nothing_further() {
    let v1 = add(&v0(), 4);
    let v2 = add(&v1, 5);
    let mut d = node1(v1.clone());
    runs(&mut d, 2, &v0());
    runs(&mut d, 3, &v2);
    runs(&mut d, 4, &v1);
    assert!(d.exchanges_votes(n(2)) && d.exchanges_votes(n(3)) && d.exchanges_votes(n(4)));
    assert_eq!([2, 3, 4].map(|p| d.version_of(n(p))), [Some(0), Some(2), Some(1)]);
    // Two versions apart: no votes.
    let v3 = add(&v2, 6);
    runs(&mut d, 3, &v3);
    assert!(!d.exchanges_votes(n(3)));
    // One version apart but not a safe successor (a different version 0: another file
    // with a lowest-id tie-breaker among four, beside three of strict majority... here
    // two voters removed at once): no votes.
    let mut d = node1(v0());
    let unsafe_next = Roster { version: 1, votes: table(&[1], TieBreaker::None), ..v0() };
    runs(&mut d, 2, &unsafe_next);
    assert_eq!(d.version_of(n(2)), Some(1));
    assert!(!d.exchanges_votes(n(2)));
    // Same version, another digest: no votes, until the definition arrives: none either.
    let other = Roster { votes: table(&[1, 2, 3, 4], TieBreaker::None), ..v0() };
    let mut d = node1(v0());
    d.heard(Instant::ZERO, n(2), None, digest(&other));
    assert_eq!(d.version_of(n(2)), None);
    assert!(!d.exchanges_votes(n(2)));
    d.received(n(2), other);
    assert!(!d.exchanges_votes(n(2)));
}

#[test]
fn a_change_is_committed_once_a_quorum_of_its_parents_voters_runs_it() {
    let v1 = add(&v0(), 4);
    let mut d = node1(v1.clone());
    // Only node 1 runs it: 1 of {1,2,3} is no quorum, so version 0 stays in force.
    assert!(!d.is_committed());
    assert_eq!(d.not_moved(), [n(2), n(3)]);
    assert_eq!(d.others(), [Some(v0().votes)]);
    runs(&mut d, 4, &v1);
    assert!(!d.is_committed(), "node 4 is no voter of the parent");
    runs(&mut d, 2, &v0());
    assert!(!d.is_committed(), "node 2 still runs the parent");
    // A later version counts as having moved.
    runs(&mut d, 2, &add(&v1, 5));
    assert!(d.is_committed());
    assert_eq!(d.not_moved(), [n(3)]);
    assert_eq!(d.others().len(), 1, "only node 2's version 2: {:?}", d.others());
    // Version 0 is always committed.
    assert!(node1(v0()).is_committed());
}

#[test]
fn a_later_version_is_adopted_and_one_of_the_same_version_only_when_committed_and_ours_is_not() {
    let v1 = add(&v0(), 4);
    let mut d = node1(v0());
    assert!(d.newer().is_none());
    runs(&mut d, 2, &v1);
    assert_eq!(d.newer(), Some(&v1));

    // Two changes of version 1: ours adds 4, theirs adds 5.
    let theirs = add(&v0(), 5);
    let mut d = node1(v1.clone());
    runs(&mut d, 2, &theirs);
    assert!(d.newer().is_none(), "theirs is not committed: only node 2 of {{1,2,3}} runs it");
    runs(&mut d, 3, &theirs);
    assert_eq!(d.newer(), Some(&theirs), "a quorum of version 0's voters runs theirs");
    // Ours committed (node 2 runs ours too): theirs is never adopted.
    let mut d = node1(v1.clone());
    runs(&mut d, 2, &v1);
    runs(&mut d, 3, &theirs);
    assert!(d.is_committed() && d.newer().is_none());

    // At version 0, another file is never adopted.
    let other_file = Roster::initial(table(&[1, 2], TieBreaker::None), BTreeMap::new());
    let mut d = node1(v0());
    runs(&mut d, 2, &other_file);
    runs(&mut d, 3, &other_file);
    assert!(d.newer().is_none());
}

#[test]
fn a_heartbeat_naming_a_definition_the_peer_ran_earlier_is_stale() {
    let v1 = add(&v0(), 4);
    let mut d = node1(v1.clone());
    runs(&mut d, 2, &v0());
    // Node 2's push of version 1 arrives before its last heartbeat of version 0.
    d.received(n(2), v1.clone());
    assert_eq!(d.foreign(n(2)), None);
    let (change, _) = d.heard(Instant::ZERO, n(2), None, digest(&v0()));
    assert_eq!((change, d.foreign(n(2))), (PeerChange::None, None), "stale: node 2 runs version 1");
    // A push overtaken by a later one is stale too.
    let v2 = add(&v1, 5);
    d.received(n(2), v2.clone());
    d.received(n(2), v1.clone());
    assert_eq!(d.foreign(n(2)), Some(digest(&v2)));
    // A new life may run anything: its first heartbeat is taken.
    d.new_life(n(2));
    let (change, _) = d.heard(Instant::ZERO, n(2), None, digest(&v0()));
    assert_eq!(change, PeerChange::Mismatch { theirs: digest(&v0()) });
}

#[test]
fn a_definition_a_peer_sends_is_what_it_runs_when_nothing_else_was_heard_or_it_is_later() {
    let v1 = add(&v0(), 4);
    let mut d = node1(v0());
    // Nothing heard of node 2: its word is taken.
    let (change, new) = d.received(n(2), v1.clone());
    assert_eq!((change, new), (PeerChange::Mismatch { theirs: digest(&v1) }, true));
    // Node 3 runs version 1; an older definition it sends is not taken as what it runs.
    runs(&mut d, 3, &v1);
    let (change, new) = d.received(n(3), v0());
    assert_eq!((change, new, d.foreign(n(3))), (PeerChange::None, false, Some(digest(&v1))));
}

#[test]
fn switching_keeps_the_old_table_for_peers_still_on_it_and_forgets_the_rest() {
    let v1 = add(&v0(), 4);
    let mut d = node1(v0());
    runs(&mut d, 2, &v0());
    runs(&mut d, 3, &v0());
    let changes = d.set_own(v1.clone(), &peers(&[2, 3, 4]));
    assert_eq!(
        changes,
        [
            (n(2), PeerChange::Mismatch { theirs: digest(&v0()) }),
            (n(3), PeerChange::Mismatch { theirs: digest(&v0()) })
        ]
    );
    assert!(d.exchanges_votes(n(2)), "version 0 is one below, a safe predecessor");
    assert_eq!(d.of(n(2)), Some(&v0().votes));
    runs(&mut d, 2, &v1);
    runs(&mut d, 3, &v1);
    assert!(d.others().is_empty(), "committed, nobody on version 0: {:?}", d.others());
    assert!(d.mismatched().is_empty());
    // A peer that is no member any more is forgotten.
    d.set_own(next(&v1, Change::RemoveMember { id: n(3) }), &peers(&[2, 4]));
    assert_eq!(d.version_of(n(3)), None);
}

#[test]
fn the_record_keeps_versions_and_a_recalled_table_serves_the_joint_rule_but_is_never_adopted() {
    let v1 = add(&v0(), 4);
    let mut d = node1(v0());
    runs(&mut d, 2, &v1);
    let record = d.poll_persist().unwrap_or_else(|| panic!("nothing to persist"));
    assert_eq!(record.tables.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1]);
    d.persisted(&record);
    assert_eq!(d.poll_persist(), None);

    let mut later = node1(v0());
    later.remember(&record, &peers(&[2, 3]));
    assert_eq!(later.poll_persist(), None, "what was read is what the directory holds");
    assert_eq!(later.foreign(n(2)), Some(digest(&v1)), "the version survives the record");
    assert_eq!(later.others(), [Some(v1.votes.clone())]);
    assert!(later.exchanges_votes(n(2)));
    assert!(later.newer().is_none(), "a table from the record lacks its parent: not adopted");
    // Once node 2 sends it, it is.
    later.received(n(2), v1.clone());
    assert_eq!(later.newer(), Some(&v1));
    let empty = PeerDefinitions::default();
    assert!(node1(v0()).remember(&empty, &peers(&[2])).is_empty());
}

#[test]
fn status_shows_each_foreign_definitions_version_once_known() {
    let v1 = add(&v0(), 4);
    let mut d = node1(v0());
    d.heard(Instant::ZERO, n(2), None, digest(&v1));
    assert_eq!(d.mismatched().first().map(|m| m.version), Some(None));
    d.received(n(2), v1);
    assert_eq!(d.mismatched().first().map(|m| m.version), Some(Some(1)));
}

#[test]
fn what_replaces_what_a_peer_runs() {
    let (a, b) = (DefinitionDigest([1; 8]), DefinitionDigest([2; 8]));
    assert!(super::supersedes(2, a, 1, b), "a later version");
    assert!(!super::supersedes(1, a, 2, b), "an earlier one");
    assert!(super::supersedes(1, a, 1, b) && super::supersedes(1, b, 1, a), "another of the same version");
    assert!(!super::supersedes(1, a, 1, a), "the same one");
    assert!(!super::supersedes(0, a, 0, b), "another file: never");
}

#[test]
fn a_push_of_a_definition_the_peer_left_for_another_of_its_version_is_stale() {
    // Node 2 ran version 1 "adds 4", then moved to the committed version 1 "adds 5"; the
    // push of the first arrives late.
    let (ours, theirs) = (add(&v0(), 4), add(&v0(), 5));
    let mut d = node1(v0());
    runs(&mut d, 2, &ours);
    d.received(n(2), theirs.clone());
    assert_eq!(d.foreign(n(2)), Some(digest(&theirs)));
    let (change, _) = d.received(n(2), ours);
    assert_eq!((change, d.foreign(n(2))), (PeerChange::None, Some(digest(&theirs))));
}

#[test]
fn an_unknown_definition_is_asked_for_once_a_second_and_not_once_known() {
    let v1 = add(&v0(), 4);
    let mut d = node1(v0());
    let at = |ms: u64| Instant::from_nanos(ms * 1_000_000);
    assert!(d.heard(at(0), n(2), None, digest(&v1)).1, "unknown: ask");
    assert!(!d.heard(at(500), n(2), None, digest(&v1)).1, "asked 0.5 s ago");
    assert!(d.heard(at(1_000), n(2), None, digest(&v1)).1, "a second later: ask again");
    d.received(n(2), v1.clone());
    assert!(!d.heard(at(3_000), n(2), None, digest(&v1)).1, "known: never");
    // A peer that moves to another unknown one is asked at once.
    let v2 = add(&v1, 5);
    assert!(d.heard(at(3_001), n(2), None, digest(&v2)).1);
}

#[test]
fn every_change_of_what_peers_run_is_to_be_persisted() {
    let v1 = add(&v0(), 4);
    // Heard only (the table not yet received): the digest alone is worth keeping.
    let mut d = node1(v0());
    d.heard(Instant::ZERO, n(2), None, digest(&v1));
    let record = d.poll_persist().unwrap_or_else(|| panic!("a peer heard on another definition"));
    d.persisted(&record);
    assert_eq!(d.poll_persist(), None);
    // This node switching definitions changes the record too.
    d.received(n(2), v1.clone());
    let record = d.poll_persist().unwrap_or_else(|| panic!("a table received"));
    d.persisted(&record);
    d.set_own(v1, &peers(&[2, 3, 4]));
    assert!(d.poll_persist().is_some(), "switching is recorded");
}

#[test]
fn a_table_no_peer_runs_any_more_is_forgotten_and_never_offered() {
    let v1 = add(&v0(), 4);
    let mut d = node1(v0());
    runs(&mut d, 2, &v1);
    assert_eq!(d.newer(), Some(&v1));
    // Node 2 restarts on version 0 (its data directory lost): version 1 runs nowhere.
    d.new_life(n(2));
    d.heard(Instant::ZERO, n(2), None, digest(&v0()));
    assert_eq!(d.newer(), None);
}

#[test]
fn an_observer_of_the_parent_is_not_waited_for() {
    let parent = Roster::initial(
        VoteTable::new([(n(1), 1), (n(2), 1), (n(3), 1), (n(5), 0)], TieBreaker::None)
            .unwrap_or_else(|e| panic!("{e}")),
        BTreeMap::new(),
    );
    let v1 = add(&parent, 4);
    let d = node1(v1);
    assert_eq!(d.not_moved(), [n(2), n(3)], "node 5 has no vote");
}
