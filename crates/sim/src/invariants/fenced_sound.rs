//! (g) `PeerFenced` is sound: when a node announces a peer fenced, that peer cannot write
//! at that real instant. Checked at the step that emits the event, against the peer's own
//! gate read at the same real time.

use quorate_gate::QuorumEvent;

use super::{Invariant, Out, StepKind};
use crate::sim::World;

const NAME: &str = "fenced-sound";

/// The `PeerFenced` checker.
#[derive(Debug, Default)]
pub struct FencedSound {
    /// Announcements checked.
    pub announced: u64,
}

impl FencedSound {
    /// A checker.
    pub fn new() -> Self {
        FencedSound::default()
    }
}

impl Invariant for FencedSound {
    fn name(&self) -> &'static str {
        NAME
    }

    fn after_step(&mut self, w: &World, node: usize, _kind: StepKind, events: &[QuorumEvent], out: &mut Out) {
        for event in events {
            let QuorumEvent::PeerFenced { peer, confirmed_by, .. } = event else { continue };
            self.announced += 1;
            let Some(host) = peer.0.checked_sub(1).and_then(|i| w.hosts.get(i as usize)) else { continue };
            if host.can_write_at(w.now) {
                let by: Vec<String> = confirmed_by.iter().map(|b| format!("n{}", b.0)).collect();
                out.violate(
                    NAME,
                    w.now,
                    format!(
                        "n{} announced n{} fenced (confirmed by {}) while n{} could write",
                        node + 1,
                        peer.0,
                        by.join(","),
                        peer.0
                    ),
                );
            }
        }
    }
}
