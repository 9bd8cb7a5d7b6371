//! A node's step: a message handed to its core, its timer fired, or a new life started;
//! then what the step produced: events to the timeline and the checkers, messages to the
//! network, writes to the disk, the next timer.

use quorate_core::Delivery;
use quorate_gate::QuorumEvent;
use quorate_proto::NodeId;
use rand::Rng;

use super::queue::Ev;
use super::Sim;
use crate::faults::Bug;
use crate::host::{ProcessState, BACKLOG_MAX};
use crate::invariants::{Out, Step, StepKind, Violation};
use crate::net::{DropWhy, Fate};
use crate::setup::Preset;
use crate::timeline::What;
use crate::versions::Running;
use crate::wire::{heartbeat_of, index_of, with_terms, Carry};

/// Consecutive timer firings of one node at one instant before the run is declared stuck.
const SAME_INSTANT_TIMERS_MAX: u32 = 1_000;

impl Sim {
    /// Node `node`'s timer of generation `gen` fires, unless it is stale or the node does
    /// not run.
    pub(super) fn fire_timer(&mut self, node: usize, gen: u64) {
        let host = &mut self.world.hosts[node];
        if host.timer.map(|(_, g)| g) != Some(gen) || host.process_state() != ProcessState::Running {
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

    /// A message from `from` reaches `to`: dropped (receiver down, link cut, socket buffer
    /// full), queued (receiver paused), or handed to its core, with a request's reply sent back.
    pub(super) fn deliver(
        &mut self,
        from: usize,
        to: usize,
        mut payload: Vec<u8>,
        buffered: bool,
        carry: Carry,
    ) {
        let now = self.world.now;
        let state = self.world.hosts[to].process_state();
        // A cut also drops what is already on the wire; a datagram already in the
        // receiver's socket buffer (queued while it was paused) is past the network.
        let why = match state {
            ProcessState::Down => Some(DropWhy::Down),
            _ if !buffered && !self.world.net.link_up(from, to) => Some(DropWhy::Cut),
            ProcessState::Paused if self.world.hosts[to].backlog.len() >= BACKLOG_MAX => {
                Some(DropWhy::BufferFull)
            }
            _ => None,
        };
        if let Some(why) = why {
            self.world.timeline.record(now, What::Drop { from, to, why }, &payload);
            return;
        }
        let host = &mut self.world.hosts[to];
        if state == ProcessState::Paused {
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

    /// Drains what node `i`'s step produced, re-arms its timer and runs the checkers.
    pub(super) fn after_step(&mut self, i: usize, kind: StepKind) {
        let events = self.drain(i);
        self.check_step(i, kind, events);
        if let Some((node, peer)) = self.phantom.take() {
            self.announce_phantom(node, peer);
        }
        self.follow(i);
    }

    /// Counts the step's announcements, serves its disk and timer, runs every checker on it.
    pub(super) fn check_step(&mut self, i: usize, kind: StepKind, events: Vec<QuorumEvent>) {
        self.stats.peer_fenced +=
            events.iter().filter(|e| matches!(e, QuorumEvent::PeerFenced { .. })).count() as u64;
        self.persist(i);
        self.rearm(i);
        let step = Step { node: i, kind, events: &events };
        for k in 0..self.checkers.len() {
            let mut out = Out::default();
            self.checkers[k].after_step(&self.world, &step, &mut out);
            self.absorb(k, out);
        }
        self.heal_timer.after_step(&self.world, i, &mut self.stats.heal);
    }

    /// Takes node `i`'s events (recorded in the timeline) and hands its messages to the
    /// network; returns the events.
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
            let to = index_of(t.to);
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
                let lease = self.world.model.timing(self.world.preset_of(from)).lease;
                let lease = std::time::Duration::from_nanos(lease);
                self.world.acks.sent(from, to, &hb, local, now, lease);
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

    /// Arms node `i`'s timer for the local instant its core asks to be woken at (a new
    /// generation, so a timer armed before is skipped when it fires).
    pub(super) fn rearm(&mut self, i: usize) {
        let now = self.world.now;
        let host = &mut self.world.hosts[i];
        if host.process_state() != ProcessState::Running {
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

    /// Reports a timer livelock: one node firing at one instant over and over.
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

    /// Starts a new life of node `i` with the configuration of its setup and what its disk
    /// recorded.
    pub(super) fn start_node(&mut self, i: usize) {
        let now = self.world.now;
        let seed = self.node_rng.random();
        let forget = self.scenario.forget_promises;
        let host = &mut self.world.hosts[i];
        // A life starts from the definition its disk records, else from its file.
        let from =
            host.disk_roster.filter(|_| !forget).unwrap_or(Running { definition: host.file, version: 0 });
        if !self.world.model.definitions.get(from.definition).is_some_and(|d| d.contains(i)) {
            // Its disk says it was removed: the runtime refuses to start it as a member.
            self.stats.changes.restarts_refused += 1;
            let text = "does not start: its disk records a definition without it".to_string();
            self.world.timeline.record(now, What::Member { node: i, text }, &[]);
            return;
        }
        host.setup.definition = from.definition;
        host.version = from.version;
        // A definition kept on disk that names a preset starts the life on it.
        let named =
            host.disk_roster.filter(|_| !forget).and(host.disk_timing.as_deref()).and_then(Preset::from_name);
        if let Some(preset) = named {
            host.setup.preset = preset;
        }
        let setup = host.setup;
        let Some(config) = self.config_for(i, setup) else { return };
        let host = &mut self.world.hosts[i];
        let reuse = self.scenario.bugs.contains(&Bug::ReusedIncarnation { node: i });
        if let Err(e) = host.start(config, now, seed, forget, reuse) {
            // The configuration was validated in `new`; a refusal here is a simulator bug.
            self.violation = Some(Violation { invariant: "start", at: now, detail: e.to_string() });
            return;
        }
        let incarnation = host.life.as_ref().map_or(0, |l| l.incarnation.0);
        self.world.acks.new_life(i, incarnation);
        self.world.timeline.record(now, What::Start { node: i, incarnation }, &[]);
        self.after_step(i, StepKind::Start);
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
        QuorumEvent::PeerFenced { peer, .. } => Some(What::Fenced { node: i, peer: index_of(*peer) }),
        QuorumEvent::PeerUp { peer, .. }
        | QuorumEvent::PeerSuspect { peer, .. }
        | QuorumEvent::PeerDown { peer, .. } => {
            let p = index_of(*peer);
            node.peer_state(*peer).map(|state| What::Peer { node: i, peer: p, state })
        }
        _ => None,
    }
}
