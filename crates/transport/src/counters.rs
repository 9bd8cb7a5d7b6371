//! Counters: every message the transport drops and every connection it refuses is counted
//! here, by reason, instead of surfacing as an event or an error the caller must handle.
//!
//! The live counters are relaxed atomics (they are statistics, read for operations and tests,
//! never used to make protocol decisions); [`TransportCounters`] is a plain snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a transport's counters since it started. All counts are monotone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportCounters {
    /// Datagrams handed to QUIC for sending.
    pub datagrams_sent: u64,
    /// Datagrams delivered to the inbound channel.
    pub datagrams_received: u64,
    /// Datagrams dropped, by reason.
    pub datagrams_dropped: DatagramDrops,
    /// Requests sent that got a reply.
    pub requests_sent: u64,
    /// Requests delivered to the inbound channel.
    pub requests_received: u64,
    /// Requests dropped (either side), by reason.
    pub requests_dropped: RequestDrops,
    /// Payload bytes sent: datagrams, requests and replies (not QUIC or TLS overhead).
    pub bytes_sent: u64,
    /// Payload bytes received and delivered: datagrams, requests and replies.
    pub bytes_received: u64,
    /// Connections this node refused, by reason.
    pub refused: Refusals,
    /// Outbound connection attempts that failed for reasons other than this node refusing
    /// the peer's certificate (peer unreachable, handshake timeout, peer refused us).
    pub dial_failures: u64,
    /// Connections this node dialed whose handshake the peer never confirmed in time
    /// (the peer did not complete it): closed, never used (see `peer.rs`).
    pub dials_unconfirmed: u64,
    /// Connections that passed every check and carry traffic.
    pub connections_established: u64,
    /// Connections established to a peer after an earlier connection to it was lost.
    pub reconnects: u64,
    /// Connections closed because another one to the same peer won (see `peer.rs`).
    pub duplicates_closed: u64,
    /// Dial attempts that found no address for a named peer (the name did not resolve, or
    /// its lookup timed out); each is retried with the reconnect backoff.
    pub resolve_failures: u64,
    /// Connections closed because the peer's name moved to another address (see `dial.rs`).
    pub peers_moved: u64,
    /// Connections this node dialed or held that the peer closed with `CLOSE_REMOVED`: the
    /// peer does not count this node a member (see `Transport::refused_as_non_member`).
    pub closed_as_non_member: u64,
    /// Inbound handshakes let through from an address that is no member's known address,
    /// because some member is named and may be dialing from an address not looked up yet;
    /// the certificate then decides.
    pub handshakes_from_unlisted_address: u64,
}

/// Why datagrams were dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatagramDrops {
    /// Addressed to a node that is not a configured member (or to this node).
    pub unknown_peer: u64,
    /// No live connection to the peer.
    pub no_connection: u64,
    /// Larger than the connection allows (`max_datagram_size`), or datagrams unsupported.
    pub too_large: u64,
    /// QUIC's datagram send buffer had no room: the link is congested or dead, and a
    /// heartbeat queued behind a backlog would be stale when it arrived.
    pub send_buffer_full: u64,
    /// Outbound traffic to the peer is blocked by the link filter.
    pub blocked_outbound: u64,
    /// Inbound traffic from the peer is blocked by the link filter.
    pub blocked_inbound: u64,
    /// The inbound channel was full: the consumer is behind.
    pub inbound_channel_full: u64,
}

/// Why requests (or their replies) were dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestDrops {
    /// A request or reply over `MESSAGE_BYTES_MAX`, refused before or on reading.
    pub too_large: u64,
    /// Outbound traffic to the peer is blocked by the link filter (request or reply).
    pub blocked_outbound: u64,
    /// Inbound traffic from the peer is blocked by the link filter (request or reply).
    pub blocked_inbound: u64,
    /// The inbound channel was full.
    pub inbound_channel_full: u64,
    /// The consumer dropped the reply sender or did not answer within the serve timeout.
    pub unanswered: u64,
}

/// Why connections were refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusals {
    /// An inbound client presented no certificate.
    pub no_client_cert: u64,
    /// A certificate did not chain to the cluster CA, had expired, or named the wrong node
    /// (inbound: the client's; outbound: the server we dialed).
    pub bad_chain: u64,
    /// A chained client certificate named no configured member, several, or this node.
    pub unknown_node: u64,
    /// An inbound connection came from an address that is not the configured IP address of
    /// the member its certificate names (or of any member, checked before the handshake when
    /// no member is named).
    pub address_mismatch: u64,
    /// An inbound handshake failed otherwise: timeout, peer abort, protocol error, or too
    /// many handshakes in flight.
    pub handshake_failed: u64,
    /// A chained client certificate named a former member (removed from the member list):
    /// closed with `CLOSE_REMOVED` so that it learns it is no longer a member.
    pub former_member: u64,
}

