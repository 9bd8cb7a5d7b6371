//! The quorum gate: vote leases, quorum math, fencing epochs and the [`QuorumGate`] handle.
//!
//! A node may write while its own vote plus the votes it holds on lease form a quorum.
//! It holds peer B's vote until `a_s + lease`, where `a_s` is when it sent the heartbeat B
//! acknowledged; B never declares it down sooner than `down_after_min` after last hearing
//! from it, and [`GateConfig::check`] enforces `lease < down_after_min (1 - rho) / (1 + rho)`.
//! So whenever B considers this node down, this node no longer counts B's vote, and once a
//! quorum considers it down it cannot write.
//!
//! * [`Gate`] is the sans-IO state machine the node's core drives with acks, peer states
//!   and time. It publishes the lease deadline into atomics shared with every handle.
//! * [`QuorumGate`] is what a storage engine holds: `can_write()`, `permit()`, `status()`,
//!   `subscribe()`, `watch()`. Its checks read the clock, so they stay right while the core
//!   is stalled.
//! * [`quorum`] holds the vote arithmetic (majority, tie-breaker, observers).

mod clock;
mod config;
mod events;
mod gate;
mod handle;
mod status;

pub use clock::{Clock, ManualClock};
pub use config::{fence_promise, lease_bound, GateConfig, GateConfigError};
pub use events::{EventStream, QuorumEvent, RecvError};
pub use gate::{Gate, GateEvent, EVENT_QUEUE_MAX};
pub use handle::{Publisher, QuorumGate, WritePermit};
pub use quorate_proto::quorum;
pub use quorate_proto::quorum::{DefinitionParts, MembershipError, TieBreaker, VoteTable};
pub use status::{Epoch, ForeignDefinition, MissingVote, NotQuorate, PeerStatus, QuorumStatus, Why};
