//! A node's disk: the writes its core asks for, each landing after the scenario's write
//! delay (or at once), and the core told only once a write has landed.

use rand::Rng;

use super::queue::Ev;
use super::Sim;
use crate::host::ProcessState;
use crate::timeline::What;

/// Writes a node may ask for in one step before the simulator stops asking (a core asks
/// for one write, then nothing until its needs change; more is a bug, and bounded here).
const WRITES_PER_STEP_MAX: usize = 4;

impl Sim {
    /// Hands node `i` the confirmation of a write that landed, then starts the next write
    /// it asks for: at once with no write delay, else as a [`Ev::Landed`] event.
    pub(super) fn persist(&mut self, i: usize) {
        let now = self.world.now;
        for _ in 0..WRITES_PER_STEP_MAX {
            let host = &mut self.world.hosts[i];
            if host.process_state() != ProcessState::Running {
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
    pub(super) fn landed(&mut self, i: usize, incarnation: u64) {
        let now = self.world.now;
        let host = &mut self.world.hosts[i];
        let Some(life) = host.life.as_mut().filter(|l| l.incarnation.0 == incarnation) else { return };
        let Some(p) = life.writing.take() else { return };
        life.landed = Some(p);
        host.disk = p;
        self.world.timeline.record(now, What::Persisted { node: i, promises: p }, &[]);
        self.persist(i);
    }
}
