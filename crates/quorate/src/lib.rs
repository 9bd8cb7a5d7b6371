//! quorate: split-brain protection for storage engines.
//!
//! A [`Node`] heartbeats every configured peer over QUIC (mutual TLS), runs a phi accrual
//! detector on what it hears, and keeps a [`QuorumGate`] that answers "may I write?" from
//! vote leases: the node holds a peer's vote for `lease` after sending a heartbeat that peer
//! acknowledged, and is writable while its own vote plus the votes it holds form a quorum.
//!
//! ```no_run
//! # async fn run(config: quorate::Config) -> Result<(), Box<dyn std::error::Error>> {
//! let node = quorate::Node::start(config).await?;
//! let gate = node.gate();                      // cheap to clone, Send + Sync
//! if gate.can_write() { /* engine.put(k, v)? */ }
//! let permit = gate.permit()?;                 // Err(NotQuorate { why }) when fenced
//! // engine.put_with_epoch(k, v, permit.epoch())?;
//! permit.check()?;                             // still the same stretch of quorum?
//! let mut events = gate.subscribe();           // QuorumGained, QuorumLost, PeerDown, ...
//! # let _ = &mut events;
//! node.shutdown().await;                       // fences first, then leaves
//! # Ok(()) }
//! ```
//!
//! The guarantees and their assumptions are in `docs/guarantees.md`.

mod admin;
pub mod clock;
mod config;
pub mod data_dir;
pub mod events;
mod node;
pub mod peers_file;
mod status;

pub use config::{Config, ConfigError, EventsOut, MemberAddr, TlsSource, CONFIG_BYTES_MAX, DURATION_MAX};
pub use data_dir::{DataDir, DataDirError, Durable};
pub use node::{Node, StartError, POLL_DEADLINE_INTERVALS};
pub use status::{NodeStatus, PartitionReport, PeerReport, QuicReport};

pub use quorate_core::GossipConfig;
pub use quorate_detector::{DetectorConfig, Liveness, PartitionView, PeerState};
pub use quorate_gate::{
    Clock, Epoch, EventStream, GateConfig, MissingVote, NotQuorate, PeerStatus, QuorumEvent, QuorumGate,
    QuorumStatus, RecvError, TieBreaker, Why, WritePermit,
};
pub use quorate_heartbeat::{ClusterId, Instant, NodeId};

/// The QUIC transport's certificate tools and types.
pub mod transport {
    pub use quorate_heartbeat::transport::{
        generate_dev_pki, DevPki, LinkInfo, NodeCredentials, PkiError, TlsIdentity, TransportCounters,
    };
}
