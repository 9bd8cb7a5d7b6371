//! (f) Epochs are monotonic per node id, across restarts too (guarantee G4): every
//! `QuorumGained` carries an epoch above every epoch that node id ever had, the core's
//! current epoch never falls below the highest seen, and a new life starts above all of
//! its previous lives' epochs. The checker remembers the highest epoch of each node id,
//! which is exactly what a storage engine comparing epochs downstream relies on.

use quorate_gate::QuorumEvent;

use super::checker::{Invariant, Out, Step, StepKind};
use crate::world::World;

const NAME: &str = "epoch-monotonic";

/// The epoch checker.
#[derive(Debug)]
pub struct EpochMonotonic {
    /// Highest epoch each node id ever had.
    highest: Vec<u64>,
    /// Incarnation of the life last seen (0 while down or before start).
    incarnation: Vec<u64>,
}

impl EpochMonotonic {
    /// A checker for `n` nodes.
    pub fn new(n: usize) -> Self {
        EpochMonotonic { highest: vec![0; n], incarnation: vec![0; n] }
    }

    /// A `QuorumGained` with `epoch` on `node`: it must exceed every epoch seen.
    fn gained(&mut self, node: usize, epoch: u64) -> Result<(), String> {
        let before = self.highest[node];
        self.highest[node] = before.max(epoch);
        if epoch <= before {
            return Err(format!(
                "n{} gained quorum with epoch {epoch} but already had epoch {before} (incarnation {})",
                node + 1,
                self.incarnation[node]
            ));
        }
        Ok(())
    }

    /// A new life of `node` starts with `epoch` (before its first gain, if `events` hold
    /// one: a lone quorum gains at construction). It must exceed every earlier life's.
    fn new_life(&mut self, node: usize, epoch: u64, events: &[QuorumEvent]) -> Result<(), String> {
        let gained_at_start = events.iter().any(|e| matches!(e, QuorumEvent::QuorumGained { .. }));
        let base = if gained_at_start { epoch.saturating_sub(1) } else { epoch };
        if self.highest[node] > 0 && base <= self.highest[node] {
            return Err(format!(
                "n{} started a new life (incarnation {}) at epoch {base}, not above its earlier lives' {}",
                node + 1,
                self.incarnation[node],
                self.highest[node]
            ));
        }
        Ok(())
    }

    fn current(&mut self, w: &World, i: usize, out: &mut Out) {
        let Some(life) = w.hosts[i].life.as_ref() else { return };
        let epoch = life.node.epoch().0;
        if epoch < self.highest[i] {
            out.violate(
                NAME,
                w.now,
                format!("n{}'s epoch went back from {} to {epoch}", i + 1, self.highest[i]),
            );
        }
        self.highest[i] = self.highest[i].max(epoch);
    }
}

impl Invariant for EpochMonotonic {
    fn name(&self) -> &'static str {
        NAME
    }

    fn after_step(&mut self, w: &World, step: &Step<'_>, out: &mut Out) {
        let Step { node, kind, events } = *step;
        if kind == StepKind::Start {
            if let Some(life) = w.hosts[node].life.as_ref() {
                self.incarnation[node] = life.incarnation.0;
                if let Err(e) = self.new_life(node, life.node.epoch().0, events) {
                    out.violate(NAME, w.now, e);
                }
            }
        }
        for ev in events {
            let QuorumEvent::QuorumGained { epoch, .. } = ev else { continue };
            if let Err(e) = self.gained(node, epoch.0) {
                out.violate(NAME, w.now, e);
            }
        }
        self.current(w, node, out);
    }

    fn after_fault(&mut self, w: &World, _out: &mut Out) {
        for i in 0..self.highest.len() {
            if w.hosts[i].life.is_none() {
                self.incarnation[i] = 0;
            }
        }
    }

    fn sweep(&mut self, w: &World, out: &mut Out) {
        for i in 0..self.highest.len() {
            self.current(w, i, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_or_lower_epoch_is_refused_across_lives() {
        let mut c = EpochMonotonic::new(2);
        assert_eq!(c.gained(0, 10), Ok(()));
        assert_eq!(c.gained(0, 11), Ok(()));
        let again = c.gained(0, 11).err().unwrap_or_default();
        assert!(again.contains("already had epoch 11"), "{again}");
        assert!(c.gained(0, 5).is_err());
        assert_eq!(c.gained(1, 3), Ok(()), "node ids are tracked separately");
        // A new life must start above everything its earlier lives had.
        assert!(c.new_life(0, 11, &[]).is_err());
        assert_eq!(c.new_life(0, 1 << 20, &[]), Ok(()));
    }
}
