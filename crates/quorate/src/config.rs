//! Node configuration: one struct with validated defaults and presets, loadable from TOML.
//!
//! ```toml
//! [node]
//! cluster = "demo"                 # DNS-label characters; part of every certificate name
//! id = 1
//! listen = "127.0.0.1:7001"        # default: this node's member address
//! admin = "127.0.0.1:9001"         # optional: /metrics and /status over HTTP
//! events_out = "events.jsonl"      # optional: JSON lines of events; "-" for stdout
//! data_dir = "/var/lib/quorate"    # required for voters: incarnation across restarts
//!
//! [[members]]
//! id = 1
//! addr = "127.0.0.1:7001"
//! votes = 1                        # default 1; 0 makes an observer
//!
//! [tls]
//! dir = "certs"                    # ca.pem, node-<id>.pem, node-<id>.key (quorate certs init)
//! # or: ca = "...", cert = "...", key = "..."
//!
//! [timing]
//! preset = "lan"                   # or "wan"; fields below override it
//! heartbeat_interval = "100ms"     # every duration: at most 1h (DURATION_MAX)
//! down_after_min = "1s"
//! lease = "900ms"
//! max_clock_drift = 0.01
//!
//! [quorum]
//! tie_breaker = "lowest-id"        # "none", or a node id
//! wait_for_all = false
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use quorate_core::{GossipConfig, Member};
use quorate_detector::{DetectorConfig, DetectorConfigError};
use quorate_gate::{GateConfig, GateConfigError, MembershipError, TieBreaker};
use quorate_heartbeat::transport::TlsIdentity;
use quorate_heartbeat::{ClusterId, NodeId};
use serde::Deserialize;

/// Config files larger than this are refused unread.
pub const CONFIG_BYTES_MAX: u64 = 1 << 20;

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
    /// Where this node listens and dials from. Default: its member address.
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
    /// a voter (votes > 0), checked by [`crate::Node::start`]; an observer without one takes
    /// its incarnation from the wall clock. Default `None`.
    pub data_dir: Option<PathBuf>,
}

/// A member and where it listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberAddr {
    /// Its node id, as named in its certificate.
    pub id: NodeId,
    /// Its QUIC address.
    pub addr: SocketAddr,
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
    #[error("invalid {field} = {value}: {rule}")]
    Invalid {
        /// The field, as written in the TOML file (`timing.lease`).
        field: String,
        /// The offending value.
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

impl ConfigError {
    fn invalid(field: &str, value: impl std::fmt::Display, rule: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.to_owned(), value: value.to_string(), rule: rule.into() }
    }
}

impl Config {
    /// LAN defaults (100 ms heartbeats, 1 s down floor, 900 ms lease, 1% drift).
    pub fn lan(cluster: impl Into<String>, id: NodeId, members: Vec<MemberAddr>, tls: TlsSource) -> Self {
        let listen = members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.addr)
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

