//! Making sure a peer knows this node's definition before heartbeats that name it arrive.
//!
//! A heartbeat carries only the digest of the sender's definition. A peer that does not
//! know the definition behind it holds it as unknown, and the joint rule then fences the
//! peer until it has asked and been answered: a round trip during which it refuses writes,
//! every time a node starts on a definition its peers have not seen (a new member) or
//! adopts one. So a node sends its definition to each peer on a reliable stream when it
//! starts or adopts one, and holds back its heartbeats to that peer until the peer has
//! answered (the answer shows the definition arrived) or its heartbeats name this node's
//! definition.
//!
//! ```text
//!   start / adopt ──► every peer pending: definition pushed, heartbeats held
//!   pending, retry due ──► pushed again (a push before the connection is up is lost)
//!   reply to a push, or a heartbeat naming our digest ──► confirmed: heartbeats flow
//!   peer heard but silent about it for `grace` (an older build that cannot read the
//!   definition) ──► given up: heartbeats flow, no more pushes
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use quorate_proto::{Instant, NodeId};

/// One peer that has not confirmed this node's definition.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// When the definition was last pushed to it.
    pushed: Instant,
    /// When it was first heard while pending.
    heard: Option<Instant>,
}

/// Peers that have not confirmed this node's definition yet. See the module docs.
#[derive(Debug)]
pub(crate) struct Announcements {
    pending: BTreeMap<NodeId, Pending>,
    /// Between two pushes to a peer that has not answered.
    retry: Duration,
    /// How long heartbeats stay held once the peer is heard without confirming.
    grace: Duration,
}

impl Announcements {
    /// Retries every half `interval`; holds heartbeats at most one `interval` after the
    /// peer is heard.
    pub(crate) fn new(interval: Duration) -> Self {
        Announcements { pending: BTreeMap::new(), retry: interval / 2, grace: interval }
    }

    /// The heartbeat interval changed while the node runs: retries and grace follow it.
    pub(crate) fn set_interval(&mut self, interval: Duration) {
        self.retry = interval / 2;
        self.grace = interval;
    }

    /// This node's definition was just pushed to each of `peers` at `now` (it started or
    /// adopted one); any other peer's entry is dropped.
    pub(crate) fn pushed_to_all(&mut self, now: Instant, peers: &BTreeSet<NodeId>) {
        self.pending = peers.iter().map(|&p| (p, Pending { pushed: now, heard: None })).collect();
    }

    /// `peer` has this node's definition.
    pub(crate) fn confirmed(&mut self, peer: NodeId) {
        self.pending.remove(&peer);
    }

    /// A fresh heartbeat from `peer` arrived at `now`; `names_ours`: its terms name this
    /// node's definition.
    pub(crate) fn heard(&mut self, now: Instant, peer: NodeId, names_ours: bool) {
        if names_ours {
            self.pending.remove(&peer);
        } else if let Some(p) = self.pending.get_mut(&peer) {
            p.heard.get_or_insert(now);
        }
    }

    /// Whether heartbeats to `peer` wait at `now`.
    pub(crate) fn holds(&self, now: Instant, peer: NodeId) -> bool {
        self.pending.get(&peer).is_some_and(|p| p.heard.is_none_or(|h| now < h.saturating_add(self.grace)))
    }

    /// The peers to push the definition to again at `now` (their retry is due), in id
    /// order. Peers given up on (heard, silent for `grace`) are dropped.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<NodeId> {
        let grace = self.grace;
        self.pending.retain(|_, p| p.heard.is_none_or(|h| now < h.saturating_add(grace)));
        let mut due = Vec::new();
        for (peer, p) in &mut self.pending {
            if now >= p.pushed.saturating_add(self.retry) {
                p.pushed = now;
                due.push(*peer);
            }
        }
        due
    }

    /// When [`Announcements::due`] next has something to do.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|p| {
                let retry = p.pushed.saturating_add(self.retry);
                p.heard.map_or(retry, |h| retry.min(h.saturating_add(self.grace)))
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * MS)
    }

    fn peers(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn heartbeats_wait_for_the_answer_and_pushes_repeat_until_it_comes() {
        let mut a = Announcements::new(Duration::from_millis(100));
        a.pushed_to_all(at(0), &peers(&[2, 3]));
        assert!(a.holds(at(1), NodeId(2)) && a.holds(at(1), NodeId(3)));
        assert_eq!(a.due(at(49)), Vec::<NodeId>::new());
        assert_eq!(a.poll_timeout(), Some(at(50)));
        assert_eq!(a.due(at(50)), vec![NodeId(2), NodeId(3)]);
        a.confirmed(NodeId(2));
        assert!(!a.holds(at(51), NodeId(2)) && a.holds(at(51), NodeId(3)));
        // A heartbeat that names our definition confirms too.
        a.heard(at(60), NodeId(3), true);
        assert!(!a.holds(at(61), NodeId(3)));
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn a_peer_heard_that_never_answers_gets_heartbeats_after_the_grace_and_no_more_pushes() {
        let mut a = Announcements::new(Duration::from_millis(100));
        a.pushed_to_all(at(0), &peers(&[2]));
        a.heard(at(10), NodeId(2), false);
        a.heard(at(40), NodeId(2), false);
        assert!(a.holds(at(109), NodeId(2)));
        assert!(!a.holds(at(110), NodeId(2)));
        assert_eq!(a.due(at(110)), Vec::<NodeId>::new());
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn a_peer_never_heard_stays_held_and_is_pushed_to_again() {
        let mut a = Announcements::new(Duration::from_millis(100));
        a.pushed_to_all(at(0), &peers(&[2]));
        for k in 1..10 {
            assert!(a.holds(at(50 * k), NodeId(2)));
            assert_eq!(a.due(at(50 * k)), vec![NodeId(2)]);
        }
        // A new definition replaces the whole list.
        a.pushed_to_all(at(600), &peers(&[3]));
        assert!(!a.holds(at(600), NodeId(2)) && a.holds(at(600), NodeId(3)));
    }
}
