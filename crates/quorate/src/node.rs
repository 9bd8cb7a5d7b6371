//! [`Node`]: the tokio runtime that wires the QUIC transport to the sans-IO core.
//!
//! ```text
//!   Transport (quinn) ──Inbound::Datagram──► driver task ──► core.handle_datagram(now, ..)
//!        ▲                                      │  sleep until core.poll_timeout()
//!        └──────── send_datagram ◄── poll_transmit          core.handle_timeout(now)
//!                                               └─► poll_event ─► event log (bounded)
//! ```
//!
//! One driver task owns the loop; the core sits behind a mutex only so that `status()` can
//! read it. Nothing on the receive path waits for anything but that mutex: datagrams that
//! cannot be sent are dropped by the transport, event lines that the writer cannot keep up
//! with are dropped and counted. `now` always comes from the gate's clock, so the handles and
//! the core agree on time.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use quorate_core::ValidConfig;
use quorate_gate::{Clock, Publisher, QuorumGate};
use quorate_proto::{Change, Incarnation, NodeId, Roster};
use quorate_transport::{LinkInfo, MemberAddress, PkiError, Transport, TransportConfig, TransportError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::admin;
use crate::certificates;
use crate::config::{Config, ConfigError};
use crate::data_dir::{DataDir, DataDirError};
use crate::events::EventSink;
use crate::metrics::Observed;
use crate::reconfigure::{self, ChangeRefused};
use crate::refused::Removal;
use crate::start::{self, Life};
use crate::status::{self, NodeStatus};

/// A direct poll of a suspect peer gives up after this many heartbeat intervals: long
/// enough for a QUIC retransmission or two, short enough to matter before the down floor.
pub const POLL_DEADLINE_INTERVALS: u32 = 3;

/// How often the driver compares the down floor with the measured round trips.
pub(crate) const RTT_CHECK_EVERY: Duration = Duration::from_secs(10);

/// Poll replies waiting for the driver.
pub(crate) const POLL_REPLIES_MAX: usize = 256;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The certificates could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] PkiError),
    /// The QUIC endpoint could not start (address in use, bad certificate...).
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory cannot be used (unwritable, locked by another process, or its
    /// state file is corrupt). Nothing was sent.
    #[error("{0}")]
    DataDir(#[from] DataDirError),
    /// The definition kept in the data directory does not list this node: it was removed
    /// from the cluster while it ran (or while it was down). Nothing was written or sent.
    #[error(
        "node {id} was removed from the cluster by definition version {version} (kept in {}); it \
         does not start. If it is gone for good, retire its host and data directory. To bring it \
         back, add it again from a running member (`quorate members add --id {} --addr ...`), then \
         start it with a configuration file listing the current members and a new, empty data \
         directory. Never start it with its old file and an empty data directory before it is added \
         back (docs/operations.md)",
        dir.display(),
        id.0
    )]
    Removed {
        /// This node.
        id: NodeId,
        /// The version that removed it.
        version: u64,
        /// Its data directory.
        dir: PathBuf,
    },
    /// The event log could not be opened.
    #[error("cannot open event log {path}: {source}")]
    EventLog {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A running quorate node. Dropping it without [`Node::shutdown`] stops it abruptly: the
/// gate fences at once but peers find out only after their down floor, as after a crash.
/// `shutdown` fences the gate and then tells the peers, which let it go at once.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Running>,
    gate: QuorumGate,
    stop: watch::Sender<bool>,
    driver: Option<JoinHandle<()>>,
    admin: Option<JoinHandle<()>>,
    admin_addr: Option<SocketAddr>,
    log_writer: Option<JoinHandle<()>>,
    incarnation: Incarnation,
    /// Operator changes to the driver.
    changes: mpsc::Sender<reconfigure::Request>,
}

/// What the node's tasks share while it runs: the core, the transport, the clock.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) cluster: String,
    pub(crate) core: Mutex<quorate_core::Node>,
    pub(crate) transport: Transport,
    pub(crate) clock: Clock,
    /// Where the core's events and status snapshots go out to the gate's readers.
    pub(crate) publisher: Publisher,
    pub(crate) events_dropped: AtomicU64,
    /// How long a direct poll of a suspect peer may take.
    pub(crate) poll_deadline: Duration,
    pub(crate) down_after_min: Duration,
    /// The data directory (its lock held for the node's life), where the core's promises
    /// are persisted next to the incarnation.
    pub(crate) data_dir: Option<DataDir>,
    pub(crate) incarnation: Incarnation,
    /// When persisting promises last failed, to warn once per [`PERSIST_WARN_EVERY`].
    pub(crate) persist_failed_at: Mutex<Option<std::time::Instant>>,
    /// The histograms `/metrics` shows, fed by the driver.
    pub(crate) observed: Observed,
    /// The certificate files the node runs with (for days-until-expiry).
    pub(crate) certificates: Vec<certificates::Loaded>,
    /// True while the driver task runs (`/healthz`).
    pub(crate) driver_running: Arc<AtomicBool>,
    /// Why this node left the cluster of its own accord, once it did: a definition that
    /// removed it, or its members' refusals (see `refused.rs`).
    pub(crate) removed: watch::Sender<Option<Removal>>,
    /// The runtime's counters of definition changes.
    pub(crate) reconfig: reconfigure::Counters,
    /// The node's own settings an online timing preset does not replace.
    pub(crate) timing_kept: crate::timing::Kept,
}

