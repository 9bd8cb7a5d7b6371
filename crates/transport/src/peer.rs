//! One configured peer: its connection slot, its link filter, the rule that keeps exactly one
//! connection per pair, and the tasks that serve a connection.
//!
//! # One connection per pair
//!
//! Both nodes of a pair dial whenever they hold no live connection to the other, so either
//! side's restart is repaired by the side that notices first. When two live connections
//! exist at once (simultaneous dials), both ends apply the same rule, [`new_wins`]:
//!
//! 1. Between connections dialed by different nodes, the one dialed by the lower node id wins.
//! 2. Between connections dialed by the same node, the newer wins: a node only dials when it
//!    holds no live connection, so to the dialer the older one is already dead (it restarted,
//!    or its side timed out first).
//!
//! The loser is closed with `CLOSE_DUPLICATE`. Both ends see the same two dialers,
//! so they pick the same winner. This needs both ends to hold both connections, which is why
//! a dialer offers its connection here only once the peer confirmed the handshake
//! (`endpoint.rs`): a connection whose last handshake packet was lost is complete at the
//! dialer but unknown to the peer, and held here it would win rule 1 against every
//! connection the peer dials (when the dialer has the lower id) until it died. The case the rule cannot see (the higher node restarted
//! while the lower still holds its own, now dead, connection) is ended by QUIC itself: the
//! restarted node answers the old connection's next keep-alive with a stateless reset
//! (its reset key survives restarts, see `endpoint.rs`), and the lower node re-dials.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use quinn::{Connection, SendStream, VarInt};
use tokio::sync::Notify;

use crate::address::{MemberAddress, Resolution};
use crate::{CLOSE_DUPLICATE, RESET_ABANDONED};
use quorate_proto::NodeId;

/// A configured peer. Its configured address and certificate name are fixed at start; the
/// address a name resolves to, the connection slot and the link filter change.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) id: NodeId,
    /// The configured address, canonical (see `MemberAddress::canonical`).
    pub(crate) address: MemberAddress,
    /// The DNS name its certificate must carry.
    pub(crate) server_name: String,
    /// Where its address stands: fixed, or the last lookup's outcome (set by the dial loop).
    resolution: Mutex<Resolution>,
    /// Wakes the dial loop to look the name up again while a connection is installed: an
    /// inbound connection from this peer at another address lost to the installed one, so
    /// the peer may have moved (see `endpoint.rs`).
    pub(crate) recheck: Notify,
    link: Mutex<Link>,
    block_in: AtomicBool,
    block_out: AtomicBool,
    /// No longer a member ([`crate::Transport::set_members`]): its dial loop ends and no
    /// connection to it is installed again.
    removed: AtomicBool,
    /// The close code a connection offered after the removal gets: `CLOSE_REMOVED`, or
    /// `CLOSE_MOVED` when only the address changed (the id is still a member).
    removed_code: AtomicU32,
    /// The peer closed our connection with `CLOSE_REMOVED`: it does not count this node a
    /// member. Cleared once a connection to it is kept.
    refuses_us: AtomicBool,
}

#[derive(Debug, Default)]
struct Link {
    current: Option<Installed>,
    /// The last installed connection ended for a reason other than losing a duplicate
    /// contest or a local close; the next installation is a reconnect.
    lost: bool,
}

#[derive(Debug)]
struct Installed {
    conn: Connection,
    dialer: NodeId,
    /// Local installation order; identifies this installation when its task ends.
    seq: u64,
}

/// What [`Peer::install`] did with a new connection.
#[derive(Debug)]
pub(crate) enum Installation {
    /// The new connection is now the peer's connection.
    Kept {
        /// A live connection it displaced, for the caller to close as a duplicate.
        replaced: Option<Connection>,
        /// An earlier connection to this peer had been lost.
        reconnect: bool,
    },
    /// A live connection that wins over the new one is already installed.
    Lost,
}

/// Whether a new connection dialed by `new_dialer` replaces a live one dialed by
/// `existing_dialer`, between `me` and `peer`. See the module docs for why.
pub(crate) fn new_wins(me: NodeId, peer: NodeId, existing_dialer: NodeId, new_dialer: NodeId) -> bool {
    if existing_dialer == new_dialer {
        return true;
    }
    new_dialer == me.min(peer)
}

