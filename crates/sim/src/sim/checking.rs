//! The checkers at work: each one called after a step, after a fault, at the wake-ups it
//! asked for and at sweeps; what it hands back absorbed (the first violation stops the
//! run, wake-ups are queued, figures go to the stats).

use super::queue::Ev;
use super::Sim;
use crate::invariants::{Measure, Out};

impl Sim {
    /// Checker `checker` looks at node `node`, at the wake-up it asked for.
    pub(super) fn wake(&mut self, checker: usize, node: usize) {
        let mut out = Out::default();
        if let Some(c) = self.checkers.get_mut(checker) {
            c.on_wake(&self.world, node, &mut out);
        }
        self.absorb(checker, out);
    }

    /// Every checker re-checks every node.
    pub(super) fn sweep(&mut self) {
        for k in 0..self.checkers.len() {
            let mut out = Out::default();
            self.checkers[k].sweep(&self.world, &mut out);
            self.absorb(k, out);
        }
    }

    /// Takes in what checker `checker` handed back: the first violation stops the run.
    pub(super) fn absorb(&mut self, checker: usize, out: Out) {
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
}
