//! The [`Transport`]: one QUIC endpoint per node that both listens and dials, one dial loop
//! per peer, one accept loop, and the public send/request/filter/counter API.
//!
//! Tasks and their bounds:
//!
//! * accept loop: refuses (silently) any source address that is not a member's before any
//!   crypto work (unless a member is named, see below), and runs at most
//!   `handshakes_in_flight` handshakes at once;
//! * one dial loop per peer (none for a `passive` one, see `dial.rs`): looks a named peer
//!   up and dials when there is no live connection, with jittered exponential backoff
//!   between `reconnect_backoff_min` and `reconnect_backoff_max`;
//! * one task per installed connection (datagrams and incoming streams) and one per request
//!   stream, at most `streams_per_peer` per connection.
//!
//! Every task is spawned through [`EndpointState::spawn`], which ends it at shutdown and lets
//! [`Transport::shutdown`] wait for all of them.
//!
//! # Stateless reset across restarts
//!
//! The endpoint's stateless-reset key and connection-id key are derived from the node's
//! private key, so they are the same in every life of the node. When a node restarts on the
//! same address, the first packet a peer sends on the old connection (a keep-alive at the
//! latest) is answered with a stateless reset the peer can verify, and the peer re-dials
//! within one keep-alive interval instead of waiting out the idle timeout.
//!
//! # Source addresses and names
//!
//! The certificate binds the node id, never the address. A member configured at an IP
//! address must still connect from exactly that address (checked before the handshake, so
//! strangers cost no crypto work, and again against the certificate's node after it). A
//! member configured by name cannot be pinned that way: a peer that moved dials from its new
//! address before this node looked its name up again. So when any member is named, the
//! filter before the handshake also lets through sources that are no member's known address
//! (counted as `handshakes_from_unlisted_address`; the handshakes are still bounded by
//! `handshakes_in_flight`), and the certificate decides: a named member is accepted from any
//! address, a member at an IP address only from that address.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, VarInt};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::address::{MemberAddress, Resolution};
use crate::certs::validate_cluster_name;
use crate::config::{canonical, check_members, TransportConfig, TransportLimits, TransportTiming};
use crate::counters::{bump, Counters, TransportCounters};
use crate::dial::dial_loop;
use crate::members::Members;
use crate::names::node_dns_name;
use crate::peer::{Installation, Peer};
use crate::quic::{endpoint_config, quic_transport_config};
use crate::serve::{serve_connection, Intake};
use crate::tls::{self, classify_handshake_error, identify_client, CertRefusal, HandshakeFailure, PkiError};
use crate::{
    FramesSent, Inbound, LinkInfo, TransportError, CLOSE_DUPLICATE, CLOSE_MOVED, CLOSE_REFUSED,
    CLOSE_REMOVED, CLOSE_SHUTDOWN,
};
use quorate_proto::NodeId;

/// How long a connection to a peer that said this node is not its member must stay up
/// before that refusal is taken back.
const ACCEPTED_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// How long [`Transport::shutdown`] waits for its tasks to end before returning anyway.
pub const SHUTDOWN_WAIT_MAX: Duration = Duration::from_secs(2);

/// How long [`Transport::shutdown`] then waits for closed connections to drain. The
/// CONNECTION_CLOSE frames leave on the first transmit after closing; draining only answers
/// stray packets, and a half-finished handshake can drain for seconds (its timers still use
/// the initial RTT estimate), so this bound is short.
pub const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_millis(500);

/// A running QUIC transport. Cheap to clone; all clones share one endpoint.
///
/// Dropping the last clone starts a shutdown without waiting for it; call
/// [`Transport::shutdown`] to close connections gracefully and wait.
#[derive(Clone, Debug)]
pub struct Transport {
    pub(crate) handle: Arc<Handle>,
}

