//! The QUIC transport: a pipe that moves opaque byte messages between authenticated nodes.
//!
//! It knows nothing about heartbeats, detectors or quorum. Flow:
//!
//! ```text
//!   send_datagram(to, bytes) ──► QUIC datagram ──► peer ──► Inbound::Datagram { from, bytes }
//!   request(to, bytes, t)    ──► QUIC stream   ──► peer ──► Inbound::Request { from, bytes, reply }
//!        ▲                                                        │
//!        └──────────────────── reply bytes ◄──────────────────────┘
//! ```
//!
//! * One UDP endpoint per node both listens and dials, so a node's connections come from its
//!   configured address; one connection per peer pair (rule below); re-dialing with
//!   jittered, bounded exponential backoff ([`RECONNECT_BACKOFF_MIN`] to
//!   [`RECONNECT_BACKOFF_MAX`]).
//! * Mutual TLS against the cluster CA; a certificate binds a node id through its DNS name
//!   (scheme below). An inbound connection is accepted only if its certificate chains to the
//!   CA, names a configured member other than this node, and, for a member configured at an
//!   IP address, comes from that address. Refusals are counted, never delivered.
//! * Members by name: a member address is `IP:PORT` or `HOST:PORT` ([`MemberAddress`]). A
//!   name is looked up before every dial attempt, so a peer that comes back at a new IP is
//!   found without restarting anyone; one that does not resolve is not fatal
//!   ([`Transport::resolution`] says why, the dial loop keeps trying). The certificate, not
//!   the address, says who a named member is.
//! * Nothing waits on a backlog: a datagram that cannot go out now, or an inbound message the
//!   consumer has no room for, is dropped and counted ([`TransportCounters`]).
//! * A link filter ([`Transport::set_blocked`]) drops traffic per peer and direction, for
//!   tests and the in-process demo.
//!
//! The sans-IO crates (`quorate-proto` and everything built on it) never depend on this one.
//!
//! # Certificate names
//!
//! A node's certificate carries the DNS subject alternative name
//! `node-<id>.<cluster name>.quorate` ([`node_dns_name`]), e.g. `node-3.prod-eu.quorate`,
//! and both TLS usages (server and client), since every node listens and dials. A client
//! checks the server's certificate against the name of the node it dialed; a server tests
//! the client's certificate against every configured member's name and accepts exactly one
//! match other than itself. The cluster name is part of the name, so a certificate the same
//! CA issued for another cluster does not authenticate here. [`generate_dev_pki`] makes a
//! CA and such certificates; any production CA can issue them too ([`TlsIdentity::from_pem`],
//! [`TlsIdentity::from_pem_files`]).
//!
//! # One connection per pair
//!
//! Both nodes of a pair dial whenever they hold no live connection to the other, so either
//! side's restart is repaired by whichever notices first. When two live connections exist
//! at once, both ends apply the same rule and keep the same one:
//!
//! 1. between connections dialed by different nodes, the one dialed by the lower id wins;
//! 2. between connections dialed by the same node, the newer wins (a node dials only when it
//!    holds no live connection, so for the dialer the older one is already dead).
//!
//! A connection takes part only once both ends hold it: the dialer installs it when the
//! peer has confirmed the handshake (QUIC's HANDSHAKE_DONE, which the peer sends once it
//! completed the handshake itself), not when its own side completed. Otherwise, when the
//! dialer's last handshake packet is lost, the dialer would hold a connection the peer
//! never installed, and if the dialer has the lower id, rule 1 would close every connection
//! the peer dials as a duplicate until that half-open one died: seconds under loss, with the
//! pair calling each other down. Unconfirmed within the handshake timeout, it is closed
//! with [`CLOSE_UNCONFIRMED`] and never used.
//!
//! The loser is closed with [`CLOSE_DUPLICATE`]. The case the rule cannot see, the higher
//! node restarting while the lower still holds its own now-dead connection, QUIC ends by
//! itself: the endpoint's stateless-reset key is derived from the node's private key, so the
//! restarted node answers the old connection's next packet (a heartbeat, or a keep-alive
//! within [`KEEP_ALIVE_DEFAULT`]) with a reset the peer can verify, and the peer re-dials at
//! once instead of waiting out the idle timeout.
//!
//! # Timing
//!
//! See [`TransportTiming`]: QUIC's idle timeout (default 10 s) is far longer than the
//! detector's down floor, so a silent link is noticed by the detector first and never by a
//! QUIC error; keep-alives (1 s) keep NAT state warm and bound how long a dead connection
//! lingers after a peer restarts.

