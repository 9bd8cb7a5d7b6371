//! Before the nodes start: certificates, sockets, configurations and data directories.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quorate_proto::NodeId;
use quorate_transport::generate_dev_pki;

use super::{ClusterError, LocalCluster, Slot};
use crate::config::{Config, MemberAddr, TlsSource};
use crate::node::Node;

/// A per-node hook that adjusts a configuration before the node starts.
type Configure<'a> = Box<dyn FnMut(&mut Config) + 'a>;

/// How a [`LocalCluster`] is to be built: its name and size, and a hook that adjusts each
/// node's configuration. From [`LocalCluster::builder`].
pub struct Builder<'a> {
    name: String,
    nodes: u64,
    configure: Option<Configure<'a>>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(name: &str, nodes: u64) -> Self {
        Builder { name: name.to_owned(), nodes, configure: None }
    }

    /// Calls `hook` on every node's configuration (LAN defaults, every member one vote,
    /// the node's data directory set) before the node starts, in node order: to change
    /// timing, votes, the TLS identity or the data directory of some or all nodes. A change
    /// to `members` must be made alike on every node, as in a real cluster.
    pub fn configure(mut self, hook: impl FnMut(&mut Config) + 'a) -> Self {
        self.configure = Some(Box::new(hook));
        self
    }

    /// Generates the certificates, binds one UDP socket per node on `127.0.0.1:0` (the
    /// operating system picks free ports, so clusters never collide), creates the data
    /// directory, and builds every configuration. Nothing is started.
    pub fn prepare(self) -> Result<Prepared, ClusterError> {
        let Builder { name, nodes, mut configure } = self;
        let ids: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
        let pki = generate_dev_pki(&name, &ids)?;
        let mut sockets = Vec::with_capacity(ids.len());
        let mut members = Vec::with_capacity(ids.len());
        for &id in &ids {
            let socket =
                UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).map_err(ClusterError::Bind)?;
            let addr = socket.local_addr().map_err(ClusterError::Bind)?;
            members.push(MemberAddr { id, addr: addr.into(), votes: 1 });
            sockets.push(Some(socket));
        }
        let dir = ClusterDir::create(&name)?;
        let mut configs = Vec::with_capacity(ids.len());
        for &id in &ids {
            let tls = TlsSource::Identity(Arc::new(pki.identity(id)?));
            let mut config = Config::lan(name.as_str(), id, members.clone(), tls);
            config.data_dir = Some(dir.node(id));
            if let Some(hook) = configure.as_mut() {
                hook(&mut config);
            }
            configs.push(config);
        }
        Ok(Prepared { configs, sockets, dir })
    }

    /// [`Builder::prepare`], then [`Prepared::start`].
    pub async fn start(self) -> Result<LocalCluster, ClusterError> {
        self.prepare()?.start().await
    }
}

/// A cluster ready to start: every node's configuration and bound socket. A test that
/// starts a node its own way (on a runtime of its own, with a broken configuration) takes
/// it out with [`Prepared::take`] first.
pub struct Prepared {
    configs: Vec<Config>,
    /// `None` once taken.
    sockets: Vec<Option<UdpSocket>>,
    dir: ClusterDir,
}

impl Prepared {
    /// Every node's configuration, in node order (node 1 first).
    pub fn configs(&self) -> &[Config] {
        &self.configs
    }

    /// The directory that holds every node's data directory (`node-<id>`), removed when the
    /// cluster is dropped. Other files of a test may go there too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Checks every configuration as [`Node::start`] would, without starting anything.
    pub fn check(&self) -> Result<(), ClusterError> {
        for config in &self.configs {
            config.check().map_err(|source| ClusterError::Config { id: config.id, source })?;
        }
        Ok(())
    }

    /// Takes node `id` out: its configuration and its bound socket, for the caller to
    /// start. [`Prepared::start`] then leaves it alone, but the cluster still knows its
    /// configuration ([`LocalCluster::start_node`] can start it later on its address).
    pub fn take(&mut self, id: NodeId) -> Result<(Config, UdpSocket), ClusterError> {
        let index = self.configs.iter().position(|c| c.id == id).ok_or(ClusterError::NoSuchNode { id })?;
        let socket = self.sockets[index].take().ok_or(ClusterError::Taken { id })?;
        Ok((self.configs[index].clone(), socket))
    }

    /// Starts every node not taken, in node order. If one fails, those already started are
    /// shut down and the error names the node.
    pub async fn start(self) -> Result<LocalCluster, ClusterError> {
        let Prepared { configs, sockets, dir } = self;
        let mut slots: Vec<Slot> = Vec::with_capacity(configs.len());
        for (config, socket) in configs.into_iter().zip(sockets) {
            let node = match socket {
                Some(socket) => match Node::start_on(config.clone(), socket).await {
                    Ok(node) => Some(node),
                    Err(source) => {
                        let started = slots.into_iter().filter_map(|s| s.node).collect();
                        // The start failure is the error worth reporting, not a slow shutdown.
                        let _ = super::shutdown_nodes(started).await;
                        return Err(ClusterError::Start { id: config.id, source: Box::new(source) });
                    }
                },
                None => None,
            };
            slots.push(Slot { config, node });
        }
        Ok(LocalCluster { slots, cut: Default::default(), dir })
    }
}

/// One directory under the system temp dir for a cluster's data directories, removed with
/// its contents on drop.
pub(super) struct ClusterDir(PathBuf);

impl ClusterDir {
    fn create(name: &str) -> Result<ClusterDir, ClusterError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("quorate-{name}-{}-{n}", std::process::id()));
        // A directory with this name is stale: its process (the same pid) is gone.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .map_err(|source| ClusterError::DataDir { path: path.clone(), source })?;
        Ok(ClusterDir(path))
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }

    fn node(&self, id: NodeId) -> PathBuf {
        self.0.join(format!("node-{}", id.0))
    }
}

impl Drop for ClusterDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