/// The live, shared counters behind [`TransportCounters`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) datagrams_sent: AtomicU64,
    pub(crate) datagrams_received: AtomicU64,
    pub(crate) dg_unknown_peer: AtomicU64,
    pub(crate) dg_no_connection: AtomicU64,
    pub(crate) dg_too_large: AtomicU64,
    pub(crate) dg_send_buffer_full: AtomicU64,
    pub(crate) dg_blocked_outbound: AtomicU64,
    pub(crate) dg_blocked_inbound: AtomicU64,
    pub(crate) dg_inbound_channel_full: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    pub(crate) requests_received: AtomicU64,
    pub(crate) rq_too_large: AtomicU64,
    pub(crate) rq_blocked_outbound: AtomicU64,
    pub(crate) rq_blocked_inbound: AtomicU64,
    pub(crate) rq_inbound_channel_full: AtomicU64,
    pub(crate) rq_unanswered: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) refused_no_client_cert: AtomicU64,
    pub(crate) refused_bad_chain: AtomicU64,
    pub(crate) refused_unknown_node: AtomicU64,
    pub(crate) refused_address_mismatch: AtomicU64,
    pub(crate) refused_handshake_failed: AtomicU64,
    pub(crate) refused_former_member: AtomicU64,
    pub(crate) closed_as_non_member: AtomicU64,
    pub(crate) dial_failures: AtomicU64,
    pub(crate) dials_unconfirmed: AtomicU64,
    pub(crate) connections_established: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) duplicates_closed: AtomicU64,
    pub(crate) resolve_failures: AtomicU64,
    pub(crate) peers_moved: AtomicU64,
    pub(crate) handshakes_from_unlisted_address: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter (byte counts).
pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

impl Counters {
    /// A consistent-enough copy: each field is read once, relaxed; fields may be from
    /// slightly different instants, which statistics tolerate.
    pub(crate) fn snapshot(&self) -> TransportCounters {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportCounters {
            datagrams_sent: r(&self.datagrams_sent),
            datagrams_received: r(&self.datagrams_received),
            datagrams_dropped: DatagramDrops {
                unknown_peer: r(&self.dg_unknown_peer),
                no_connection: r(&self.dg_no_connection),
                too_large: r(&self.dg_too_large),
                send_buffer_full: r(&self.dg_send_buffer_full),
                blocked_outbound: r(&self.dg_blocked_outbound),
                blocked_inbound: r(&self.dg_blocked_inbound),
                inbound_channel_full: r(&self.dg_inbound_channel_full),
            },
            requests_sent: r(&self.requests_sent),
            requests_received: r(&self.requests_received),
            requests_dropped: RequestDrops {
                too_large: r(&self.rq_too_large),
                blocked_outbound: r(&self.rq_blocked_outbound),
                blocked_inbound: r(&self.rq_blocked_inbound),
                inbound_channel_full: r(&self.rq_inbound_channel_full),
                unanswered: r(&self.rq_unanswered),
            },
            bytes_sent: r(&self.bytes_sent),
            bytes_received: r(&self.bytes_received),
            refused: Refusals {
                no_client_cert: r(&self.refused_no_client_cert),
                bad_chain: r(&self.refused_bad_chain),
                unknown_node: r(&self.refused_unknown_node),
                address_mismatch: r(&self.refused_address_mismatch),
                handshake_failed: r(&self.refused_handshake_failed),
                former_member: r(&self.refused_former_member),
            },
            dial_failures: r(&self.dial_failures),
            dials_unconfirmed: r(&self.dials_unconfirmed),
            connections_established: r(&self.connections_established),
            reconnects: r(&self.reconnects),
            duplicates_closed: r(&self.duplicates_closed),
            resolve_failures: r(&self.resolve_failures),
            peers_moved: r(&self.peers_moved),
            closed_as_non_member: r(&self.closed_as_non_member),
            handshakes_from_unlisted_address: r(&self.handshakes_from_unlisted_address),
        }
    }
}

impl DatagramDrops {
    /// All datagrams dropped, whatever the reason.
    pub fn total(&self) -> u64 {
        [
            self.unknown_peer,
            self.no_connection,
            self.too_large,
            self.send_buffer_full,
            self.blocked_outbound,
            self.blocked_inbound,
            self.inbound_channel_full,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }
}

impl Refusals {
    /// All refused connections, whatever the reason.
    pub fn total(&self) -> u64 {
        [
            self.no_client_cert,
            self.bad_chain,
            self.unknown_node,
            self.address_mismatch,
            self.handshake_failed,
            self.former_member,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }
}
