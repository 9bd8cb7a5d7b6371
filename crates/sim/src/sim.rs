//! The event loop: real `quorate_core::Node`s on a virtual clock and a virtual network.
//!
//! ```text
//!   heap of (real time, seq) ──pop──► Deliver ──► Node::handle_datagram(local now, from, bytes)
//!                                     Timer   ──► Node::handle_timeout(local now)
//!                                     Fault   ──► Net / Host (crash, restart, pause, ...) ──► Reach
//!                                     Wake    ──► one checker, one node
//!                                     Sweep   ──► every checker, every node
//!                                     Landed  ──► the node's disk (then Node::handle_persisted)
//!   after a node's step: poll_event ──► timeline, checkers
//!                        poll_transmit ──► Net::route ──► Deliver events (0, 1 or 2 copies)
//!                        poll_persist ──► a write to its disk (at once, or a Landed event)
//!                        poll_timeout ──► one armed Timer per node (stale ones are skipped)
//! ```
//!
//! Ties in time are broken by insertion order (`seq`), so the run is a pure function of
//! the scenario and the seed. Every random choice comes from streams of that one seed:
//! the scenario (stream 1), the network (stream 2), clocks and node seeds (stream 3), disk
//! write delays (stream 4).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use quorate_core::{Config, Delivery};
use quorate_gate::QuorumEvent;
use quorate_heartbeat::{decode_stream, ClusterId, Message, NodeId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::acks::AckLedger;
use crate::clock::{fraction_to_ppb, SimClock, MS, SEC};
use crate::faults::{encode_heartbeat, heartbeat_of, with_terms, Bug, Fault, Scheduled, Signal};
use crate::host::{Carry, Host, BACKLOG_MAX};
use crate::invariants::{self, Invariant, Measure, Out, StepKind, Violation};
use crate::model::{Model, Quorum};
use crate::net::{DropWhy, Fate, Net};
use crate::reach::{Liveness, Reach};
use crate::report::Stats;
use crate::scenarios::{stream, Scenario, VOTERS_MAX};
use crate::setup::{configs_of, Preset, Setup};
use crate::timeline::{Timeline, What};

/// The simulated cluster's name (its id is derived from it).
const CLUSTER_NAME: &str = "quorate-sim";

/// Clusters up to this size are swept (every checker, every node) after every step.
pub const SWEEP_EVERY_STEP_MAX: usize = 16;

/// Virtual time between full sweeps in larger clusters.
pub const SWEEP_INTERVAL: u64 = 10 * MS;

/// Consecutive timer firings of one node at one instant before the run is declared stuck.
const SAME_INSTANT_TIMERS_MAX: u32 = 1_000;

/// Writes a node may ask for in one step before the simulator stops asking (a core asks
/// for one write, then nothing until its needs change; more is a bug, and bounded here).
const WRITES_PER_STEP_MAX: usize = 4;

/// The state every checker may read.
#[derive(Debug)]
pub struct World {
    /// Real time, ns since the start of the run.
    pub now: u64,
    /// One host per node, index = node id - 1.
    pub hosts: Vec<Host>,
    /// The network.
    pub net: Net,
    /// Who can exchange with a quorum, since when.
    pub reach: Reach,
    /// Timing, quorum arithmetic and bounds.
    pub model: Model,
    /// Everything that happened.
    pub timeline: Timeline,
    /// Which heartbeats were sent and acked, as the wire saw them.
    pub acks: AckLedger,
    /// Events dispatched so far: orders steps that share an instant.
    pub step: u64,
}

impl World {
    /// The quorum arithmetic of the definition node `i` runs.
    pub fn quorum_of(&self, i: usize) -> &Quorum {
        self.model.quorum(self.hosts[i].setup.definition)
    }

    /// The timing preset node `i` runs.
    pub fn preset_of(&self, i: usize) -> Preset {
        self.hosts[i].setup.preset
    }
}

/// Why a simulation could not start.
#[derive(Debug, Clone, PartialEq)]
pub enum SimError {
    /// The core refused the configuration.
    Config(String),
    /// The scenario does not fit the simulator's limits.
    Scenario(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Config(e) => write!(f, "core configuration refused: {e}"),
            SimError::Scenario(e) => write!(f, "scenario not runnable: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

/// A broken invariant with everything needed to understand and replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What broke.
    pub violation: Violation,
    /// The seed.
    pub seed: u64,
    /// The scenario's name.
    pub scenario: String,
    /// The last events before the violation, one per line.
    pub timeline: String,
    /// The command that replays the run.
    pub replay: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.violation;
        writeln!(
            f,
            "VIOLATION of {} at {} ms (seed {}, scenario {})",
            v.invariant,
            crate::clock::fmt_ms(v.at),
            self.seed,
            self.scenario
        )?;
        writeln!(f, "  {}", v.detail)?;
        writeln!(f, "last events (real time):")?;
        f.write_str(&self.timeline)?;
        writeln!(f, "replay: {}", self.replay)
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// The first violation, if any (the run stops there).
    pub failure: Option<Failure>,
    /// Digest of the whole timeline: equal for identical runs.
    pub digest: u64,
    /// The last events, rendered.
    pub timeline: String,
    /// Figures.
    pub stats: Stats,
}

#[derive(Debug)]
enum Ev {
    Deliver { from: usize, to: usize, payload: Vec<u8>, buffered: bool, carry: Carry },
    Timer { node: usize, gen: u64 },
    Fault(usize),
    Wake { checker: usize, node: usize },
    Sweep,
    Landed { node: usize, incarnation: u64 },
}

#[derive(Debug)]
struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug, Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Queued>>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse(Queued { at, seq: self.seq, ev }));
    }
}

