//! The dial loop: one task per dialed peer that keeps one connection to it.
//!
//! ```text
//!   no connection ──► address (fixed, or the name looked up now) ──► dial ──► install
//!        ▲               │ lookup failed: status says why, back off        │
//!        │               ▼                                                 ▼
//!        └──────────── backoff ◄── dial failed           watch the connection until it ends
//!                                                         (or, for a named peer, until an
//!                                                          inbound connection from another
//!                                                          address says it may have moved)
//! ```
//!
//! A named peer is looked up before every attempt (see `address.rs`), so a peer that comes
//! back at a new address is dialed there at the next attempt.
//!
//! # A peer that moved while a connection to it looked alive
//!
//! When a peer crashes and comes back at another address, this node may still hold the
//! connection to its old address: nothing answers there, and nothing closes it before QUIC's
//! idle timeout (a restart at the same address ends it sooner, with a stateless reset, see
//! `endpoint.rs`). The restarted peer dials in, and if the old connection was dialed by the
//! lower id, the one-connection rule (`peer.rs`) keeps the old one and refuses the new. So
//! when an inbound connection from a named peer loses to an installed connection with
//! another remote address, the dial loop looks the name up again; if the name no longer
//! resolves to the installed connection's address, that connection goes where the peer no
//! longer is: it is closed ([`CLOSE_MOVED`]), counted (`peers_moved`), and the peer is dialed
//! at its new address at once. A literal IP address never moves, and a name that still
//! resolves to the old address keeps the connection: only the name decides.
//!
//! # A peer that says this node is not a member
//!
//! A peer closes a connection with [`CLOSE_REMOVED`] when it does not count this node a
//! member: it removed it (the connection it held is closed), or this node, removed while it
//! was down, dials a member that remembers it (see "Former members" in `members.rs`). The
//! close may come right after the handshake, before the dialer saw it confirmed, or later on
//! a connection it installed; either way it is recorded on the peer (and counted,
//! `closed_as_non_member`) until a connection to it is kept, and the dial loop backs off as
//! for any refusal. [`CLOSE_REFUSED`] is not taken as such a word: it also answers a wrong
//! source address or an unreadable certificate, and a member that never knew this node
//! (one being added) ignores it or refuses it that way.

use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, ConnectionError, VarInt};

use crate::address::{Lookup, MemberAddress, Resolution, RESOLVE_TIMEOUT};
use crate::config::canonical;
use crate::counters::bump;
use crate::endpoint::EndpointState;
use crate::peer::{Backoff, Peer};
use crate::tls::{classify_handshake_error, HandshakeFailure};
use crate::{CLOSE_DUPLICATE, CLOSE_MOVED, CLOSE_REFUSED, CLOSE_REMOVED, CLOSE_UNCONFIRMED};

/// A connection that lived at least this long resets the reconnect backoff when it ends;
/// one that dies sooner counts as a failed attempt, so a peer that accepts and then drops us
/// is not re-dialed in a tight loop.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(1);

/// How often [`peer_confirmed`] looks for the peer's handshake confirmation: first after
/// this, then twice as long each time, up to [`CONFIRM_POLL_MAX`].
const CONFIRM_POLL_MIN: Duration = Duration::from_millis(1);
/// See [`CONFIRM_POLL_MIN`].
const CONFIRM_POLL_MAX: Duration = Duration::from_millis(50);