mod address;
mod certs;
mod config;
mod counters;
mod dial;
mod endpoint;
mod members;
#[cfg(test)]
mod moved_tests;
mod names;
mod peer;
mod pki;
mod quic;
mod send;
mod serve;
mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

pub use address::{
    AddressError, MemberAddress, Resolution, ResolveFailure, HOST_NAME_BYTES_MAX, RESOLVE_TIMEOUT,
};
pub use certs::{
    generate_dev_pki, generate_dev_pki_with_expired, validate_cluster_name, DevPki, NodeCredentials,
    CLUSTER_NAME_BYTES_MAX, DEV_PKI_NODES_MAX,
};
pub use config::{
    TransportConfig, TransportConfigError, TransportLimits, TransportTiming,
    DATAGRAM_RECEIVE_BUFFER_BYTES_DEFAULT, DATAGRAM_SEND_BUFFER_BYTES_DEFAULT, HANDSHAKES_IN_FLIGHT_DEFAULT,
    HANDSHAKE_TIMEOUT_DEFAULT, IDLE_TIMEOUT_DEFAULT, INBOUND_CHANNEL_CAPACITY_DEFAULT, INITIAL_RTT_DEFAULT,
    KEEP_ALIVE_DEFAULT, MEMBERS_MAX, MESSAGE_BYTES_MAX, RECONNECT_BACKOFF_MAX, RECONNECT_BACKOFF_MIN,
    SERVE_TIMEOUT_DEFAULT, STREAMS_PER_PEER_DEFAULT,
};
pub use counters::{DatagramDrops, Refusals, RequestDrops, TransportCounters};
pub use endpoint::{MemberChanges, Transport, SHUTDOWN_DRAIN_MAX, SHUTDOWN_WAIT_MAX};
pub use members::FORMER_MEMBERS_MAX;
pub use names::node_dns_name;
pub use pki::{
    issue_node_certificate, parse_node_dns_name, read_certificates, CertificateInfo, ISSUE_BACKDATE,
    ISSUE_DAYS_MAX, READ_CERTIFICATES_MAX,
};
pub use tls::{PemField, PkiError, TlsIdentity, ALPN, PEM_FILE_BYTES_MAX};

use quorate_proto::NodeId;

/// QUIC application close code: the node is shutting down.
pub const CLOSE_SHUTDOWN: u32 = 0;
/// QUIC application close code: another connection between the same pair won.
pub const CLOSE_DUPLICATE: u32 = 1;
/// QUIC application close code: the connection failed an identity or address check.
pub const CLOSE_REFUSED: u32 = 2;
/// QUIC application close code: the dialing node gave up on a connection whose handshake
/// the peer did not confirm in time (see "One connection per pair").
pub const CLOSE_UNCONFIRMED: u32 = 3;
/// QUIC application close code: the peer's name now resolves to another address than the
/// connection's, or [`Transport::set_members`] gave it another address, so the connection
/// goes where the peer no longer is (see "Members by name").
pub const CLOSE_MOVED: u32 = 4;
/// QUIC application close code: the peer is no longer a member (see
/// [`Transport::set_members`]); also the answer to a former member that dials in. A node
/// that receives it records the peer in [`Transport::refused_as_non_member`].
pub const CLOSE_REMOVED: u32 = 5;

/// Stream reset code: the request or reply exceeds [`MESSAGE_BYTES_MAX`].
pub(crate) const RESET_TOO_LARGE: u32 = 1;
/// Stream reset code: the receiver's inbound channel was full.
pub(crate) const RESET_OVERLOADED: u32 = 2;
/// Stream reset code: the consumer dropped the reply sender or answered too late.
pub(crate) const RESET_UNANSWERED: u32 = 3;
/// Stream reset code: the stream was abandoned (cancelled, filtered, shutting down).
pub(crate) const RESET_ABANDONED: u32 = 4;

/// A message from an authenticated peer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Inbound {
    /// An unreliable datagram, e.g. a heartbeat.
    Datagram {
        /// The sender, as named by its certificate.
        from: NodeId,
        /// The payload, exactly as sent.
        bytes: Bytes,
    },
    /// A request expecting one reply of at most [`MESSAGE_BYTES_MAX`] bytes, sent through
    /// `reply` within the serve timeout (default 5 s). Dropping `reply` refuses the request.
    Request {
        /// The sender, as named by its certificate.
        from: NodeId,
        /// The request payload.
        bytes: Bytes,
        /// Where the reply goes.
        reply: oneshot::Sender<Bytes>,
    },
}