/// A cluster heal being timed: when it began and who is not writable yet.
#[derive(Debug)]
struct Healing {
    since: u64,
    waiting: BTreeSet<usize>,
}

/// One simulation run.
pub struct Sim {
    /// What the checkers read.
    pub world: World,
    scenario: Scenario,
    seed: u64,
    /// The configuration of each setup in the run (`me` is set at each start).
    configs: BTreeMap<Setup, Config>,
    cluster: ClusterId,
    checkers: Vec<Box<dyn Invariant>>,
    queue: Queue,
    net_rng: ChaCha8Rng,
    node_rng: ChaCha8Rng,
    disk_rng: ChaCha8Rng,
    stats: Stats,
    violation: Option<Violation>,
    sweep_each_step: bool,
    healing: Option<Healing>,
    connected_ns: u64,
    same_instant: (u64, usize, u32),
    started: bool,
    processed: u64,
    cues_fired: Vec<bool>,
    /// A planted phantom announcement waiting for the end of the step that set it off:
    /// (announcer, peer).
    phantom: Option<(usize, usize)>,
    /// Whether the planted phantom announcement was made (it is made once).
    phantom_done: bool,
}

impl Sim {
    /// Builds the cluster of `scenario` for `seed`; nodes start at real time zero.
    pub fn new(scenario: Scenario, seed: u64) -> Result<Sim, SimError> {
        let n = scenario.nodes;
        if scenario.voters == 0 || scenario.voters > VOTERS_MAX || scenario.voters > n {
            return Err(SimError::Scenario(format!("{} voters of {n} nodes", scenario.voters)));
        }
        let cued = scenario.cues.iter().flat_map(|c| c.then.iter().map(|(_, f)| f));
        if let Some(bad) =
            scenario.faults.iter().map(|f| &f.fault).chain(cued).filter_map(Fault::max_node).find(|m| *m >= n)
        {
            return Err(SimError::Scenario(format!("a fault names node index {bad}, cluster has {n}")));
        }
        if let Some(bad) = scenario.bugs.iter().find(|b| b.max_node() >= n) {
            return Err(SimError::Scenario(format!("bug {bad} names a node the cluster of {n} lacks")));
        }
        let configs = configs_of(&scenario, ClusterId::from_name(CLUSTER_NAME))?;
        let used: Vec<(Setup, &Config)> = configs.iter().map(|(s, c)| (*s, c)).collect();
        let model =
            Model::new(&scenario.definitions, &used, n, scenario.net.max_delay(), scenario.disk_delay_max);
        let mut node_rng = stream(seed, 3);
        let rho_ppb = fraction_to_ppb(model.rho * scenario.drift_scale);
        let hosts = (0..n)
            .map(|i| {
                let offset = node_rng.random_range(0..1_000_000 * SEC);
                // Half the clocks sit at an edge of the drift bound (the worst case the
                // lease rule must survive), the others anywhere within it.
                let stretch = match node_rng.random_range(0..4) {
                    0 => rho_ppb,
                    1 => -rho_ppb,
                    _ => node_rng.random_range(-rho_ppb..=rho_ppb),
                };
                let wall = node_rng.random_range(0..1_000);
                // A planted slow clock replaces the drawn rate (the draws stay the same, so
                // the rest of the run is unchanged).
                let slow = scenario.bugs.iter().find_map(|b| match *b {
                    Bug::SlowClock { node, pct } if node == i => Some(i64::from(pct) * 10_000_000),
                    _ => None,
                });
                let stretch = slow.unwrap_or(stretch);
                Host::new(i, SimClock::new(offset, stretch), wall, scenario.setups[i])
            })
            .collect();
        let link_seed = node_rng.random();
        let world = World {
            now: 0,
            hosts,
            net: Net::new(n, scenario.net.clone(), link_seed),
            reach: Reach::new(n),
            model,
            timeline: Timeline::new(),
            acks: AckLedger::default(),
            step: 0,
        };
        Ok(Sim {
            world,
            seed,
            configs,
            cluster: ClusterId::from_name(CLUSTER_NAME),
            checkers: invariants::all(n),
            queue: Queue::default(),
            net_rng: stream(seed, 2),
            node_rng,
            disk_rng: stream(seed, 4),
            stats: Stats::default(),
            violation: None,
            sweep_each_step: n <= SWEEP_EVERY_STEP_MAX,
            healing: None,
            connected_ns: 0,
            same_instant: (u64::MAX, 0, 0),
            started: false,
            processed: 0,
            cues_fired: vec![false; scenario.cues.len()],
            phantom: None,
            phantom_done: false,
            scenario,
        })
    }

