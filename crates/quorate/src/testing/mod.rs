//! A whole cluster in one process, over real QUIC on 127.0.0.1: the one harness behind the
//! demo, the benchmarks, the loopback tests and the examples (cargo feature `testing`).
//!
//! ```text
//!   LocalCluster::builder("name", N)  certificates, N sockets on 127.0.0.1:0, configs
//!       .configure(|config| ..)       per-node changes (timing, votes, TLS, data dir)
//!       .prepare()? ── take(id) ──►   a node the caller starts its own way
//!       .start().await?               Node::start_on for the rest
//!   cluster.wait_all_writable(limit)  polls every gate (5 ms) until writable, or an error
//!   cluster.cut(&[1], &[2, 3])?       in-process link filter, both directions, both ends
//!   cluster.heal()?                   lifts every cut
//!   cluster.take(id) / start_node(id) crash (drop) or stop a node; start it on its address
//!   cluster.fence_bound()             lease x (1 + drift) + scheduling margin
//!   cluster.shutdown().await          every node at once, bounded; data directories go
//! ```
//!
//! Every node is a voter with a data directory of its own under one temporary directory,
//! removed when the cluster is dropped. A cut is the nodes' own link filter
//! ([`Node::set_link_blocked`]): packets are dropped where they leave and where they
//! arrive, as a network partition would, and the QUIC connections stay up underneath.

mod prepare;

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use quorate_core::ProposeError;
use quorate_gate::QuorumGate;
use quorate_proto::{NodeId, Roster};
use quorate_transport::{PkiError, TransportError};

pub use prepare::{Builder, Prepared};

use crate::config::{Config, ConfigError};
use crate::node::{Node, StartError};
use crate::reconfigure::ChangeRefused;

/// Time allowed beyond `lease x (1 + drift)` for a node's runtime to notice and for thread
/// scheduling on a busy machine, when the nodes share this process; the guarantee itself
/// has no such term.
pub const SCHEDULING_MARGIN: Duration = Duration::from_millis(50);

/// How often the waits poll the gates.
pub const POLL: Duration = Duration::from_millis(5);

/// Time allowed for all nodes together to shut down.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`LocalCluster::start_node`] retries binding a node's address, which the
/// node's previous life releases shortly after its last task ends.
pub const REBIND_WAIT_MAX: Duration = Duration::from_secs(3);

/// The most a node cut off from every quorum of an in-process cluster may take to fence:
/// the promise `lease x (1 + drift)` ([`crate::fence_promise`]) plus [`SCHEDULING_MARGIN`].
pub fn fence_bound(lease: Duration, max_clock_drift: f64) -> Duration {
    quorate_gate::fence_promise(lease, max_clock_drift).saturating_add(SCHEDULING_MARGIN)
}