/// A live connection, as [`Transport::link`] describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkInfo {
    /// The peer.
    pub peer: NodeId,
    /// Its address: the configured one for a member at an IP address (the transport
    /// enforces it), wherever the connection goes for a named member.
    pub remote: SocketAddr,
    /// Which end dialed this connection.
    pub dialed_by: NodeId,
    /// QUIC's current round-trip estimate.
    pub rtt: Duration,
    /// UDP datagrams this node sent on the connection (QUIC packets, acks and keep-alives
    /// included).
    pub udp_tx_datagrams: u64,
    /// UDP payload bytes this node sent on the connection.
    pub udp_tx_bytes: u64,
    /// QUIC frames this node sent on the connection, by kind: where its packets go.
    pub frames_tx: FramesSent,
    /// Packets QUIC declared lost on the connection.
    pub lost_packets: u64,
}

/// QUIC frames sent on one connection, by kind (quinn's own counts). A packet may carry
/// several frames: an ACK rides on a heartbeat's packet when one leaves in time, and a packet
/// that carries nothing but ACK frames is an ACK-only packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FramesSent {
    /// ACK frames.
    pub ack: u64,
    /// DATAGRAM frames (heartbeats).
    pub datagram: u64,
    /// STREAM frames (requests and replies: polls, gossip, fence checks).
    pub stream: u64,
    /// PING frames: keep-alives, loss probes and path-MTU probes.
    pub ping: u64,
    /// Stream and connection flow-control credit (MAX_STREAMS, MAX_STREAM_DATA, MAX_DATA).
    pub flow_control: u64,
    /// ACK_FREQUENCY frames (requests that the peer acknowledge less often).
    pub ack_frequency: u64,
}

/// Why [`Transport::send_datagram`] dropped a datagram. Every drop is also counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatagramDropped {
    /// The destination is not a configured peer.
    #[error("{peer} is not a configured peer of this node; check the member list")]
    UnknownPeer {
        /// The destination.
        peer: NodeId,
    },
    /// No live connection; the transport keeps dialing it.
    #[error("no live connection to {peer}; it is being dialed, the datagram was dropped")]
    NoConnection {
        /// The destination.
        peer: NodeId,
    },
    /// Larger than the connection carries.
    #[error("a {len}-byte datagram exceeds the {max} bytes the connection to {peer} carries now")]
    TooLarge {
        /// The destination.
        peer: NodeId,
        /// The datagram's length.
        len: usize,
        /// The connection's current maximum (0 if datagrams are unsupported).
        max: usize,
    },
    /// QUIC's datagram send buffer is full: the link is congested or dead.
    #[error("the datagram send buffer for {peer} is full (congested or dead link); dropped")]
    SendBufferFull {
        /// The destination.
        peer: NodeId,
    },
}

/// Errors from starting the transport and from requests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The configuration cannot work.
    #[error("invalid transport configuration: {0}")]
    Config(#[from] TransportConfigError),
    /// Certificates or keys are unusable.
    #[error("TLS identity: {0}")]
    Pki(#[from] PkiError),
    /// The UDP socket could not be bound or set up.
    #[error("cannot use UDP address {addr}: {source}; is another process bound to it?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The peer is not a configured member (or is this node).
    #[error("{peer} is not a configured peer of this node; check the member list")]
    UnknownPeer {
        /// The peer named.
        peer: NodeId,
    },
    /// No live connection to the peer right now; the transport keeps dialing it.
    #[error("no live connection to {peer}; retry after it reconnects")]
    NotConnected {
        /// The peer.
        peer: NodeId,
    },
    /// The request is larger than [`MESSAGE_BYTES_MAX`]; nothing was sent.
    #[error("a {len}-byte request exceeds the {max}-byte limit; nothing was sent, split it")]
    MessageTooLarge {
        /// The request's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer's reply exceeded [`MESSAGE_BYTES_MAX`] and was discarded.
    #[error("{peer} replied with more than {max} bytes; the reply was discarded")]
    ReplyTooLarge {
        /// The peer.
        peer: NodeId,
        /// The limit.
        max: usize,
    },
    /// No reply within the timeout (lost, filtered, or the peer is slow).
    #[error("no reply from {peer} within {after:?}")]
    Timeout {
        /// The peer.
        peer: NodeId,
        /// The timeout that passed.
        after: Duration,
    },
    /// The peer refused the request.
    #[error("{peer} refused the request: {reason}")]
    Rejected {
        /// The peer.
        peer: NodeId,
        /// Why, as far as the reset code tells.
        reason: &'static str,
    },
    /// The connection failed during the request.
    #[error("the connection to {peer} failed during the request: {reason}")]
    ConnectionLost {
        /// The peer.
        peer: NodeId,
        /// quinn's description.
        reason: String,
    },
}