/// Whether a connection that ended for `reason` was lost (timeout, reset, peer shutdown,
/// error) rather than retired by the duplicate rule or closed by this node.
fn lost_for_real(reason: &quinn::ConnectionError) -> bool {
    match reason {
        quinn::ConnectionError::LocallyClosed => false,
        quinn::ConnectionError::ApplicationClosed(close) => {
            close.error_code != VarInt::from_u32(CLOSE_DUPLICATE)
        }
        _ => true,
    }
}

impl Peer {
    pub(crate) fn new(id: NodeId, address: MemberAddress, server_name: String) -> Self {
        let address = address.canonical();
        let resolution = match &address {
            MemberAddress::Ip(addr) => Resolution::Fixed(*addr),
            MemberAddress::Name { .. } => Resolution::Pending,
        };
        Peer {
            id,
            address,
            server_name,
            resolution: Mutex::new(resolution),
            recheck: Notify::new(),
            link: Mutex::new(Link::default()),
            block_in: AtomicBool::new(false),
            block_out: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            removed_code: AtomicU32::new(0),
            refuses_us: AtomicBool::new(false),
        }
    }

    /// Where its address stands now.
    pub(crate) fn resolution(&self) -> Resolution {
        *self.resolution.lock()
    }

    /// Records a lookup's outcome.
    pub(crate) fn set_resolution(&self, resolution: Resolution) {
        *self.resolution.lock() = resolution;
    }

    /// The live connection to this peer, if any.
    pub(crate) fn connection(&self) -> Option<Connection> {
        let link = self.link.lock();
        link.current.as_ref().filter(|c| c.conn.close_reason().is_none()).map(|c| c.conn.clone())
    }

    /// The live connection and who dialed it.
    pub(crate) fn connection_and_dialer(&self) -> Option<(Connection, NodeId)> {
        let link = self.link.lock();
        link.current.as_ref().filter(|c| c.conn.close_reason().is_none()).map(|c| (c.conn.clone(), c.dialer))
    }

    /// Offers a newly authenticated connection; see [`new_wins`].
    pub(crate) fn install(&self, me: NodeId, conn: Connection, dialer: NodeId, seq: u64) -> Installation {
        let mut link = self.link.lock();
        match link.current.as_ref().map(|c| (c.dialer, c.conn.close_reason())) {
            Some((old_dialer, None)) if !new_wins(me, self.id, old_dialer, dialer) => {
                return Installation::Lost;
            }
            Some((_, Some(reason))) if lost_for_real(&reason) => link.lost = true,
            _ => {}
        }
        let replaced = link
            .current
            .replace(Installed { conn, dialer, seq })
            .map(|old| old.conn)
            .filter(|c| c.close_reason().is_none());
        let reconnect = replaced.is_none() && link.lost;
        link.lost = false;
        Installation::Kept { replaced, reconnect }
    }

    /// Clears the slot if it still holds installation `seq` (its serving task ended).
    pub(crate) fn forget(&self, seq: u64) {
        let mut link = self.link.lock();
        let Some(current) = link.current.as_ref().filter(|c| c.seq == seq) else { return };
        if current.conn.close_reason().is_some_and(|reason| lost_for_real(&reason)) {
            link.lost = true;
        }
        link.current = None;
    }

    /// Drops the installed connection handle (shutdown).
    pub(crate) fn clear(&self) {
        self.link.lock().current = None;
    }

    /// Marks the peer removed from the members and closes its connection with `code`.
    pub(crate) fn remove(&self, code: u32) {
        self.removed_code.store(code, Ordering::Relaxed);
        self.removed.store(true, Ordering::Relaxed);
        if let Some(installed) = self.link.lock().current.take() {
            installed.conn.close(quinn::VarInt::from_u32(code), b"removed from the members");
        }
        self.recheck.notify_one();
    }

    /// Whether the peer was removed from the members.
    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// The close code given with [`Peer::remove`].
    pub(crate) fn removed_code(&self) -> u32 {
        self.removed_code.load(Ordering::Relaxed)
    }

    /// Records whether the peer refuses this node as a non-member; the previous value.
    pub(crate) fn set_refuses_us(&self, refuses: bool) -> bool {
        self.refuses_us.swap(refuses, Ordering::Relaxed)
    }