/// Owned by the user's clones only (tasks hold [`EndpointState`]), so its drop means nobody can use
/// the transport any more.
#[derive(Debug)]
pub(crate) struct Handle {
    pub(crate) shared: Arc<EndpointState>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.begin_shutdown();
    }
}

/// What [`Transport::set_members`] changed: peers dialed and accepted from now on, and peers
/// no longer (an address change counts as both).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberChanges {
    /// Peers that are new, or whose address changed, in id order.
    pub added: Vec<NodeId>,
    /// Peers that are gone, or whose address changed, in id order.
    pub removed: Vec<NodeId>,
}

/// State shared by the handle and every task.
#[derive(Debug)]
pub(crate) struct EndpointState {
    pub(crate) me: NodeId,
    pub(crate) local_addr: SocketAddr,
    pub(crate) endpoint: quinn::Endpoint,
    pub(crate) client_config: quinn::ClientConfig,
    pub(crate) cluster_name: String,
    /// The members now; replaced whole by [`Transport::set_members`].
    members: RwLock<Arc<Members>>,
    pub(crate) counters: Counters,
    pub(crate) inbound: mpsc::Sender<Inbound>,
    pub(crate) timing: TransportTiming,
    pub(crate) limits: TransportLimits,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Every task holds a clone; `None` once shutdown began, so no new task starts.
    pub(crate) task_guard: Mutex<Option<mpsc::Sender<()>>>,
    /// Yields `None` once every task (and so every guard clone) is gone.
    pub(crate) tasks_done: Mutex<Option<mpsc::Receiver<()>>>,
    pub(crate) next_seq: AtomicU64,
}

