//! A node's configuration: one struct with defaults and presets, checked once.
//!
//! ```text
//!   Config::lan / Config::wan / Config::load (config_file.rs)
//!      │ change any field (command-line flags, tests, an embedding program)
//!      ▼
//!   Config::check ──► quorate_core::ValidConfig ──► Node::start builds the core from it
//! ```
//!
//! The core's parts check their own rules and name the setting at fault by its path in
//! the core's configuration (`gate.lease`); [`Config::check`] adds the runtime's rules and
//! names every setting as the configuration file writes it (`timing.lease`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quorate_core::{CoreConfigError, GossipConfig, Member, ValidConfig};
use quorate_detector::DetectorConfig;
use quorate_gate::GateConfig;
use quorate_proto::{ClusterId, FieldError, NodeId};
use quorate_transport::{MemberAddress, TlsIdentity};

/// The longest duration any setting may have: one hour. Far above anything useful (the WAN
/// preset's longest is 3 s), and low enough that no sum or multiple of settings the node
/// computes can overflow.
pub const DURATION_MAX: Duration = Duration::from_secs(60 * 60);

/// Everything a node needs to start.
#[derive(Clone)]
pub struct Config {
    /// The cluster's name: DNS-label characters (`a-z`, `0-9`, `-`, dots between labels).
    /// Nodes of different clusters never talk: the name is in every certificate and its
    /// hash is on every message.
    pub cluster: String,
    /// This node.
    pub id: NodeId,
    /// Where this node listens and dials from. Default: its member address when that is an
    /// IP address, `0.0.0.0` and its port when it is a name (see [`default_listen`]).
    pub listen: SocketAddr,
    /// Every member, this node included.
    pub members: Vec<MemberAddr>,
    /// Where the certificates come from.
    pub tls: TlsSource,
    /// Heartbeat timing and failure detection.
    pub detector: DetectorConfig,
    /// Leases, drift bound, tie-breaker, `wait_for_all`.
    pub gate: GateConfig,
    /// Gossip of reachability rows, the partition view and fence checks (`[gossip]`).
    pub gossip: GossipConfig,
    /// Where to serve `/metrics` and `/status`; `None` (default) serves nothing.
    pub admin: Option<SocketAddr>,
    /// Where to write events as JSON lines; `None` (default) writes none.
    pub events_out: Option<EventsOut>,
    /// The data directory: the node's incarnation (and so its epochs) across restarts, and a
    /// lock so that two processes never share it (see `data_dir` module docs). Required for
    /// a voter (votes > 0); an observer without one takes its incarnation from the wall
    /// clock. Default `None`.
    pub data_dir: Option<PathBuf>,
}

/// A member and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAddr {
    /// Its node id, as named in its certificate.
    pub id: NodeId,
    /// Its QUIC address: `IP:PORT`, or `HOST:PORT` looked up before every dial attempt.
    pub addr: MemberAddress,
    /// Its votes; 0 makes an observer.
    pub votes: u32,
}

/// Where a node's TLS material comes from.
#[derive(Clone)]
pub enum TlsSource {
    /// A directory laid out by `quorate certs init`: `ca.pem`, `node-<id>.pem`, `node-<id>.key`.
    Dir(PathBuf),
    /// Three PEM files.
    Files {
        /// The cluster CA certificate.
        ca: PathBuf,
        /// This node's certificate.
        cert: PathBuf,
        /// This node's private key.
        key: PathBuf,
    },
    /// Already loaded (for example from a development PKI generated in memory).
    Identity(Arc<TlsIdentity>),
}

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsOut {
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

/// A configuration that cannot be used: which field, what value, which rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field breaks a rule.
    #[error("invalid {field}{}: {rule}", equals(.value))]
    Invalid {
        /// The field, as written in the TOML file (`timing.lease`).
        field: String,
        /// The offending value; empty when the rule concerns no single value.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file (or `<string>`).
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
}

fn equals(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!(" = {value}")
    }
}

