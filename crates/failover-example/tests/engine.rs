//! The engine on a real shared directory with a gate that has no network: a single voter
//! (always quorate) or one voter of three that hears nobody (never quorate), on a clock the
//! test sets, so that "before the event" is exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant as WallInstant};

use quorate_detector::DetectorConfig;
use quorate_failover::shared::{read_acks, ACKS_FILE};
use quorate_failover::{Claim, Engine, How, Mode, Role, Settings, SharedDir, Trigger};
use quorate_gate::{Clock, Gate, GateConfig, QuorumGate, TieBreaker, VoteTable};
use quorate_proto::{Incarnation, Instant, NodeId};

const T0: Instant = Instant::from_nanos(5_000_000_000);

/// A gate for node 1 that is writable when `voters` is 1 and fenced (hearing nobody) when
/// it is 3. The core is returned so that the gate's handle stays connected to it.
fn gate(voters: u64) -> (Gate, QuorumGate) {
    let votes = VoteTable::new((1..=voters).map(|n| (NodeId(n), 1)), TieBreaker::None).unwrap();
    let (clock, _hand) = Clock::manual(T0);
    let detector = DetectorConfig::default().check().unwrap();
    let config = GateConfig::default().check(&detector).unwrap();
    Gate::new(config, votes, NodeId(1), Incarnation(1), clock, T0)
}

fn dirs(name: &str) -> (SharedDir, PathBuf) {
    let root = std::env::temp_dir().join(format!("quorate-failover-engine-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("local")).unwrap();
    (SharedDir::open(&root.join("shared")).unwrap(), root)
}

fn settings(mode: Mode) -> Settings {
    Settings { node: 1, mode, pace: Duration::from_millis(2), claims_poll: Duration::from_millis(5) }
}

fn start(mode: Mode, gate: QuorumGate, shared: &SharedDir, root: &std::path::Path) -> Engine {
    Engine::start(settings(mode), gate, shared.clone(), &root.join("local").join(ACKS_FILE)).unwrap()
}

fn claim(gen: u64, node: u64) -> Claim {
    Claim { gen, node, epoch: 0, at_us: 0, from: None, how: How::Start }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = WallInstant::now() + Duration::from_secs(5);
    while !done() {
        assert!(WallInstant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn records_of(shared: &SharedDir, gen: u64) -> usize {
    shared.read_log().unwrap().items.iter().filter(|r| r.gen == gen && r.node == 1).count()
}

#[test]
fn a_standby_takes_over_only_a_claim_it_read_before_the_event() {
    let (shared, root) = dirs("before-event");
    assert!(shared.try_claim(&claim(1, 9)).unwrap());
    let (_core, gate) = gate(1);
    let engine = start(Mode::Gated, gate, &shared, &root);
    let triggers = engine.triggers();
    // The engine read claim-1 at T0 (the clock does not move): an event at T0 is not after it.
    triggers.send(Trigger::Fenced { peer: 9, at: T0 });
    wait_until("the trigger is refused", || {
        engine.counters().triggers_refused.load(std::sync::atomic::Ordering::Relaxed) == 1
    });
    assert_eq!(engine.role(), Role::Standby);
    // About a node that does not hold the latest claim: nothing.
    triggers.send(Trigger::Fenced { peer: 5, at: Instant::from_nanos(T0.as_nanos() + 1) });
    // Without the gate's mode, a timeout is not a reason.
    triggers.send(Trigger::Down { peer: 9 });
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(engine.role(), Role::Standby);
    assert_eq!(shared.latest().unwrap().map(|c| c.gen), Some(1));

    triggers.send(Trigger::Fenced { peer: 9, at: Instant::from_nanos(T0.as_nanos() + 1) });
    wait_until("node 1 is active", || matches!(engine.role(), Role::Active { gen: 2, .. }));
    let taken = shared.claim(2).unwrap();
    assert_eq!((taken.node, taken.from, taken.how), (1, Some(9), How::Takeover));
    wait_until("node 1 appends under generation 2", || records_of(&shared, 2) >= 3);
    assert!(engine.stop());
    let acks = read_acks(&root.join("local").join(ACKS_FILE)).unwrap().items;
    assert!(acks.len() >= 3 && acks.iter().all(|a| a.record.gen == 2 && a.record.node == 1));
    assert_eq!(records_of(&shared, 1), 0, "node 1 never wrote under node 9's generation");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_fenced_node_claims_nothing_and_writes_nothing() {
    let (shared, root) = dirs("fenced");
    let (_core, gate) = gate(3);
    assert!(!gate.can_write());
    let engine = start(Mode::Gated, gate, &shared, &root);
    // An empty directory: the first claim needs quorum.
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(shared.latest().unwrap(), None);
    // A takeover decided while fenced waits for quorum; it does not claim without it.
    assert!(shared.try_claim(&claim(1, 2)).unwrap());
    wait_until("the claim is read", || engine.role() == Role::Standby);
    std::thread::sleep(Duration::from_millis(20));
    engine.triggers().send(Trigger::Fenced { peer: 2, at: Instant::from_nanos(T0.as_nanos() + 1) });
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(engine.role(), Role::Standby);
    assert_eq!(shared.latest().unwrap().map(|c| c.gen), Some(1));
    assert!(engine.stop());
    assert!(shared.read_log().unwrap().items.is_empty());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn an_empty_directory_is_claimed_and_a_restarted_holder_claims_the_next_generation_first() {
    let (shared, root) = dirs("restart");
    let (_core, gate1) = gate(1);
    let engine = start(Mode::Gated, gate1, &shared, &root);
    wait_until("node 1 claims generation 1 and writes", || records_of(&shared, 1) >= 3);
    assert_eq!(shared.claim(1).unwrap().how, How::Start);
    assert!(engine.stop());
    // The same node again (a restart): it holds the latest claim but must not write under it
    // before it claimed the next generation for its new stretch of quorum.
    let (_core, gate2) = gate(1);
    let before = records_of(&shared, 1);
    let engine = start(Mode::Gated, gate2, &shared, &root);
    wait_until("node 1 writes under generation 2", || records_of(&shared, 2) >= 3);
    assert_eq!(shared.claim(2).unwrap().how, How::Reclaim);
    assert!(engine.stop());
    assert_eq!(records_of(&shared, 1), before, "nothing more under generation 1 after the restart");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn without_the_gate_a_timeout_takes_over_and_only_the_monitor_stands_the_old_holder_down() {
    let (shared, root) = dirs("naive");
    assert!(shared.try_claim(&claim(1, 9)).unwrap());
    let (_core, gate) = gate(3); // fenced: the naive mode does not care
    let engine = start(Mode::Naive { monitor: Duration::from_millis(300) }, gate, &shared, &root);
    std::thread::sleep(Duration::from_millis(20));
    engine.triggers().send(Trigger::Fenced { peer: 9, at: Instant::from_nanos(T0.as_nanos() + 1) });
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(engine.role(), Role::Standby, "the naive mode ignores PeerFenced");
    engine.triggers().send(Trigger::Down { peer: 9 });
    wait_until("node 1 takes over on the timeout", || records_of(&shared, 2) >= 3);
    // Someone takes the role from node 1: it writes on until its monitor looks.
    assert!(shared.try_claim(&claim(3, 7)).unwrap());
    let taken = WallInstant::now();
    wait_until("the monitor stands node 1 down", || engine.role() == Role::Standby);
    let after = records_of(&shared, 2);
    assert!(engine.stop());
    assert!(taken.elapsed() < Duration::from_secs(2));
    assert!(after >= 3);
    std::fs::remove_dir_all(&root).unwrap();
}
