//! (a) Lease safety: whenever node B considers node A down (`peer_state == Unreachable`),
//! A does not hold B's vote at that real instant: `A.lease_until(B) <= A's local now`,
//! unless A is down (crashed or shut down). This is guarantee G1, the one everything else
//! rests on.
//!
//! Per pair, with the holder's lease: A's lease end is read from A's own gate (A's lease,
//! on A's clock) and B's view from B's own detector (B's floor for A). When A runs a longer
//! lease than B (wan next to lan, a rolling change between them) this holds only because B
//! raises its floor for A to what A's lease needs; a node that ignored its peers' terms
//! breaks it (`tests/mixed.rs`).
//!
//! Incremental form: who considers whom down is kept from the cores' peer events (read
//! back with `peer_state`). A violation can only begin when B declares A down (checked on
//! B's `PeerDown`) or when A's lease on B grows, which only an ack from B can do (checked
//! when A handles a datagram from B). The sweep re-checks every pair.

use std::collections::BTreeSet;

use quorate_detector::PeerState;
use quorate_gate::QuorumEvent;
use quorate_proto::NodeId;

use super::checker::{Invariant, Out, Step, StepKind};
use crate::clock::fmt_ms;
use crate::world::World;

const NAME: &str = "lease-safety";

/// Up to this many nodes the sweep asks every detector about every peer (n^2 queries).
const DIRECT_SWEEP_MAX: usize = 64;

/// The lease-safety checker.
#[derive(Debug)]
pub struct LeaseSafety {
    /// `down_by[a]`: nodes that consider `a` down.
    down_by: Vec<BTreeSet<usize>>,
    /// `considers[b]`: nodes `b` considers down.
    considers: Vec<BTreeSet<usize>>,
    /// The incarnation each node's sets belong to (0 while down).
    incarnation: Vec<u64>,
}

impl LeaseSafety {
    /// A checker for `n` nodes.
    pub fn new(n: usize) -> Self {
        LeaseSafety {
            down_by: vec![BTreeSet::new(); n],
            considers: vec![BTreeSet::new(); n],
            incarnation: vec![0; n],
        }
    }

    fn forget(&mut self, b: usize) {
        for a in std::mem::take(&mut self.considers[b]) {
            self.down_by[a].remove(&b);
        }
    }

    fn refresh(&mut self, w: &World, b: usize, a: usize) {
        let down = w.hosts[b]
            .life
            .as_ref()
            .is_some_and(|l| l.node.peer_state(NodeId(a as u64 + 1)) == Some(PeerState::Unreachable));
        if down {
            self.considers[b].insert(a);
            self.down_by[a].insert(b);
        } else {
            self.considers[b].remove(&a);
            self.down_by[a].remove(&b);
        }
    }
}

/// Checks one pair: `b` considers `a` down; `a` must not hold `b`'s vote now.
fn check(w: &World, a: usize, b: usize, out: &mut Out) {
    let host = &w.hosts[a];
    let Some(life) = host.life.as_ref() else { return };
    if life.shut_down {
        return;
    }
    let a_now = host.local(w.now);
    let Some(until) = life.node.lease_until(NodeId(b as u64 + 1)) else { return };
    if until > a_now {
        let b_host = &w.hosts[b];
        let heard = b_host
            .life
            .as_ref()
            .and_then(|l| l.node.detector().last_heard(NodeId(a as u64 + 1)))
            .map_or_else(|| "never".to_string(), |t| format!("at {} ms", fmt_ms(b_host.clock.real_at(t))));
        let paused = if host.paused_since.is_some() { " (paused)" } else { "" };
        out.violate(
            NAME,
            w.now,
            format!(
                "n{} considers n{} down (last heard it {heard}), but n{a1}{paused} holds n{}'s vote until {} ms, \
                 {:.3} ms from now (lease end {until:?} on n{a1}'s clock, which reads {a_now:?})",
                b + 1,
                a + 1,
                b + 1,
                fmt_ms(host.clock.real_at(until)),
                (until - a_now).as_secs_f64() * 1e3,
                a1 = a + 1,
            ),
        );
    }
}

impl Invariant for LeaseSafety {
    fn name(&self) -> &'static str {
        NAME
    }

    fn after_step(&mut self, w: &World, step: &Step<'_>, out: &mut Out) {
        let Step { node, kind, events } = *step;
        for ev in events {
            if let QuorumEvent::PeerUp { peer, .. }
            | QuorumEvent::PeerSuspect { peer, .. }
            | QuorumEvent::PeerDown { peer, .. } = ev
            {
                let a = peer.0.saturating_sub(1) as usize;
                if a < self.down_by.len() {
                    self.refresh(w, node, a);
                    if self.considers[node].contains(&a) {
                        check(w, a, node, out);
                    }
                }
            }
        }
        if let StepKind::Datagram { from } = kind {
            if self.down_by[node].contains(&from) {
                check(w, node, from, out);
            }
        }
    }

    fn after_fault(&mut self, w: &World, _out: &mut Out) {
        for b in 0..self.incarnation.len() {
            let inc = w.hosts[b].life.as_ref().map_or(0, |l| l.incarnation.0);
            if inc != self.incarnation[b] {
                self.forget(b);
                self.incarnation[b] = inc;
            }
        }
    }

    fn sweep(&mut self, w: &World, out: &mut Out) {
        let n = self.considers.len();
        if n > DIRECT_SWEEP_MAX {
            for b in 0..n {
                for &a in &self.considers[b] {
                    check(w, a, b, out);
                }
            }
            return;
        }
        // Small clusters: ask every detector directly, so a peer state that changed
        // without an event would still be caught.
        for b in 0..n {
            let Some(life) = w.hosts[b].life.as_ref() else { continue };
            for a in (0..n).filter(|a| *a != b) {
                if life.node.peer_state(NodeId(a as u64 + 1)) == Some(PeerState::Unreachable) {
                    check(w, a, b, out);
                }
            }
        }
    }
}
