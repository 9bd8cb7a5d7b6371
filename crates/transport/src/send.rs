//! Sending: one datagram, or one request and its reply on a stream of its own.

use std::time::Duration;

use bytes::Bytes;

use quinn::VarInt;
use quorate_proto::NodeId;

use crate::counters::{add, bump};
use crate::peer::ResetOnDrop;
use crate::{
    DatagramDropped, Transport, TransportError, MESSAGE_BYTES_MAX, RESET_OVERLOADED, RESET_TOO_LARGE,
    RESET_UNANSWERED,
};

impl Transport {
    /// Sends `bytes` to `to` as one QUIC datagram, without blocking and without queueing
    /// behind a backlog.
    ///
    /// `Err` says why the datagram was dropped (it is also counted). A datagram blocked by the
    /// link filter returns `Ok`: to the caller it looks lost on the wire, as under a real
    /// partition. `Ok` never means delivered; datagrams are unreliable.
    pub fn send_datagram(&self, to: NodeId, bytes: Bytes) -> Result<(), DatagramDropped> {
        let shared = &self.handle.shared;
        let c = &shared.counters;
        let Some(peer) = shared.peer(to) else {
            bump(&c.dg_unknown_peer);
            return Err(DatagramDropped::UnknownPeer { peer: to });
        };
        if peer.blocked_out() {
            bump(&c.dg_blocked_outbound);
            return Ok(());
        }
        let Some(conn) = peer.connection() else {
            bump(&c.dg_no_connection);
            return Err(DatagramDropped::NoConnection { peer: to });
        };
        let len = bytes.len();
        let max = conn.max_datagram_size().unwrap_or(0);
        if len > max {
            bump(&c.dg_too_large);
            return Err(DatagramDropped::TooLarge { peer: to, len, max });
        }
        // quinn would make room by discarding the oldest queued datagrams; we drop the new
        // one instead and count it. (A concurrent sender may still race us between the check
        // and the send; then quinn drops an older datagram, which is equally stale.)
        if len > conn.datagram_send_buffer_space() {
            bump(&c.dg_send_buffer_full);
            return Err(DatagramDropped::SendBufferFull { peer: to });
        }
        match conn.send_datagram(bytes) {
            Ok(()) => {
                bump(&c.datagrams_sent);
                add(&c.bytes_sent, len);
                Ok(())
            }
            Err(quinn::SendDatagramError::ConnectionLost(_)) => {
                bump(&c.dg_no_connection);
                Err(DatagramDropped::NoConnection { peer: to })
            }
            Err(_) => {
                bump(&c.dg_too_large);
                Err(DatagramDropped::TooLarge { peer: to, len, max })
            }
        }
    }

    /// Sends `bytes` to `to` on a new reliable stream and waits up to `timeout` for the reply.
    ///
    /// Requests and replies are at most [`MESSAGE_BYTES_MAX`] bytes. A request blocked by the
    /// link filter (either direction) waits out `timeout` and returns
    /// [`TransportError::Timeout`], as a lost request would.
    pub async fn request(
        &self,
        to: NodeId,
        bytes: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        let shared = &self.handle.shared;
        let c = &shared.counters;
        if bytes.len() > MESSAGE_BYTES_MAX {
            bump(&c.rq_too_large);
            return Err(TransportError::MessageTooLarge { len: bytes.len(), max: MESSAGE_BYTES_MAX });
        }
        let peer = shared.peer(to).ok_or(TransportError::UnknownPeer { peer: to })?;
        let exchange = async {
            if peer.blocked_out() {
                bump(&c.rq_blocked_outbound);
                return std::future::pending().await;
            }
            let conn = peer.connection().ok_or(TransportError::NotConnected { peer: to })?;
            let lost = |e: &dyn std::fmt::Display| TransportError::ConnectionLost {
                peer: to,
                reason: e.to_string(),
            };
            let (send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
            let mut send = ResetOnDrop::new(send);
            if !send.write_all_and_finish(&bytes).await {
                return Err(lost(&"the request stream failed while writing"));
            }
            add(&c.bytes_sent, bytes.len());
            let reply = match recv.read_to_end(MESSAGE_BYTES_MAX).await {
                Ok(reply) => reply,
                Err(quinn::ReadToEndError::TooLong) => {
                    bump(&c.rq_too_large);
                    return Err(TransportError::ReplyTooLarge { peer: to, max: MESSAGE_BYTES_MAX });
                }
                Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => {
                    return Err(TransportError::Rejected { peer: to, reason: reset_reason(code) });
                }
                Err(quinn::ReadToEndError::Read(e)) => return Err(lost(&e)),
            };
            if peer.blocked_in() {
                bump(&c.rq_blocked_inbound);
                return std::future::pending().await;
            }
            bump(&c.requests_sent);
            add(&c.bytes_received, reply.len());
            Ok(Bytes::from(reply))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(TransportError::Timeout { peer: to, after: timeout }))
    }
}

fn reset_reason(code: VarInt) -> &'static str {
    match u32::try_from(code.into_inner()) {
        Ok(RESET_TOO_LARGE) => "the request exceeds the peer's size limit",
        Ok(RESET_OVERLOADED) => "the peer's inbound queue is full",
        Ok(RESET_UNANSWERED) => "the peer did not answer in time",
        _ => "the peer abandoned the request",
    }
}