/// How many times a graceful shutdown sends its leave datagrams, and how far apart.
const LEAVE_SENDS: usize = 2;
const LEAVE_SPACING: Duration = Duration::from_millis(25);

/// A failing data directory is reported at most this often (the write is retried on every
/// loop; until it succeeds the core makes no promise the record does not cover).
pub(crate) const PERSIST_WARN_EVERY: Duration = Duration::from_secs(10);

impl Running {
    pub(crate) fn status(&self) -> NodeStatus {
        let now = self.clock.now();
        let counters = self.transport.counters();
        let core = self.core.lock();
        let gate_status = core.status(now);
        let mut status = status::build(
            &self.cluster,
            &core,
            &gate_status,
            now,
            |p| self.transport.link(p),
            |p| self.transport.resolution(p),
            &counters,
        );
        status.certificates = certificates::report(&self.certificates, SystemTime::now());
        let removal = self.removed.borrow().clone();
        status.removed_at_version = removal.as_ref().and_then(Removal::version);
        status.removed_by_refusals = matches!(removal, Some(Removal::RefusedAsNonMember { .. }));
        status.refused_as_non_member_by =
            self.transport.refused_as_non_member().iter().map(|p| p.0).collect();
        status.reconfiguration =
            self.reconfig.snapshot().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        status
    }
}

impl Node {
    /// Starts a node: binds `config.listen`, connects to the members and begins
    /// heartbeating. The node starts fenced and becomes writable once it holds a quorum of
    /// vote leases (typically within two heartbeat intervals of its peers being up).
    pub async fn start(config: Config) -> Result<Node, StartError> {
        let core = config.check()?;
        let socket = UdpSocket::bind(config.listen)
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        Self::start_checked(config, core, socket).await
    }

    /// Like [`Node::start`], on a UDP socket the caller bound already (to learn an
    /// OS-assigned port before telling the other members).
    ///
    /// A voter needs `config.data_dir`: its incarnation is taken as `max(wall clock ms,
    /// last + 1)` and stored there (fsync, atomic rename) before anything is sent, so that
    /// epochs never go backwards across restarts whatever the wall clock does.
    pub async fn start_on(config: Config, socket: UdpSocket) -> Result<Node, StartError> {
        let core = config.check()?;
        Self::start_checked(config, core, socket).await
    }

