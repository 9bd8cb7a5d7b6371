//! The lease table over time: quorum gained and lost, epochs, other definitions.

use super::*;
use crate::clock::ManualClock;
use crate::events::QuorumEvent;
use crate::status::Why;
use quorate_detector::DetectorConfig;
use quorate_proto::quorum::TieBreaker;

const MS: u64 = 1_000_000;

fn at(ms: u64) -> Instant {
    Instant::from_nanos(ms * MS)
}

struct Fixture {
    gate: Gate,
    handle: QuorumGate,
    hand: ManualClock,
}

fn five_nodes(config: GateConfig) -> Fixture {
    let votes = VoteTable::new((1..=5).map(|i| (NodeId(i), 1)), TieBreaker::LowestId);
    let votes = votes.unwrap_or_else(|e| panic!("{e}"));
    let (clock, hand) = Clock::manual(at(0));
    let detector = DetectorConfig::default().check().unwrap_or_else(|e| panic!("{e}"));
    let config = config.check(&detector).unwrap_or_else(|e| panic!("{e}"));
    let (gate, handle) = Gate::new(config, votes, NodeId(1), Incarnation(7), clock, at(0));
    Fixture { gate, handle, hand }
}

impl Fixture {
    fn tick(&mut self, ms: u64) {
        self.hand.set(at(ms));
        self.gate.handle_timeout(at(ms));
    }
    fn ack(&mut self, now_ms: u64, peer: u64, sent_ms: u64) {
        self.hand.set(at(now_ms));
        self.gate.on_ack(at(now_ms), NodeId(peer), at(sent_ms));
    }
    fn drain(&mut self) -> Vec<GateEvent> {
        std::iter::from_fn(|| self.gate.poll_event()).collect()
    }
}

#[test]
fn starts_fenced_and_gains_quorum_with_a_majority_of_acks() {
    let mut f = five_nodes(GateConfig::default());
    assert!(!f.handle.can_write());
    assert!(matches!(f.handle.permit(), Err(e) if matches!(e.why, Why::MissingVotes { held: 1, .. })));
    f.ack(10, 2, 0);
    assert!(!f.handle.can_write());
    f.ack(12, 3, 0);
    assert!(f.handle.can_write());
    let events = f.drain();
    assert!(matches!(events.as_slice(), [GateEvent::Gained { held_votes: 3, .. }]), "{events:?}");
    let permit = f.handle.permit().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(permit.valid_until(), at(900));
    assert_eq!(permit.epoch(), Epoch(Epoch::base(Incarnation(7)).0 + 1));
}

#[test]
fn fences_by_the_clock_even_if_the_core_never_runs_again() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    f.ack(10, 3, 5);
    f.hand.set(at(899));
    assert!(f.handle.can_write());
    // Nobody calls the gate: the process is "paused". The handle still fences on time.
    f.hand.set(at(900));
    assert!(!f.handle.can_write());
    assert!(f.handle.permit().is_err());
}

#[test]
fn lost_quorum_is_reported_at_the_deadline_and_regain_bumps_the_epoch() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    let first = f.handle.permit().unwrap_or_else(|e| panic!("{e}"));
    f.drain();
    f.tick(1_500);
    let events = f.drain();
    assert!(
        matches!(events.as_slice(), [GateEvent::Lost { at: lost, stopped: false, .. }] if *lost == at(900)),
        "{events:?}"
    );
    f.ack(1_510, 2, 1_400);
    f.ack(1_510, 4, 1_400);
    assert!(f.handle.can_write());
    assert_eq!(f.handle.epoch(), first.epoch().next());
    let err = first.check().err().map(|e| e.why);
    assert_eq!(err, Some(Why::EpochChanged { permit: first.epoch(), current: first.epoch().next() }));
}

