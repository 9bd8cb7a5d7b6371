//! (e) Heal: a node that becomes able to exchange with a quorum again (the network healed,
//! it restarted or resumed, a voter came back) over links within the loss bound is
//! writable within the heal bound ([`crate::model::Model::heal_bound`]):
//! `2 x heartbeat_interval + 2 x max_delay`, plus heartbeat rounds for loss.
//!
//! Checked at a wake-up at the bound (through the gate handle), for every node that became
//! able to reach a quorum, including one still writable at that moment on votes from before:
//! if those lapse during the warm-up and it never regains a quorum, it is not writable at
//! the bound, and no other checker would see it ([`super::no_false_fence`] starts watching
//! only once a node is writable after its warm-up). Measures each node's rejoin time, from
//! the moment it could reach a quorum to its first writable step, for the nodes that were
//! not writable at that moment.
//!
//! Only in runs where every node runs the same quorum definition throughout
//! ([`crate::model::Model::uniform`]): nodes on different definitions deliberately lend each
//! other no votes and write only on a quorum under every definition in use, so a node can
//! stay fenced next to a reachable quorum of its own definition. Presets may differ: the
//! bound uses the longest heartbeat interval of the run.

use super::checker::{Invariant, Measure, Out, Step};
use crate::clock::fmt_ms;
use crate::world::World;

const NAME: &str = "heal";

/// The heal checker.
#[derive(Debug)]
pub struct Heal {
    /// The protected stretch each node is tracked for.
    tracked: Vec<Option<u64>>,
    /// Nodes not yet writable in their current stretch (for the rejoin figure).
    awaiting: Vec<bool>,
    /// Nodes that were writable when their current stretch began.
    writable_at_start: Vec<bool>,
}

impl Heal {
    /// A checker for `n` nodes.
    pub fn new(n: usize) -> Self {
        Heal { tracked: vec![None; n], awaiting: vec![false; n], writable_at_start: vec![false; n] }
    }

    /// Records a rejoin if node `i` is awaited and now writable.
    fn observe(&mut self, w: &World, i: usize, out: &mut Out) {
        let Some(since) = self.tracked[i] else { return };
        if self.awaiting[i] && w.hosts[i].can_write_at(w.now) {
            self.awaiting[i] = false;
            out.measures.push(Measure::Rejoin(w.now - since));
        }
    }
}

impl Invariant for Heal {
    fn name(&self) -> &'static str {
        NAME
    }

    fn after_step(&mut self, w: &World, step: &Step<'_>, out: &mut Out) {
        self.observe(w, step.node, out);
    }

    fn after_fault(&mut self, w: &World, out: &mut Out) {
        for (i, r) in w.reach_for_liveness() {
            if self.tracked[i] == r.protected_since {
                continue;
            }
            self.tracked[i] = r.protected_since;
            self.awaiting[i] = false;
            if let Some(since) = r.protected_since {
                let writable = w.hosts[i].can_write_at(w.now);
                self.awaiting[i] = !writable;
                self.writable_at_start[i] = writable;
                out.wakes.push((since + w.model.heal_bound(r.protected_loss), i));
            }
        }
    }

    fn on_wake(&mut self, w: &World, node: usize, out: &mut Out) {
        let Some(since) = self.tracked[node] else { return };
        let stale = w.reach.node(node).protected_since != Some(since);
        if stale || w.hosts[node].is_shut_down() {
            return;
        }
        let loss = w.reach.node(node).protected_loss;
        let bound = w.model.heal_bound(loss);
        if w.now < since + bound {
            // The links got lossier (within the bound) since: allow the longer bound.
            out.wakes.push((since + bound, node));
            return;
        }
        if w.hosts[node].can_write_at(w.now) {
            self.observe(w, node, out);
            return;
        }
        let lapsed = if self.writable_at_start[node] {
            "; it was writable then and lost its votes during the warm-up"
        } else {
            ""
        };
        out.violate(
            NAME,
            w.now,
            format!(
                "n{} can exchange with a quorum since {} ms (links losing at most {:.0}%) but is not \
                 writable {} ms later (bound {} ms){lapsed}",
                node + 1,
                fmt_ms(since),
                loss * 100.0,
                fmt_ms(w.now - since),
                fmt_ms(bound)
            ),
        );
    }

    fn sweep(&mut self, w: &World, out: &mut Out) {
        for i in 0..self.tracked.len() {
            if self.awaiting[i] {
                self.observe(w, i, out);
            }
        }
    }
}
