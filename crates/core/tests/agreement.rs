//! Nodes that run different configurations, and nodes that restart: the rules that relate
//! two nodes must hold when their files differ, and a promise made to a peer must survive
//! the process that made it.
//!
//! A tiny lossless driver: every node's clock is real time, datagrams and requests arrive
//! 1 ms after they are sent, time advances in 1 ms steps.

use std::collections::BTreeSet;
use std::time::Duration;

use quorate_core::{Config, Delivery, Member, Memory, Node, Promises};
use quorate_detector::{DetectorConfig, PeerState};
use quorate_gate::{Clock, ManualClock, QuorumEvent, TieBreaker};
use quorate_proto::{decode, ClusterId, Incarnation, Instant, Message, NodeId};

const MS: u64 = 1_000_000;

struct Host {
    node: Node,
    hand: ManualClock,
    events: Vec<(u64, QuorumEvent)>,
    sent: Vec<(u64, NodeId, Message)>,
}

struct World {
    now: u64,
    hosts: Vec<Host>,
    /// (deliver at, from index, to index, payload, delivery, is reply)
    flight: Vec<(u64, usize, usize, Vec<u8>, Delivery, bool)>,
    cut: BTreeSet<(usize, usize)>,
    /// Hosts whose data directory does not answer: writes asked are never confirmed.
    stuck_disk: BTreeSet<usize>,
}

fn at(ns: u64) -> Instant {
    Instant::from_nanos(ns)
}

fn config(n: u64, me: u64) -> Config {
    Config::new(ClusterId::from_name("agreement"), NodeId(me), (1..=n).map(Member::voter).collect())
}

fn wan(mut c: Config) -> Config {
    c.detector = DetectorConfig::wan();
    c.gate.lease = Duration::from_millis(2_500);
    c
}

impl World {
    fn new(configs: Vec<Config>) -> World {
        let hosts = configs
            .into_iter()
            .enumerate()
            .map(|(i, c)| start(c, Incarnation(i as u64 + 1), Memory::Volatile, 0))
            .collect();
        World { now: 0, hosts, flight: Vec::new(), cut: BTreeSet::new(), stuck_disk: BTreeSet::new() }
    }

    fn run_until(&mut self, end: u64) {
        while self.now < end {
            self.now += MS;
            let now = self.now;
            let due: Vec<_> = {
                let (due, rest) = self.flight.drain(..).partition(|f| f.0 <= now);
                self.flight = rest;
                due
            };
            for (_, from, to, payload, delivery, reply) in due {
                if self.cut.contains(&(from, to)) {
                    continue;
                }
                let from_id = self.hosts[from].node.id();
                let host = &mut self.hosts[to];
                host.hand.set(at(now));
                match (delivery, reply) {
                    (Delivery::Datagram, _) => host.node.handle_datagram(at(now), from_id, &payload),
                    (Delivery::Request, false) => {
                        if let Some(answer) = host.node.handle_request(at(now), from_id, &payload) {
                            self.flight.push((now + MS, to, from, answer, Delivery::Request, true));
                        }
                    }
                    (Delivery::Request, true) => host.node.handle_reply(at(now), from_id, &payload),
                }
            }
            let ids: Vec<NodeId> = self.hosts.iter().map(|h| h.node.id()).collect();
            for i in 0..self.hosts.len() {
                let host = &mut self.hosts[i];
                host.hand.set(at(now));
                if host.node.poll_timeout().is_some_and(|t| t <= at(now)) {
                    host.node.handle_timeout(at(now));
                }
                if !self.stuck_disk.contains(&i) {
                    while let Some(p) = host.node.poll_persist() {
                        host.node.handle_persisted(p);
                    }
                }
                while let Some(t) = host.node.poll_transmit() {
                    if let Ok(m) = decode_any(&t.payload) {
                        host.sent.push((now, t.to, m));
                    }
                    if let Some(to) = ids.iter().position(|id| *id == t.to) {
                        self.flight.push((now + MS, i, to, t.payload, t.delivery, false));
                    }
                }
                while let Some(e) = host.node.poll_event() {
                    host.events.push((now, e));
                }
                // As a driver does: the status the handles explain a refusal with.
                if let Some(status) = host.node.poll_status() {
                    host.node.publisher().status(status);
                }
            }
        }
    }

    fn writable(&self, i: usize) -> bool {
        self.hosts[i].hand.set(at(self.now));
        self.hosts[i].node.is_writable(at(self.now))
    }

