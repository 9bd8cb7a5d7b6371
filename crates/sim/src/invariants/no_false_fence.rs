//! (d) No false fencing: a node that can exchange heartbeats both ways with a quorum of
//! running voters over links whose independent loss is within the documented bound
//! ([`crate::model::LOSS_BOUND`], by redundancy) is writable at every instant from
//! `P + heal_bound` on, where `P` is when it became so connected ("protected"), for as
//! long as it stays protected. The warm-up `heal_bound` lets leases left over from before
//! `P` run out and fresh round trips take their place; being writable at its end is the
//! heal invariant's job, staying writable afterwards is this one's.
//!
//! Only in runs where every node runs the same quorum definition throughout
//! ([`crate::model::Model::uniform`]): nodes on different definitions deliberately refuse
//! each other's votes, so "connected to a quorum" does not make them writable. Presets may
//! differ (the warm-up uses the run's longest heartbeat interval); the loss bound was
//! measured with one preset, so in runs that mix presets only loss-free links protect.
//!
//! The checker also counts, whatever the loss, every fence of a node that had been
//! connected (loss not considered) for its warm-up and writable since: the false fences per
//! node-hour that the loss bound was measured from.

use super::checker::{Invariant, Measure, Out, Step};
use crate::clock::fmt_ms;
use crate::world::World;

const NAME: &str = "no-false-fence";

/// One watched stretch: since when, and whether the node has been seen writable after
/// its warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stretch {
    since: u64,
    watching: bool,
}

/// The no-false-fence checker.
#[derive(Debug)]
pub struct NoFalseFence {
    protected: Vec<Option<Stretch>>,
    connected: Vec<Option<Stretch>>,
}

impl NoFalseFence {
    /// A checker for `n` nodes.
    pub fn new(n: usize) -> Self {
        NoFalseFence { protected: vec![None; n], connected: vec![None; n] }
    }

    fn observe(&mut self, w: &World, i: usize, out: &mut Out) {
        if w.hosts[i].is_shut_down() {
            return;
        }
        let r = w.reach.node(i);
        let writable = w.hosts[i].can_write_at(w.now);
        if let Some(s) = self.protected[i].as_mut() {
            let warm = w.now >= s.since + w.model.heal_bound(r.protected_loss);
            if writable && warm {
                s.watching = true;
            } else if !writable && s.watching {
                out.violate(
                    NAME,
                    w.now,
                    format!(
                        "n{} is fenced although it has exchanged with a quorum since {} ms over links losing at \
                         most {:.0}% (redundancy {}, bound {:.0}%) and was writable after its warm-up",
                        i + 1,
                        fmt_ms(s.since),
                        r.protected_loss * 100.0,
                        r.redundancy,
                        w.model.protecting_loss(r.redundancy).unwrap_or(0.0) * 100.0
                    ),
                );
                s.watching = false;
            }
        }
        if let Some(s) = self.connected[i].as_mut() {
            let warm = w.now >= s.since + w.model.heal_bound(r.connected_loss);
            if writable && warm {
                s.watching = true;
            } else if !writable && s.watching {
                out.measures.push(Measure::LossFence);
                s.watching = false;
            }
        }
    }
}

impl Invariant for NoFalseFence {
    fn name(&self) -> &'static str {
        NAME
    }

    fn after_step(&mut self, w: &World, step: &Step<'_>, out: &mut Out) {
        self.observe(w, step.node, out);
    }

    fn after_fault(&mut self, w: &World, out: &mut Out) {
        for (i, r) in w.reach_for_liveness() {
            if self.protected[i].map(|s| s.since) != r.protected_since {
                self.protected[i] = r.protected_since.map(|since| Stretch { since, watching: false });
                if let Some(since) = r.protected_since {
                    out.wakes.push((since + w.model.heal_bound(r.protected_loss), i));
                }
            }
            if self.connected[i].map(|s| s.since) != r.connected_since {
                self.connected[i] = r.connected_since.map(|since| Stretch { since, watching: false });
                if let Some(since) = r.connected_since {
                    out.wakes.push((since + w.model.heal_bound(r.connected_loss), i));
                }
            }
        }
    }

    fn on_wake(&mut self, w: &World, node: usize, out: &mut Out) {
        self.observe(w, node, out);
    }

    fn sweep(&mut self, w: &World, out: &mut Out) {
        for i in 0..self.protected.len() {
            if self.protected[i].is_some() || self.connected[i].is_some() {
                self.observe(w, i, out);
            }
        }
    }
}
