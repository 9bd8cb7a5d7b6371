//! The sans-IO quorate node.
//!
//! [`Node`] composes heartbeat sequencing (`quorate-proto`), the phi accrual detector
//! (`quorate-detector`) and the quorum gate (`quorate-gate`) behind one state machine:
//!
//! * in: [`Node::handle_datagram`]`(now, from, bytes)`, [`Node::handle_timeout`]`(now)`;
//! * out: [`Node::poll_transmit`], [`Node::poll_event`], [`Node::poll_status`],
//!   [`Node::poll_timeout`]; the driver hands events and status to [`Node::publisher`];
//! * and the [`quorate_gate::QuorumGate`] handles, which read the gate's atomics directly.
//!
//! It reads no clock and touches no socket: time is a parameter and randomness comes from
//! a seed, so the tokio runtime and the deterministic simulator drive the very same code.

mod announce;
mod config;
mod counters;
mod definitions;
mod node;
mod outputs;
mod promises;
mod reconfigure;
mod status;
mod terms;
mod timing;

pub use config::{Config, CoreConfigError, Member, ValidConfig};
pub use counters::{Counters, DropCounters};
pub use node::{Node, SENT_LOG_MAX};
pub use outputs::{Delivery, Transmit, TRANSMIT_QUEUE_MAX};
pub use promises::{required_floor, Memory, PeerDefinitions, Promises, FLOOR_MAX};
pub use quorate_gossip::{
    FenceCounters, GossipConfig, GossipConfigError, GossipCounters, GOSSIP_BYTES_MAX, GOSSIP_BYTES_MIN,
};
pub use reconfigure::{AdoptError, Adopted, ProposeError};
pub use timing::RunningTiming;