#[test]
fn a_gap_unseen_by_the_core_still_starts_a_new_epoch() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    let e1 = f.handle.epoch();
    f.drain();
    // The core stalls past the deadline (900) and its first act is a fresh ack.
    f.ack(2_000, 2, 1_900);
    f.ack(2_000, 3, 1_900);
    assert!(f.handle.can_write());
    assert_eq!(f.handle.epoch(), e1.next());
    let events = f.drain();
    assert!(matches!(events.as_slice(), [GateEvent::Lost { .. }, GateEvent::Gained { .. }]));
}

#[test]
fn a_stretch_that_ended_by_the_clock_never_resumes_its_epoch() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    let e1 = f.handle.epoch();
    // The handles read 950: past the 900 deadline, they already answer "no".
    f.hand.set(at(950));
    assert!(!f.handle.can_write());
    // The driver read its `now` (850) before it got the core: a fresh ack must not
    // stretch the old epoch over the gap the handles saw.
    f.gate.on_ack(at(850), NodeId(2), at(800));
    f.gate.on_ack(at(850), NodeId(3), at(800));
    assert!(f.handle.can_write());
    assert_eq!(f.handle.epoch(), e1.next());
}

#[test]
fn the_core_side_accessors_and_timer_follow_the_published_deadline() {
    let mut f = five_nodes(GateConfig::default());
    assert_eq!(f.gate.poll_timeout(), None);
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    assert_eq!(f.gate.deadline(), at(900));
    assert_eq!(f.gate.epoch(), f.handle.epoch());
    assert_eq!(f.gate.poll_timeout(), Some(at(900)));
    assert!(f.gate.is_writable(at(899)));
    assert!(!f.gate.is_writable(at(900)) && !f.gate.is_writable(at(901)));
    f.tick(1_000);
    assert_eq!(f.gate.poll_timeout(), None);
    assert_eq!(f.gate.deadline(), Instant::ZERO, "a lost stretch leaves no stale deadline");
    assert!(!f.gate.is_writable(at(500)));
}

#[test]
fn a_lease_that_ends_now_is_not_counted_as_held() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    assert_eq!(f.gate.held_votes(at(899)), 2);
    assert_eq!(f.gate.held_votes(at(900)), 1);
}

#[test]
fn events_the_driver_never_polls_are_dropped_oldest_first_and_counted() {
    let mut f = five_nodes(GateConfig::default());
    // Every stretch is one Gained and one Lost: 2053 stretches, 4106 events.
    let stretches = (EVENT_QUEUE_MAX as u64 + 10) / 2;
    for i in 0..stretches {
        let t = i * 1_000;
        f.ack(t + 1, 2, t);
        f.ack(t + 1, 3, t);
        f.tick(t + 950);
    }
    assert_eq!(f.gate.events_dropped(), 10);
    assert_eq!(f.drain().len(), EVENT_QUEUE_MAX);
}

#[test]
fn a_life_that_used_every_epoch_stays_fenced_instead_of_borrowing_the_next_lifes() {
    let mut f = five_nodes(GateConfig::default());
    assert!(!f.gate.epochs_exhausted(), "a fresh life has every epoch left");
    // Pretend this life already gained quorum 2^20 - 1 times.
    f.gate.epoch = Epoch(f.gate.last_epoch.0 - 1);
    assert!(!f.gate.epochs_exhausted(), "one epoch is still left");
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    assert!(f.handle.can_write());
    assert_eq!(f.handle.epoch(), f.gate.last_epoch);
    assert!(f.handle.epoch() < Epoch::base(Incarnation(8)));
    f.tick(1_000);
    f.ack(1_010, 2, 1_000);
    f.ack(1_010, 3, 1_000);
    assert!(!f.handle.can_write());
    assert!(f.gate.epochs_exhausted());
}

