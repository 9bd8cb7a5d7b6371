//! (c) Quorum intersection: a writable node holds unexpired leases (its **contact set**:
//! the voters of its own definition whose vote it holds, plus its own vote if it has one)
//! that form a quorum under its own definition, and the contact sets of any two writable
//! nodes share a voter. This is what "no split brain" means for the gate: two nodes can
//! both accept writes (for example both sides of a bridge), but only through quorums that
//! overlap, so a storage engine's epoch check downstream can order them. It holds across
//! definitions too: at no instant are two nodes writable whose held voter sets (each a
//! quorum under its holder's definition) are disjoint, which is the split brain a
//! half-finished change of members, votes or tie-breaker could otherwise allow.
//!
//! Neither half trusts the node it judges. The quorum rule is computed independently of
//! `quorate-gate` ([`crate::model::Quorum`]), and the contact set is not read from the core's
//! lease table but rebuilt from the wire ([`crate::acks`]): voter `v` is in writable node
//! `a`'s set only while an ack from `v`, as `v` sent it and the network delivered it, names
//! a heartbeat `a` sent less than `a`'s lease ago (on `a`'s clock). So a gate that counts a
//! vote no delivered ack supports (a forged or misread ack, a lease kept too long) is
//! reported, and two writable nodes of one definition can fail the shared-voter half too.
//!
//! Contact sets are voter bitmasks; the checker keeps each writable node's last mask,
//! grouped by mask, so a step costs one comparison per distinct mask (at most `2^voters`,
//! in practice a handful) instead of one per node. A vote lapses without a step of its
//! holder, so the checker also wakes at the earliest lapse in each writable node's set.

use std::collections::{BTreeMap, BTreeSet};

use super::checker::{Invariant, Out, Step};
use crate::model::Quorum;
use crate::world::World;

const NAME: &str = "quorum-intersection";

/// The intersection checker.
#[derive(Debug)]
pub struct Intersection {
    /// Each node's contact set when last seen writable.
    mask: Vec<Option<u64>>,
    /// Writable nodes grouped by contact set.
    by_mask: BTreeMap<u64, BTreeSet<usize>>,
    /// The wake-up each node has pending, real time.
    wake: Vec<Option<u64>>,
}

impl Intersection {
    /// A checker for `n` nodes.
    pub fn new(n: usize) -> Self {
        Intersection { mask: vec![None; n], by_mask: BTreeMap::new(), wake: vec![None; n] }
    }

    fn set(&mut self, i: usize, mask: Option<u64>) {
        if let Some(old) = self.mask[i] {
            if let Some(nodes) = self.by_mask.get_mut(&old) {
                nodes.remove(&i);
                if nodes.is_empty() {
                    self.by_mask.remove(&old);
                }
            }
        }
        self.mask[i] = mask;
        if let Some(m) = mask {
            self.by_mask.entry(m).or_default().insert(i);
        }
    }

    /// Checks node `i`'s fresh contact set against every other writable set and against
    /// quorum (a split brain is the graver report, so it comes first).
    fn check(&self, w: &World, i: usize, mask: u64, out: &mut Out) {
        for (&other, nodes) in &self.by_mask {
            if let Some(j) = nodes.iter().find(|j| **j != i) {
                if let Some(e) = disjoint((i, mask), (*j, other)) {
                    out.violate(NAME, w.now, e);
                }
            }
        }
        if let Some(e) = short_of_quorum(w.quorum_of(i), i, mask) {
            out.violate(NAME, w.now, e);
        }
    }

    /// Re-checks node `i` now: its fresh contact set against the others, and a wake-up at
    /// its earliest lapse if none is pending.
    fn refresh(&mut self, w: &World, i: usize, out: &mut Out) {
        let fresh = contact_set(w, i);
        self.set(i, None);
        if let Some(c) = fresh {
            self.check(w, i, c.mask, out);
            if self.wake[i].is_none() && c.lapse < u64::MAX {
                self.wake[i] = Some(c.lapse);
                out.wakes.push((c.lapse, i));
            }
        }
        self.set(i, fresh.map(|c| c.mask));
    }
}

