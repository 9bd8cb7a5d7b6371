//! Transport configuration: who we are, who the members are, timing and limits.
//!
//! # Why these timings
//!
//! The partition detector, not QUIC, decides that a peer is unreachable: it sees heartbeats
//! stop after its own `down_after_min` (about a second by default). QUIC's idle timeout must
//! therefore be much longer than that (default 10 s), so a silent link is first noticed by the
//! detector, and a link that heals within the idle timeout carries traffic again at once, on
//! the same connection, without a new handshake. Keep-alives (default every 1 s) keep NAT and
//! conntrack state warm on a link with no heartbeats, and make a dead connection fail within
//! one keep-alive after the peer restarts (the restarted peer answers with a stateless reset,
//! see `endpoint.rs`). At least two keep-alives fit in one idle timeout, so a single lost
//! packet never closes a connection.

use std::net::SocketAddr;
use std::time::Duration;

use crate::address::MemberAddress;
use crate::tls::TlsIdentity;
use quorate_proto::valid::{Rules, Valid};
use quorate_proto::NodeId;

/// Default interval between QUIC keep-alive packets on an otherwise silent connection.
pub const KEEP_ALIVE_DEFAULT: Duration = Duration::from_secs(1);
/// Default QUIC idle timeout: silence for this long closes a connection.
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Default limit on one TLS handshake, inbound or outbound.
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Shortest wait before re-dialing a peer after a failed attempt.
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest wait before re-dialing a peer: a healed peer is reconnected within this (plus
/// one handshake) even after a long outage.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Default limit on how long the receiving side waits for a request's bytes and then for the
/// consumer's reply before giving up on the stream.
pub const SERVE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Default [`TransportTiming::initial_rtt`].
pub const INITIAL_RTT_DEFAULT: Duration = Duration::from_millis(50);
/// Largest request or reply, in bytes. Heartbeats travel as datagrams; requests carry direct
/// polls and gossip rows, which fit well within this.
pub const MESSAGE_BYTES_MAX: usize = quorate_proto::wire::STREAM_BYTES_MAX;
/// Most configured members (including this node).
pub const MEMBERS_MAX: usize = 1024;
/// Default capacity of the inbound channel, in messages. When the consumer falls this far
/// behind, new messages are dropped and counted.
pub const INBOUND_CHANNEL_CAPACITY_DEFAULT: usize = 1024;
/// Default bytes of datagrams QUIC may buffer per connection for sending: about a dozen
/// full-size heartbeats. More would only queue stale heartbeats behind a congested link.
pub const DATAGRAM_SEND_BUFFER_BYTES_DEFAULT: usize = 16 * 1024;
/// Default bytes of received datagrams QUIC buffers per connection until the transport reads
/// them; beyond it QUIC drops the oldest.
pub const DATAGRAM_RECEIVE_BUFFER_BYTES_DEFAULT: usize = 64 * 1024;
/// Default concurrent request streams per connection, per direction. QUIC renews the
/// peer's stream credit each time an eighth of it is used; at 8 that took a packet of its
/// own every second request (gossip opens a few streams a second per peer), at 32 every
/// fifth. What a peer can make this node buffer is bounded by the connection's receive
/// window (eight messages of the largest size), not by this.
pub const STREAMS_PER_PEER_DEFAULT: u32 = 32;
/// Default limit on inbound handshakes in progress at once.
pub const HANDSHAKES_IN_FLIGHT_DEFAULT: usize = 64;

/// Everything [`Transport::start`](super::Transport::start) needs.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// This node.
    pub me: NodeId,
    /// The cluster name, part of every certificate name (see [`node_dns_name`](super::node_dns_name)).
    pub cluster_name: String,
    /// The UDP address this node listens on and dials from. When this node's member address
    /// is an IP address, peers accept its connections only from that address, so it must be
    /// what peers see as the source of its packets.
    pub listen: SocketAddr,
    /// Every member's id and address (an IP address, or a name resolved before every dial:
    /// see `address.rs`). This node's own entry may be present (it is skipped).
    pub members: Vec<(NodeId, MemberAddress)>,
    /// The CA this cluster trusts, and this node's certificate and key.
    pub tls: TlsIdentity,
    /// Timeouts, keep-alive and backoff.
    pub timing: TransportTiming,
    /// Buffer and concurrency limits.
    pub limits: TransportLimits,
    /// Members this node accepts connections from but never dials, because it has nothing to
    /// send them (an observer has nothing to send another observer). A connection to one of
    /// them exists only while that member wants one and dials; without it, an idle
    /// connection would carry nothing but keep-alives. Default: none.
    pub passive: Vec<NodeId>,
}