    /// Reads and validates a TOML file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let read_err = |source| ConfigError::Read { path: path.to_owned(), source };
        let len = std::fs::metadata(path).map_err(read_err)?.len();
        if len > CONFIG_BYTES_MAX {
            return Err(ConfigError::invalid("file size", len, format!("at most {CONFIG_BYTES_MAX} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// Parses and validates TOML text; relative paths are taken from the current directory.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, "<string>", Path::new("."))
    }

    fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: origin.to_owned(), message: e.to_string() })?;
        let config = raw.into_config(base)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule, naming the field at fault. (Whether a voter has a data
    /// directory is checked when the node starts, after command-line flags had their say:
    /// see [`Config::check_data_dir`].)
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in self.durations() {
            check_duration_max(field, value)?;
        }
        quorate_heartbeat::transport::validate_cluster_name(&self.cluster).map_err(|e| {
            ConfigError::invalid("node.cluster", format!("{:?}", self.cluster), e.to_string())
        })?;
        let mut seen_addrs = std::collections::BTreeSet::new();
        for m in &self.members {
            if !seen_addrs.insert(m.addr) {
                return Err(ConfigError::invalid(
                    "members.addr",
                    m.addr,
                    "two members share this address; each needs its own",
                ));
            }
        }
        self.core_config().validate().map_err(|e| match e {
            quorate_core::ConfigError::Membership(m) => membership_error(m, self.id),
            quorate_core::ConfigError::Gate(g) => gate_error(g),
            quorate_core::ConfigError::Gossip(g) => gossip_error(g, &self.gossip),
            other => ConfigError::invalid("config", "", other.to_string()),
        })?;
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
        Ok(())
    }

    /// Every duration setting with its name in the TOML file.
    fn durations(&self) -> [(&'static str, Duration); 11] {
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
    pub fn check_data_dir(&self) -> Result<(), ConfigError> {
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
            detector: self.detector.clone(),
            gate: self.gate.clone(),
            gossip: self.gossip.clone(),
        }
    }

    /// Loads the TLS identity this configuration names.
    pub fn tls_identity(&self) -> Result<Arc<TlsIdentity>, quorate_heartbeat::transport::PkiError> {
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

fn membership_error(e: MembershipError, me: NodeId) -> ConfigError {
    match e {
        MembershipError::DuplicateMember { id } => ConfigError::invalid("members.id", id.0, "listed twice"),
        MembershipError::NoVoters => {
            ConfigError::invalid("members.votes", 0, "at least one member needs votes > 0")
        }
        MembershipError::NotAMember { .. } => {
            ConfigError::invalid("node.id", me.0, "must be one of the [[members]] ids")
        }
        MembershipError::TieBreakerNotVoter { id } => {
            ConfigError::invalid("quorum.tie_breaker", id.0, "must name a member with votes > 0")
        }
        other => ConfigError::invalid("members", "", other.to_string()),
    }
}

fn gate_error(e: GateConfigError) -> ConfigError {
    match e {
        GateConfigError::LeaseTooLong { lease, .. } => {
            ConfigError::invalid("timing.lease", fmt_d(lease), e.to_string())
        }
        GateConfigError::LeaseTooShort { lease, .. } => {
            ConfigError::invalid("timing.lease", fmt_d(lease), e.to_string())
        }
        GateConfigError::BadDrift { max_clock_drift } => {
            ConfigError::invalid("timing.max_clock_drift", max_clock_drift, e.to_string())
        }
        GateConfigError::Detector(d) => detector_error(d),
        other => ConfigError::invalid("timing", "", other.to_string()),
    }
}

fn detector_error(e: DetectorConfigError) -> ConfigError {
    let field = match &e {
        DetectorConfigError::HeartbeatIntervalZero => "timing.heartbeat_interval",
        DetectorConfigError::DownAfterMinTooShort { .. } => "timing.down_after_min",
        DetectorConfigError::SuspectPhiInvalid { .. } | DetectorConfigError::SuspectAboveDown { .. } => {
            "timing.suspect_phi"
        }
        DetectorConfigError::DownPhiInvalid { .. } => "timing.down_phi",
        DetectorConfigError::StallThresholdTooShort { .. } => "timing.stall_threshold",
        DetectorConfigError::WindowLenOutOfRange { .. } => "timing.window_len",
        DetectorConfigError::FirstHeartbeatEstimateZero => "timing.first_heartbeat_estimate",
        _ => "timing",
    };
    ConfigError::Invalid { field: field.to_owned(), value: String::new(), rule: e.to_string() }
}

fn gossip_error(e: quorate_core::GossipConfigError, g: &GossipConfig) -> ConfigError {
    use quorate_core::GossipConfigError as E;
    let (field, value) = match &e {
        E::Zero { field } => {
            let value = match *field {
                "interval" => fmt_d(g.interval),
                "fresh_for" => fmt_d(g.fresh_for),
                "fence_timeout" => fmt_d(g.fence_timeout),
                "fence_hold" => fmt_d(g.fence_hold),
                "fanout" => g.fanout.to_string(),
                _ => g.corroboration.to_string(),
            };
            (format!("gossip.{field}"), value)
        }
        E::FreshTooShort { fresh_for, .. } => ("gossip.fresh_for".to_owned(), fmt_d(*fresh_for)),
        E::HoldTooShort { hold, .. } => ("gossip.fence_hold".to_owned(), fmt_d(*hold)),
        E::BytesMax { bytes_max, .. } => ("gossip.bytes_max".to_owned(), bytes_max.to_string()),
        _ => ("gossip".to_owned(), String::new()),
    };
    ConfigError::Invalid { field, value, rule: e.to_string() }
}

fn fmt_d(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

// ---- TOML schema ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node: RawNode,
    #[serde(default)]
    members: Vec<RawMember>,
    tls: RawTls,
    #[serde(default)]
    timing: RawTiming,
    #[serde(default)]
    quorum: RawQuorum,
    #[serde(default)]
    gossip: RawGossip,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGossip {
    enabled: Option<bool>,
    interval: Option<String>,
    fanout: Option<usize>,
    bytes_max: Option<usize>,
    fresh_for: Option<String>,
    corroboration: Option<usize>,
    fence_timeout: Option<String>,
    fence_hold: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    cluster: String,
    id: u64,
    listen: Option<String>,
    admin: Option<String>,
    events_out: Option<String>,
    data_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    id: u64,
    addr: String,
    votes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    dir: Option<PathBuf>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTiming {
    preset: Option<String>,
    heartbeat_interval: Option<String>,
    down_after_min: Option<String>,
    lease: Option<String>,
    max_clock_drift: Option<f64>,
    suspect_phi: Option<f64>,
    down_phi: Option<f64>,
    min_std_dev: Option<String>,
    acceptable_pause: Option<String>,
    stall_threshold: Option<String>,
    window_len: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQuorum {
    tie_breaker: Option<toml::Value>,
    wait_for_all: Option<bool>,
}

fn addr(field: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        ConfigError::invalid(field, format!("{text:?}"), "expected IP:PORT, e.g. 127.0.0.1:7001")
    })
}

fn duration(field: &str, text: &Option<String>, into: &mut Duration) -> Result<(), ConfigError> {
    if let Some(text) = text {
        let parsed = humantime::parse_duration(text).map_err(|e| {
            ConfigError::invalid(field, format!("{text:?}"), format!("{e}; write e.g. \"100ms\" or \"1s\""))
        })?;
        if parsed > DURATION_MAX {
            return Err(ConfigError::invalid(field, format!("{text:?}"), duration_max_rule()));
        }
        *into = parsed;
    }
    Ok(())
}

fn check_duration_max(field: &str, value: Duration) -> Result<(), ConfigError> {
    if value > DURATION_MAX {
        return Err(ConfigError::invalid(field, fmt_d(value), duration_max_rule()));
    }
    Ok(())
}

fn duration_max_rule() -> String {
    format!("must be at most {} (every duration setting is capped there)", fmt_d(DURATION_MAX))
}

impl RawConfig {
    fn into_config(self, base: &Path) -> Result<Config, ConfigError> {
        let id = NodeId(self.node.id);
        let mut members = Vec::with_capacity(self.members.len());
        for m in &self.members {
            members.push(MemberAddr {
                id: NodeId(m.id),
                addr: addr("members.addr", &m.addr)?,
                votes: m.votes.unwrap_or(1),
            });
        }
        let path = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let tls = match self.tls {
            RawTls { dir: Some(dir), ca: None, cert: None, key: None } => TlsSource::Dir(path(dir)),
            RawTls { dir: None, ca: Some(ca), cert: Some(cert), key: Some(key) } => {
                TlsSource::Files { ca: path(ca), cert: path(cert), key: path(key) }
            }
            _ => {
                return Err(ConfigError::invalid(
                    "tls",
                    "",
                    "give either `dir`, or all of `ca`, `cert` and `key`",
                ))
            }
        };
        let mut config = match self.timing.preset.as_deref() {
            None | Some("lan") => Config::lan(self.node.cluster, id, members, tls),
            Some("wan") => Config::wan(self.node.cluster, id, members, tls),
            Some(other) => {
                return Err(ConfigError::invalid(
                    "timing.preset",
                    format!("{other:?}"),
                    "expected \"lan\" or \"wan\"",
                ))
            }
        };
        if let Some(listen) = &self.node.listen {
            config.listen = addr("node.listen", listen)?;
        } else if !config.members.iter().any(|m| m.id == id) {
            return Err(ConfigError::invalid("node.id", id.0, "must be one of the [[members]] ids"));
        }
        config.admin = self.node.admin.as_deref().map(|a| addr("node.admin", a)).transpose()?;
        if self.node.data_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(ConfigError::invalid("node.data_dir", "\"\"", "must name a directory"));
        }
        config.data_dir = self.node.data_dir.map(path);
        config.events_out = self.node.events_out.map(|o| {
            if o == "-" {
                EventsOut::Stdout
            } else {
                EventsOut::File(path(o.into()))
            }
        });
        let t = &self.timing;
        let d = &mut config.detector;
        duration("timing.heartbeat_interval", &t.heartbeat_interval, &mut d.heartbeat_interval)?;
        duration("timing.down_after_min", &t.down_after_min, &mut d.down_after_min)?;
        duration("timing.min_std_dev", &t.min_std_dev, &mut d.min_std_dev)?;
        duration("timing.acceptable_pause", &t.acceptable_pause, &mut d.acceptable_pause)?;
        duration("timing.stall_threshold", &t.stall_threshold, &mut d.stall_threshold)?;
        if t.heartbeat_interval.is_some() {
            d.first_heartbeat_estimate = d.heartbeat_interval;
        }
        d.suspect_phi = t.suspect_phi.unwrap_or(d.suspect_phi);
        d.down_phi = t.down_phi.unwrap_or(d.down_phi);
        if let Some(len) = t.window_len {
            d.window_len = std::num::NonZeroUsize::new(len)
                .ok_or_else(|| ConfigError::invalid("timing.window_len", len, "must be at least 2"))?;
        }
        duration("timing.lease", &t.lease, &mut config.gate.lease)?;
        config.gate.max_clock_drift = t.max_clock_drift.unwrap_or(config.gate.max_clock_drift);
        config.gate.wait_for_all = self.quorum.wait_for_all.unwrap_or(false);
        let (g, r) = (&mut config.gossip, &self.gossip);
        g.enabled = r.enabled.unwrap_or(g.enabled);
        duration("gossip.interval", &r.interval, &mut g.interval)?;
        duration("gossip.fresh_for", &r.fresh_for, &mut g.fresh_for)?;
        duration("gossip.fence_timeout", &r.fence_timeout, &mut g.fence_timeout)?;
        duration("gossip.fence_hold", &r.fence_hold, &mut g.fence_hold)?;
        g.fanout = r.fanout.unwrap_or(g.fanout);
        g.bytes_max = r.bytes_max.unwrap_or(g.bytes_max);
        g.corroboration = r.corroboration.unwrap_or(g.corroboration);
        config.gate.tie_breaker = match &self.quorum.tie_breaker {
            None => TieBreaker::LowestId,
            Some(toml::Value::String(s)) if s == "lowest-id" => TieBreaker::LowestId,
            Some(toml::Value::String(s)) if s == "none" => TieBreaker::None,
            Some(toml::Value::Integer(n)) if *n > 0 => TieBreaker::Node(NodeId(*n as u64)),
            Some(other) => {
                return Err(ConfigError::invalid(
                    "quorum.tie_breaker",
                    format!("{other:?}"),
                    "expected \"lowest-id\", \"none\" or a node id",
                ))
            }
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [node]
        cluster = "demo"
        id = 2

        [[members]]
        id = 1
        addr = "127.0.0.1:7001"
        [[members]]
        id = 2
        addr = "127.0.0.1:7002"
        [[members]]
        id = 3
        addr = "127.0.0.1:7003"
        votes = 0

        [tls]
        dir = "certs"

        [timing]
        heartbeat_interval = "50ms"
        down_after_min = "600ms"
        lease = "500ms"
    "#;

    fn err(text: &str) -> String {
        match Config::from_toml_str(text) {
            Ok(_) => "accepted".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_a_full_config_with_human_durations() -> Result<(), ConfigError> {
        let c = Config::from_toml_str(GOOD)?;
        assert_eq!(c.id, NodeId(2));
        assert_eq!(c.listen, addr("x", "127.0.0.1:7002")?);
        assert_eq!(c.members[2].votes, 0);
        assert_eq!(c.detector.heartbeat_interval, Duration::from_millis(50));
        assert_eq!(c.gate.lease, Duration::from_millis(500));
        assert!(matches!(&c.tls, TlsSource::Dir(d) if d.ends_with("certs")));
        Ok(())
    }

    #[test]
    fn unsafe_lease_names_the_field_the_value_and_the_rule() {
        let text = GOOD.replace("lease = \"500ms\"", "lease = \"700ms\"");
        let e = err(&text);
        assert!(
            e.starts_with(
                "invalid timing.lease = 700ms: lease (700ms) must be shorter than down_after_min (600ms)"
            ),
            "{e}"
        );
    }

    #[test]
    fn interval_too_long_for_the_floor_names_the_field() {
        let e = err(&GOOD.replace("\"50ms\"", "\"400ms\""));
        assert!(e.contains("timing.down_after_min") && e.contains("2 x heartbeat_interval"), "{e}");
    }

    #[test]
    fn typos_bad_addresses_and_bad_durations_are_named() {
        assert!(err(&GOOD.replace("[timing]", "[timing]\nleese = \"1s\"")).contains("unknown field `leese`"));
        assert!(err(&GOOD.replace("127.0.0.1:7003", "localhost"))
            .contains("invalid members.addr = \"localhost\""));
        assert!(err(&GOOD.replace("\"50ms\"", "\"fast\""))
            .contains("invalid timing.heartbeat_interval = \"fast\""));
        assert!(err(&GOOD.replacen("id = 2\n", "id = 9\n", 1)).contains("node.id"));
        assert!(
            err(&GOOD.replace("cluster = \"demo\"", "cluster = \"Demo Cluster\"")).contains("node.cluster")
        );
        assert!(err(&GOOD.replace("dir = \"certs\"", "ca = \"x\"")).contains("invalid tls"));
    }

    #[test]
    fn duplicate_member_address_is_refused() {
        let e = err(&GOOD.replace("127.0.0.1:7003", "127.0.0.1:7001"));
        assert!(e.contains("members.addr"), "{e}");
    }

    #[test]
    fn data_dir_is_read_relative_to_the_config_file_and_required_for_voters() -> Result<(), ConfigError> {
        let c = Config::parse(
            &GOOD.replacen("id = 2\n", "id = 2\ndata_dir = \"state\"\n", 1),
            "x",
            Path::new("/etc/q"),
        )?;
        assert_eq!(c.data_dir.as_deref(), Some(Path::new("/etc/q/state")));
        assert!(c.check_data_dir().is_ok());
        // Parsing does not require it (a flag may still give it), starting does.
        let c = Config::from_toml_str(GOOD)?;
        let e = c.check_data_dir().map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(t) if t.starts_with("invalid node.data_dir = (not set): node 2 has 1 vote(s)") && t.contains("--data-dir")),
            "{e:?}"
        );
        let observer = Config { id: NodeId(3), ..c };
        assert!(observer.check_data_dir().is_ok(), "observers may run without a data directory");
        assert!(err(&GOOD.replacen("id = 2\n", "id = 2\ndata_dir = \"\"\n", 1)).contains("node.data_dir"));
        Ok(())
    }

    /// Every duration field of the TOML file, as `(table, key)`.
    const DURATION_FIELDS: [(&str, &str); 10] = [
        ("timing", "heartbeat_interval"),
        ("timing", "down_after_min"),
        ("timing", "lease"),
        ("timing", "min_std_dev"),
        ("timing", "acceptable_pause"),
        ("timing", "stall_threshold"),
        ("gossip", "interval"),
        ("gossip", "fresh_for"),
        ("gossip", "fence_timeout"),
        ("gossip", "fence_hold"),
    ];

    /// A valid config without `[timing]`, plus `table.key = value`.
    fn with_duration(table: &str, key: &str, value: &str) -> String {
        let base = GOOD.split("[timing]").next().unwrap_or(GOOD);
        format!("{base}\n[{table}]\n{key} = \"{value}\"\n")
    }

    #[test]
    fn every_duration_field_at_a_huge_value_is_a_named_error_not_a_panic() {
        for (table, key) in DURATION_FIELDS {
            for huge in ["500000000000y", "2h", "3601s", "1y"] {
                let e = err(&with_duration(table, key, huge));
                assert!(
                    e.starts_with(&format!("invalid {table}.{key} = \"{huge}\": must be at most 1h")),
                    "{table}.{key} = {huge}: {e}"
                );
            }
            // Past what a Duration holds: the parser's own overflow error, still named.
            let e = err(&with_duration(table, key, "99999999999999999999999s"));
            assert!(e.starts_with(&format!("invalid {table}.{key} = ")), "{e}");
        }
    }

    #[test]
    fn durations_set_in_code_are_bounded_too() {
        let mut c = match Config::from_toml_str(GOOD) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        c.gossip.interval = Duration::MAX;
        let e = c.validate().map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(t) if t.starts_with("invalid gossip.interval = ") && t.contains("at most 1h")),
            "{e:?}"
        );
        c.gossip.interval = Duration::from_secs(1);
        c.detector.heartbeat_interval = Duration::MAX;
        let e = c.validate().map_err(|e| e.to_string());
        assert!(matches!(&e, Err(t) if t.starts_with("invalid timing.heartbeat_interval")), "{e:?}");
    }

    proptest::proptest! {
        #[test]
        fn any_duration_text_in_any_field_parses_or_is_a_named_error(
            field in 0..DURATION_FIELDS.len(),
            n in proptest::prelude::any::<u64>(),
            unit in proptest::sample::select(vec!["ns", "us", "ms", "s", "m", "h", "d", "w", "M", "y"]),
        ) {
            let (table, key) = DURATION_FIELDS[field];
            let text = format!("{n}{unit}");
            match Config::from_toml_str(&with_duration(table, key, &text)) {
                Ok(c) => {
                    let value = c.durations().iter().find(|(f, _)| *f == format!("{table}.{key}")).map(|(_, d)| *d);
                    proptest::prop_assert!(value.is_some_and(|d| d <= DURATION_MAX));
                }
                Err(e) => {
                    let e = e.to_string();
                    // Either this field is named, or a rule between fields that names another.
                    let parsed = humantime::parse_duration(&text);
                    if parsed.as_ref().map_or(true, |d| *d > DURATION_MAX) {
                        proptest::prop_assert!(e.starts_with(&format!("invalid {table}.{key} = \"{text}\"")), "{}", e);
                    } else {
                        proptest::prop_assert!(e.starts_with("invalid "), "{}", e);
                    }
                }
            }
        }
    }
}