impl Transport {
    /// Binds `config.listen`, starts listening and dialing every other member, and returns the
    /// transport with the receiving end of its inbound channel (capacity
    /// `limits.inbound_channel_capacity`).
    ///
    /// Must be called within a tokio runtime with time and I/O enabled; the transport's tasks
    /// run on that runtime. The receiver yields `None` only after shutdown, once every clone of
    /// the transport is dropped.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<(Transport, mpsc::Receiver<Inbound>), TransportError> {
        let socket = std::net::UdpSocket::bind(config.listen)
            .map_err(|source| TransportError::Bind { addr: config.listen, source })?;
        Self::start_on(config, socket).await
    }

    /// Like [`Transport::start`], on a socket the caller bound already, e.g. to learn an
    /// OS-assigned port before telling the other members. `config.listen` is ignored in favour
    /// of the socket's address.
    pub async fn start_on(
        config: TransportConfig,
        socket: std::net::UdpSocket,
    ) -> Result<(Transport, mpsc::Receiver<Inbound>), TransportError> {
        let config = config.check()?;
        validate_cluster_name(&config.cluster_name)?;
        let my_name = node_dns_name(&config.cluster_name, config.me);
        if !config.tls.names(&my_name) {
            return Err(PkiError::NotThisNode {
                node: config.me,
                cluster_name: config.cluster_name.clone(),
                expected: my_name,
            }
            .into());
        }
        let bind_err = |source| TransportError::Bind { addr: config.listen, source };
        let local_addr = socket.local_addr().map_err(bind_err)?;
        socket.set_nonblocking(true).map_err(bind_err)?;

        let transport_config = Arc::new(quic_transport_config(&config)?);
        let server_crypto = QuicServerConfig::try_from(tls::server_config(&config.tls)?)
            .map_err(|e| PkiError::Config { reason: format!("QUIC server crypto: {e}") })?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server_config.transport_config(transport_config.clone());
        // The remote address is part of a peer's identity (checked once, after the
        // handshake), so a connection must not move to another address afterwards.
        server_config.migration(false);
        let client_crypto = QuicClientConfig::try_from(tls::client_config(&config.tls)?)
            .map_err(|e| PkiError::Config { reason: format!("QUIC client crypto: {e}") })?;
        let mut client_config = quinn::ClientConfig::new(Arc::new(client_crypto));
        client_config.transport_config(transport_config);

        let endpoint = quinn::Endpoint::new(
            endpoint_config(config.tls.key_secret()),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| TransportError::Bind { addr: local_addr, source })?;

        let passive = config.passive.iter().copied().collect();
        let members = Members::build(config.me, &config.cluster_name, &config.members, passive, None)?;

        let (inbound_tx, inbound_rx) = mpsc::channel(config.limits.inbound_channel_capacity);
        let (guard_tx, guard_rx) = mpsc::channel(1);
        let shared = Arc::new(EndpointState {
            me: config.me,
            local_addr,
            endpoint,
            client_config,
            cluster_name: config.cluster_name.clone(),
            members: RwLock::new(Arc::new(members)),
            counters: Counters::default(),
            inbound: inbound_tx,
            timing: config.timing,
            limits: config.limits,
            runtime: tokio::runtime::Handle::current(),
            shutdown: watch::channel(false).0,
            task_guard: Mutex::new(Some(guard_tx)),
            tasks_done: Mutex::new(Some(guard_rx)),
            next_seq: AtomicU64::new(0),
        });

        shared.spawn(accept_loop(shared.clone()));
        let members = shared.members();
        for peer in members.peers.values().filter(|p| !members.passive.contains(&p.id)) {
            shared.spawn(dial_loop(shared.clone(), peer.clone()));
        }
        tracing::info!(me = %config.me, addr = %local_addr, peers = members.peers.len(), "transport started");
        Ok((Transport { handle: Arc::new(Handle { shared }) }, inbound_rx))
    }

    /// The link filter: silently drop traffic from `peer` (`inbound`) and/or to `peer`
    /// (`outbound`), counting every drop; `false, false` restores delivery. QUIC itself keeps
    /// running underneath (keep-alives, the connection), so lifting the filter restores
    /// delivery at once. For tests and the in-process demo's partitions.
    pub fn set_blocked(&self, peer: NodeId, inbound: bool, outbound: bool) -> Result<(), TransportError> {
        let p = self.handle.shared.peer(peer).ok_or(TransportError::UnknownPeer { peer })?;
        p.set_blocked(inbound, outbound);
        tracing::info!(%peer, inbound, outbound, "link filter set");
        Ok(())
    }

    /// A copy of the counters.
    pub fn counters(&self) -> TransportCounters {
        self.handle.shared.counters.snapshot()
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.shared.local_addr
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.handle.shared.me
    }

    /// Peers with a live, authenticated connection, in id order.
    pub fn connected_peers(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .handle
            .shared
            .members()
            .peers
            .values()
            .filter(|p| p.connection().is_some())
            .map(|p| p.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Where `peer`'s address stands: fixed, or its name's last lookup; `None` if `peer` is
    /// not a configured peer.
    pub fn resolution(&self, peer: NodeId) -> Option<(MemberAddress, Resolution)> {
        let p = self.handle.shared.peer(peer)?;
        Some((p.address.clone(), p.resolution()))
    }

    /// The live connection to `peer`, described; `None` if there is none.
    pub fn link(&self, peer: NodeId) -> Option<LinkInfo> {
        let p = self.handle.shared.peer(peer)?;
        let (conn, dialed_by) = p.connection_and_dialer()?;
        let stats = conn.stats();
        let f = stats.frame_tx;
        Some(LinkInfo {
            peer,
            remote: conn.remote_address(),
            dialed_by,
            rtt: conn.rtt(),
            udp_tx_datagrams: stats.udp_tx.datagrams,
            udp_tx_bytes: stats.udp_tx.bytes,
            frames_tx: FramesSent {
                ack: f.acks,
                datagram: f.datagram,
                stream: f.stream,
                ping: f.ping,
                flow_control: f.max_streams_bidi + f.max_streams_uni + f.max_stream_data + f.max_data,
                ack_frequency: f.ack_frequency,
            },
            lost_packets: stats.path.lost_packets,
        })
    }

    /// Replaces the member list while the transport runs (online membership change):
    /// `members` is the whole new list (this node in it or not), checked as
    /// [`TransportConfig::members`] is at start, and `passive` the peers this node does not
    /// dial (a kept peer that stops being passive is dialed from now on; one that becomes
    /// passive keeps being dialed). A peer whose id and address are unchanged keeps its
    /// connection; a new peer is dialed (unless passive) and accepted; a peer that is gone
    /// is no longer dialed or accepted, and its connection is closed with
    /// [`crate::CLOSE_REMOVED`]; a peer whose address changed has its connection closed with
    /// [`crate::CLOSE_MOVED`] and is dialed afresh at the new one. Datagrams and requests to
    /// a removed peer fail with [`TransportError::UnknownPeer`]; when it dials this node, its
    /// connection is closed with [`crate::CLOSE_REMOVED`] so that it learns it is no member
    /// (see [`Transport::refused_as_non_member`]; the last [`crate::FORMER_MEMBERS_MAX`]
    /// removed ids are remembered for this). Returns the ids added and removed.
    pub fn set_members(
        &self,
        members: Vec<(NodeId, MemberAddress)>,
        passive: &[NodeId],
    ) -> Result<MemberChanges, TransportError> {
        let shared = &self.handle.shared;
        check_members(shared.me, &members)?;
        let passive = passive.iter().copied().collect();
        let (gone, new, was_passive) = {
            let mut current = shared.members.write();
            let next = Members::build(shared.me, &shared.cluster_name, &members, passive, Some(&current))?;
            let (gone, new) = current.changes(&next);
            let was_passive = current.passive.clone();
            *current = Arc::new(next);
            (gone, new, was_passive)
        };
        for peer in &gone {
            // An id still listed changed its address: that connection goes where the peer
            // no longer is; only an id no longer listed hears that it is not a member.
            let still = shared.peer(peer.id).is_some();
            peer.remove(if still { CLOSE_MOVED } else { CLOSE_REMOVED });
        }
        // Dial every new peer, and every kept peer that was passive and is no longer.
        let members = shared.members();
        let kept_now_dialed = members
            .peers
            .values()
            .filter(|p| was_passive.contains(&p.id) && !new.iter().any(|n| Arc::ptr_eq(n, p)));
        for peer in new.iter().chain(kept_now_dialed).filter(|p| !members.passive.contains(&p.id)) {
            shared.spawn(dial_loop(shared.clone(), peer.clone()));
        }
        let ids = |peers: &[Arc<Peer>]| {
            let mut ids: Vec<NodeId> = peers.iter().map(|p| p.id).collect();
            ids.sort();
            ids
        };
        let changes = MemberChanges { added: ids(&new), removed: ids(&gone) };
        tracing::info!(added = ?changes.added, removed = ?changes.removed, "members changed");
        Ok(changes)
    }

    /// The peers whose last word on a connection from this node was [`crate::CLOSE_REMOVED`]:
    /// they do not count this node a member (they removed it, or run a definition that does
    /// not list it). Set when such a peer closes or refuses a connection with that code
    /// (counted as `closed_as_non_member`), cleared when a connection to it is kept. Peers in
    /// id order. What to conclude is the caller's business: the transport keeps dialing.
    pub fn refused_as_non_member(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> =
            self.handle.shared.members().peers.values().filter(|p| p.refuses_us()).map(|p| p.id).collect();
        ids.sort_unstable();
        ids
    }

    /// QUIC connections the endpoint holds, including ones being refused, closed as
    /// duplicates or draining. Settles at one per connected peer.
    pub fn open_connections(&self) -> usize {
        self.handle.shared.endpoint.open_connections()
    }

    /// Closes every connection (peers see [`CLOSE_SHUTDOWN`]), stops all tasks, and waits up
    /// to [`SHUTDOWN_WAIT_MAX`] for the tasks to end and [`SHUTDOWN_DRAIN_MAX`] for the
    /// connections to drain.
    /// Idempotent. The UDP socket is released once the last clone is dropped.
    pub async fn shutdown(&self) {
        let shared = &self.handle.shared;
        shared.begin_shutdown();
        let done = shared.tasks_done.lock().take();
        if let Some(mut done) = done {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT_MAX, done.recv()).await;
        }
        let _ = tokio::time::timeout(SHUTDOWN_DRAIN_MAX, shared.endpoint.wait_idle()).await;
        tracing::info!(me = %shared.me, "transport shut down");
    }
}