    fn isolate(&mut self, i: usize) {
        for j in 0..self.hosts.len() {
            if j != i {
                self.cut.insert((i, j));
                self.cut.insert((j, i));
            }
        }
    }
}

fn decode_any(bytes: &[u8]) -> Result<Message, quorate_proto::DecodeError> {
    decode(bytes, ClusterId::from_name("agreement"))
        .or_else(|_| quorate_proto::decode_stream(bytes, ClusterId::from_name("agreement")))
}

fn start(config: Config, incarnation: Incarnation, memory: Memory, now: u64) -> Host {
    let (clock, hand) = Clock::manual(at(now));
    let seed = config.me.0;
    let made = config.check().and_then(|c| Node::with_memory(c, incarnation, memory, clock, at(now), seed));
    let (node, _gate) = made.unwrap_or_else(|e| panic!("config refused: {e}"));
    Host { node, hand, events: Vec::new(), sent: Vec::new() }
}

/// Rolling lan -> wan: node 1 already runs `wan` (2.5 s lease, 3 s floor), 2 and 3 still
/// `lan` (1 s floor). Cut node 1 off: 2 and 3 must not call it down (nor announce it
/// fenced) while it may still write.
#[test]
fn a_peer_with_a_longer_lease_is_never_called_down_while_it_may_still_write() {
    let mut w = World::new(vec![wan(config(3, 1)), config(3, 2), config(3, 3)]);
    w.run_until(3_000 * MS);
    assert!((0..3).all(|i| w.writable(i)), "all writable before the cut");
    // Lan nodes keep the floor node 1's lease needs: 2.5 s x 1.01 / 0.99.
    let floor = w.hosts[1].node.floor_for(NodeId(1));
    assert_eq!(floor, Some(Duration::from_micros(2_550_506)));
    let cut = w.now;
    w.isolate(0);
    let mut fenced_at = None;
    while w.now < cut + 6_000 * MS {
        w.run_until(w.now + MS);
        if fenced_at.is_none() && !w.writable(0) {
            fenced_at = Some(w.now);
        }
        for i in 1..3 {
            let down = w.hosts[i].node.peer_state(NodeId(1)) == Some(PeerState::Unreachable);
            assert!(
                !(down && w.writable(0)),
                "node {} calls node 1 down at {} ms while it is writable",
                i + 1,
                (w.now - cut) / MS
            );
        }
    }
    let fenced_at = fenced_at.unwrap_or(u64::MAX);
    assert!(
        fenced_at > cut + 2_000 * MS && fenced_at <= cut + 2_530 * MS,
        "fenced {} ms after the cut",
        (fenced_at - cut) / MS
    );
    for i in 1..3 {
        let down = w.hosts[i]
            .events
            .iter()
            .find(|(_, e)| matches!(e, QuorumEvent::PeerDown { peer: NodeId(1), .. }));
        let down_at = down.map_or(u64::MAX, |(t, _)| *t);
        assert!(
            down_at >= fenced_at,
            "node {} called node 1 down {} ms after the cut",
            i + 1,
            (down_at - cut) / MS
        );
        let fenced = w.hosts[i]
            .events
            .iter()
            .find(|(_, e)| matches!(e, QuorumEvent::PeerFenced { peer: NodeId(1), .. }));
        assert!(fenced.is_some_and(|(t, _)| *t >= fenced_at), "PeerFenced for node 1 at {fenced:?}");
    }
}

/// Four voters, 1-2 with `lowest-id`, 3-4 with `tie_breaker = 3`: each pair alone would
/// call itself a quorum. Neither may write, connected or split, and both see why.
#[test]
fn two_tie_breakers_never_give_two_writable_halves() {
    let named = |me| {
        let mut c = config(4, me);
        c.gate.tie_breaker = TieBreaker::Node(NodeId(3));
        c
    };
    let mut w = World::new(vec![config(4, 1), config(4, 2), named(3), named(4)]);
    w.run_until(2_000 * MS);
    for i in 0..4 {
        assert!(!w.writable(i), "node {} writable with a mismatched tie-breaker", i + 1);
        let mismatch = w.hosts[i].events.iter().any(|(_, e)| matches!(e, QuorumEvent::ConfigMismatch { .. }));
        assert!(mismatch, "node {} saw no config mismatch", i + 1);
    }
    let why = w.hosts[0].node.gate().permit().err().map(|e| e.why.to_string()).unwrap_or_default();
    assert!(why.contains("quorum definitions differ") && why.contains("tie-breaker 3"), "{why}");
    for (a, b) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
        w.cut.insert((a, b));
        w.cut.insert((b, a));
    }
    for _ in 0..3_000 {
        w.run_until(w.now + MS);
        assert!(!(0..4).any(|i| w.writable(i)), "a half became writable at {} ms", w.now / MS);
    }
}