    /// Keeps only the checkers named in `names` (for tests that show one checker at work).
    pub fn only(mut self, names: &[&str]) -> Self {
        self.checkers.retain(|c| names.contains(&c.name()));
        self
    }

    /// Runs to the end of the scenario or the first violation.
    pub fn run(mut self) -> RunReport {
        self.run_until(self.scenario.duration);
        let processed = self.processed;
        self.finish(processed)
    }

    /// Runs every event up to real time `end` (at most the scenario's duration), starting
    /// the cluster first if needed; stops early at a violation. Returns the violation, if
    /// any. Tests use it to look at [`Sim::world`] part way through a run.
    pub fn run_until(&mut self, end: u64) -> Option<&Violation> {
        if !self.started {
            self.started = true;
            self.start();
        }
        let budget = self.event_budget();
        let end = end.min(self.scenario.duration);
        while self.violation.is_none() {
            let Some(Reverse(q)) = self.queue.heap.pop() else { break };
            if q.at > end {
                self.queue.heap.push(Reverse(q));
                break;
            }
            self.processed += 1;
            if self.processed > budget {
                let detail = format!("more than {budget} events: a node or the simulator is stuck in a loop");
                self.violation = Some(Violation { invariant: "event-budget", at: q.at, detail });
                break;
            }
            self.world.now = q.at;
            self.world.step += 1;
            self.dispatch(q.ev);
            if self.sweep_each_step && self.violation.is_none() {
                self.sweep();
            }
        }
        self.violation.as_ref()
    }