impl TransportConfig {
    /// A configuration with default timing and limits. Member addresses are anything that
    /// converts into a [`MemberAddress`] (a `SocketAddr`, or a parsed address).
    pub fn new<A: Into<MemberAddress>>(
        me: NodeId,
        cluster_name: impl Into<String>,
        listen: SocketAddr,
        members: impl IntoIterator<Item = (NodeId, A)>,
        tls: TlsIdentity,
    ) -> Self {
        TransportConfig {
            me,
            cluster_name: cluster_name.into(),
            listen,
            members: members.into_iter().map(|(n, a)| (n, a.into())).collect(),
            tls,
            timing: TransportTiming::default(),
            limits: TransportLimits::default(),
            passive: Vec::new(),
        }
    }

    /// This configuration, if it passes the rules across its fields.
    /// [`Transport::start`](super::Transport::start) checks it; check it earlier to report
    /// configuration errors before binding anything.
    pub fn check(self) -> Result<Valid<TransportConfig>, TransportConfigError> {
        Valid::check(self, &())
    }
}

impl Rules for TransportConfig {
    type Context = ();
    type Error = TransportConfigError;

    fn check_rules(&self, (): &()) -> Result<(), TransportConfigError> {
        check_members(self.me, &self.members)?;
        self.timing.rules()?;
        self.limits.rules()
    }
}

/// The rules a member list obeys, at start and at every [`crate::Transport::set_members`].
pub(crate) fn check_members(
    me: NodeId,
    members: &[(NodeId, MemberAddress)],
) -> Result<(), TransportConfigError> {
    if members.len() > MEMBERS_MAX {
        return Err(TransportConfigError::TooManyMembers { count: members.len(), max: MEMBERS_MAX });
    }
    for (i, (node, addr)) in members.iter().enumerate() {
        if let Some((_, first)) = members[..i].iter().find(|(n, _)| n == node) {
            return Err(TransportConfigError::DuplicateMember {
                node: *node,
                first: first.clone(),
                second: addr.clone(),
            });
        }
        if *node == me {
            continue;
        }
        let undialable = match addr {
            MemberAddress::Ip(ip) => ip.ip().is_unspecified(),
            MemberAddress::Name { host, .. } => host.is_empty(),
        };
        if undialable || addr.port() == 0 {
            return Err(TransportConfigError::UndialableAddress { node: *node, addr: addr.clone() });
        }
        let addr = addr.canonical();
        let other = members[..i].iter().find(|(n, a)| *n != me && a.canonical() == addr);
        if let Some((other, _)) = other {
            return Err(TransportConfigError::SharedAddress { addr, first: *other, second: *node });
        }
    }
    Ok(())
}

/// Timeouts, keep-alive and reconnect backoff.
///
/// Why the defaults: the partition detector, not QUIC, decides that a peer is unreachable;
/// it sees heartbeats stop after its own `down_after_min` (about a second by default). The
/// QUIC idle timeout is therefore much longer (10 s), so a silent link is noticed by the
/// detector first, and a link that heals within the idle timeout carries traffic again at
/// once on the same connection, without a new handshake. Keep-alives (1 s) keep NAT and
/// conntrack state warm on a link without heartbeats and make a dead connection fail within
/// one interval after the peer restarts (it answers with a stateless reset). At least two
/// keep-alives fit in one idle timeout, so one lost packet never closes a connection.
/// Raise `idle_timeout` together with the detector's floor, never below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportTiming {
    /// Interval between keep-alives on a silent connection. Default 1 s.
    pub keep_alive: Duration,
    /// Silence after which QUIC closes a connection. Default 10 s; at least twice
    /// `keep_alive`.
    pub idle_timeout: Duration,
    /// Limit on one handshake. Default 5 s.
    pub handshake_timeout: Duration,
    /// First re-dial delay after a failure; doubles per failure. Default 50 ms.
    pub reconnect_backoff_min: Duration,
    /// Largest re-dial delay. Default 2 s.
    pub reconnect_backoff_max: Duration,
    /// How long the receiving side of a request waits for its bytes, then for the consumer's
    /// reply. Default 5 s.
    pub serve_timeout: Duration,
    /// The round-trip estimate a new connection starts from, before it has measured one.
    /// QUIC's handshake retransmission timer grows from it, doubling per loss; QUIC's
    /// default of 333 ms let a lossy handshake stay half-open for seconds, during which the
    /// one-connection rule kept the link down. Default 50 ms (a LAN or a region); a
    /// higher real RTT only costs a few early handshake retransmissions.
    pub initial_rtt: Duration,
}