    /// Starts the node `config` describes; `core` is its part that passed [`Config::check`].
    async fn start_checked(config: Config, core: ValidConfig, socket: UdpSocket) -> Result<Node, StartError> {
        let identity = config.tls_identity()?;
        // Before the transport exists: the new incarnation is on disk before the first packet.
        let Life { dir: data_dir, incarnation, memory, roster } = start::begin_life(&config)?;
        let (config, core) = start::with_kept_timing(config, core, roster.as_ref())?;
        let core = start::with_kept(&config, core, roster)?;
        let listen =
            socket.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let (members, passive) = start::transport_members(&config, core.roster());
        let mut transport_config =
            TransportConfig::new(config.id, config.cluster.clone(), listen, members, (*identity).clone());
        transport_config.passive = passive;
        let (transport, inbound) = Transport::start_on(transport_config, socket).await?;

        let clock = Clock::system();
        let now = clock.now();
        let seed = incarnation.0 ^ config.id.0.rotate_left(32);
        let made = quorate_core::Node::with_memory(core, incarnation, memory, clock.clone(), now, seed);
        let (mut core, gate) = match made {
            Ok(made) => made,
            Err(e) => {
                transport.shutdown().await;
                return Err(StartError::Config(e.into()));
            }
        };

        // What the earlier lives heard their peers run, before anything is heard in this one.
        if let Some(dir) = data_dir.as_ref() {
            match dir.load_peers() {
                Ok(peers) => core.remember_definitions(now, &peers),
                Err(e) => {
                    transport.shutdown().await;
                    return Err(e.into());
                }
            }
        }
        // This life's own promises (its fence hold) are on disk before the first packet.
        if let Err(e) = crate::driver::persist_promises(&mut core, data_dir.as_ref(), incarnation) {
            transport.shutdown().await;
            return Err(e.into());
        }

        let (sink, log_writer) = match start::open_event_log(&config.events_out)? {
            Some(out) => {
                let (sink, task) = EventSink::start(out);
                (Some(sink), Some(task))
            }
            None => (None, None),
        };
        let publisher = core.publisher();
        let shared = Arc::new(Running {
            cluster: config.cluster.clone(),
            core: Mutex::new(core),
            transport,
            clock,
            publisher,
            events_dropped: AtomicU64::new(0),
            poll_deadline: config.detector.heartbeat_interval.saturating_mul(POLL_DEADLINE_INTERVALS),
            down_after_min: config.detector.down_after_min,
            data_dir,
            incarnation,
            persist_failed_at: Mutex::new(None),
            observed: Observed::new(),
            certificates: certificates::load(&config),
            driver_running: Arc::new(AtomicBool::new(true)),
            removed: watch::Sender::new(None),
            reconfig: reconfigure::Counters::default(),
            timing_kept: crate::timing::Kept { gate: config.gate.clone(), gossip: config.gossip.clone() },
        });
        let (stop, stop_rx) = watch::channel(false);
        let (changes, changes_rx) = mpsc::channel(reconfigure::REQUESTS_MAX);
        let span = tracing::info_span!("quorate_node", node = config.id.0, incarnation = incarnation.0);
        let driver = tokio::spawn(tracing::Instrument::instrument(
            crate::driver::drive(shared.clone(), inbound, changes_rx, stop_rx, sink, config.id),
            span,
        ));
        let (admin, admin_addr) = match config.admin {
            Some(addr) => {
                let (status, lines) = (shared.clone(), shared.clone());
                let source = admin::Source {
                    status: Arc::new(move || status.status()),
                    observed: shared.observed.clone(),
                    driver_running: shared.driver_running.clone(),
                    event_lines_dropped: Arc::new(move || lines.events_dropped.load(Ordering::Relaxed)),
                    changes: changes.clone(),
                };
                let (task, bound) = admin::serve(addr, source, stop.subscribe())
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?;
                (Some(task), Some(bound))
            }
            None => (None, None),
        };
        tracing::info!(node = config.id.0, %listen, incarnation = incarnation.0, "quorate node started");
        Ok(Node {
            shared,
            gate,
            stop,
            driver: Some(driver),
            admin,
            admin_addr,
            log_writer,
            incarnation,
            changes,
        })
    }

    /// This life's incarnation: larger than every earlier life's when the node has a data
    /// directory. Epochs of this life are `incarnation * 2^20 + n`.
    pub fn incarnation(&self) -> u64 {
        self.incarnation.0
    }

