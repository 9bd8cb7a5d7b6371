//! What arrives on an installed connection: its datagrams and request streams, handed to
//! the consumer through the endpoint's inbound channel without ever waiting on it.
//!
//! The endpoint provides what serving needs through [`Intake`], so this module depends on
//! the peer and the counters but not on the endpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, RecvStream, SendStream, VarInt};
use tokio::sync::{mpsc, oneshot};

use crate::counters::{add, bump, Counters};
use crate::peer::{Peer, ResetOnDrop};
use crate::{Inbound, MESSAGE_BYTES_MAX, RESET_OVERLOADED, RESET_TOO_LARGE, RESET_UNANSWERED};

/// What serving a connection needs of the endpoint around it.
pub(crate) trait Intake: Send + Sync + 'static {
    /// The transport's counters.
    fn counters(&self) -> &Counters;
    /// Where inbound datagrams and requests go.
    fn inbound(&self) -> &mpsc::Sender<Inbound>;
    /// How long a request and its reply may take.
    fn serve_timeout(&self) -> Duration;
    /// Runs `task` until it ends or the transport shuts down.
    fn spawn_task(&self, task: impl Future<Output = ()> + Send + 'static);
}

/// Serves one installed connection until it closes: delivers its datagrams and spawns a task
/// per request stream (at most `streams_per_peer` at once, enforced by QUIC flow control).
pub(crate) async fn serve_connection<S: Intake>(shared: Arc<S>, peer: Arc<Peer>, conn: Connection, seq: u64) {
    loop {
        // Both futures are cancel-safe: a datagram or stream not yet returned stays queued.
        tokio::select! {
            datagram = conn.read_datagram() => match datagram {
                Ok(bytes) => deliver_datagram(shared.as_ref(), &peer, bytes),
                Err(_) => break,
            },
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => {
                    let task = serve_request(shared.clone(), peer.clone(), send, recv);
                    shared.spawn_task(task);
                }
                Err(_) => break,
            },
        }
    }
    peer.forget(seq);
    tracing::debug!(peer = %peer.id, reason = ?conn.close_reason(), "connection ended");
}

fn deliver_datagram<S: Intake>(shared: &S, peer: &Peer, bytes: Bytes) {
    let c = shared.counters();
    if peer.blocked_in() {
        bump(&c.dg_blocked_inbound);
        return;
    }
    let len = bytes.len();
    match shared.inbound().try_send(Inbound::Datagram { from: peer.id, bytes }) {
        Ok(()) => {
            bump(&c.datagrams_received);
            add(&c.bytes_received, len);
        }
        // Full: the consumer is behind; closed: it is gone. Never wait on it here, or one slow
        // consumer would stall every peer's receive path.
        Err(_) => bump(&c.dg_inbound_channel_full),
    }
}

/// Answers one request stream: read the bounded request, hand it to the consumer with a
/// reply sender, write the bounded reply. Any failure resets the stream (the requester sees
/// an error, never a truncated or empty reply); link-filter drops stay silent until the
/// requester gives up.
async fn serve_request<S: Intake>(shared: Arc<S>, peer: Arc<Peer>, send: SendStream, mut recv: RecvStream) {
    let c = shared.counters();
    let wait = shared.serve_timeout();
    let mut send = ResetOnDrop::new(send);
    let request = match tokio::time::timeout(wait, recv.read_to_end(MESSAGE_BYTES_MAX)).await {
        Ok(Ok(bytes)) => Bytes::from(bytes),
        Ok(Err(quinn::ReadToEndError::TooLong)) => {
            bump(&c.rq_too_large);
            let _ = recv.stop(VarInt::from_u32(RESET_TOO_LARGE));
            send.reset(RESET_TOO_LARGE);
            return;
        }
        // The requester reset, the connection died, or the bytes did not come in time.
        Ok(Err(_)) | Err(_) => return,
    };
    if peer.blocked_in() {
        bump(&c.rq_blocked_inbound);
        send.hold_silently(wait).await;
        return;
    }

    let (reply_tx, reply_rx) = oneshot::channel();
    let len = request.len();
    let delivered =
        shared.inbound().try_send(Inbound::Request { from: peer.id, bytes: request, reply: reply_tx });
    if delivered.is_err() {
        bump(&c.rq_inbound_channel_full);
        send.reset(RESET_OVERLOADED);
        return;
    }
    bump(&c.requests_received);
    add(&c.bytes_received, len);

    let reply = match tokio::time::timeout(wait, reply_rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) | Err(_) => {
            bump(&c.rq_unanswered);
            send.reset(RESET_UNANSWERED);
            return;
        }
    };
    if reply.len() > MESSAGE_BYTES_MAX {
        tracing::warn!(peer = %peer.id, len = reply.len(), "reply exceeds MESSAGE_BYTES_MAX; dropped");
        bump(&c.rq_too_large);
        send.reset(RESET_TOO_LARGE);
        return;
    }
    if peer.blocked_out() {
        bump(&c.rq_blocked_outbound);
        send.hold_silently(wait).await;
        return;
    }
    if send.write_all_and_finish(&reply).await {
        add(&c.bytes_sent, reply.len());
    }
}