/// A writable node's votes, by the wire.
#[derive(Debug, Clone, Copy)]
struct Contacts {
    /// The voters whose vote it holds, its own included.
    mask: u64,
    /// Real time at which the first of the other votes lapses (`u64::MAX`: none).
    lapse: u64,
}

/// Why writable node `i` with contact set `mask` breaks the rule under its definition
/// `quorum`, if it does.
fn short_of_quorum(quorum: &Quorum, i: usize, mask: u64) -> Option<String> {
    (!quorum.is_quorum(mask)).then(|| {
        format!(
            "n{} is writable but the acks delivered to it hold the votes of {} only: not a quorum of its definition",
            i + 1,
            show(mask)
        )
    })
}

/// Why two writable nodes' contact sets break the rule, if they do.
fn disjoint((i, a): (usize, u64), (j, b): (usize, u64)) -> Option<String> {
    (a & b == 0).then(|| {
        format!(
            "split brain: n{} is writable with the votes of {} and n{} with the votes of {}: no voter in common",
            i + 1,
            show(a),
            j + 1,
            show(b)
        )
    })
}

/// The contact set of node `i` if it is writable now, from the acks the wire delivered.
fn contact_set(w: &World, i: usize) -> Option<Contacts> {
    let host = &w.hosts[i];
    if !host.can_write_at(w.now) {
        return None;
    }
    let now = host.local(w.now);
    let q = w.quorum_of(i);
    let mut c = Contacts { mask: q.bit(i), lapse: u64::MAX };
    let mut others = q.voters() & !c.mask;
    // One round per voter: at most 64.
    while others != 0 {
        let v = others.trailing_zeros() as usize;
        others &= others - 1;
        if let Some(send) = w.acks.vote(i, v, now) {
            c.mask |= 1 << v;
            c.lapse = c.lapse.min(host.clock.real_at(send.local + send.lease));
        }
    }
    Some(c)
}

/// `{n1,n3}` for mask 0b101.
fn show(mask: u64) -> String {
    let ids: Vec<String> = (0..64).filter(|v| mask & (1 << v) != 0).map(|v| format!("n{}", v + 1)).collect();
    format!("{{{}}}", ids.join(","))
}

impl Invariant for Intersection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn after_step(&mut self, w: &World, step: &Step<'_>, out: &mut Out) {
        self.refresh(w, step.node, out);
    }

    fn after_fault(&mut self, w: &World, out: &mut Out) {
        self.sweep(w, out);
    }

    fn on_wake(&mut self, w: &World, node: usize, out: &mut Out) {
        self.wake[node] = None;
        self.refresh(w, node, out);
    }

    fn sweep(&mut self, w: &World, out: &mut Out) {
        for i in 0..self.mask.len() {
            let fresh = contact_set(w, i).map(|c| c.mask);
            self.set(i, fresh);
        }
        let masks: Vec<(usize, u64)> =
            self.by_mask.iter().filter_map(|(m, nodes)| nodes.first().map(|n| (*n, *m))).collect();
        for (k, &(i, m)) in masks.iter().enumerate() {
            for &other in &masks[k + 1..] {
                if let Some(e) = disjoint((i, m), other) {
                    out.violate(NAME, w.now, e);
                }
            }
        }
        for (&m, nodes) in &self.by_mask {
            for &i in nodes {
                if let Some(e) = short_of_quorum(w.quorum_of(i), i, m) {
                    out.violate(NAME, w.now, e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_quorums_and_writable_minorities_are_reported() {
        let model = crate::model::test_model(5, 5);
        let q = model.quorum(0);
        assert_eq!(short_of_quorum(q, 0, 0b00111), None);
        let minority = short_of_quorum(q, 0, 0b00011).unwrap_or_default();
        assert!(minority.contains("votes of {n1,n2} only"), "{minority}");
        // Two quorums of the bridge scenario share the bridge voter: fine.
        assert_eq!(disjoint((0, 0b00111), (4, 0b11100)), None);
        let split = disjoint((0, 0b00011), (4, 0b11100)).unwrap_or_default();
        assert!(split.starts_with("split brain: n1"), "{split}");
    }

    #[test]
    fn masks_print_as_node_ids() {
        assert_eq!(show(0b10101), "{n1,n3,n5}");
        assert_eq!(show(0), "{}");
    }
}