#[test]
fn a_peer_on_another_definition_must_agree_the_votes_are_a_quorum() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    assert!(f.handle.can_write());
    let e1 = f.handle.epoch();
    f.drain();
    // Node 4 runs seven members: {1,2,3} is 3 of 7 there, not a quorum.
    let seven = VoteTable::new((1..=7).map(|i| (NodeId(i), 1)), TieBreaker::LowestId);
    let seven = seven.unwrap_or_else(|e| panic!("{e}"));
    // Until the definition itself arrives, the node is not writable.
    f.hand.set(at(20));
    f.gate.set_other_definitions(at(20), vec![None]);
    assert!(!f.handle.can_write());
    assert!(matches!(f.drain().as_slice(), [GateEvent::Lost { at: lost, .. }] if *lost == at(20)));
    f.gate.set_other_definitions(at(21), vec![Some(seven.clone())]);
    assert!(!f.handle.can_write());
    // All five votes are 5 of 7: a quorum under both.
    f.ack(30, 4, 25);
    f.ack(30, 5, 25);
    assert!(f.handle.can_write());
    // Node 4 comes back on this node's definition: the extra condition goes away.
    f.gate.set_other_definitions(at(40), Vec::new());
    assert!(matches!(f.drain().as_slice(), [GateEvent::Gained { .. }]));
    assert!(f.handle.epoch() > e1);
}

#[test]
fn renewed_leases_keep_permit_valid_past_its_first_deadline() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    let permit = f.handle.permit().unwrap_or_else(|e| panic!("{e}"));
    f.ack(800, 2, 700);
    f.ack(800, 3, 700);
    f.hand.set(at(1_000));
    assert_eq!(permit.check(), Ok(()));
    assert!(f.gate.poll_timeout() == Some(at(1_600)));
}

#[test]
fn old_and_duplicate_acks_never_shorten_a_lease() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 500);
    f.ack(11, 2, 100);
    f.ack(12, 2, 500);
    assert_eq!(f.gate.lease_until(NodeId(2)), Some(at(1_400)));
}

#[test]
fn acks_from_non_members_are_ignored() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 9, 0);
    f.ack(10, 1, 0); // itself
    f.ack(10, 2, 0);
    assert!(!f.handle.can_write());
}

#[test]
fn wait_for_all_holds_first_quorum_until_every_voter_was_heard() {
    let mut f = five_nodes(GateConfig { wait_for_all: true, ..GateConfig::default() });
    for peer in [2, 3, 4] {
        f.gate.on_heard(at(5), NodeId(peer));
        f.ack(10, peer, 0);
    }
    assert!(!f.handle.can_write());
    assert_eq!(f.gate.waiting_for().collect::<Vec<_>>(), vec![NodeId(5)]);
    f.gate.on_heard(at(20), NodeId(5));
    assert!(f.handle.can_write());
}

#[test]
fn slow_subscriber_sees_lagged_and_the_gate_does_not_block() {
    let config = GateConfig {
        event_capacity: core::num::NonZeroUsize::new(2).unwrap_or(core::num::NonZeroUsize::MIN),
        ..GateConfig::default()
    };
    let f = five_nodes(config);
    let mut sub = f.handle.subscribe();
    let publisher = f.gate.publisher();
    for i in 0..10 {
        publisher.event(&QuorumEvent::PeerSuspect { peer: NodeId(2), at: at(i) });
    }
    assert!(matches!(sub.try_recv(), Err(crate::events::RecvError::Lagged { missed: 8 })));
    assert!(matches!(sub.try_recv(), Ok(Some(_))));
}

#[test]
fn shutdown_fences_and_says_stopped() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    let permit = f.handle.permit().unwrap_or_else(|e| panic!("{e}"));
    f.gate.shutdown(at(20));
    assert!(!f.handle.can_write());
    assert_eq!(permit.check().err().map(|e| e.why), Some(Why::Stopped));
    assert!(matches!(f.drain().last(), Some(GateEvent::Lost { stopped: true, .. })));
    // Fresh acks after shutdown must not make this life writable again.
    f.ack(30, 2, 25);
    f.ack(30, 3, 25);
    f.tick(40);
    assert!(!f.handle.can_write());
    assert!(f.drain().is_empty());
}

#[test]
fn stream_reports_closed_once_the_gate_is_gone() {
    let f = five_nodes(GateConfig::default());
    let handle = f.handle.clone();
    drop(f);
    let mut sub = handle.subscribe();
    assert_eq!(sub.try_recv(), Err(crate::events::RecvError::Closed));
}