impl ConfigError {
    pub(crate) fn invalid(field: &str, value: impl std::fmt::Display, rule: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.to_owned(), value: value.to_string(), rule: rule.into() }
    }
}

impl From<CoreConfigError> for ConfigError {
    /// The core's error, its setting named as the file writes it.
    fn from(e: CoreConfigError) -> Self {
        ConfigError::Invalid { field: file_field(&e.field()), value: e.value(), rule: e.to_string() }
    }
}

/// Where a setting of the core's configuration (`gate.lease`) is written in the file
/// (`timing.lease`): the file groups the settings an operator tunes together, across the
/// parts that use them.
fn file_field(core_field: &str) -> String {
    match core_field.split_once('.') {
        None if core_field == "me" => "node.id".to_owned(),
        Some(("detector", name)) | Some(("gate", name @ ("lease" | "max_clock_drift"))) => {
            format!("timing.{name}")
        }
        Some(("gate", name)) => format!("quorum.{name}"),
        // `members.*` and `gossip.*` are written as they are named.
        _ => core_field.to_owned(),
    }
}

impl Config {
    /// LAN defaults (100 ms heartbeats, 1 s down floor, 900 ms lease, 1% drift).
    pub fn lan(cluster: impl Into<String>, id: NodeId, members: Vec<MemberAddr>, tls: TlsSource) -> Self {
        let listen = members
            .iter()
            .find(|m| m.id == id)
            .map(|m| default_listen(&m.addr))
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        Config {
            cluster: cluster.into(),
            id,
            listen,
            members,
            tls,
            detector: DetectorConfig::lan(),
            gate: GateConfig::default(),
            gossip: GossipConfig::default(),
            admin: None,
            events_out: None,
            data_dir: None,
        }
    }

    /// WAN defaults: 250 ms heartbeats, 3 s down floor, 2.5 s lease.
    pub fn wan(cluster: impl Into<String>, id: NodeId, members: Vec<MemberAddr>, tls: TlsSource) -> Self {
        let mut config = Self::lan(cluster, id, members, tls);
        config.detector = DetectorConfig::wan();
        config.gate.lease = Duration::from_millis(2_500);
        config
    }

    /// The cluster id derived from the name.
    pub fn cluster_id(&self) -> ClusterId {
        ClusterId::from_name(&self.cluster)
    }

    /// Checks every rule, each once, naming the setting at fault as the file writes it:
    /// every duration at most [`DURATION_MAX`], the cluster name, one address per member,
    /// the core's rules (membership, timing, the lease safety rule, gossip), the listen port,
    /// and a data directory for a voter. Returns the core's part, checked:
    /// [`crate::Node::start`] builds the node from it.
    pub fn check(&self) -> Result<ValidConfig, ConfigError> {
        for (field, value) in self.durations() {
            if value > DURATION_MAX {
                return Err(ConfigError::invalid(field, fmt_duration(value), duration_max_rule()));
            }
        }
        quorate_transport::validate_cluster_name(&self.cluster).map_err(|e| {
            ConfigError::invalid("node.cluster", format!("{:?}", self.cluster), e.to_string())
        })?;
        let mut seen_addrs = std::collections::BTreeSet::new();
        for m in &self.members {
            if !seen_addrs.insert(&m.addr) {
                return Err(ConfigError::invalid(
                    "members.addr",
                    &m.addr,
                    "two members share this address; each needs its own",
                ));
            }
        }
        let core = self.core_config().check()?;
        if let Some(own) = self.members.iter().find(|m| m.id == self.id) {
            if own.addr.port() != self.listen.port() {
                return Err(ConfigError::invalid(
                    "node.listen",
                    self.listen,
                    format!(
                        "must use the port of this node's member address {} (peers accept its \
                         connections only from that address)",
                        own.addr
                    ),
                ));
            }
        }
        self.check_data_dir()?;
        Ok(core)
    }