    /// The data directory this node holds locked, if it has one.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.shared.data_dir.as_ref().map(DataDir::path)
    }

    /// The write gate: cheap to clone, `Send + Sync`.
    pub fn gate(&self) -> QuorumGate {
        self.gate.clone()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.transport.me()
    }

    /// The QUIC address this node listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.transport.local_addr()
    }

    /// The admin address (`/metrics`, `/status`) actually bound, if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The cluster as this node sees it now.
    pub fn status(&self) -> NodeStatus {
        self.shared.status()
    }

    /// The QUIC connection to `peer`, if one is up: RTT and UDP send statistics.
    pub fn link_info(&self, peer: NodeId) -> Option<LinkInfo> {
        self.shared.transport.link(peer)
    }

    /// Event lines dropped because the log writer fell behind.
    pub fn events_dropped(&self) -> u64 {
        self.shared.events_dropped.load(Ordering::Relaxed)
    }

    /// Drops traffic to (`outbound`) and from (`inbound`) `peer`, as a network partition
    /// would: the in-process link filter for demos and tests. `false, false` lifts it.
    pub fn set_link_blocked(
        &self,
        peer: NodeId,
        inbound: bool,
        outbound: bool,
    ) -> Result<(), TransportError> {
        self.shared.transport.set_blocked(peer, inbound, outbound)
    }

    /// Makes one change to the cluster's definition from this node (what `quorate members`
    /// and `quorate config set` send to the admin endpoint): checked by the core (one change
    /// at a time, the succession check), persisted in the data directory, then run here;
    /// the other members adopt it when they hear it. `address` is where a member that the
    /// change adds is dialed. Returns the new definition; [`NodeStatus`] shows which peers
    /// run it (`peers[].definition_version`).
    pub async fn change(
        &self,
        change: Change,
        address: Option<MemberAddress>,
    ) -> Result<Roster, ChangeRefused> {
        submit(&self.changes, reconfigure::Proposal::Change(change), address).await
    }

    /// Makes the cluster run timing preset `name` (`lan` or `wan`, see
    /// [`crate::TIMING_PRESETS`]): the next definition names it, and every node that adopts
    /// it switches its timing without a restart (this one at once). Refused while the
    /// previous change is under way, for an unknown preset and for the preset in force.
    pub async fn set_timing_preset(&self, name: &str) -> Result<Roster, ChangeRefused> {
        submit(&self.changes, reconfigure::Proposal::Timing(name.to_owned()), None).await
    }

    /// The definition this node runs: version, members with votes and addresses.
    pub fn definition(&self) -> Roster {
        self.shared.core.lock().roster().clone()
    }

    /// The definition version that removed this node from the cluster, once one did: the
    /// node has then fenced itself for good and left (its process should stop). See
    /// [`Node::removal`] for a removal the node inferred from its members' refusals.
    pub fn removed(&self) -> Option<u64> {
        self.shared.removed.borrow().as_ref().and_then(Removal::version)
    }

    /// Why this node left the cluster of its own accord, once it did: a definition removed
    /// it, or peers carrying a quorum of its definition's votes refuse it as a non-member
    /// (it was removed while it was down). Either way it has fenced itself for good and
    /// left; its process should stop.
    pub fn removal(&self) -> Option<Removal> {
        self.shared.removed.borrow().clone()
    }

    /// Waits until a definition removes this node from the cluster; the version that did.
    /// A removal inferred from refusals does not end this wait; [`Node::wait_removal`]
    /// waits for either.
    pub async fn wait_removed(&self) -> u64 {
        match self.wait_removal().await.version() {
            Some(version) => version,
            // Inferred from refusals: no version will come (the node has stopped).
            None => std::future::pending().await,
        }
    }

    /// Waits until this node leaves the cluster of its own accord (see [`Node::removal`]).
    pub async fn wait_removal(&self) -> Removal {
        let mut rx = self.shared.removed.subscribe();
        loop {
            if let Some(removal) = rx.borrow_and_update().clone() {
                return removal;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `shared`, which this node holds: never closed here.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Leaves gracefully: the gate fences first (every handle answers `Stopped`), then the
    /// driver stops and connections close.
    pub async fn shutdown(mut self) {
        self.stop_all().await;
    }

    async fn stop_all(&mut self) {
        let leaves: Vec<(NodeId, Bytes)> = {
            // Fence first, then tell the peers (the core queues the leaves behind the fence).
            let now = self.shared.clock.now();
            let mut core = self.shared.core.lock();
            core.shutdown(now);
            std::iter::from_fn(|| core.poll_transmit()).map(|t| (t.to, Bytes::from(t.payload))).collect()
        };
        // Datagrams may be lost, and on a busy machine the endpoint may not get to send them
        // before the connections close: send the leaves twice, a moment apart (a repeated
        // leave is ignored), and give them a moment more. A leave that is lost anyway only
        // makes peers wait for their down floor, as after a crash.
        for round in 0..LEAVE_SENDS {
            if round > 0 {
                tokio::time::sleep(LEAVE_SPACING).await;
            }
            for (to, payload) in &leaves {
                let _ = self.shared.transport.send_datagram(*to, payload.clone());
            }
        }
        tokio::time::sleep(LEAVE_SPACING).await;
        let _ = self.stop.send(true);
        for task in [self.driver.take(), self.admin.take()].into_iter().flatten() {
            let _ = task.await;
        }
        self.shared.transport.shutdown().await;
        if let Some(task) = self.log_writer.take() {
            // The writer ends when the driver's sink is dropped; give it a moment to flush.
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Not shut down gracefully: fence the gate and stop the tasks, without a leave
        // (peers find out after their down floor, as after a crash).
        if self.driver.is_some() {
            let now = self.shared.clock.now();
            self.shared.core.lock().halt(now);
            let _ = self.stop.send(true);
        }
    }
}

/// Hands `change` to the driver and waits for its answer.
pub(crate) async fn submit(
    changes: &mpsc::Sender<reconfigure::Request>,
    change: reconfigure::Proposal,
    address: Option<MemberAddress>,
) -> Result<Roster, ChangeRefused> {
    let (reply, answer) = oneshot::channel();
    changes.try_send(reconfigure::Request { change, address, reply }).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => ChangeRefused::Busy,
        mpsc::error::TrySendError::Closed(_) => ChangeRefused::Stopped,
    })?;
    answer.await.unwrap_or(Err(ChangeRefused::Stopped))
}
