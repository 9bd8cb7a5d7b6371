//! (b) Fencing bound: a live node cut off from every quorum at real time `c` (it cannot
//! exchange datagrams both ways with a quorum of running voters of its own definition that
//! run that definition too, counting itself; a paused node exchanges with nobody) is not
//! writable from `c + lease x (1 + rho)` on, with the lease of its own preset, for as long
//! as it stays cut off. A node that switched presets online is held to the later of that
//! and, for each preset it replaced at `t`, `min(c, t) + that lease x (1 + rho)`
//! ([`World::fence_deadline`]): after `wan -> lan` it may still hold wan votes. `c` is the last instant at which the voters in contact with it
//! since then formed a quorum with it ([`crate::reach`]): leases lent at different moments
//! add up. Guarantee G2; for a paused node also G3 (fenced by the clock alone).
//!
//! Checked through the gate handle, with the node's manual clock set to its local time at
//! the real instant: at a wake-up at the deadline, then after every step of the node (only
//! its own step can make it writable again) and at every sweep. Also measures the fence
//! latency: from the cut to the lease deadline its `QuorumLost` reports.

use quorate_gate::QuorumEvent;

use super::checker::{Invariant, Measure, Out, Step};
use crate::clock::fmt_ms;
use crate::world::World;

const NAME: &str = "fence-bound";

/// The fencing-bound checker.
#[derive(Debug)]
pub struct FenceBound {
    /// The cut each node is being held to.
    armed: Vec<Option<u64>>,
    /// Cuts of nodes that were writable when cut, awaiting their fence (for latency).
    pending: Vec<Option<u64>>,
}

impl FenceBound {
    /// A checker for `n` nodes.
    pub fn new(n: usize) -> Self {
        FenceBound { armed: vec![None; n], pending: vec![None; n] }
    }

    fn check(&self, w: &World, i: usize, out: &mut Out) {
        let Some(c) = self.armed[i] else { return };
        if w.reach.node(i).cut_since != Some(c) {
            return;
        }
        let deadline = w.fence_deadline(i, c);
        if w.now >= deadline && w.hosts[i].can_write_at(w.now) {
            let paused = if w.hosts[i].paused_since.is_some() { " (paused)" } else { "" };
            out.violate(
                NAME,
                w.now,
                format!(
                    "n{}{paused} is still writable {} ms after it was cut off from every quorum at {} ms \
                     (bound: its lease x (1 + rho) = {} ms)",
                    i + 1,
                    fmt_ms(w.now - c),
                    fmt_ms(c),
                    fmt_ms(deadline - c)
                ),
            );
        }
    }
}

impl Invariant for FenceBound {
    fn name(&self) -> &'static str {
        NAME
    }

    fn after_step(&mut self, w: &World, step: &Step<'_>, out: &mut Out) {
        let Step { node, events, .. } = *step;
        for ev in events {
            let QuorumEvent::QuorumLost { at, .. } = ev else { continue };
            let Some(c) = self.pending[node] else { continue };
            if w.hosts[node].is_shut_down() {
                // Fenced by shutdown, not by the cut.
                self.pending[node] = None;
                continue;
            }
            let fenced = w.hosts[node].clock.real_at(*at);
            if fenced < c {
                continue;
            }
            if fenced <= w.fence_deadline(node, c) {
                let voter = w.quorum_of(node).is_voter(node);
                out.measures.push(Measure::FenceLatency { voter, ns: fenced - c });
            }
            self.pending[node] = None;
        }
        self.check(w, node, out);
    }

    fn after_fault(&mut self, w: &World, out: &mut Out) {
        for i in 0..self.armed.len() {
            let cut = w.reach.node(i).cut_since;
            if cut == self.armed[i] {
                continue;
            }
            self.armed[i] = cut;
            match cut {
                Some(c) => {
                    out.wakes.push((w.fence_deadline(i, c), i));
                    if c == w.now && w.hosts[i].can_write_at(w.now) {
                        self.pending[i] = Some(c);
                    }
                }
                None if w.hosts[i].life.is_none() => self.pending[i] = None,
                None => {}
            }
        }
    }

    fn on_wake(&mut self, w: &World, node: usize, out: &mut Out) {
        self.check(w, node, out);
    }

    fn sweep(&mut self, w: &World, out: &mut Out) {
        for i in 0..self.armed.len() {
            self.check(w, i, out);
        }
    }
}