/// A half-finished 3 -> 5 rollout: 1 and 2 still run three members, 3 was switched to five
/// and the new 4 and 5 run five. No vote is counted across the definitions, and the two
/// sides are never writable at once, connected or split.
#[test]
fn a_half_finished_rollout_never_has_both_definitions_writable() {
    let configs = vec![config(3, 1), config(3, 2), config(5, 3), config(5, 4), config(5, 5)];
    let mut w = World::new(configs);
    let old_and_new_both_writable = |w: &World| {
        let writable: Vec<usize> = (0..5).filter(|&i| w.writable(i)).collect();
        writable.iter().any(|&i| i < 2) && writable.iter().any(|&i| i >= 2)
    };
    for _ in 0..2_000 {
        w.run_until(w.now + MS);
        assert!(!old_and_new_both_writable(&w), "both definitions writable at {} ms", w.now / MS);
    }
    // 1 and 2 know node 3 runs five members, under which {1,2} is no quorum.
    assert!(!w.writable(0) && !w.writable(1));
    assert!(w.hosts[0].node.lease_until(NodeId(3)).is_none(), "node 1 holds no vote of node 3");
    let status = w.hosts[0].node.status(Instant::from_nanos(w.now));
    assert_eq!(status.mismatched.len(), 1, "{:?}", status.mismatched);
    assert!(status.mismatched[0].members.as_ref().is_some_and(|(m, _)| m.len() == 5), "definition exchanged");
    let mismatch = w.hosts[2].node.status(Instant::from_nanos(w.now)).mismatched;
    assert_eq!(mismatch.iter().map(|m| m.peer).collect::<Vec<_>>(), vec![NodeId(1), NodeId(2)]);
    // Split {1,2} | {3,4,5}: still never both.
    for (a, b) in [(0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (1, 4)] {
        w.cut.insert((a, b));
        w.cut.insert((b, a));
    }
    for _ in 0..3_000 {
        w.run_until(w.now + MS);
        assert!(!old_and_new_both_writable(&w), "both definitions writable at {} ms", w.now / MS);
    }
}

/// The trace: 3 voters, {1,2} | {3}; node 2 answers yes to node 1's fence check on
/// 3 and crashes; it restarts during the heal. Its new life must not ack 3 within the hold
/// its old life promised.
#[test]
fn a_restarted_node_withholds_every_ack_for_the_hold_its_earlier_life_promised() {
    let mut w = World::new(vec![config(3, 1), config(3, 2), config(3, 3)]);
    w.run_until(2_000 * MS);
    w.isolate(2);
    w.run_until(w.now + 1_500 * MS);
    let yes = w.hosts[1].node.fence_counters().map_or(0, |c| c.yes_given);
    assert!(yes > 0 || w.hosts[0].node.fence_counters().is_some_and(|c| c.confirmed > 0));
    // Crash node 2 and restart it at once; heal.
    let restart = w.now;
    let prior = Promises { ack_hold: Duration::from_millis(400), floor: Duration::ZERO };
    w.hosts[1] = start(config(3, 2), Incarnation(10), Memory::Durable { prior }, restart);
    w.cut.clear();
    w.run_until(restart + 1_000 * MS);
    let first_ack = w.hosts[1]
        .sent
        .iter()
        .find(|(_, _, m)| matches!(m, Message::Heartbeat(hb) if hb.ack.is_some()))
        .map(|(t, _, _)| *t);
    let first_ack = first_ack.unwrap_or(u64::MAX);
    assert!(first_ack >= restart + 400 * MS, "first ack {} ms after the restart", (first_ack - restart) / MS);
    assert!(first_ack < restart + 600 * MS, "acks resume after the hold");
}

/// A node that keeps its promises on disk hears a peer whose lease needs a longer floor
/// than its record covers: it withholds the ack until the driver wrote the new floor.
#[test]
fn an_ack_that_would_owe_more_than_the_record_waits_for_the_write() {
    let mut w = World::new(vec![wan(config(3, 1)), config(3, 2), config(3, 3)]);
    w.hosts[1] = start(config(3, 2), Incarnation(2), Memory::Durable { prior: Promises::default() }, 0);
    w.stuck_disk.insert(1);
    w.run_until(1_000 * MS);
    assert!(
        w.hosts[0].node.lease_until(NodeId(2)).is_none(),
        "node 2 acked before its record covered node 1"
    );
    assert!(w.hosts[1].node.counters().acks_withheld > 0);
    let want = w.hosts[1].node.poll_persist();
    assert!(want.is_some_and(|p| p.floor == Duration::from_micros(2_550_506)), "{want:?}");
    w.stuck_disk.clear();
    w.run_until(1_500 * MS);
    assert!(w.hosts[0].node.lease_until(NodeId(2)).is_some(), "acks flow once written");
}

/// A node restarted in the middle of a 3 -> 5 rollout must not forget that node 3 runs five
/// members: here it cannot hear node 3 after the restart, gets node 2's vote, and would be
/// writable on {1,2} while 3, 4 and 5 hold a quorum of five. It remembers from its data
/// directory what its earlier life heard.
#[test]
fn a_restart_during_a_rollout_remembers_which_definitions_are_in_use() {
    for remember in [true, false] {
        let configs = vec![config(3, 1), config(3, 2), config(5, 3), config(5, 4), config(5, 5)];
        let mut w = World::new(configs);
        w.run_until(2_000 * MS);
        let disk = w.hosts[0].node.poll_persist_definitions().unwrap_or_default();
        assert!(disk.peers.contains(&(NodeId(3), w.hosts[2].node.terms().definition)), "{disk:?}");
        assert_eq!(disk.tables.len(), 2, "both definitions kept in full: {disk:?}");
        // Node 1 crashes and restarts; it cannot hear node 3 from then on.
        let restart = w.now;
        w.hosts[0] = start(config(3, 1), Incarnation(10), Memory::Volatile, restart);
        if remember {
            w.hosts[0].node.remember_definitions(at(restart), &disk);
        }
        w.cut.insert((2, 0));
        w.cut.insert((0, 2));
        let mut both = None;
        for _ in 0..3_000 {
            w.run_until(w.now + MS);
            if both.is_none() && w.writable(0) && (2..5).any(|i| w.writable(i)) {
                both = Some(w.now);
            }
        }
        if remember {
            assert_eq!(both, None, "split brain {:?} ms after the restart", both.map(|t| (t - restart) / MS));
            let why = w.hosts[0].node.gate().permit().err().map(|e| e.why.to_string()).unwrap_or_default();
            assert!(why.contains("node 3 runs definition") && why.contains("5:1"), "{why}");
        } else {
            assert!(both.is_some(), "without the memory the split brain shows (the test can fail)");
        }
    }
}

/// A fence-check yes is a promise: node 2 answers yes about node 3, then the cut heals but
/// node 2's answer never reaches the asker. Node 2 must send node 3 no ack until the asker
/// releases the hold (when its check gives up, 300 ms after it asked) or the hold ends
/// (400 ms), whichever is first; and the release must end the hold early.
#[test]
fn a_yes_withholds_acks_until_the_asker_releases_it() {
    let mut w = World::new(vec![config(3, 1), config(3, 2), config(3, 3)]);
    w.run_until(2_000 * MS);
    w.isolate(2);
    let yes_given = |w: &World| w.hosts[1].node.fence_counters().map_or(0, |c| c.yes_given);
    let before = yes_given(&w);
    let start = w.now;
    while yes_given(&w) == before && w.now < start + 3_000 * MS {
        w.run_until(w.now + MS);
    }
    assert!(yes_given(&w) > before, "node 2 never answered a fence check");
    let yes_at = w.now;
    // Node 3 is heard again; node 2's answer (and anything else to node 1) is lost.
    w.cut.clear();
    w.cut.insert((1, 0));
    w.run_until(yes_at + 1_000 * MS);
    let first_ack = w.hosts[1]
        .sent
        .iter()
        .filter(|(t, to, _)| *t > yes_at && *to == NodeId(3))
        .find(|(_, _, m)| matches!(m, Message::Heartbeat(hb) if hb.ack.is_some()))
        .map_or(u64::MAX, |(t, _, _)| *t);
    let after = first_ack.saturating_sub(yes_at) / MS;
    assert!(after >= 250, "node 2 acked node 3 {after} ms after its yes: the hold was not kept");
    assert!(
        after < 390,
        "node 2 acked node 3 only {after} ms after its yes: the release did not end the hold"
    );
}
