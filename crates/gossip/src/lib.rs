//! Who hears whom, and who is provably fenced: gossip of reachability rows and fence
//! checks for quorate, sans-IO.
//!
//! Three machines, each driven with `now` and its inputs as arguments, each handing its
//! outputs out through `poll_*`; the node's core composes them with the detector and the
//! gate and carries data between them one way:
//!
//! ```text
//!   detector events ──► Gossiper.on_peer_state ──┐
//!   detector views  ──► Gossiper.handle_timeout  ├─► rows (RowTable) ──► PartitionView
//!   Gossip messages ──► Gossiper.on_gossip ──────┘        │
//!                                                          ▼ GossipEvent::Accused
//!   FenceQuery/Answer/Release ──► Fencer ◄── consider(peer, accusers, peer's definition)
//!                                   │
//!                                   ├─► withholds_ack(peer): the core asks before every ack
//!                                   └─► Fenced { peer }: the core announces PeerFenced
//! ```
//!
//! * [`RowTable`] ([`rows`]) holds every voter's row of views and merges deltas;
//!   [`PartitionView`] and [`Liveness`] ([`view`]) are what fresh rows tell.
//! * [`Gossiper`] runs rounds and exchanges rows; it decides nothing about writes.
//! * [`Fencer`] runs fence checks and keeps the ack holds promised in them.
//!
//! Nothing here reads a clock, draws randomness of its own or does I/O.

mod config;
pub mod fence;
pub mod gossiper;
pub mod rows;
pub mod view;

pub use config::{GossipConfig, GossipConfigError, GOSSIP_BYTES_MAX, GOSSIP_BYTES_MIN};
pub use fence::{FenceCounters, Fenced, Fencer};
pub use gossiper::{GossipCounters, GossipEvent, GossipOutput, Gossiper};
pub use rows::{MergeCounters, MergeOutcome, Row, RowTable};
pub use view::{Liveness, PartitionView};

use quorate_proto::{encode_stream, ClusterId, Message, NodeId};

/// Encodes `message` for a stream; a failure (a message too large for one) is counted in
/// `failures` and the message skipped.
pub(crate) fn encode_counted(cluster: ClusterId, message: &Message, failures: &mut u64) -> Option<Vec<u8>> {
    let encoded = encode_stream(cluster, message);
    if encoded.is_err() {
        *failures += 1;
    }
    encoded.ok()
}

/// A message for the driver to send as a request on a reliable stream (gossip and fence
/// messages always travel that way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The peer to send it to.
    pub to: NodeId,
    /// The encoded message.
    pub payload: Vec<u8>,
}