    /// Every duration setting with its name in the TOML file.
    pub(crate) fn durations(&self) -> [(&'static str, Duration); 11] {
        let (d, g) = (&self.detector, &self.gossip);
        [
            ("timing.heartbeat_interval", d.heartbeat_interval),
            ("timing.down_after_min", d.down_after_min),
            ("timing.lease", self.gate.lease),
            ("timing.min_std_dev", d.min_std_dev),
            ("timing.acceptable_pause", d.acceptable_pause),
            ("timing.stall_threshold", d.stall_threshold),
            ("timing.first_heartbeat_estimate", d.first_heartbeat_estimate),
            ("gossip.interval", g.interval),
            ("gossip.fresh_for", g.fresh_for),
            ("gossip.fence_timeout", g.fence_timeout),
            ("gossip.fence_hold", g.fence_hold),
        ]
    }

    /// This node's votes; 0 if it is not among the members.
    pub fn own_votes(&self) -> u32 {
        self.members.iter().find(|m| m.id == self.id).map_or(0, |m| m.votes)
    }

    /// A voter needs a data directory: without one a restart with the wall clock set back
    /// would reuse incarnations and epochs. Observers may run without.
    fn check_data_dir(&self) -> Result<(), ConfigError> {
        let votes = self.own_votes();
        if self.data_dir.is_none() && votes > 0 {
            return Err(ConfigError::invalid(
                "node.data_dir",
                "(not set)",
                format!(
                    "node {} has {votes} vote(s) and needs a data directory, which keeps its \
                     incarnation and fencing epochs growing across restarts; set [node] data_dir \
                     in the config file or pass --data-dir (only observers, votes = 0, may run without)",
                    self.id.0
                ),
            ));
        }
        Ok(())
    }

    /// The sans-IO core's view of this configuration.
    pub fn core_config(&self) -> quorate_core::Config {
        quorate_core::Config {
            cluster: self.cluster_id(),
            me: self.id,
            members: self.members.iter().map(|m| Member { id: m.id, votes: m.votes }).collect(),
            addresses: self.members.iter().map(|m| (m.id, m.addr.to_string())).collect(),
            detector: self.detector.clone(),
            gate: self.gate.clone(),
            gossip: self.gossip.clone(),
        }
    }

    /// Loads the TLS identity this configuration names.
    pub fn tls_identity(&self) -> Result<Arc<TlsIdentity>, quorate_transport::PkiError> {
        match &self.tls {
            TlsSource::Identity(id) => Ok(id.clone()),
            TlsSource::Files { ca, cert, key } => TlsIdentity::from_pem_files(ca, cert, key).map(Arc::new),
            TlsSource::Dir(dir) => {
                let id = self.id.0;
                TlsIdentity::from_pem_files(
                    dir.join("ca.pem"),
                    dir.join(format!("node-{id}.pem")),
                    dir.join(format!("node-{id}.key")),
                )
                .map(Arc::new)
            }
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("cluster", &self.cluster)
            .field("id", &self.id)
            .field("listen", &self.listen)
            .field("members", &self.members)
            .field("detector", &self.detector)
            .field("gate", &self.gate)
            .field("admin", &self.admin)
            .field("events_out", &self.events_out)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// Where a node listens by default, given its member address: that address when it is an
/// IP address; all IPv4 interfaces and its port when it is a name (what the name resolves to
/// is this machine's address as the others see it, which this node cannot know). Set
/// `[node] listen` to bind one address, or IPv6.
pub fn default_listen(addr: &MemberAddress) -> SocketAddr {
    match addr {
        MemberAddress::Ip(ip) => *ip,
        MemberAddress::Name { port, .. } => SocketAddr::from(([0, 0, 0, 0], *port)),
    }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(crate) fn duration_max_rule() -> String {
    format!("must be at most {} (every duration setting is capped there)", fmt_duration(DURATION_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three(me: u64) -> Config {
        let members = (1..=3)
            .map(|i| MemberAddr {
                id: NodeId(i),
                addr: SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16)).into(),
                votes: 1,
            })
            .collect();
        let mut config = Config::lan("demo", NodeId(me), members, TlsSource::Dir(PathBuf::from("certs")));
        config.data_dir = Some(PathBuf::from("state"));
        config
    }

    fn refused(config: &Config) -> String {
        config.check().err().map(|e| e.to_string()).unwrap_or_else(|| "accepted".to_owned())
    }

    #[test]
    fn a_lan_config_with_a_data_dir_passes() {
        assert_eq!(refused(&three(1)), "accepted");
    }

    #[test]
    fn core_rules_name_the_setting_as_the_file_writes_it() {
        let mut c = three(1);
        c.gate.lease = Duration::from_millis(990);
        assert!(refused(&c).starts_with("invalid timing.lease = 990ms: lease (990ms)"), "{}", refused(&c));
        let mut c = three(1);
        c.gate.max_clock_drift = 0.7;
        assert!(refused(&c).starts_with("invalid timing.max_clock_drift = 0.7: "), "{}", refused(&c));
        let mut c = three(1);
        c.detector.suspect_phi = 9.0;
        assert!(refused(&c).starts_with("invalid timing.suspect_phi = 9: "), "{}", refused(&c));
        let mut c = three(1);
        c.gate.tie_breaker = quorate_gate::TieBreaker::Node(NodeId(9));
        assert!(refused(&c).starts_with("invalid quorum.tie_breaker = 9: "), "{}", refused(&c));
        let c = Config { id: NodeId(9), ..three(1) };
        assert!(refused(&c).starts_with("invalid node.id = 9: members: this node"), "{}", refused(&c));
        let mut c = three(1);
        c.members[1].id = NodeId(1);
        assert!(refused(&c).starts_with("invalid members.id = 1: "), "{}", refused(&c));
        let mut c = three(1);
        c.gossip.fence_hold = Duration::from_millis(300);
        assert!(
            refused(&c).starts_with("invalid gossip.fence_hold = 300ms: gossip.fence_hold"),
            "{}",
            refused(&c)
        );
        let mut c = three(1);
        c.gossip.corroboration = 0;
        assert!(refused(&c).starts_with("invalid gossip.corroboration = 0: "), "{}", refused(&c));
    }

    #[test]
    fn every_core_path_has_a_place_in_the_file() {
        for (core, file) in [
            ("me", "node.id"),
            ("members.id", "members.id"),
            ("detector.window_len", "timing.window_len"),
            ("gate.lease", "timing.lease"),
            ("gate.max_clock_drift", "timing.max_clock_drift"),
            ("gate.tie_breaker", "quorum.tie_breaker"),
            ("gossip.fanout", "gossip.fanout"),
        ] {
            assert_eq!(file_field(core), file, "{core}");
        }
    }

    #[test]
    fn a_voter_needs_a_data_dir_and_an_observer_does_not() {
        let c = Config { data_dir: None, ..three(2) };
        let e = refused(&c);
        assert!(
            e.starts_with("invalid node.data_dir = (not set): node 2 has 1 vote(s)")
                && e.contains("--data-dir"),
            "{e}"
        );
        let mut observer = c.clone();
        observer.members[1].votes = 0;
        assert_eq!(refused(&observer), "accepted", "observers may run without a data directory");
    }

    #[test]
    fn durations_set_in_code_are_bounded_too() {
        let mut c = three(1);
        c.gossip.interval = Duration::MAX;
        let e = refused(&c);
        assert!(e.starts_with("invalid gossip.interval = ") && e.contains("at most 1h"), "{e}");
        c.gossip.interval = Duration::from_secs(1);
        c.detector.heartbeat_interval = Duration::MAX;
        assert!(refused(&c).starts_with("invalid timing.heartbeat_interval"), "{}", refused(&c));
    }

    #[test]
    fn the_listen_port_must_be_the_member_port() {
        let c = Config { listen: SocketAddr::from(([0, 0, 0, 0], 7001)), ..three(1) };
        assert_eq!(refused(&c), "accepted");
        let c = Config { listen: SocketAddr::from(([127, 0, 0, 1], 7009)), ..three(1) };
        assert!(refused(&c).starts_with("invalid node.listen = 127.0.0.1:7009: "), "{}", refused(&c));
    }
}