    fn start(&mut self) {
        for i in 0..self.world.hosts.len() {
            self.start_node(i);
        }
        for (k, s) in self.scenario.faults.iter().enumerate() {
            self.queue.push(s.at, Ev::Fault(k));
        }
        if !self.sweep_each_step {
            self.queue.push(SWEEP_INTERVAL, Ev::Sweep);
        }
        self.after_fault();
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, payload, buffered, carry } => {
                self.deliver(from, to, payload, buffered, carry)
            }
            Ev::Timer { node, gen } => {
                let host = &mut self.world.hosts[node];
                if host.timer.map(|(_, g)| g) != Some(gen) || host.liveness() != Liveness::Running {
                    return;
                }
                host.timer = None;
                self.guard_same_instant(node);
                let host = &mut self.world.hosts[node];
                let local = host.set_clock(self.world.now);
                if let Some(life) = host.life.as_mut() {
                    life.node.handle_timeout(local);
                }
                self.world.timeline.record(self.world.now, What::Timer { node }, &[]);
                self.after_step(node, StepKind::Timer);
            }
            Ev::Fault(k) => self.apply_fault(k),
            Ev::Wake { checker, node } => {
                let mut out = Out::default();
                if let Some(c) = self.checkers.get_mut(checker) {
                    c.on_wake(&self.world, node, &mut out);
                }
                self.absorb(checker, out);
            }
            Ev::Sweep => {
                self.sweep();
                self.queue.push(self.world.now + SWEEP_INTERVAL, Ev::Sweep);
            }
            Ev::Landed { node, incarnation } => self.landed(node, incarnation),
        }
    }

    /// Fires the cues that `from` sending `payload` (a stream message) sets off: their
    /// faults are added to the schedule, timed from now.
    fn cue(&mut self, from: usize, payload: &[u8]) {
        let signal = match decode_stream(payload, self.cluster) {
            Ok(Message::FenceQuery(q)) => Signal::FenceQuery { from, about: peer_index(q.peer) },
            Ok(Message::FenceAnswer(a)) if a.down_for_us.is_some() && a.hold_us > 0 => {
                Signal::FenceYes { from, about: peer_index(a.peer) }
            }
            _ => return,
        };
        let now = self.world.now;
        for k in 0..self.scenario.cues.len() {
            if self.cues_fired[k] || self.scenario.cues[k].on != signal {
                continue;
            }
            self.cues_fired[k] = true;
            self.stats.cues_fired += 1;
            for (delay, fault) in self.scenario.cues[k].then.clone() {
                self.scenario.faults.push(Scheduled { at: now + delay, fault });
                self.queue.push(now + delay, Ev::Fault(self.scenario.faults.len() - 1));
            }
        }
    }

    /// Hands node `i` the confirmation of a write that landed, then starts the next write
    /// it asks for: at once with no write delay, else as a [`Ev::Landed`] event.
    fn persist(&mut self, i: usize) {
        let now = self.world.now;
        for _ in 0..WRITES_PER_STEP_MAX {
            let host = &mut self.world.hosts[i];
            if host.liveness() != Liveness::Running {
                return;
            }
            let Some(life) = host.life.as_mut() else { return };
            if let Some(p) = life.landed.take() {
                life.node.handle_persisted(p);
            }
            if let Some(d) = life.node.poll_persist_definitions() {
                host.disk_definitions = d.clone();
                life.node.handle_definitions_persisted(d);
            }
            if life.writing.is_some() {
                return;
            }
            let Some(p) = life.node.poll_persist() else { return };
            let max = self.scenario.disk_delay_max;
            let delay = if max == 0 { 0 } else { self.disk_rng.random_range(0..=max) };
            if delay > 0 {
                life.writing = Some(p);
                let incarnation = life.incarnation.0;
                self.queue.push(now + delay, Ev::Landed { node: i, incarnation });
                return;
            }
            host.disk = p;
            life.node.handle_persisted(p);
            self.world.timeline.record(now, What::Persisted { node: i, promises: p }, &[]);
        }
    }

    /// A write of node `i`'s life `incarnation` lands on its disk, unless that life died.
    fn landed(&mut self, i: usize, incarnation: u64) {
        let now = self.world.now;
        let host = &mut self.world.hosts[i];
        let Some(life) = host.life.as_mut().filter(|l| l.incarnation.0 == incarnation) else { return };
        let Some(p) = life.writing.take() else { return };
        life.landed = Some(p);
        host.disk = p;
        self.world.timeline.record(now, What::Persisted { node: i, promises: p }, &[]);
        self.persist(i);
    }

    fn deliver(&mut self, from: usize, to: usize, mut payload: Vec<u8>, buffered: bool, carry: Carry) {
        let now = self.world.now;
        let liveness = self.world.hosts[to].liveness();
        // A cut also drops what is already on the wire; a datagram already in the
        // receiver's socket buffer (queued while it was paused) is past the network.
        let why = match liveness {
            Liveness::Down => Some(DropWhy::Down),
            _ if !buffered && !self.world.net.link_up(from, to) => Some(DropWhy::Cut),
            Liveness::Paused if self.world.hosts[to].backlog.len() >= BACKLOG_MAX => {
                Some(DropWhy::BufferFull)
            }
            _ => None,
        };
        if let Some(why) = why {
            self.world.timeline.record(now, What::Drop { from, to, why }, &payload);
            return;
        }
        let host = &mut self.world.hosts[to];
        if liveness == Liveness::Paused {
            self.world.timeline.record(now, What::Queued { from, to }, &payload);
            host.backlog.push_back((from, payload, carry));
            return;
        }
        let local = host.set_clock(now);
        let sender = NodeId(from as u64 + 1);
        let mut reply = None;
        if let (true, Some(life)) = (self.scenario.local_only_terms, host.life.as_ref()) {
            payload = with_terms(&payload, carry, life.node.terms(), self.cluster).unwrap_or(payload);
        }
        if let Some(hb) = heartbeat_of(&payload, carry, self.cluster) {
            self.world.acks.delivered(to, from, &hb, self.world.step);
            if let Some(forged) = self.plant_ack_bug(to, from, hb, carry) {
                payload = forged;
            }
        }
        let host = &mut self.world.hosts[to];
        if let Some(life) = host.life.as_mut() {
            match carry {
                Carry::Datagram => life.node.handle_datagram(local, sender, &payload),
                Carry::Request => reply = life.node.handle_request(local, sender, &payload),
                Carry::Reply => life.node.handle_reply(local, sender, &payload),
            }
        }
        let what = What::Deliver { from, to, bytes: payload.len() };
        self.world.timeline.record(now, what, &payload);
        if let Some(bytes) = reply {
            self.send(to, from, bytes, Carry::Reply);
        }
        self.after_step(to, StepKind::Datagram { from });
    }

    /// The heartbeat `hb` from `from` as node `to`'s planted bug hands it to the core
    /// ([`Bug::ForgedAck`], [`Bug::DeafToAcks`]), re-encoded; `None` to hand it as it came.
    fn plant_ack_bug(
        &self,
        to: usize,
        from: usize,
        mut hb: quorate_heartbeat::Heartbeat,
        carry: Carry,
    ) -> Option<Vec<u8>> {
        let now = self.world.now;
        let bug = self.scenario.bugs.iter().find(|b| {
            matches!(**b, Bug::ForgedAck { node, since } | Bug::DeafToAcks { node, since } if node == to && now >= since)
        })?;
        match bug {
            Bug::ForgedAck { .. } => {
                let life = self.world.hosts[to].life.as_ref()?;
                let last = self.world.acks.last_sent(to, from)?;
                hb.ack = Some(quorate_heartbeat::Ack { incarnation: life.incarnation, seq: last.seq });
            }
            _ => hb.ack = None,
        }
        encode_heartbeat(hb, carry, self.cluster)
    }

    /// Drains what node `i`'s step produced, re-arms its timer and runs the checkers.
    fn after_step(&mut self, i: usize, kind: StepKind) {
        let events = self.drain(i);
        self.check_step(i, kind, events);
        if let Some((node, peer)) = self.phantom.take() {
            self.announce_phantom(node, peer);
        }
    }

    fn check_step(&mut self, i: usize, kind: StepKind, events: Vec<QuorumEvent>) {
        self.stats.peer_fenced +=
            events.iter().filter(|e| matches!(e, QuorumEvent::PeerFenced { .. })).count() as u64;
        self.persist(i);
        self.rearm(i);
        for k in 0..self.checkers.len() {
            let mut out = Out::default();
            self.checkers[k].after_step(&self.world, i, kind, &events, &mut out);
            self.absorb(k, out);
        }
        self.track_heal(i);
    }

    /// Node `node` announces `peer` fenced although no fence check ran and nobody holds
    /// acks back ([`Bug::PhantomFence`]): the event is added to the node's stream as if its
    /// core had emitted it, and the checkers see it as one more step of the node.
    fn announce_phantom(&mut self, node: usize, peer: usize) {
        let now = self.world.now;
        let host = &self.world.hosts[node];
        if host.liveness() != Liveness::Running {
            return;
        }
        let at = host.set_clock(now);
        let event = QuorumEvent::PeerFenced { peer: NodeId(peer as u64 + 1), confirmed_by: Vec::new(), at };
        self.world.timeline.record(now, What::Fenced { node, peer }, &[]);
        self.check_step(node, StepKind::Timer, vec![event]);
    }

    /// Sets off a planted [`Bug::PhantomFence`]: voter `from` is sending `to` an ack that
    /// will give it a live lease while it cannot write.
    fn arm_phantom(&mut self, from: usize, to: usize, hb: &quorate_heartbeat::Heartbeat) {
        let now = self.world.now;
        let Some((node, since)) = self.scenario.bugs.iter().find_map(|b| match *b {
            Bug::PhantomFence { node, peer, since } if peer == to => Some((node, since)),
            _ => None,
        }) else {
            return;
        };
        let host = &self.world.hosts[to];
        let lease = std::time::Duration::from_nanos(self.world.model.timing(host.setup.preset).lease);
        let fresh = self.world.acks.lookup(to, from, hb).is_some_and(|s| s.local + lease > host.local(now));
        if now >= since && fresh && self.world.quorum_of(to).is_voter(from) && !host.can_write_at(now) {
            self.phantom_done = true;
            self.phantom = Some((node, to));
        }
    }

    fn drain(&mut self, i: usize) -> Vec<QuorumEvent> {
        let now = self.world.now;
        let w = &mut self.world;
        let mut events = Vec::new();
        let mut records = Vec::new();
        let mut transmits = Vec::new();
        if let Some(life) = w.hosts[i].life.as_mut() {
            for _ in 0..quorate_gate::EVENT_QUEUE_MAX {
                let Some(ev) = life.node.poll_event() else { break };
                records.extend(describe(i, &ev, &life.node));
                events.push(ev);
            }
            for _ in 0..quorate_core::TRANSMIT_QUEUE_MAX {
                let Some(t) = life.node.poll_transmit() else { break };
                transmits.push(t);
            }
        }
        for what in records {
            w.timeline.record(now, what, &[]);
        }
        for t in transmits {
            let to = t.to.0.saturating_sub(1) as usize;
            let carry = match t.delivery {
                Delivery::Datagram => Carry::Datagram,
                Delivery::Request => Carry::Request,
            };
            self.send(i, to, t.payload, carry);
        }
        events
    }

    /// Counts and routes one message from `from` to `to`. A stream message (request or
    /// reply) is never duplicated; it can still be lost, which the sender sees as no reply.
    fn send(&mut self, from: usize, to: usize, payload: Vec<u8>, carry: Carry) {
        if carry != Carry::Datagram && self.cues_fired.iter().any(|f| !f) {
            self.cue(from, &payload);
        }
        let now = self.world.now;
        if to < self.world.hosts.len() {
            if let Some(hb) = heartbeat_of(&payload, carry, self.cluster) {
                let local = self.world.hosts[from].local(now);
                self.world.acks.sent(from, to, &hb, local, now);
                if !self.phantom_done && hb.ack.is_some() {
                    self.arm_phantom(from, to, &hb);
                }
            }
        }
        let w = &mut self.world;
        w.hosts[from].sent_msgs += 1;
        w.hosts[from].sent_bytes += payload.len() as u64;
        if to >= w.hosts.len() {
            return;
        }
        match w.net.route(from, to, &mut self.net_rng) {
            Fate::Dropped(why) => w.timeline.record(now, What::Drop { from, to, why }, &payload),
            Fate::Arrives(first, second) => {
                if let (Some(d), Carry::Datagram) = (second, carry) {
                    let copy = payload.clone();
                    self.queue.push(now + d, Ev::Deliver { from, to, payload: copy, buffered: false, carry });
                }
                self.queue.push(now + first, Ev::Deliver { from, to, payload, buffered: false, carry });
            }
        }
    }

    fn rearm(&mut self, i: usize) {
        let now = self.world.now;
        let host = &mut self.world.hosts[i];
        if host.liveness() != Liveness::Running {
            return;
        }
        let Some(local) = host.life.as_ref().and_then(|l| l.node.poll_timeout()) else {
            host.timer = None;
            return;
        };
        let real = host.clock.real_at(local).max(now);
        if host.timer.map(|(at, _)| at) == Some(real) {
            return;
        }
        host.timer_gen += 1;
        host.timer = Some((real, host.timer_gen));
        let gen = host.timer_gen;
        self.queue.push(real, Ev::Timer { node: i, gen });
    }

    fn guard_same_instant(&mut self, node: usize) {
        let now = self.world.now;
        if self.same_instant.0 == now && self.same_instant.1 == node {
            self.same_instant.2 += 1;
            if self.same_instant.2 > SAME_INSTANT_TIMERS_MAX {
                let detail = format!(
                    "n{} asked for its timer at the same instant {SAME_INSTANT_TIMERS_MAX} times",
                    node + 1
                );
                self.violation = Some(Violation { invariant: "timer-livelock", at: now, detail });
            }
        } else {
            self.same_instant = (now, node, 1);
        }
    }

    fn start_node(&mut self, i: usize) {
        let now = self.world.now;
        let seed = self.node_rng.random();
        let host = &mut self.world.hosts[i];
        let Some(config) = self.configs.get(&host.setup).cloned() else {
            let detail = format!("no configuration for n{} running {}", i + 1, host.setup);
            self.violation = Some(Violation { invariant: "start", at: now, detail });
            return;
        };
        let reuse = self.scenario.bugs.contains(&Bug::ReusedIncarnation { node: i });
        if let Err(e) = host.start(config, now, seed, self.scenario.forget_promises, reuse) {
            // The configuration was validated in `new`; a refusal here is a simulator bug.
            self.violation = Some(Violation { invariant: "start", at: now, detail: e.to_string() });
            return;
        }
        let incarnation = host.life.as_ref().map_or(0, |l| l.incarnation.0);
        self.world.acks.new_life(i, incarnation);
        self.world.timeline.record(now, What::Start { node: i, incarnation }, &[]);
        self.after_step(i, StepKind::Start);
    }

    fn apply_fault(&mut self, k: usize) {
        let Some(fault) = self.scenario.faults.get(k).map(|s| s.fault.clone()) else { return };
        let now = self.world.now;
        self.world.timeline.record(now, What::Fault(fault.clone()), &[]);
        if !fault.apply_to_net(&mut self.world.net) {
            self.apply_process_fault(&fault);
        }
        self.after_fault();
    }

    fn apply_process_fault(&mut self, fault: &Fault) {
        let now = self.world.now;
        match *fault {
            Fault::Crash { node } => self.world.hosts[node].crash(now),
            Fault::Shutdown { node } => {
                if self.world.hosts[node].liveness() == Liveness::Running {
                    self.world.hosts[node].shutdown(now);
                    self.after_step(node, StepKind::Timer);
                }
                self.world.hosts[node].crash(now);
            }
            Fault::Restart { node } | Fault::RestartAs { node, .. } => {
                if self.world.hosts[node].liveness() != Liveness::Down {
                    // Restarting a live process kills it first: let the checkers see it down.
                    self.world.hosts[node].crash(now);
                    self.after_fault();
                }
                if let Fault::RestartAs { setup, .. } = fault {
                    self.world.hosts[node].setup = *setup;
                }
                self.start_node(node);
            }
            Fault::Pause { node } => {
                let host = &mut self.world.hosts[node];
                if host.liveness() == Liveness::Running {
                    host.paused_since = Some(now);
                    host.timer = None;
                }
            }
            Fault::Resume { node } => {
                let host = &mut self.world.hosts[node];
                if host.liveness() == Liveness::Paused {
                    host.paused_since = None;
                    let backlog = std::mem::take(&mut host.backlog);
                    for (from, payload, carry) in backlog {
                        self.queue.push(now, Ev::Deliver { from, to: node, payload, buffered: true, carry });
                    }
                    self.rearm(node);
                }
            }
            _ => {}
        }
    }

    fn after_fault(&mut self) {
        let now = self.world.now;
        let live: Vec<Liveness> = self.world.hosts.iter().map(Host::liveness).collect();
        let before: Vec<Option<u64>> =
            (0..live.len()).map(|i| self.world.reach.node(i).connected_since).collect();
        let defs: Vec<usize> = self.world.hosts.iter().map(|h| h.setup.definition).collect();
        self.world.reach.recompute(now, &live, &self.world.net, &self.world.model, &defs);
        for (i, was) in before.iter().enumerate() {
            if let (Some(s), None) = (was, self.world.reach.node(i).connected_since) {
                self.connected_ns += now - s;
            }
        }
        for k in 0..self.checkers.len() {
            let mut out = Out::default();
            self.checkers[k].after_fault(&self.world, &mut out);
            self.absorb(k, out);
        }
        self.begin_heal_timing();
    }

    fn sweep(&mut self) {
        for k in 0..self.checkers.len() {
            let mut out = Out::default();
            self.checkers[k].sweep(&self.world, &mut out);
            self.absorb(k, out);
        }
    }

    fn absorb(&mut self, checker: usize, out: Out) {
        if self.violation.is_none() {
            self.violation = out.violations.into_iter().next();
        }
        for (at, node) in out.wakes {
            self.queue.push(at.max(self.world.now), Ev::Wake { checker, node });
        }
        for m in out.measures {
            match m {
                Measure::FenceLatency { voter: true, ns } => self.stats.fence_voter.push(ns),
                Measure::FenceLatency { voter: false, ns } => self.stats.fence_observer.push(ns),
                Measure::Rejoin(ns) => self.stats.rejoin.push(ns),
                Measure::LossFence => self.stats.loss_fences += 1,
                Measure::EarlyRejoin => self.stats.early_rejoins += 1,
            }
        }
    }

    /// Starts timing a cluster heal when every live node just became protected (after a
    /// fault, not at the start of the run).
    fn begin_heal_timing(&mut self) {
        let now = self.world.now;
        match self.world.reach.all_protected_since() {
            Some(since) if since == now && now > 0 => {
                let waiting = (0..self.world.hosts.len())
                    .filter(|i| self.world.hosts[*i].liveness() == Liveness::Running);
                let waiting: BTreeSet<usize> =
                    waiting.filter(|i| !self.world.hosts[*i].can_write_at(now)).collect();
                if waiting.is_empty() {
                    self.stats.heal.push(0);
                    self.healing = None;
                } else {
                    self.healing = Some(Healing { since, waiting });
                }
            }
            Some(_) => {}
            None => self.healing = None,
        }
    }

    fn track_heal(&mut self, i: usize) {
        let now = self.world.now;
        let Some(h) = self.healing.as_mut() else { return };
        if h.waiting.contains(&i) && self.world.hosts[i].can_write_at(now) {
            h.waiting.remove(&i);
            if h.waiting.is_empty() {
                self.stats.heal.push(now - h.since);
                self.healing = None;
            }
        }
    }

    fn event_budget(&self) -> u64 {
        let n = self.scenario.nodes as u64;
        let v = self.scenario.voters as u64;
        let secs = self.scenario.duration / SEC + 1;
        // Heartbeats per second (voters to all, observers to voters), duplicated at most
        // once, plus timers, faults and sweeps; four times over.
        let per_sec = 10 * (v * n.saturating_sub(1) + n.saturating_sub(v) * v) * 2 + 50 * n + 200;
        (secs * per_sec + self.scenario.faults.len() as u64) * 4
    }

    fn finish(mut self, processed: u64) -> RunReport {
        let end = if self.violation.is_some() { self.world.now } else { self.scenario.duration };
        for i in 0..self.world.hosts.len() {
            if let Some(s) = self.world.reach.node(i).connected_since {
                self.connected_ns += end.saturating_sub(s);
            }
        }
        let s = &mut self.stats;
        s.runs = 1;
        s.events = processed;
        s.sim_ns = end;
        s.connected_node_ns = self.connected_ns;
        for (i, h) in self.world.hosts.iter().enumerate() {
            let live = h.live_ns(end);
            if self.world.model.quorum(h.setup.definition).is_voter(i) {
                s.voter_node_ns += live;
                s.voter_msgs += h.sent_msgs;
                s.voter_bytes += h.sent_bytes;
            } else {
                s.observer_node_ns += live;
                s.observer_msgs += h.sent_msgs;
                s.observer_bytes += h.sent_bytes;
            }
        }
        let failure = self.violation.take().map(|violation| {
            s.violations = 1;
            Failure {
                violation,
                seed: self.seed,
                scenario: self.scenario.name.clone(),
                timeline: self.world.timeline.render(),
                replay: self.scenario.replay_command(self.seed),
            }
        });
        RunReport {
            seed: self.seed,
            failure,
            digest: self.world.timeline.digest(),
            timeline: self.world.timeline.render(),
            stats: self.stats,
        }
    }
}

