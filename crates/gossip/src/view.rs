//! What fresh rows tell: who hears whom ([`PartitionView`]) and whether a peer this node
//! lost is alive elsewhere ([`Liveness`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use quorate_proto::{Instant, NodeId, View};

use crate::rows::{Row, RowTable};

/// Whether a peer this node does not hear is alive elsewhere, judged from fresh rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// This node hears it directly.
    Direct,
    /// This node does not hear it; the members in `via` do (their fresh rows, known
    /// current after this node lost it, say heard): alive, but unreachable from here.
    Indirect {
        /// Who hears it.
        via: Vec<NodeId>,
    },
    /// Nobody whose fresh row reached this node hears it: it crashed, or it is cut off
    /// from everyone this node can learn from (from inside a clean partition's other side
    /// the two look the same).
    DownEverywhere,
    /// Down here, and no other member's fresh row reached this node to tell.
    Unknown,
    /// It left gracefully.
    Left,
}

/// Who hears whom, as far as fresh rows tell. See [`RowTable::view`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionView {
    /// Groups of members connected by links heard in both directions (a member whose row
    /// is not fresh joins the group of a member that hears it). Sorted; the first group
    /// holds this node.
    pub components: Vec<Vec<NodeId>>,
    /// `(a, b)`: `a` hears `b` but `b` does not hear `a` (both rows fresh).
    pub one_way: Vec<(NodeId, NodeId)>,
    /// Members nobody with a fresh row hears (and that did not leave).
    pub unseen: Vec<NodeId>,
    /// Members that left gracefully.
    pub left: Vec<NodeId>,
}

impl std::fmt::Display for PartitionView {
    /// `partition A: {1,2}; partition B: {3,4,5}; node 2 sees 3 one-way; unseen: {6}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |ids: &[NodeId]| {
            let inner: Vec<String> = ids.iter().map(|id| id.0.to_string()).collect();
            format!("{{{}}}", inner.join(","))
        };
        let mut parts = Vec::new();
        for (i, c) in self.components.iter().enumerate() {
            parts.push(format!("partition {}: {}", group_name(i), set(c)));
        }
        for (a, b) in &self.one_way {
            parts.push(format!("node {} sees {} one-way", a.0, b.0));
        }
        if !self.unseen.is_empty() {
            parts.push(format!("unseen: {}", set(&self.unseen)));
        }
        if !self.left.is_empty() {
            parts.push(format!("left: {}", set(&self.left)));
        }
        f.write_str(&parts.join("; "))
    }
}

/// `A`, `B`, ..., `Z`, `AA`, `AB`, ...
pub(crate) fn group_name(mut i: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    name.reverse();
    String::from_utf8_lossy(&name).into_owned()
}

impl RowTable {
    /// Whether `peer`, which this node's own detector sees as `here`, is alive elsewhere.
    /// Only fresh rows known current after `lost_at` (when this node stopped hearing the
    /// peer: a newer version arrived, or the owner's own digest confirmed it since) count
    /// as evidence that others still hear it, and only entries saying heard (not merely
    /// suspect): a crashed peer turns suspect everywhere before it turns down anywhere.
    pub fn liveness(
        &self,
        now: Instant,
        fresh_for: Duration,
        peer: NodeId,
        here: View,
        lost_at: Instant,
    ) -> Liveness {
        match here {
            View::Left => return Liveness::Left,
            View::Heard | View::Suspect => return Liveness::Direct,
            View::Down | View::Unknown => {}
        }
        let mut others = 0usize;
        let mut via = Vec::new();
        for (&owner, s) in &self.rows {
            if owner == peer || !s.counts(now, fresh_for) {
                continue;
            }
            others += 1;
            let heard = s.row.entries.get(&peer).is_some_and(|e| e.view == View::Heard);
            if heard && s.confirmed > lost_at {
                via.push(owner);
            }
        }
        if !via.is_empty() {
            Liveness::Indirect { via }
        } else if others > 0 {
            Liveness::DownEverywhere
        } else {
            Liveness::Unknown
        }
    }

    /// The partition view at `now` from the rows that count (see [`RowTable::mark_heard`]). With
    /// `corroboration` k > 1, a peer counts as not heard by its accusers only when at least
    /// k fresh rows say it is down: one degraded node cannot accuse healthy peers alone.
    pub fn view(&self, now: Instant, fresh_for: Duration, corroboration: usize) -> PartitionView {
        // O(entries x log members): one pass to count accusations and leaves, one to link.
        let fresh = self.fresh(now, fresh_for);
        let mut downs: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut left = BTreeSet::new();
        for row in fresh.values() {
            for e in row.entries.values() {
                match e.view {
                    View::Down => *downs.entry(e.peer).or_default() += 1,
                    View::Left if e.peer != self.me => {
                        left.insert(e.peer);
                    }
                    _ => {}
                }
            }
        }
        let k = corroboration.max(1);
        let hears = |row: &Row, b: NodeId| -> bool {
            match row.entries.get(&b).map(|e| e.view) {
                Some(v) if v.hears() => true,
                Some(View::Down) => downs.get(&b).copied().unwrap_or(0) < k,
                _ => false,
            }
        };
        let ids: Vec<NodeId> = self.members.iter().copied().filter(|m| !left.contains(m)).collect();
        let index: BTreeMap<NodeId, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let mut parent: Vec<usize> = (0..ids.len()).collect();
        let mut heard_by_fresh = vec![false; ids.len()];
        let mut one_way = Vec::new();
        for (&a, row) in &fresh {
            let Some(&i) = index.get(&a) else { continue };
            for &b in row.entries.keys() {
                let Some(&j) = index.get(&b) else { continue };
                if a == b || !hears(row, b) {
                    continue;
                }
                heard_by_fresh[j] = true;
                let linked = fresh.get(&b).is_none_or(|rb| hears(rb, a));
                if linked {
                    union(&mut parent, i, j);
                } else {
                    one_way.push((a, b));
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<NodeId>> = BTreeMap::new();
        let mut unseen = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            if id != self.me && !fresh.contains_key(&id) && !heard_by_fresh[i] {
                unseen.push(id);
                continue;
            }
            groups.entry(find(&mut parent, i)).or_default().push(id);
        }
        let mut components: Vec<Vec<NodeId>> = groups.into_values().collect();
        components.sort();
        if let Some(pos) = components.iter().position(|c| c.contains(&self.me)) {
            let own = components.remove(pos);
            components.insert(0, own);
        }
        one_way.sort();
        PartitionView { components, one_way, unseen, left: left.into_iter().collect() }
    }
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}