impl Default for TransportTiming {
    fn default() -> Self {
        TransportTiming {
            keep_alive: KEEP_ALIVE_DEFAULT,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            handshake_timeout: HANDSHAKE_TIMEOUT_DEFAULT,
            reconnect_backoff_min: RECONNECT_BACKOFF_MIN,
            reconnect_backoff_max: RECONNECT_BACKOFF_MAX,
            serve_timeout: SERVE_TIMEOUT_DEFAULT,
            initial_rtt: INITIAL_RTT_DEFAULT,
        }
    }
}

impl TransportTiming {
    fn rules(&self) -> Result<(), TransportConfigError> {
        let named = [
            ("keep_alive", self.keep_alive),
            ("idle_timeout", self.idle_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("reconnect_backoff_min", self.reconnect_backoff_min),
            ("reconnect_backoff_max", self.reconnect_backoff_max),
            ("serve_timeout", self.serve_timeout),
            ("initial_rtt", self.initial_rtt),
        ];
        if let Some((field, _)) = named.iter().find(|(_, d)| d.is_zero()) {
            return Err(TransportConfigError::ZeroDuration { field });
        }
        if self.keep_alive.saturating_mul(2) > self.idle_timeout {
            return Err(TransportConfigError::KeepAliveTooSlow {
                keep_alive: self.keep_alive,
                idle_timeout: self.idle_timeout,
            });
        }
        if quinn::IdleTimeout::try_from(self.idle_timeout).is_err() {
            return Err(TransportConfigError::IdleTimeoutTooLong { idle_timeout: self.idle_timeout });
        }
        if self.reconnect_backoff_min > self.reconnect_backoff_max {
            return Err(TransportConfigError::BackoffOrder {
                min: self.reconnect_backoff_min,
                max: self.reconnect_backoff_max,
            });
        }
        Ok(())
    }
}

/// Buffer and concurrency limits, each a bound on memory or work per peer or per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportLimits {
    /// Capacity of the inbound channel, in messages. Default 1024.
    pub inbound_channel_capacity: usize,
    /// Datagram bytes QUIC may buffer per connection for sending. Default 16 KiB.
    pub datagram_send_buffer_bytes: usize,
    /// Received datagram bytes QUIC buffers per connection. Default 64 KiB.
    pub datagram_receive_buffer_bytes: usize,
    /// Concurrent request streams per connection and direction. Default 32.
    pub streams_per_peer: u32,
    /// Inbound handshakes in progress at once; more are ignored and counted. Default 64.
    pub handshakes_in_flight: usize,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            inbound_channel_capacity: INBOUND_CHANNEL_CAPACITY_DEFAULT,
            datagram_send_buffer_bytes: DATAGRAM_SEND_BUFFER_BYTES_DEFAULT,
            datagram_receive_buffer_bytes: DATAGRAM_RECEIVE_BUFFER_BYTES_DEFAULT,
            streams_per_peer: STREAMS_PER_PEER_DEFAULT,
            handshakes_in_flight: HANDSHAKES_IN_FLIGHT_DEFAULT,
        }
    }
}