/// The timeline record for a core event: quorum changes, and the peer state the detector
/// now holds (read back from the core rather than inferred from the event).
fn describe(i: usize, ev: &QuorumEvent, node: &quorate_core::Node) -> Option<What> {
    match ev {
        QuorumEvent::QuorumGained { epoch, .. } => {
            Some(What::Quorum { node: i, gained: true, epoch: epoch.0 })
        }
        QuorumEvent::QuorumLost { epoch, .. } => {
            Some(What::Quorum { node: i, gained: false, epoch: epoch.0 })
        }
        QuorumEvent::PeerFenced { peer, .. } => {
            Some(What::Fenced { node: i, peer: peer.0.saturating_sub(1) as usize })
        }
        QuorumEvent::PeerUp { peer, .. }
        | QuorumEvent::PeerSuspect { peer, .. }
        | QuorumEvent::PeerDown { peer, .. } => {
            let p = peer.0.saturating_sub(1) as usize;
            node.peer_state(*peer).map(|state| What::Peer { node: i, peer: p, state })
        }
        _ => None,
    }
}

/// The index of node `id`.
fn peer_index(id: NodeId) -> usize {
    usize::try_from(id.0.saturating_sub(1)).unwrap_or(usize::MAX)
}

/// Runs `scenario` with `seed`.
pub fn run(scenario: Scenario, seed: u64) -> Result<RunReport, SimError> {
    Ok(Sim::new(scenario, seed)?.run())
}