/// Polls `done` every [`POLL`] until it holds (then: how long that took) or `limit` has
/// passed (`None`).
pub async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    loop {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Between two tries of [`retry_while_pending`].
const PENDING_RETRY: Duration = Duration::from_millis(20);

/// Makes a change with `attempt` (`Node::change`, `Node::set_timing_preset`), tried again
/// every 20 ms while it is refused as pending (the previous change is still spreading: its
/// last voters are heard running it a heartbeat after they adopt), for at most `limit`.
/// Any other answer is returned as it is.
pub async fn retry_while_pending<F, Fut>(limit: Duration, mut attempt: F) -> Result<Roster, ChangeRefused>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Roster, ChangeRefused>>,
{
    let start = std::time::Instant::now();
    loop {
        match attempt().await {
            Err(ChangeRefused::Propose(ProposeError::Pending { .. })) if start.elapsed() < limit => {
                tokio::time::sleep(PENDING_RETRY).await;
            }
            other => return other,
        }
    }
}

/// What went wrong in the harness (not in the cluster's behaviour, which callers judge).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The development certificates could not be generated.
    #[error("cannot generate the cluster's certificates: {0}")]
    Pki(#[from] PkiError),
    /// No UDP socket on 127.0.0.1 (or not on a node's own address, at a restart).
    #[error("cannot bind a UDP socket on 127.0.0.1: {0}")]
    Bind(std::io::Error),
    /// The directory for the nodes' data directories could not be created.
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A node's configuration is invalid ([`Prepared::check`]).
    #[error("{id}: {source}")]
    Config {
        /// The node.
        id: NodeId,
        /// The rule it breaks.
        source: ConfigError,
    },
    /// A node did not start; the nodes started before it were shut down.
    #[error("cannot start {id}: {source}")]
    Start {
        /// The node.
        id: NodeId,
        /// Why (boxed: a start error is large, and rare).
        source: Box<StartError>,
    },
    /// The cluster has no such member.
    #[error("{id} is not a member of this cluster")]
    NoSuchNode {
        /// The node asked for.
        id: NodeId,
    },
    /// The node was taken out before ([`Prepared::take`]).
    #[error("{id} was taken out already")]
    Taken {
        /// The node.
        id: NodeId,
    },
    /// [`LocalCluster::start_node`] on a node that runs.
    #[error("{id} is running")]
    Running {
        /// The node.
        id: NodeId,
    },
    /// A node's link filter refused a change.
    #[error("cannot change the link filter of {id}: {source}")]
    LinkFilter {
        /// The node whose filter it is.
        id: NodeId,
        /// Why.
        source: TransportError,
    },
    /// Not every node asked for became writable in time.
    #[error("not writable within {waited:?}: {fenced:?}")]
    NotWritable {
        /// How long the wait lasted.
        waited: Duration,
        /// The nodes still fenced (or not running) when it gave up.
        fenced: Vec<NodeId>,
    },
    /// Not every node finished its shutdown within [`SHUTDOWN_TIMEOUT`].
    #[error("the nodes did not finish shutting down within {0:?}")]
    ShutdownTimeout(Duration),
}

/// N nodes of one cluster running in this process (see the module docs).
pub struct LocalCluster {
    /// One per member, in node order. Declared before `dir`: nodes are dropped (and release
    /// their data directories) before the directory is removed.
    slots: Vec<Slot>,
    /// Links blocked by [`LocalCluster::cut`]: (node whose filter, peer).
    cut: BTreeSet<(NodeId, NodeId)>,
    dir: prepare::ClusterDir,
}

/// A member: its configuration, and the node when it runs here.
struct Slot {
    config: Config,
    node: Option<Node>,
}

impl LocalCluster {
    /// A cluster named `name` (cluster id, certificate names, data directory) of `nodes`
    /// nodes with ids 1 to `nodes`, LAN defaults.
    pub fn builder<'a>(name: &str, nodes: u64) -> Builder<'a> {
        Builder::new(name, nodes)
    }

    /// Every member's id, in order, running or not.
    pub fn ids(&self) -> Vec<NodeId> {
        self.slots.iter().map(|s| s.config.id).collect()
    }

    /// Member `id`'s configuration.
    pub fn config(&self, id: NodeId) -> Option<&Config> {
        self.slot(id).map(|s| &s.config)
    }

    /// Member `id`'s QUIC address.
    pub fn addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.slot(id).map(|s| s.config.listen)
    }

    /// The directory that holds every node's data directory (`node-<id>`), removed when the
    /// cluster is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Node `id`, if it runs here.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.slot(id).and_then(|s| s.node.as_ref())
    }

    /// The running nodes, in node order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        self.slots.iter().filter_map(|s| s.node.as_ref())
    }

    /// Node `id`'s gate, if it runs here.
    pub fn gate(&self, id: NodeId) -> Option<QuorumGate> {
        self.node(id).map(Node::gate)
    }

    /// The running nodes' gates, in node order.
    pub fn gates(&self) -> Vec<QuorumGate> {
        self.nodes().map(Node::gate).collect()
    }

    /// Takes node `id` out of the cluster: dropping it is a crash (no leave is sent, its
    /// tasks end), [`Node::shutdown`] a graceful leave. Its configuration stays, for
    /// [`LocalCluster::start_node`].
    pub fn take(&mut self, id: NodeId) -> Option<Node> {
        self.slots.iter_mut().find(|s| s.config.id == id).and_then(|s| s.node.take())
    }

    /// Starts member `id` (not running here) with its configuration on its own address, as
    /// a restarted process would: a new life from its data directory. Retries the bind for
    /// up to [`REBIND_WAIT_MAX`] while the previous life releases the port. The links that
    /// [`LocalCluster::cut`] blocked for it are blocked again.
    pub async fn start_node(&mut self, id: NodeId) -> Result<&Node, ClusterError> {
        let index = self.index(id)?;
        if self.slots[index].node.is_some() {
            return Err(ClusterError::Running { id });
        }
        let config = self.slots[index].config.clone();
        let socket = rebind(config.listen).await?;
        let node = Node::start_on(config, socket)
            .await
            .map_err(|e| ClusterError::Start { id, source: Box::new(e) })?;
        for (_, peer) in self.cut.iter().filter(|(from, _)| *from == id) {
            node.set_link_blocked(*peer, true, true)
                .map_err(|source| ClusterError::LinkFilter { id, source })?;
        }
        Ok(self.slots[index].node.insert(node))
    }

    /// Cuts every link between a node of `a` and a node of `b`, both directions, on both
    /// ends. Members that do not run here are cut when [`LocalCluster::start_node`] starts
    /// them.
    pub fn cut(&mut self, a: &[NodeId], b: &[NodeId]) -> Result<(), ClusterError> {
        for &x in a {
            for &y in b {
                for (from, to) in [(x, y), (y, x)] {
                    self.index(from)?;
                    self.filter(from, to, true)?;
                    self.cut.insert((from, to));
                }
            }
        }
        Ok(())
    }

    /// Lifts every cut.
    pub fn heal(&mut self) -> Result<(), ClusterError> {
        while let Some((from, to)) = self.cut.pop_first() {
            self.filter(from, to, false)?;
        }
        Ok(())
    }

    /// Waits until every member is writable; how long that took, or
    /// [`ClusterError::NotWritable`] after `limit`.
    pub async fn wait_all_writable(&self, limit: Duration) -> Result<Duration, ClusterError> {
        self.wait_writable(&self.ids(), limit).await
    }

    /// Waits until the nodes `ids` are writable; how long that took, or
    /// [`ClusterError::NotWritable`] (naming the others) after `limit`.
    pub async fn wait_writable(&self, ids: &[NodeId], limit: Duration) -> Result<Duration, ClusterError> {
        let fenced = || -> Vec<NodeId> {
            ids.iter().copied().filter(|id| !self.node(*id).is_some_and(|n| n.gate().can_write())).collect()
        };
        match wait_until(limit, || fenced().is_empty()).await {
            Some(took) => Ok(took),
            None => Err(ClusterError::NotWritable { waited: limit, fenced: fenced() }),
        }
    }

    /// The most a member cut off from every quorum may take to fence ([`fence_bound`]),
    /// for the member with the longest lease.
    pub fn fence_bound(&self) -> Duration {
        let bounds =
            self.slots.iter().map(|s| fence_bound(s.config.gate.lease, s.config.gate.max_clock_drift));
        bounds.max().unwrap_or(Duration::ZERO)
    }

    /// Shuts every running node down at once (each fences first, then leaves), bounded by
    /// [`SHUTDOWN_TIMEOUT`]; then removes the data directories.
    pub async fn shutdown(mut self) -> Result<(), ClusterError> {
        let nodes = self.slots.iter_mut().filter_map(|s| s.node.take()).collect();
        shutdown_nodes(nodes).await
    }

    fn slot(&self, id: NodeId) -> Option<&Slot> {
        self.slots.iter().find(|s| s.config.id == id)
    }

    fn index(&self, id: NodeId) -> Result<usize, ClusterError> {
        self.slots.iter().position(|s| s.config.id == id).ok_or(ClusterError::NoSuchNode { id })
    }

    /// Sets `from`'s filter for `to` in both directions, if `from` runs here.
    fn filter(&self, from: NodeId, to: NodeId, blocked: bool) -> Result<(), ClusterError> {
        match self.node(from) {
            Some(node) => node
                .set_link_blocked(to, blocked, blocked)
                .map_err(|source| ClusterError::LinkFilter { id: from, source }),
            None => Ok(()),
        }
    }
}

/// Shuts `nodes` down at once, bounded by [`SHUTDOWN_TIMEOUT`].
async fn shutdown_nodes(nodes: Vec<Node>) -> Result<(), ClusterError> {
    let tasks: Vec<_> = nodes.into_iter().map(|n| tokio::spawn(n.shutdown())).collect();
    let all = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    tokio::time::timeout(SHUTDOWN_TIMEOUT, all)
        .await
        .map_err(|_| ClusterError::ShutdownTimeout(SHUTDOWN_TIMEOUT))
}

/// Binds `addr`, retrying every 10 ms for up to [`REBIND_WAIT_MAX`].
async fn rebind(addr: SocketAddr) -> Result<UdpSocket, ClusterError> {
    let start = std::time::Instant::now();
    loop {
        match UdpSocket::bind(addr) {
            Ok(socket) => return Ok(socket),
            Err(e) if start.elapsed() >= REBIND_WAIT_MAX => return Err(ClusterError::Bind(e)),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_fence_bound_is_the_promise_plus_the_scheduling_margin() {
        assert_eq!(fence_bound(Duration::from_millis(900), 0.01), Duration::from_millis(959));
        assert_eq!(fence_bound(Duration::from_secs(1), f64::NAN), Duration::MAX);
    }
}