pub(crate) async fn dial_loop(shared: Arc<EndpointState>, peer: Arc<Peer>) {
    let seed = shared.me.0.rotate_left(32) ^ peer.id.0 ^ 0x71_75_6f_72_61_74_65;
    let mut backoff =
        Backoff::new(shared.timing.reconnect_backoff_min, shared.timing.reconnect_backoff_max, seed);
    let mut lookup = match &peer.address {
        MemberAddress::Name { host, port } => Some(Lookup::new(host, *port, shared.local_addr)),
        MemberAddress::Ip(_) => None,
    };
    loop {
        if peer.is_removed() {
            return;
        }
        if let Some(conn) = peer.connection() {
            let watched_since = tokio::time::Instant::now();
            let reason = watch(&shared, &peer, &conn, lookup.as_mut()).await;
            note_refusal(&shared, &peer, &reason);
            let brief = watched_since.elapsed() < BACKOFF_RESET_AFTER;
            if matches!(reason, ConnectionError::LocallyClosed) {
                // We closed it: replaced by a winning duplicate, the peer moved, or shutting
                // down.
            } else if peer_did_not_want(&reason) || brief {
                // The peer closed it as a duplicate or refused us (it holds a connection it
                // prefers and may not know yet that it is dead), or the connection died
                // young (e.g. our certificate is refused after the handshake): back off
                // rather than churn handshakes.
                tokio::time::sleep(backoff.next_delay()).await;
            } else {
                backoff.reset();
            }
            continue;
        }
        let addr = match lookup.as_mut() {
            None => peer.resolution().addr(),
            Some(lookup) => resolve(&shared, &peer, lookup).await,
        };
        let dialed = match addr {
            Some(addr) => shared.dial(&peer, addr).await,
            None => Err(()),
        };
        if dialed.is_err() {
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

/// Looks `peer`'s name up and records the outcome; the address to dial, if any.
async fn resolve(shared: &EndpointState, peer: &Peer, lookup: &mut Lookup) -> Option<std::net::SocketAddr> {
    match lookup.resolve(RESOLVE_TIMEOUT).await {
        Ok(addr) => {
            if peer.resolution() != Resolution::Resolved(addr) {
                tracing::info!(peer = %peer.id, address = %peer.address, %addr, "peer name resolved");
            }
            peer.set_resolution(Resolution::Resolved(addr));
            Some(addr)
        }
        Err(failure) => {
            bump(&shared.counters.resolve_failures);
            if peer.resolution() != Resolution::Failed(failure) {
                tracing::warn!(peer = %peer.id, address = %peer.address, %failure, "cannot dial peer");
            }
            peer.set_resolution(Resolution::Failed(failure));
            None
        }
    }
}

/// Waits until `conn` ends. For a named peer, also answers [`Peer::recheck`]: if the name
/// no longer resolves to the connection's remote address, the connection is closed (see the
/// module docs).
async fn watch(
    shared: &EndpointState,
    peer: &Peer,
    conn: &Connection,
    mut lookup: Option<&mut Lookup>,
) -> ConnectionError {
    loop {
        let Some(lookup) = lookup.as_deref_mut() else { return conn.closed().await };
        tokio::select! {
            reason = conn.closed() => return reason,
            () = peer.recheck.notified() => {}
        }
        let remote = canonical(conn.remote_address());
        if let Some(addr) = resolve(shared, peer, lookup).await {
            if addr != remote && conn.close_reason().is_none() {
                tracing::info!(peer = %peer.id, address = %peer.address, from = %remote, to = %addr,
                    "peer moved; closing the connection to its old address");
                bump(&shared.counters.peers_moved);
                conn.close(VarInt::from_u32(CLOSE_MOVED), b"peer moved");
            }
        }
    }
}

impl EndpointState {
    /// One outbound attempt to `peer` at `addr`. `Ok` if a connection was authenticated
    /// (kept or not); `Err` if the attempt failed, which the dial loop answers with backoff.
    pub(crate) async fn dial(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        addr: std::net::SocketAddr,
    ) -> Result<(), ()> {
        let c = &self.counters;
        let connecting = match self.endpoint.connect_with(self.client_config.clone(), addr, &peer.server_name)
        {
            Ok(connecting) => connecting,
            Err(e) => {
                tracing::warn!(peer = %peer.id, %addr, error = %e, "cannot dial");
                bump(&c.dial_failures);
                return Err(());
            }
        };
        // rustls has checked the server's chain to the cluster CA and its name
        // `node-<peer>.<cluster>.quorate`, and we chose the address: nothing more to check.
        let deadline = tokio::time::Instant::now() + self.timing.handshake_timeout;
        match tokio::time::timeout_at(deadline, connecting).await {
            Ok(Ok(conn)) => {
                // Only once the peer holds it too (see "One connection per pair").
                if !peer_confirmed(&conn, deadline).await {
                    if let Some(reason) = conn.close_reason() {
                        note_refusal(self, peer, &reason);
                    }
                    conn.close(VarInt::from_u32(CLOSE_UNCONFIRMED), b"handshake not confirmed");
                    bump(&c.dials_unconfirmed);
                    tracing::debug!(peer = %peer.id, "dialed connection not confirmed by the peer; closed");
                    return Err(());
                }
                self.install(peer, conn, self.me);
                Ok(())
            }
            Ok(Err(e)) => {
                note_refusal(self, peer, &e);
                match classify_handshake_error(&e) {
                    HandshakeFailure::BadChain => bump(&c.refused_bad_chain),
                    HandshakeFailure::NoCert | HandshakeFailure::Other => bump(&c.dial_failures),
                }
                tracing::debug!(peer = %peer.id, error = %e, "dial failed");
                Err(())
            }
            Err(_) => {
                bump(&c.dial_failures);
                Err(())
            }
        }
    }
}

/// Waits until the peer confirmed the handshake of `conn`, a connection this node dialed,
/// or until `deadline`; false if it closed or the deadline passed first. The server sends
/// HANDSHAKE_DONE once it completed the handshake, which is when it installs the
/// connection: from then on both ends hold it. quinn has no event for it, so its frame
/// count is polled, a few times per round trip at first and at most every
/// [`CONFIRM_POLL_MAX`] (on a LAN the frame arrives well within the first poll).
async fn peer_confirmed(conn: &Connection, deadline: tokio::time::Instant) -> bool {
    let mut poll = CONFIRM_POLL_MIN;
    loop {
        if conn.stats().frame_rx.handshake_done > 0 {
            return true;
        }
        let now = tokio::time::Instant::now();
        if conn.close_reason().is_some() || now >= deadline {
            return false;
        }
        tokio::time::sleep_until((now + poll).min(deadline)).await;
        poll = poll.saturating_mul(2).min(CONFIRM_POLL_MAX);
    }
}

fn peer_did_not_want(reason: &ConnectionError) -> bool {
    match reason {
        ConnectionError::ApplicationClosed(close) => {
            close.error_code == VarInt::from_u32(CLOSE_DUPLICATE)
                || close.error_code == VarInt::from_u32(CLOSE_REFUSED)
                || close.error_code == VarInt::from_u32(CLOSE_REMOVED)
        }
        _ => false,
    }
}

/// Whether the peer ended the connection saying this node is not its member.
fn says_not_a_member(reason: &ConnectionError) -> bool {
    matches!(reason, ConnectionError::ApplicationClosed(close)
        if close.error_code == VarInt::from_u32(CLOSE_REMOVED))
}

/// Records (and counts) a connection `peer` ended with [`CLOSE_REMOVED`]; see "A peer that
/// says this node is not a member".
fn note_refusal(shared: &EndpointState, peer: &Peer, reason: &ConnectionError) {
    if !says_not_a_member(reason) {
        return;
    }
    bump(&shared.counters.closed_as_non_member);
    if !peer.set_refuses_us(true) {
        tracing::warn!(peer = %peer.id, "peer closed the connection: it does not count this node a member");
    }
}