    /// Whether the peer's last word was that this node is not its member.
    pub(crate) fn refuses_us(&self) -> bool {
        self.refuses_us.load(Ordering::Relaxed)
    }

    pub(crate) fn set_blocked(&self, inbound: bool, outbound: bool) {
        self.block_in.store(inbound, Ordering::Relaxed);
        self.block_out.store(outbound, Ordering::Relaxed);
    }

    pub(crate) fn blocked_in(&self) -> bool {
        self.block_in.load(Ordering::Relaxed)
    }

    pub(crate) fn blocked_out(&self) -> bool {
        self.block_out.load(Ordering::Relaxed)
    }
}

/// A send stream that is reset, not finished, unless the whole message was written: quinn
/// finishes a dropped stream, which would turn a cancelled write into a truncated message
/// that looks complete.
pub(crate) struct ResetOnDrop {
    stream: Option<SendStream>,
}

impl ResetOnDrop {
    pub(crate) fn new(stream: SendStream) -> Self {
        ResetOnDrop { stream: Some(stream) }
    }

    /// Writes `bytes` and finishes the stream; false if the stream or connection failed.
    pub(crate) async fn write_all_and_finish(&mut self, bytes: &[u8]) -> bool {
        let Some(stream) = self.stream.as_mut() else { return false };
        if stream.write_all(bytes).await.is_err() {
            return false;
        }
        let finished = stream.finish().is_ok();
        if finished {
            // Finished: dropping the handle now keeps the data flowing.
            self.stream = None;
        }
        finished
    }

    pub(crate) fn reset(&mut self, code: u32) {
        if let Some(mut stream) = self.stream.take() {
            let _ = stream.reset(VarInt::from_u32(code));
        }
    }

    /// Sends nothing until the peer stops the stream (it gave up) or `limit` passes, then
    /// resets: to the peer this looks like a lost message, as under a real partition.
    pub(crate) async fn hold_silently(&mut self, limit: Duration) {
        if let Some(stream) = self.stream.as_mut() {
            let _ = tokio::time::timeout(limit, stream.stopped()).await;
        }
        self.reset(RESET_ABANDONED);
    }
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        self.reset(RESET_ABANDONED);
    }
}

/// Jittered, bounded exponential backoff for re-dialing one peer.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// `seed` makes the jitter reproducible; callers derive it from the pair of node ids so
    /// nodes restarting together do not dial in lockstep.
    pub(crate) fn new(min: Duration, max: Duration, seed: u64) -> Self {
        Backoff { min, max, next: min, rng: seed }
    }

    /// The delay before the next attempt: uniform in [d/2, d] for the current step d, which
    /// then doubles up to `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = step.saturating_mul(2).min(self.max);
        let half = step / 2;
        let span = u64::try_from((step - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if span == 0 { 0 } else { splitmix64(&mut self.rng) % (span + 1) };
        half + Duration::from_micros(jitter)
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// SplitMix64 (Steele et al.): a tiny, seedable generator, plenty for jitter.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    #[test]
    fn between_different_dialers_the_lower_id_dial_wins_on_both_ends() {
        // At A (me = A): existing B-dialed, new A-dialed -> new wins.
        assert!(new_wins(A, B, B, A));
        // At B (me = B): existing B-dialed, new A-dialed -> new wins. Same survivor.
        assert!(new_wins(B, A, B, A));
        // Reverse arrival order: existing A-dialed, new B-dialed -> existing stays, both ends.
        assert!(!new_wins(A, B, A, B));
        assert!(!new_wins(B, A, A, B));
    }

    #[test]
    fn a_newer_connection_from_the_same_dialer_replaces_the_older() {
        assert!(new_wins(A, B, B, B));
        assert!(new_wins(B, A, A, A));
    }

    #[test]
    fn backoff_doubles_within_jittered_bounds_and_resets() {
        let min = Duration::from_millis(50);
        let max = Duration::from_secs(2);
        let mut b = Backoff::new(min, max, 7);
        let mut step = min;
        for _ in 0..12 {
            let d = b.next_delay();
            assert!(d >= step / 2 && d <= step, "{d:?} outside [{:?}, {step:?}]", step / 2);
            step = (step * 2).min(max);
        }
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