#[test]
fn a_new_definition_keeps_members_leases_drops_the_removed_and_counts_anew() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    assert!(f.handle.can_write(), "nodes 1, 2 and 3 of five");
    // Node 3 leaves the members: {1,2} is half of four and holds the lowest id.
    let four = VoteTable::new([1, 2, 4, 5].map(|i| (NodeId(i), 1)), TieBreaker::LowestId);
    f.gate.set_votes(at(20), four.unwrap_or_else(|e| panic!("{e}")));
    assert!(f.handle.can_write(), "2's lease is kept; 3's no longer counts");
    assert_eq!(f.gate.lease_until(NodeId(3)), None);
    assert_eq!(f.gate.lease_until(NodeId(2)), Some(at(900)));
    // Strict majority of four: {1,2} is no longer enough until another member acks.
    let strict = VoteTable::new([1, 2, 4, 5].map(|i| (NodeId(i), 1)), TieBreaker::None);
    f.gate.set_votes(at(30), strict.unwrap_or_else(|e| panic!("{e}")));
    assert!(!f.handle.can_write());
    f.ack(40, 5, 35);
    assert!(f.handle.can_write(), "nodes 1, 2 and 5");
    // Node 6 joins with three votes: 3 of 7 is no quorum, whatever the others held.
    let seven = VoteTable::new(
        [(1, 1), (2, 1), (4, 1), (5, 1), (6, 3)].map(|(i, v)| (NodeId(i), v)),
        TieBreaker::None,
    );
    f.gate.set_votes(at(50), seven.unwrap_or_else(|e| panic!("{e}")));
    assert!(!f.handle.can_write());
    assert_eq!(f.gate.held_votes(at(50)), 3, "own vote plus 2 and 5, by the new table");
    assert_eq!(f.handle.status().held_votes, 1, "a fenced handle counts its own vote alone");
    f.ack(60, 6, 55);
    assert!(f.handle.can_write());
    // Votes of this node itself follow the table too.
    let heavy = VoteTable::new(
        [(1, 4), (2, 1), (4, 1), (5, 1), (6, 3)].map(|(i, v)| (NodeId(i), v)),
        TieBreaker::None,
    );
    f.gate.set_votes(at(70), heavy.unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(f.gate.held_votes(at(70)), 9, "4 of its own, 2 and 5 one each, 6 three");
    f.hand.set(at(2_000));
    f.gate.handle_timeout(at(2_000));
    assert_eq!(f.handle.status().held_votes, 4, "fenced again: its own four votes");
}

#[test]
fn a_longer_lease_only_comes_with_acks_of_heartbeats_sent_after_the_switch() {
    let mut f = five_nodes(GateConfig::default());
    f.ack(10, 2, 0);
    f.ack(10, 3, 0);
    assert_eq!(f.gate.deadline(), at(900));
    f.gate.set_lease(at(100), Duration::from_millis(2_500));
    assert_eq!(f.gate.lease(), Duration::from_millis(2_500));
    assert_eq!(f.gate.deadline(), at(900), "leases held keep their end");
    // Acks of heartbeats sent before the switch (and at it) give the old lease.
    f.ack(150, 2, 50);
    f.ack(150, 3, 100);
    assert_eq!(f.gate.lease_until(NodeId(2)), Some(at(950)));
    assert_eq!(f.gate.lease_until(NodeId(3)), Some(at(1_000)));
    // Acks of heartbeats sent after it give the new one.
    f.ack(200, 2, 101);
    assert_eq!(f.gate.lease_until(NodeId(2)), Some(at(2_601)));
    // Back to a shorter lease: an earlier heartbeat's ack still gives the longer one.
    f.gate.set_lease(at(300), Duration::from_millis(900));
    f.ack(350, 3, 250);
    f.ack(350, 4, 301);
    assert_eq!(f.gate.lease_until(NodeId(3)), Some(at(2_750)));
    assert_eq!(f.gate.lease_until(NodeId(4)), Some(at(1_201)));
}
