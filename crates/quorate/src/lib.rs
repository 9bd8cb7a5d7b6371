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
mod certificates;
mod change_api;
pub mod clock;
mod config;
mod config_file;
pub mod data_dir;
mod driver;
pub mod events;
mod integrity;
mod metrics;
mod node;
pub mod peers_file;
mod reconfigure;
mod refused;
pub mod roster_file;
mod signal;
mod start;
pub mod state_file;
mod status;
#[cfg(feature = "testing")]
pub mod testing;
mod timing;

pub use change_api::{
    parse_tie_breaker, ChangeErrorReport, ConfigRequest, DefinitionReport, MemberReport, MembersRequest,
    CHANGE_BYTES_MAX,
};
pub use config::{default_listen, Config, ConfigError, EventsOut, MemberAddr, TlsSource, DURATION_MAX};
pub use config_file::CONFIG_BYTES_MAX;
pub use data_dir::{DataDir, DataDirError};
pub use metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
pub use node::{Node, StartError, POLL_DEADLINE_INTERVALS};
pub use quorate_transport::MemberAddress;
pub use reconfigure::{ChangeRefused, LEAVING_GRACE, LEAVING_MAX};
pub use refused::Removal;
pub use signal::shutdown_signal;
pub use state_file::Durable;
pub use status::{CertificateReport, NodeStatus, PartitionReport, PeerReport, QuicReport, TimingReport};
pub use timing::TIMING_PRESETS;

pub use quorate_core::GossipConfig;
pub use quorate_core::ProposeError;
pub use quorate_detector::{DetectorConfig, PeerState};
pub use quorate_gate::{
    fence_promise, Clock, Epoch, EventStream, GateConfig, MissingVote, NotQuorate, PeerStatus, QuorumEvent,
    QuorumGate, QuorumStatus, RecvError, TieBreaker, Why, WritePermit,
};
pub use quorate_gossip::{Liveness, PartitionView};
pub use quorate_proto::{Change, ClusterId, Instant, NodeId, Roster};

/// The QUIC transport's certificate tools and types.
pub mod transport {
    pub use quorate_transport::{
        generate_dev_pki, issue_node_certificate, node_dns_name, parse_node_dns_name, read_certificates,
        validate_cluster_name, AddressError, CertificateInfo, DevPki, LinkInfo, MemberAddress,
        NodeCredentials, PkiError, Resolution, ResolveFailure, TlsIdentity, TransportCounters,
        TransportError, ISSUE_DAYS_MAX, PEM_FILE_BYTES_MAX,
    };
}
