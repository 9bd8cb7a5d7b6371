//! Times cluster heals for the figures: from the moment every live node is protected again
//! (after a fault) to the moment every running node is writable.

use std::collections::BTreeSet;

use crate::host::ProcessState;
use crate::world::World;

/// A cluster heal being timed: when it began and who is not writable yet.
#[derive(Debug)]
struct Healing {
    since: u64,
    waiting: BTreeSet<usize>,
}

/// The heal under way, if any.
#[derive(Debug, Default)]
pub(super) struct HealTimer {
    healing: Option<Healing>,
}

impl HealTimer {
    /// After a fault: starts timing a heal when every live node just became protected (not
    /// at the start of the run). A heal with nobody left to wait for is pushed to `heals` at
    /// once, as 0.
    pub(super) fn after_fault(&mut self, w: &World, heals: &mut Vec<u64>) {
        let now = w.now;
        match w.reach.all_protected_since() {
            Some(since) if since == now && now > 0 => {
                let waiting =
                    (0..w.hosts.len()).filter(|i| w.hosts[*i].process_state() == ProcessState::Running);
                let waiting: BTreeSet<usize> = waiting.filter(|i| !w.hosts[*i].can_write_at(now)).collect();
                if waiting.is_empty() {
                    heals.push(0);
                    self.healing = None;
                } else {
                    self.healing = Some(Healing { since, waiting });
                }
            }
            Some(_) => {}
            None => self.healing = None,
        }
    }

    /// After node `i`'s step: the heal is over when the last node waited for is writable;
    /// its time goes to `heals`.
    pub(super) fn after_step(&mut self, w: &World, i: usize, heals: &mut Vec<u64>) {
        let now = w.now;
        let Some(h) = self.healing.as_mut() else { return };
        if h.waiting.contains(&i) && w.hosts[i].can_write_at(now) {
            h.waiting.remove(&i);
            if h.waiting.is_empty() {
                heals.push(now - h.since);
                self.healing = None;
            }
        }
    }
}
