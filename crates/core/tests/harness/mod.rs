//! A small deterministic network for driving several real `Node`s by hand: per-node clock
//! offset and rate within the drift bound, per-datagram loss, duplication and random
//! delay (which reorders), one-way cuts, pauses and restarts. Every random choice comes from
//! one seed.
//!
//! Drift model (the one the lease rule assumes): one second of a node's clock lasts between
//! `1 - rho` and `1 + rho` real seconds.
//!
//! Lease safety ("whenever B considers A down, A does not count B's vote") is checked after
//! every step, and the first violation panics with the time and the nodes: a test cannot
//! forget to look. A test that breaks the rule on purpose opts out with
//! [`Net::collect_lease_violations`] and reads [`Net::lease_violations`] itself.

#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use quorate_core::{Config, GossipConfig, Member, Node};
use quorate_detector::{DetectorConfig, PeerState};
use quorate_gate::{Clock, GateConfig, ManualClock, QuorumEvent, QuorumGate};
use quorate_proto::{ClusterId, Incarnation, Instant, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const MS: u64 = 1_000_000;

pub struct SimNode {
    pub node: Node,
    pub gate: QuorumGate,
    pub hand: ManualClock,
    /// Local nanoseconds at real time zero.
    offset: u64,
    /// Real seconds per local second.
    secs_per_local: f64,
    pub paused: bool,
    /// Datagrams that arrived while paused, delivered on resume.
    backlog: Vec<InFlight>,
    pub incarnation: u64,
    pub events: Vec<QuorumEvent>,
}

impl SimNode {
    pub fn local(&self, real: u64) -> Instant {
        Instant::from_nanos(self.offset + (real as f64 / self.secs_per_local) as u64)
    }

    /// The first real instant at which the local clock reads at least `local`.
    fn real_at(&self, local: Instant) -> u64 {
        let since = local.as_nanos().saturating_sub(self.offset) as f64;
        let mut real = (since * self.secs_per_local).ceil() as u64;
        while self.local(real) < local {
            real += 1;
        }
        real
    }

    /// Whether the gate handle answers "writable" at real time `real`.
    pub fn can_write_at(&self, real: u64) -> bool {
        self.hand.set(self.local(real));
        self.gate.can_write()
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: u64,
    order: u64,
    from: usize,
    to: usize,
    bytes: Vec<u8>,
    /// How it is handed to the receiver.
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Datagram,
    /// A request on a reliable stream: the receiver answers through `handle_request` and
    /// the reply travels back.
    Request,
    /// The reply to a request, handed to `handle_reply`.
    Reply,
}

pub struct Net {
    pub now: u64,
    pub nodes: Vec<SimNode>,
    pub config: Config,
    flight: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    pub rng: ChaCha8Rng,
    pub loss: f64,
    pub dup: f64,
    pub delay_min: u64,
    pub delay_max: u64,
    /// Directed links (from, to) that drop everything.
    pub cut: BTreeSet<(usize, usize)>,
    pub rho: f64,
    /// Requests (polls, gossip, fence queries) delivered to their target.
    pub requests_delivered: u64,
    /// Violations of "whenever B considers A down, A does not count B's vote", kept only
    /// after [`Net::collect_lease_violations`]; otherwise the first one panics.
    pub lease_violations: Vec<String>,
    /// Opted out of panicking at a lease violation.
    collect_violations: bool,
    /// Steps at which some node considered a peer down, so that the lease check had a
    /// pair to examine: a run where this stays 0 checked nothing.
    pub down_pairs_checked: u64,
}

/// The timing presets the runtime offers, as the core's parts: `lan` (100 ms heartbeats,
/// 1 s floor, 900 ms lease) and `wan` (250 ms, 3 s, 2.5 s).
pub fn preset(name: &str) -> (DetectorConfig, GateConfig, GossipConfig) {
    match name {
        "wan" => (
            DetectorConfig::wan(),
            GateConfig { lease: Duration::from_millis(2_500), ..GateConfig::default() },
            GossipConfig::default(),
        ),
        "lan" => (DetectorConfig::lan(), GateConfig::default(), GossipConfig::default()),
        other => panic!("no timing preset {other}"),
    }
}

pub fn config_for(n: usize, me: usize) -> Config {
    let members = (1..=n as u64).map(Member::voter).collect();
    Config::new(ClusterId::from_name("harness"), NodeId(me as u64 + 1), members)
}

impl Net {
    pub fn new(n: usize, seed: u64) -> Net {
        Self::with_config(n, seed, config_for(n, 0))
    }

    pub fn with_config(n: usize, seed: u64, config: Config) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rho = config.gate.max_clock_drift;
        let mut net = Net {
            now: 0,
            nodes: Vec::new(),
            config,
            flight: BinaryHeap::new(),
            order: 0,
            rng: ChaCha8Rng::seed_from_u64(0),
            loss: 0.0,
            dup: 0.0,
            delay_min: MS / 10,
            delay_max: 2 * MS,
            cut: BTreeSet::new(),
            rho,
            lease_violations: Vec::new(),
            collect_violations: false,
            down_pairs_checked: 0,
            requests_delivered: 0,
        };
        for i in 0..n {
            let offset = rng.random_range(0..1_000_000 * MS);
            let secs_per_local = 1.0 + rng.random_range(-rho..=rho);
            let node = net.make_node(i, offset, secs_per_local, 1, rng.random());
            net.nodes.push(node);
        }
        net.rng = rng;
        net
    }

    /// Starts one more node, `Net::id(n)` for the `n` nodes there are, on `config`
    /// (its `me` is set here). Returns its index.
    pub fn add_node(&mut self, config: Config) -> usize {
        let i = self.nodes.len();
        let offset = self.rng.random_range(0..1_000_000 * MS);
        let secs_per_local = 1.0 + self.rng.random_range(-self.rho..=self.rho);
        let seed = self.rng.random();
        let node = self.make_node_on(config, i, offset, secs_per_local, 1, seed);
        self.nodes.push(node);
        i
    }

    fn make_node(&self, i: usize, offset: u64, secs_per_local: f64, incarnation: u64, seed: u64) -> SimNode {
        self.make_node_on(self.config.clone(), i, offset, secs_per_local, incarnation, seed)
    }

    fn make_node_on(
        &self,
        mut config: Config,
        i: usize,
        offset: u64,
        secs_per_local: f64,
        incarnation: u64,
        seed: u64,
    ) -> SimNode {
        config.me = NodeId(i as u64 + 1);
        let local = Instant::from_nanos(offset + (self.now as f64 / secs_per_local) as u64);
        let (clock, hand) = Clock::manual(local);
        let made = config.check().and_then(|c| Node::new(c, Incarnation(incarnation), clock, local, seed));
        let (node, gate) = made.unwrap_or_else(|e| panic!("harness config invalid: {e}"));
        SimNode {
            node,
            gate,
            hand,
            offset,
            secs_per_local,
            paused: false,
            backlog: Vec::new(),
            incarnation,
            events: Vec::new(),
        }
    }

    /// Opts out of the default (panic at the first lease violation): violations are
    /// collected in [`Net::lease_violations`] instead. Only for tests that break the lease
    /// rule on purpose to show the check sees it.
    pub fn collect_lease_violations(&mut self) {
        self.collect_violations = true;
    }

    /// Sets how many real seconds one second of node `i`'s clock lasts, also outside the
    /// drift bound (to break the lease rule on purpose). Only before the run starts, so that
    /// the node's clock stays continuous.
    pub fn set_clock_rate(&mut self, i: usize, secs_per_local: f64) {
        assert_eq!(self.now, 0, "set_clock_rate is for the start of a run");
        self.nodes[i].secs_per_local = secs_per_local;
    }

    pub fn id(i: usize) -> NodeId {
        NodeId(i as u64 + 1)
    }

    /// Cuts both directions between the two groups.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                self.cut.insert((y, x));
            }
        }
    }

    pub fn rng_bool(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Restarts node `i` with a new incarnation; datagrams in flight to it are lost.
    pub fn restart(&mut self, i: usize) {
        let old = &self.nodes[i];
        let (offset, rate, inc) = (old.offset, old.secs_per_local, old.incarnation + 1);
        let seed = self.rng.random();
        self.nodes[i] = self.make_node(i, offset, rate, inc, seed);
        let kept: Vec<_> = self.flight.drain().filter(|Reverse(f)| f.to != i).collect();
        self.flight.extend(kept);
    }

    /// Shuts node `i` down gracefully (fence, then leave messages).
    pub fn shutdown(&mut self, i: usize) {
        let local = self.nodes[i].local(self.now);
        self.nodes[i].hand.set(local);
        self.nodes[i].node.shutdown(local);
        self.drain(i);
    }

    /// Stops running node `i` (no timers, no reads) as SIGSTOP would.
    pub fn pause(&mut self, i: usize) {
        self.nodes[i].paused = true;
    }

    /// Resumes node `i`; what arrived meanwhile is delivered at once, in arrival order.
    pub fn resume(&mut self, i: usize) {
        self.nodes[i].paused = false;
        for f in std::mem::take(&mut self.nodes[i].backlog) {
            self.order += 1;
            self.flight.push(Reverse(InFlight { at: self.now, order: self.order, ..f }));
        }
    }

    /// Injects raw bytes from `from` to `to`, delivered now.
    pub fn inject(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        let local = self.nodes[to].local(self.now);
        self.nodes[to].hand.set(local);
        self.nodes[to].node.handle_datagram(local, Self::id(from), &bytes);
        self.drain(to);
    }

    /// Runs until real time `until`, checking lease safety after every step.
    pub fn run_until(&mut self, until: u64) {
        self.run_until_with(until, |_| {});
    }

    /// Like `run_until`, calling `check` after every step.
    pub fn run_until_with(&mut self, until: u64, mut check: impl FnMut(&Net)) {
        loop {
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| !n.paused)
                .filter_map(|(i, n)| n.node.poll_timeout().map(|t| (n.real_at(t).max(self.now), i)))
                .min();
            let next_packet = self.flight.peek().map(|Reverse(f)| f.at);
            let step = match (next_timer, next_packet) {
                (Some((t, _)), Some(p)) if p <= t => Some(p),
                (Some((t, _)), _) => Some(t),
                (None, p) => p,
            };
            let Some(at) = step.filter(|at| *at <= until) else {
                self.now = until;
                return;
            };
            self.now = at;
            if next_packet == Some(at) {
                if let Some(Reverse(f)) = self.flight.pop() {
                    self.deliver(f);
                }
            } else if let Some((_, i)) = next_timer {
                let local = self.nodes[i].local(at);
                self.nodes[i].hand.set(local);
                self.nodes[i].node.handle_timeout(local);
                self.drain(i);
            }
            self.check_lease_safety();
            check(self);
        }
    }

    fn deliver(&mut self, f: InFlight) {
        if self.nodes[f.to].paused {
            // A paused process does not read its socket: the datagram waits for it.
            self.nodes[f.to].backlog.push(f);
            return;
        }
        let local = self.nodes[f.to].local(self.now);
        self.nodes[f.to].hand.set(local);
        if f.kind == Kind::Request {
            self.requests_delivered += 1;
            let reply = self.nodes[f.to].node.handle_request(local, Self::id(f.from), &f.bytes);
            if let (Some(bytes), false) = (reply, self.cut.contains(&(f.to, f.from))) {
                self.order += 1;
                let at = self.now + self.delay_min;
                self.flight.push(Reverse(InFlight {
                    at,
                    order: self.order,
                    from: f.to,
                    to: f.from,
                    bytes,
                    kind: Kind::Reply,
                }));
            }
        } else if f.kind == Kind::Reply {
            self.nodes[f.to].node.handle_reply(local, Self::id(f.from), &f.bytes);
        } else {
            self.nodes[f.to].node.handle_datagram(local, Self::id(f.from), &f.bytes);
        }
        self.drain(f.to);
    }

    fn drain(&mut self, i: usize) {
        // As a driver does: a later definition a peer runs is adopted (with nothing to
        // persist here).
        while let Some(roster) = self.nodes[i].node.poll_adopt() {
            let local = self.nodes[i].local(self.now);
            self.nodes[i].hand.set(local);
            let before = self.nodes[i].node.roster().timing.clone();
            let timing = roster.timing.clone();
            if let Err(e) = self.nodes[i].node.adopt(local, roster) {
                panic!("node {} refused the definition poll_adopt offered: {e}", i + 1);
            }
            // As the runtime does: a definition naming another preset switches the timing.
            if let Some(name) = timing.filter(|t| Some(t) != before.as_ref()) {
                self.set_timing(i, &name);
            }
        }
        while let Some(ev) = self.nodes[i].node.poll_event() {
            self.nodes[i].events.push(ev);
        }
        // As a driver does: the status the handles explain a refusal with.
        if let Some(status) = self.nodes[i].node.poll_status() {
            self.nodes[i].node.publisher().status(status);
        }
        while let Some(t) = self.nodes[i].node.poll_transmit() {
            let to = (t.to.0 - 1) as usize;
            let request = t.delivery == quorate_core::Delivery::Request;
            // A member no host runs (added to a definition, never started) receives nothing.
            if to >= self.nodes.len()
                || self.cut.contains(&(i, to))
                || (!request && self.rng.random_bool(self.loss))
            {
                // A request travels on a reliable stream: a cut stops it, loss only delays it.
                continue;
            }
            let copies = if self.rng.random_bool(self.dup) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = self.rng.random_range(self.delay_min..=self.delay_max);
                self.order += 1;
                let f = InFlight {
                    at: self.now + delay,
                    order: self.order,
                    from: i,
                    to,
                    bytes: t.payload.clone(),
                    kind: if request { Kind::Request } else { Kind::Datagram },
                };
                self.flight.push(Reverse(f));
            }
        }
    }

    /// Node `i` runs the timing preset `name` (`lan` or `wan`) from now on.
    pub fn set_timing(&mut self, i: usize, name: &str) {
        let (detector, gate, gossip) = preset(name);
        let local = self.nodes[i].local(self.now);
        self.nodes[i].hand.set(local);
        let gate = GateConfig { max_clock_drift: self.rho, ..gate };
        if let Err(e) = self.nodes[i].node.set_timing(local, detector, gate, gossip) {
            panic!("node {} refused timing {name}: {e}", i + 1);
        }
        self.drain(i);
    }

    /// Whenever B considers A down, A must not hold B's vote at this real instant. Panics
    /// at the first violation unless [`Net::collect_lease_violations`] opted out.
    fn check_lease_safety(&mut self) {
        let mut checked = false;
        for b in 0..self.nodes.len() {
            for a in 0..self.nodes.len() {
                if a == b || self.nodes[b].node.peer_state(Self::id(a)) != Some(PeerState::Unreachable) {
                    continue;
                }
                checked = true;
                let a_now = self.nodes[a].local(self.now);
                if let Some(until) = self.nodes[a].node.lease_until(Self::id(b)) {
                    if until > a_now {
                        let violation = format!(
                            "t={}ms: node {} considers node {} down, but node {} holds its vote until {:?} \
                             (now {:?})",
                            self.now / MS,
                            b + 1,
                            a + 1,
                            a + 1,
                            until,
                            a_now
                        );
                        assert!(self.collect_violations, "lease safety violated: {violation}");
                        self.lease_violations.push(violation);
                    }
                }
            }
        }
        self.down_pairs_checked += u64::from(checked);
    }

    /// Runs until `ok` holds, polled every 10 ms, for at most `limit`; how long it took.
    pub fn time_until(&mut self, limit: u64, ok: impl Fn(&Net) -> bool) -> Option<u64> {
        let start = self.now;
        while self.now < start + limit {
            if ok(self) {
                return Some(self.now - start);
            }
            let next = self.now + 10 * MS;
            self.run_until(next);
        }
        None
    }

    /// Whether every node of `nodes` (indices) may write now.
    pub fn writable(&self, nodes: &[usize]) -> bool {
        nodes.iter().all(|&i| self.nodes[i].can_write_at(self.now))
    }

    /// Bound on fencing after a cut: the lease, stretched by the slowest allowed clock.
    pub fn fence_bound(&self) -> u64 {
        let lease = self.config.gate.lease.as_nanos() as f64;
        (lease * (1.0 + self.rho)).ceil() as u64
    }

    pub fn lease(&self) -> Duration {
        self.config.gate.lease
    }
}