impl TransportLimits {
    fn rules(&self) -> Result<(), TransportConfigError> {
        let named = [
            ("inbound_channel_capacity", self.inbound_channel_capacity),
            ("datagram_send_buffer_bytes", self.datagram_send_buffer_bytes),
            ("datagram_receive_buffer_bytes", self.datagram_receive_buffer_bytes),
            ("streams_per_peer", usize::try_from(self.streams_per_peer).unwrap_or(usize::MAX)),
            ("handshakes_in_flight", self.handshakes_in_flight),
        ];
        match named.iter().find(|(_, v)| *v == 0) {
            Some((field, _)) => Err(TransportConfigError::ZeroLimit { field }),
            None => Ok(()),
        }
    }
}

/// A configuration that cannot work, found before anything is bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportConfigError {
    /// More members than [`MEMBERS_MAX`].
    #[error("{count} members configured, at most {max} are supported")]
    TooManyMembers {
        /// Members configured.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A node id appears twice in the member list.
    #[error("{node} is listed twice in members (at {first} and {second}); list each node once")]
    DuplicateMember {
        /// The repeated id.
        node: NodeId,
        /// Its first address.
        first: MemberAddress,
        /// Its second address.
        second: MemberAddress,
    },
    /// Two members share one address, so a connection's source could not name its node.
    #[error("{first} and {second} are both configured at {addr}; each node needs its own address")]
    SharedAddress {
        /// The shared address.
        addr: MemberAddress,
        /// One member.
        first: NodeId,
        /// The other.
        second: NodeId,
    },
    /// A peer's address cannot be dialed.
    #[error("{node} is configured at {addr}, which cannot be dialed; give its real IP or name and port")]
    UndialableAddress {
        /// The member.
        node: NodeId,
        /// Its configured address.
        addr: MemberAddress,
    },
    /// A duration is zero.
    #[error("timing.{field} is zero; it must be positive")]
    ZeroDuration {
        /// The field.
        field: &'static str,
    },
    /// Fewer than two keep-alives fit in one idle timeout.
    #[error(
        "keep_alive ({keep_alive:?}) must be at most half of idle_timeout ({idle_timeout:?}), so \
         one lost keep-alive does not close the connection"
    )]
    KeepAliveTooSlow {
        /// The keep-alive interval.
        keep_alive: Duration,
        /// The idle timeout.
        idle_timeout: Duration,
    },
    /// The idle timeout does not fit QUIC's encoding.
    #[error("idle_timeout ({idle_timeout:?}) is too long for QUIC; use at most a few minutes")]
    IdleTimeoutTooLong {
        /// The idle timeout.
        idle_timeout: Duration,
    },
    /// The backoff bounds are reversed.
    #[error("reconnect_backoff_min ({min:?}) exceeds reconnect_backoff_max ({max:?})")]
    BackoffOrder {
        /// The minimum.
        min: Duration,
        /// The maximum.
        max: Duration,
    },
    /// A limit is zero.
    #[error("limits.{field} is zero; it must be positive")]
    ZeroLimit {
        /// The field.
        field: &'static str,
    },
}

/// `addr` with an IPv4-mapped IPv6 address turned into plain IPv4, so that a dual-stack socket
/// and an IPv4 member list compare equal.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timing_is_valid_and_keeps_two_keep_alives_per_idle_timeout() {
        assert_eq!(TransportTiming::default().rules(), Ok(()));
        let slow = TransportTiming { keep_alive: Duration::from_secs(6), ..TransportTiming::default() };
        assert!(matches!(slow.rules(), Err(TransportConfigError::KeepAliveTooSlow { .. })));
    }

    #[test]
    fn reversed_backoff_is_refused() {
        let t = TransportTiming {
            reconnect_backoff_min: Duration::from_secs(3),
            reconnect_backoff_max: Duration::from_secs(1),
            ..TransportTiming::default()
        };
        assert!(matches!(t.rules(), Err(TransportConfigError::BackoffOrder { .. })));
    }

    #[test]
    fn zero_limits_are_refused() {
        let l = TransportLimits { streams_per_peer: 0, ..TransportLimits::default() };
        assert_eq!(l.rules(), Err(TransportConfigError::ZeroLimit { field: "streams_per_peer" }));
    }

    #[test]
    fn mapped_ipv4_compares_equal_to_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:7000".parse().unwrap_or_else(|_| unreachable!());
        let plain: SocketAddr = "127.0.0.1:7000".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(canonical(mapped), plain);
    }
}
