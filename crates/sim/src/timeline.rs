//! The timeline: every event of a run folded into a digest (for the determinism check), and
//! the last [`TIMELINE_KEEP`] kept for a person to read when an invariant fails.
//!
//! Records are small values; they are formatted only when printed, so recording a
//! thousand-node run costs a hash update per event.

use std::collections::VecDeque;
use std::fmt;

use quorate_core::Promises;
use quorate_detector::PeerState;

use crate::clock::fmt_ms;
use crate::faults::Fault;
use crate::net::DropWhy;

/// Records kept for printing.
pub const TIMELINE_KEEP: usize = 200;

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// A datagram reached `to`'s core.
    Deliver {
        /// Sender index.
        from: usize,
        /// Receiver index.
        to: usize,
        /// Payload length.
        bytes: usize,
    },
    /// A datagram was dropped.
    Drop {
        /// Sender index.
        from: usize,
        /// Receiver index.
        to: usize,
        /// Why.
        why: DropWhy,
    },
    /// A datagram was queued for a paused receiver.
    Queued {
        /// Sender index.
        from: usize,
        /// Receiver index.
        to: usize,
    },
    /// A node's timer fired (digest only; not kept for printing).
    Timer {
        /// Node index.
        node: usize,
    },
    /// A node's detector changed its view of a peer.
    Peer {
        /// The node whose view changed.
        node: usize,
        /// The peer.
        peer: usize,
        /// The new state.
        state: PeerState,
    },
    /// A node gained or lost quorum.
    Quorum {
        /// Node index.
        node: usize,
        /// Gained (true) or lost.
        gained: bool,
        /// The epoch gained or ended.
        epoch: u64,
    },
    /// A node started a life.
    Start {
        /// Node index.
        node: usize,
        /// Its incarnation.
        incarnation: u64,
    },
    /// A fault was applied.
    Fault(Fault),
    /// A write to a node's disk landed.
    Persisted {
        /// Node index.
        node: usize,
        /// What the disk now says.
        promises: Promises,
    },
    /// A node announced a peer fenced (`PeerFenced`).
    Fenced {
        /// The announcing node.
        node: usize,
        /// The peer.
        peer: usize,
    },
    /// A change of definition while running: proposed (or refused), adopted, a node
    /// removed or added, in words.
    Member {
        /// The node it concerns.
        node: usize,
        /// What happened.
        text: String,
    },
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Real time, ns.
    pub at: u64,
    /// What happened.
    pub what: What,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>11} ms  ", fmt_ms(self.at))?;
        match &self.what {
            What::Deliver { from, to, bytes } => {
                write!(f, "deliver  n{} -> n{} ({bytes} B)", from + 1, to + 1)
            }
            What::Drop { from, to, why } => {
                write!(f, "drop     n{} -> n{} ({})", from + 1, to + 1, why.name())
            }
            What::Queued { from, to } => write!(f, "queued   n{} -> n{} (receiver paused)", from + 1, to + 1),
            What::Timer { node } => write!(f, "timer    n{}", node + 1),
            What::Peer { node, peer, state } => {
                write!(f, "peer     n{} sees n{} {state:?}", node + 1, peer + 1)
            }
            What::Quorum { node, gained: true, epoch } => {
                write!(f, "QUORUM   n{} gained, epoch {epoch}", node + 1)
            }
            What::Quorum { node, gained: false, epoch } => {
                write!(f, "QUORUM   n{} lost, epoch {epoch}", node + 1)
            }
            What::Start { node, incarnation } => {
                write!(f, "start    n{} incarnation {incarnation}", node + 1)
            }
            What::Fault(fault) => write!(f, "FAULT    {fault}"),
            What::Persisted { node, promises } => write!(
                f,
                "disk     n{} records ack hold {} ms, floor {} ms",
                node + 1,
                fmt_ms(nanos(promises.ack_hold)),
                fmt_ms(nanos(promises.floor))
            ),
            What::Fenced { node, peer } => write!(f, "FENCED   n{} announces n{} fenced", node + 1, peer + 1),
            What::Member { node, text } => write!(f, "MEMBERS  n{} {text}", node + 1),
        }
    }
}

/// The digest of everything that happened and the last records.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    digest: u64,
    events: u64,
    recent: VecDeque<Record>,
}

impl Timeline {
    /// An empty timeline.
    pub fn new() -> Self {
        Timeline { digest: FNV_OFFSET, events: 0, recent: VecDeque::with_capacity(TIMELINE_KEEP) }
    }

    /// Records `what` at `at`; `payload` (the datagram's bytes, if any) goes into the digest.
    pub fn record(&mut self, at: u64, what: What, payload: &[u8]) {
        self.events += 1;
        self.mix(at);
        self.mix_what(&what);
        for chunk in payload.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        if matches!(what, What::Timer { .. }) {
            return;
        }
        if self.recent.len() >= TIMELINE_KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(Record { at, what });
    }

    /// The digest of every record so far: equal digests mean identical runs.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Records so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The last records, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &Record> {
        self.recent.iter()
    }

    /// The last records as text, one per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for r in &self.recent {
            out.push_str("  ");
            out.push_str(&r.to_string());
            out.push('\n');
        }
        out
    }

    fn mix_what(&mut self, what: &What) {
        let (tag, a, b, c) = match what {
            What::Deliver { from, to, bytes } => (1, *from as u64, *to as u64, *bytes as u64),
            What::Drop { from, to, why } => (2, *from as u64, *to as u64, *why as u64),
            What::Queued { from, to } => (3, *from as u64, *to as u64, 0),
            What::Timer { node } => (4, *node as u64, 0, 0),
            What::Peer { node, peer, state } => (5, *node as u64, *peer as u64, *state as u64),
            What::Quorum { node, gained, epoch } => (6, *node as u64, u64::from(*gained), *epoch),
            What::Start { node, incarnation } => (7, *node as u64, *incarnation, 0),
            What::Fault(fault) => {
                let text = fault.to_string();
                for b in text.bytes() {
                    self.mix(u64::from(b));
                }
                (8, 0, 0, 0)
            }
            What::Persisted { node, promises } => {
                (9, *node as u64, nanos(promises.ack_hold), nanos(promises.floor))
            }
            What::Fenced { node, peer } => (10, *node as u64, *peer as u64, 0),
            What::Member { node, text } => {
                for b in text.bytes() {
                    self.mix(u64::from(b));
                }
                (11, *node as u64, 0, 0)
            }
        };
        for v in [tag, a, b, c] {
            self.mix(v);
        }
    }

    /// FNV-1a over the 8 bytes of `v`.
    fn mix(&mut self, v: u64) {
        for byte in v.to_le_bytes() {
            self.digest = (self.digest ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_records_and_the_digest_depends_on_every_one() {
        let mut a = Timeline::new();
        let mut b = Timeline::new();
        for i in 0..(TIMELINE_KEEP as u64 + 50) {
            a.record(i, What::Deliver { from: 0, to: 1, bytes: 31 }, &[1, 2, 3]);
            b.record(i, What::Deliver { from: 0, to: 1, bytes: 31 }, &[1, 2, 3]);
        }
        assert_eq!(a.recent().count(), TIMELINE_KEEP);
        assert_eq!(a.digest(), b.digest());
        b.record(1, What::Timer { node: 0 }, &[]);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(b.recent().count(), TIMELINE_KEEP, "timer records are digest-only");
        let line =
            Record { at: 1_500_000, what: What::Quorum { node: 2, gained: false, epoch: 9 } }.to_string();
        assert_eq!(line, "      1.500 ms  QUORUM   n3 lost, epoch 9");
    }
}