impl Intake for EndpointState {
    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn inbound(&self) -> &mpsc::Sender<Inbound> {
        &self.inbound
    }

    fn serve_timeout(&self) -> Duration {
        self.timing.serve_timeout
    }

    fn spawn_task(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.spawn(task);
    }
}

impl EndpointState {
    /// Spawns `task` so that it ends at shutdown and holds a guard `shutdown` can wait on.
    /// After shutdown began, does nothing.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let Some(guard) = self.task_guard.lock().clone() else { return };
        let mut shutdown = self.shutdown.subscribe();
        self.runtime.spawn(async move {
            let _guard = guard;
            tokio::select! {
                () = task => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }

    fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        self.task_guard.lock().take();
        self.endpoint.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"node shutting down");
        for peer in self.members().peers.values() {
            peer.clear();
        }
    }

    /// Offers an authenticated connection to `peer`'s slot and serves it if it is kept.
    pub(crate) fn install(self: &Arc<Self>, peer: &Arc<Peer>, conn: Connection, dialer: NodeId) {
        let c = &self.counters;
        if peer.is_removed() {
            conn.close(VarInt::from_u32(peer.removed_code()), b"not a member");
            bump(&c.refused_unknown_node);
            return;
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        match peer.install(self.me, conn.clone(), dialer, seq) {
            Installation::Kept { replaced, reconnect } => {
                bump(&c.connections_established);
                // A peer that refuses this node still completes the handshake and then
                // closes: only a connection that stays up a while says it accepts us again
                // (clearing at once would hide the refusal between two dials).
                if peer.refuses_us() {
                    let (peer, conn) = (peer.clone(), conn.clone());
                    self.spawn(async move {
                        tokio::time::sleep(ACCEPTED_AGAIN_AFTER).await;
                        if conn.close_reason().is_none() && peer.set_refuses_us(false) {
                            tracing::info!(peer = %peer.id, "peer accepts this node as a member again");
                        }
                    });
                }
                if reconnect {
                    bump(&c.reconnects);
                }
                if let Some(old) = replaced {
                    old.close(VarInt::from_u32(CLOSE_DUPLICATE), b"duplicate connection");
                    bump(&c.duplicates_closed);
                }
                tracing::debug!(peer = %peer.id, dialed_by = %dialer, "connection up");
                self.spawn(serve_connection(self.clone(), peer.clone(), conn, seq));
            }
            Installation::Lost => {
                // A named peer dialing in from another address than the connection we keep
                // may have moved: the dial loop looks its name up again (see `dial.rs`).
                let moved =
                    |kept: Connection| canonical(kept.remote_address()) != canonical(conn.remote_address());
                if dialer != self.me
                    && peer.address.host_name().is_some()
                    && peer.connection().is_some_and(moved)
                {
                    peer.recheck.notify_one();
                }
                conn.close(VarInt::from_u32(CLOSE_DUPLICATE), b"duplicate connection");
                bump(&c.duplicates_closed);
            }
        }
    }

    /// Completes an inbound handshake and accepts the connection only if its certificate
    /// names a member other than us and, for a member configured at an IP address, it comes
    /// from that address (see "Source addresses and names").
    async fn accept(self: Arc<Self>, incoming: quinn::Incoming) {
        let c = &self.counters;
        let connecting = match incoming.accept() {
            Ok(connecting) => connecting,
            Err(_) => {
                bump(&c.refused_handshake_failed);
                return;
            }
        };
        let conn = match tokio::time::timeout(self.timing.handshake_timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                match classify_handshake_error(&e) {
                    HandshakeFailure::NoCert => bump(&c.refused_no_client_cert),
                    HandshakeFailure::BadChain => bump(&c.refused_bad_chain),
                    HandshakeFailure::Other => bump(&c.refused_handshake_failed),
                }
                tracing::debug!(error = %e, "inbound handshake failed");
                return;
            }
            Err(_) => {
                bump(&c.refused_handshake_failed);
                return;
            }
        };
        let refuse = |counter: &AtomicU64, why: &'static str| {
            bump(counter);
            tracing::warn!(remote = %conn.remote_address(), why, "refused connection");
            conn.close(VarInt::from_u32(CLOSE_REFUSED), why.as_bytes());
        };
        let members = self.members();
        let node = match identify_client(conn.peer_identity(), &members.names, self.me) {
            Ok(node) => node,
            Err(CertRefusal::NoClientCert) => {
                return refuse(&c.refused_no_client_cert, "no client certificate")
            }
            Err(CertRefusal::BadChain) => return refuse(&c.refused_bad_chain, "unreadable certificate"),
            Err(CertRefusal::UnknownNode) => match members.former_member(conn.peer_identity(), self.me) {
                // Tell it, so that a member removed while it was down learns it (see
                // "Former members" in `members.rs`).
                Some(former) => {
                    bump(&c.refused_former_member);
                    tracing::info!(peer = %former, "refused a former member: it is no longer a member");
                    return conn.close(VarInt::from_u32(CLOSE_REMOVED), b"not a member");
                }
                None => return refuse(&c.refused_unknown_node, "certificate names no peer"),
            },
        };
        let Some(peer) = members.peers.get(&node) else {
            return refuse(&c.refused_unknown_node, "certificate names no peer");
        };
        if peer.address.ip().is_some_and(|addr| addr != canonical(conn.remote_address())) {
            return refuse(&c.refused_address_mismatch, "address is not the member's");
        }
        self.install(peer, conn, node);
    }
}

