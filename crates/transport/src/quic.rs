//! The QUIC parameters every connection of a node uses, from its timing and limits, and the
//! endpoint's keys. Each choice that departs from quinn's defaults says why.

use std::sync::Arc;

use quinn::VarInt;

use crate::config::TransportConfig;
use crate::tls::PkiError;
use crate::{TransportError, MESSAGE_BYTES_MAX};

/// Ack-eliciting packets a peer may receive before it must acknowledge at once (QUIC's ACK
/// frequency extension; without it, every second one). Heartbeats need no QUIC
/// acknowledgement (the next heartbeat carries the application's ack) and arrive 100 ms
/// apart, so the peer's 25 ms ack delay decides for them either way; but a gossip request,
/// its reply and a heartbeat often arrive within a few milliseconds, and acknowledging
/// every second of them at once sent ACK-only packets that, delayed, ride on the next
/// reply or heartbeat. Streams keep QUIC's loss recovery: the delay is in every probe
/// timeout, and a gap in packet numbers is still acknowledged at once (reordering threshold
/// 2). Measured in `docs/benchmarks.md`.
const ACK_ELICITING_THRESHOLD: u32 = 10;

/// The connection's receive window holds this many messages of the largest size
/// ([`MESSAGE_BYTES_MAX`]) at once, however many streams may be open: the bound on what one
/// peer can make this node buffer.
const FULL_STREAMS_MAX: u32 = 8;

/// Extra stream receive window beyond [`MESSAGE_BYTES_MAX`], so an oversized message is seen
/// as too long (and refused at once) rather than stalling on flow control.
const STREAM_WINDOW_SLACK_BYTES: u64 = 4 * 1024;

/// The congestion window never shrinks below this many bytes. Every byte this transport
/// sends is bounded by the application (a heartbeat per peer per interval, small gossip and
/// fence messages, request streams under flow control), so the window's job here is only
/// to stop a bulk sender, which there is none of. Without a floor, a cut of a second or
/// two (every packet lost) collapses the window to two packets that all count as in
/// flight until a probe gets through, and heartbeats stay queued behind it for seconds
/// after the link is back: the link looks connected while no liveness signal crosses it.
const CONGESTION_WINDOW_FLOOR_BYTES: u64 = 128 * 1024;

/// quinn's default controller (CUBIC) with [`CONGESTION_WINDOW_FLOOR_BYTES`] as the least
/// window it ever reports.
#[derive(Debug)]
struct FloorConfig(quinn::congestion::CubicConfig);

impl quinn::congestion::ControllerFactory for FloorConfig {
    fn build(
        self: Arc<Self>,
        now: std::time::Instant,
        current_mtu: u16,
    ) -> Box<dyn quinn::congestion::Controller> {
        let inner = Arc::new(self.0.clone()).build(now, current_mtu);
        Box::new(Floor(inner))
    }
}

struct Floor(Box<dyn quinn::congestion::Controller>);

impl quinn::congestion::Controller for Floor {
    fn on_sent(&mut self, now: std::time::Instant, bytes: u64, last_packet_number: u64) {
        self.0.on_sent(now, bytes, last_packet_number);
    }

    fn on_ack(
        &mut self,
        now: std::time::Instant,
        sent: std::time::Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &quinn_proto::RttEstimator,
    ) {
        self.0.on_ack(now, sent, bytes, app_limited, rtt);
    }

    fn on_end_acks(
        &mut self,
        now: std::time::Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.0.on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
    }

    fn on_congestion_event(
        &mut self,
        now: std::time::Instant,
        sent: std::time::Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.0.on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.0.on_mtu_update(new_mtu);
    }

    fn window(&self) -> u64 {
        self.0.window().max(CONGESTION_WINDOW_FLOOR_BYTES)
    }

    fn clone_box(&self) -> Box<dyn quinn::congestion::Controller> {
        Box::new(Floor(self.0.clone_box()))
    }

    fn initial_window(&self) -> u64 {
        self.0.initial_window().max(CONGESTION_WINDOW_FLOOR_BYTES)
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// quinn's per-connection transport parameters, from our timing and limits.
pub(crate) fn quic_transport_config(
    config: &TransportConfig,
) -> Result<quinn::TransportConfig, TransportError> {
    let timing = &config.timing;
    let limits = &config.limits;
    let too_big = |what: &str| PkiError::Config { reason: format!("{what} does not fit QUIC's encoding") };
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(timing.keep_alive));
    t.congestion_controller_factory(Arc::new(FloorConfig(quinn::congestion::CubicConfig::default())));
    // Ask the peer to acknowledge after ACK_ELICITING_THRESHOLD + 1 packets or its ack delay
    // (quinn caps it at 25 ms on a LAN), not after every second packet (see the constant).
    let mut ack = quinn::AckFrequencyConfig::default();
    ack.ack_eliciting_threshold(VarInt::from_u32(ACK_ELICITING_THRESHOLD));
    t.ack_frequency_config(Some(ack));
    t.initial_rtt(timing.initial_rtt);
    t.max_idle_timeout(Some(quinn::IdleTimeout::try_from(timing.idle_timeout).map_err(|_| {
        super::TransportConfigError::IdleTimeoutTooLong { idle_timeout: timing.idle_timeout }
    })?));
    t.datagram_receive_buffer_size(Some(limits.datagram_receive_buffer_bytes));
    t.datagram_send_buffer_size(limits.datagram_send_buffer_bytes);
    t.max_concurrent_bidi_streams(VarInt::from_u32(limits.streams_per_peer));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    let stream_window = MESSAGE_BYTES_MAX as u64 + STREAM_WINDOW_SLACK_BYTES;
    t.stream_receive_window(VarInt::from_u64(stream_window).map_err(|_| too_big("stream window"))?);
    // Room for FULL_STREAMS_MAX messages of the largest size at once, not one per stream:
    // many streams may be open (each costs little), few carry large messages.
    let connection_window = stream_window
        .saturating_mul(u64::from(limits.streams_per_peer.min(FULL_STREAMS_MAX)))
        .saturating_add(limits.datagram_receive_buffer_bytes as u64);
    t.receive_window(VarInt::from_u64(connection_window).map_err(|_| too_big("receive window"))?);
    t.send_window(connection_window);
    Ok(t)
}

/// The endpoint config with the reset and connection-id keys derived from the node's private
/// key (see the module docs). HMAC-SHA256 with distinct labels keeps the two keys independent
/// of each other and reveals nothing about the private key.
pub(crate) fn endpoint_config(secret: &[u8]) -> quinn::EndpointConfig {
    let root = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let reset_secret = ring::hmac::sign(&root, b"quorate/1 stateless reset key");
    let cid_secret = ring::hmac::sign(&root, b"quorate/1 connection id key");
    let cid_key = cid_secret.as_ref().iter().take(8).fold(0u64, |k, b| (k << 8) | u64::from(*b));
    let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset_secret.as_ref());
    let mut config = quinn::EndpointConfig::new(Arc::new(reset_key));
    config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
    config
}
