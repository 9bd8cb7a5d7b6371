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
//! the scenario and the seed. Every random choice comes from streams of that one seed
//! ([`crate::seed`]): the scenario, the network, clocks and node seeds, disk write delays.
//!
//! The rooms of the loop, all of them steps of one [`Sim`]:
//!
//! | file | what it holds |
//! |---|---|
//! | `build.rs` | [`Sim::new`]: the scenario checked, every setup's configuration, the hosts and their clocks |
//! | `queue.rs` | the event heap |
//! | `steps.rs` | a node's step: a message delivered, a timer fired, a life started; what the step produced routed |
//! | `disk.rs` | writes to a node's disk and their landing |
//! | `schedule.rs` | scheduled faults applied, cues fired |
//! | `reconfigure.rs` | changes proposed, definitions persisted and adopted, added members started |
//! | `planted.rs` | the bugs tests plant in a node's edge |
//! | `checking.rs` | the checkers run and what they hand back absorbed |
//! | `heal_timer.rs` | cluster heal times, for the figures |
//! | `outcome.rs` | what a run hands back |

mod build;
mod checking;
mod disk;
mod heal_timer;
mod outcome;
mod planted;
mod queue;
mod reconfigure;
mod schedule;
mod steps;

use std::collections::BTreeMap;

use quorate_core::Config;
use quorate_proto::ClusterId;
use rand_chacha::ChaCha8Rng;

use crate::clock::{MS, SEC};
use crate::invariants::{Invariant, Violation};
use crate::report::Stats;
use crate::scenarios::Scenario;
use crate::setup::Setup;
use crate::world::World;
use heal_timer::HealTimer;
pub use outcome::{Failure, RunReport, SimError};
use queue::{Ev, Queue};

/// Clusters up to this size are swept (every checker, every node) after every step.
pub const SWEEP_EVERY_STEP_MAX: usize = 16;

/// Virtual time between full sweeps in larger clusters.
pub const SWEEP_INTERVAL: u64 = 10 * MS;

/// One simulation run.
pub struct Sim {
    /// What the checkers read.
    pub world: World,
    /// What runs (cues that fire append to its fault schedule).
    scenario: Scenario,
    seed: u64,
    /// The configuration of each setup in the run (`me` is set at each start).
    configs: BTreeMap<Setup, Config>,
    cluster: ClusterId,
    /// Every checker, in the order of [`crate::invariants::all`].
    checkers: Vec<Box<dyn Invariant>>,
    queue: Queue,
    /// The network's stream: each message's fate.
    net_rng: ChaCha8Rng,
    /// The hosts' stream: clocks at build, then each new life's core seed.
    node_rng: ChaCha8Rng,
    /// The disks' stream: each write's delay.
    disk_rng: ChaCha8Rng,
    stats: Stats,
    /// The first violation: the run stops at it.
    violation: Option<Violation>,
    /// Whether every checker sweeps every node after every step (small clusters).
    sweep_each_step: bool,
    heal_timer: HealTimer,
    /// Node time connected to a quorum, ns, of the stretches already over.
    connected_ns: u64,
    /// (instant, node, count) of timer firings of one node at one instant (livelock guard).
    same_instant: (u64, usize, u32),
    started: bool,
    /// Events dispatched.
    processed: u64,
    /// Which of the scenario's cues have fired (each fires once).
    cues_fired: Vec<bool>,
    /// A planted phantom announcement waiting for the end of the step that set it off:
    /// (announcer, peer).
    phantom: Option<(usize, usize)>,
    /// Whether the planted phantom announcement was made (it is made once).
    phantom_done: bool,
    /// Whether a host is adopting a definition now (a step inside an adoption does not
    /// start another).
    following: bool,
}

impl Sim {
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
            let Some(q) = self.queue.pop_until(end) else { break };
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

    /// Starts every node, queues the fault schedule (and the first sweep), and lets the
    /// checkers see the starting ground truth.
    fn start(&mut self) {
        for i in 0..self.world.hosts.len() {
            if self.world.hosts[i].commissioned {
                self.start_node(i);
            }
        }
        for (k, s) in self.scenario.faults.iter().enumerate() {
            self.queue.push(s.at, Ev::Fault(k));
        }
        if !self.sweep_each_step {
            self.queue.push(SWEEP_INTERVAL, Ev::Sweep);
        }
        self.after_fault();
    }

    /// Hands one event to the room that handles it.
    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, payload, buffered, carry } => {
                self.deliver(from, to, payload, buffered, carry)
            }
            Ev::Timer { node, gen } => self.fire_timer(node, gen),
            Ev::Fault(k) => self.apply_fault(k),
            Ev::Wake { checker, node } => self.wake(checker, node),
            Ev::Sweep => {
                self.sweep();
                self.queue.push(self.world.now + SWEEP_INTERVAL, Ev::Sweep);
            }
            Ev::Landed { node, incarnation } => self.landed(node, incarnation),
        }
    }

    /// The most events a run of this size and length may take before it counts as stuck.
    fn event_budget(&self) -> u64 {
        let n = self.scenario.nodes as u64;
        let v = self.scenario.voters as u64;
        let secs = self.scenario.duration / SEC + 1;
        // Heartbeats per second (voters to all, observers to voters), duplicated at most
        // once, plus timers, faults and sweeps; four times over.
        let per_sec = 10 * (v * n.saturating_sub(1) + n.saturating_sub(v) * v) * 2 + 50 * n + 200;
        (secs * per_sec + self.scenario.faults.len() as u64) * 4
    }

    /// Closes the figures at the end of the run (or at its violation) and builds the report.
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

/// Runs `scenario` with `seed`.
pub fn run(scenario: Scenario, seed: u64) -> Result<RunReport, SimError> {
    Ok(Sim::new(scenario, seed)?.run())
}
