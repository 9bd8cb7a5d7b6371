//! The fault schedule at work: a scheduled fault applied to the network or to a host, the
//! ground truth of who reaches a quorum recomputed, and the cues that a node's message sets
//! off added to the schedule.

use std::collections::BTreeMap;

use quorate_proto::{decode_stream, Message, Roster};

use super::queue::Ev;
use super::Sim;
use crate::faults::{Fault, Scheduled, Signal};
use crate::host::{Host, ProcessState};
use crate::invariants::{Out, StepKind, Violation};
use crate::setup::Setup;
use crate::timeline::What;
use crate::versions::Running;
use crate::wire::index_of;

impl Sim {
    /// Applies the scenario's fault number `k`.
    pub(super) fn apply_fault(&mut self, k: usize) {
        let Some(fault) = self.scenario.faults.get(k).map(|s| s.fault.clone()) else { return };
        let now = self.world.now;
        self.world.timeline.record(now, What::Fault(fault.clone()), &[]);
        if !fault.apply_to_net(&mut self.world.net) {
            self.apply_process_fault(&fault);
        }
        self.after_fault();
    }

    /// A crash, shutdown, restart, pause or resume, applied to the node's host.
    fn apply_process_fault(&mut self, fault: &Fault) {
        let now = self.world.now;
        match *fault {
            Fault::Crash { node } => self.world.hosts[node].crash(now),
            Fault::Shutdown { node } => {
                if self.world.hosts[node].process_state() == ProcessState::Running {
                    self.world.hosts[node].shutdown(now);
                    self.after_step(node, StepKind::Timer);
                }
                self.world.hosts[node].crash(now);
            }
            Fault::Restart { node } | Fault::RestartAs { node, .. } => {
                if self.world.hosts[node].process_state() != ProcessState::Down {
                    // Restarting a live process kills it first: let the checkers see it down.
                    self.world.hosts[node].crash(now);
                    self.after_fault();
                }
                if !self.world.hosts[node].commissioned {
                    // A slot for a member not added yet: nobody starts it.
                    return;
                }
                if let Fault::RestartAs { setup, .. } = fault {
                    self.world.hosts[node].setup = *setup;
                    self.world.hosts[node].file = setup.definition;
                }
                self.start_node(node);
            }
            Fault::Adopt { node, definition } => {
                let host = &mut self.world.hosts[node];
                // A scenario's definitions follow one another: the index is the version.
                let version = definition as u64;
                match host.process_state() {
                    // Already there (it followed a peer): nothing to do.
                    ProcessState::Running if host.version >= version => {}
                    ProcessState::Running => self.adopt_now(node, definition),
                    // The core runs its old definition until it runs again: the checkers
                    // judge it under that one until then.
                    ProcessState::Paused => host.adopt_on_resume = Some(definition),
                    // Its next start runs the new one, as a definition it had persisted.
                    ProcessState::Down => {
                        if host.disk_roster.is_none_or(|r| r.version < version) {
                            host.disk_roster = Some(Running { definition, version });
                            let parent = definition.checked_sub(1).and_then(|p| self.table_of(p));
                            self.world.hosts[node].disk_parent = parent;
                        }
                    }
                }
            }
            Fault::Propose { node, pick, grow } => self.propose(node, pick, grow),
            Fault::Pause { node } => {
                let host = &mut self.world.hosts[node];
                if host.process_state() == ProcessState::Running {
                    host.paused_since = Some(now);
                    host.timer = None;
                }
            }
            Fault::Resume { node } => {
                let host = &mut self.world.hosts[node];
                if host.process_state() == ProcessState::Paused {
                    host.paused_since = None;
                    let adopt = host.adopt_on_resume.take();
                    let backlog = std::mem::take(&mut host.backlog);
                    for (from, payload, carry) in backlog {
                        self.queue.push(now, Ev::Deliver { from, to: node, payload, buffered: true, carry });
                    }
                    if let Some(definition) = adopt.filter(|d| *d as u64 > self.world.hosts[node].version) {
                        self.adopt_now(node, definition);
                    }
                    self.rearm(node);
                }
            }
            _ => {}
        }
    }

    /// The running node switches to the scenario's definition `definition` now, as its
    /// version `definition`.
    fn adopt_now(&mut self, node: usize, definition: usize) {
        let setup = Setup { preset: self.world.hosts[node].setup.preset, definition };
        let Some(config) = self.config_for(node, setup) else { return };
        let votes = match config.check() {
            Ok(valid) => valid.votes().clone(),
            Err(e) => {
                // The configuration was validated in `new`; a refusal here is a simulator bug.
                let detail = format!("n{}: {e}", node + 1);
                self.violation = Some(Violation { invariant: "adopt", at: self.world.now, detail });
                return;
            }
        };
        let parent = definition.checked_sub(1).and_then(|p| self.table_of(p));
        let roster =
            Roster { version: definition as u64, votes, addresses: BTreeMap::new(), parent, timing: None };
        self.adopt_roster(node, roster, "is told to adopt");
    }

    /// After a fault (or the start): recomputes who reaches a quorum, then lets every
    /// checker and the heal timer see the new ground truth.
    pub(super) fn after_fault(&mut self) {
        let now = self.world.now;
        let processes: Vec<ProcessState> = self.world.hosts.iter().map(Host::process_state).collect();
        let before: Vec<Option<u64>> =
            (0..processes.len()).map(|i| self.world.reach.node(i).connected_since).collect();
        let defs: Vec<Running> = self.world.hosts.iter().map(Host::running).collect();
        self.world.reach.recompute(now, &processes, &self.world.net, &self.world.model, &defs);
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
        self.heal_timer.after_fault(&self.world, &mut self.stats.heal);
    }

    /// Fires the cues that `from` sending `payload` (a stream message) sets off: their
    /// faults are added to the schedule, timed from now.
    pub(super) fn cue(&mut self, from: usize, payload: &[u8]) {
        let signal = match decode_stream(payload, self.cluster) {
            Ok(Message::FenceQuery(q)) => Signal::FenceQuery { from, about: index_of(q.peer) },
            Ok(Message::FenceAnswer(a)) if a.down_for_us.is_some() && a.hold_us > 0 => {
                Signal::FenceYes { from, about: index_of(a.peer) }
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
}