impl EndpointState {
    /// Whether `source` is a member's address: configured, or a named member's last lookup;
    /// or a former member's (see "Former members" in `members.rs`).
    fn known_source(&self, source: SocketAddr) -> bool {
        let members = self.members();
        members.members_at.contains_key(&source)
            || members.former_at.contains_key(&source)
            || (members.any_named
                && members.peers.values().any(|p| p.resolution() == Resolution::Resolved(source)))
    }

    /// The members now.
    pub(crate) fn members(&self) -> Arc<Members> {
        self.members.read().clone()
    }

    /// The member `id` (not this node), if it is one now.
    pub(crate) fn peer(&self, id: NodeId) -> Option<Arc<Peer>> {
        self.members.read().peers.get(&id).cloned()
    }
}

async fn accept_loop(shared: Arc<EndpointState>) {
    let handshakes = Arc::new(Semaphore::new(shared.limits.handshakes_in_flight));
    let c = &shared.counters;
    while let Some(incoming) = shared.endpoint.accept().await {
        // Strangers get no answer and cost no crypto work, unless a member is named and
        // may be dialing from an address this node has not looked up yet.
        let source = canonical(incoming.remote_address());
        if !shared.known_source(source) {
            if !shared.members().any_named {
                bump(&c.refused_address_mismatch);
                tracing::debug!(remote = %source, "ignored connection from a non-member address");
                incoming.ignore();
                continue;
            }
            bump(&c.handshakes_from_unlisted_address);
        }
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            bump(&c.refused_handshake_failed);
            incoming.ignore();
            continue;
        };
        let accepting = shared.clone().accept(incoming);
        shared.spawn(async move {
            let _permit = permit;
            accepting.await;
        });
    }
}
