//! A node's configuration file (TOML): every value parsed and, when wrong, named as the file
//! writes it; the rules across values are [`Config::check`]'s.
//!
//! ```toml
//! [node]
//! cluster = "demo"                 # DNS-label characters; part of every certificate name
//! id = 1
//! listen = "127.0.0.1:7001"        # default: this node's member address (0.0.0.0:PORT for a name)
//! admin = "127.0.0.1:9001"         # optional: /metrics and /status over HTTP
//! events_out = "events.jsonl"      # optional: JSON lines of events; "-" for stdout
//! data_dir = "/var/lib/quorate"    # required for voters: incarnation across restarts
//!
//! [[members]]
//! id = 1
//! addr = "127.0.0.1:7001"          # IP:PORT, or HOST:PORT looked up before every dial
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
use std::time::Duration;

use quorate_gate::TieBreaker;
use quorate_proto::NodeId;
use serde::Deserialize;

use quorate_transport::{AddressError, MemberAddress};

use crate::config::{duration_max_rule, Config, ConfigError, EventsOut, MemberAddr, TlsSource, DURATION_MAX};

/// Config files larger than this are refused unread.
pub const CONFIG_BYTES_MAX: u64 = 1 << 20;

impl Config {
    /// Reads a TOML file. Every value is parsed, and a wrong one is named; the rules across
    /// values run in [`Config::check`] (which [`crate::Node::start`] runs), after command-line
    /// flags had their say.
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

    /// Parses TOML text, like [`Config::load`]; relative paths are taken from the current
    /// directory.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, "<string>", Path::new("."))
    }

    fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: origin.to_owned(), message: e.to_string() })?;
        raw.into_config(base)
    }
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

/// A member address: `IP:PORT` or `HOST:PORT` (a name is looked up by the transport before
/// every dial, not here).
fn member_addr(field: &str, text: &str) -> Result<MemberAddress, ConfigError> {
    text.parse().map_err(|e: AddressError| ConfigError::invalid(field, format!("{text:?}"), e.to_string()))
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

impl RawConfig {
    fn into_config(self, base: &Path) -> Result<Config, ConfigError> {
        let id = NodeId(self.node.id);
        let mut members = Vec::with_capacity(self.members.len());
        for m in &self.members {
            members.push(MemberAddr {
                id: NodeId(m.id),
                addr: member_addr("members.addr", &m.addr)?,
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
        data_dir = "state"

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

    /// Parsed and checked, as a node starting from this text would be.
    fn checked(text: &str) -> Result<Config, ConfigError> {
        let config = Config::from_toml_str(text)?;
        config.check()?;
        Ok(config)
    }

    fn err(text: &str) -> String {
        match checked(text) {
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
            .starts_with("invalid members.addr = \"localhost\": no port: expected HOST:PORT or IP:PORT"));
        assert!(err(&GOOD.replace("\"50ms\"", "\"fast\""))
            .contains("invalid timing.heartbeat_interval = \"fast\""));
        assert!(err(&GOOD.replacen("id = 2\n", "id = 9\n", 1)).contains("node.id"));
        assert!(
            err(&GOOD.replace("cluster = \"demo\"", "cluster = \"Demo Cluster\"")).contains("node.cluster")
        );
        assert!(err(&GOOD.replace("dir = \"certs\"", "ca = \"x\"")).contains("invalid tls"));
    }

    #[test]
    fn members_by_name_parse_and_bad_names_and_ports_are_named() -> Result<(), ConfigError> {
        let named = GOOD.replace("127.0.0.1:7003", "quorate-2.quorate.db.svc:7003");
        let c = checked(&named)?;
        assert_eq!(
            c.members[2].addr,
            MemberAddress::Name { host: "quorate-2.quorate.db.svc".into(), port: 7003 }
        );
        let c = checked(&GOOD.replace("127.0.0.1:7002", "LocalHost:7002"))?;
        assert_eq!(c.members[1].addr.to_string(), "localhost:7002");
        assert_eq!(
            c.listen,
            addr("x", "0.0.0.0:7002")?,
            "a node named in the member list listens on all interfaces"
        );
        let e = err(&GOOD.replace("127.0.0.1:7003", "quorate-2.quorate:0"));
        assert!(e.starts_with("invalid members.addr = \"quorate-2.quorate:0\": port \"0\""), "{e}");
        let e = err(&GOOD.replace("127.0.0.1:7003", "quorate-2.quorate:http"));
        assert!(e.starts_with("invalid members.addr = \"quorate-2.quorate:http\": port"), "{e}");
        let e = err(&GOOD.replace("127.0.0.1:7003", "bad_name:7003"));
        assert!(
            e.starts_with("invalid members.addr = \"bad_name:7003\": not an IP address or a DNS host name"),
            "{e}"
        );
        let e = err(&GOOD
            .replace("127.0.0.1:7003", "localhost:7001")
            .replace("127.0.0.1:7001", "LOCALHOST:7001"));
        assert!(e.contains("invalid members.addr = localhost:7001: two members share this address"), "{e}");
        Ok(())
    }

    #[test]
    fn duplicate_member_address_is_refused() {
        let e = err(&GOOD.replace("127.0.0.1:7003", "127.0.0.1:7001"));
        assert!(e.contains("members.addr"), "{e}");
    }

    #[test]
    fn data_dir_is_read_relative_to_the_config_file_and_required_for_voters() -> Result<(), ConfigError> {
        let c = Config::parse(GOOD, "x", Path::new("/etc/q"))?;
        assert_eq!(c.data_dir.as_deref(), Some(Path::new("/etc/q/state")));
        // Parsing does not require it (a flag may still give it), checking does.
        let without = GOOD.replace("data_dir = \"state\"\n", "");
        let c = Config::from_toml_str(&without)?;
        assert_eq!(c.data_dir, None);
        let e = err(&without);
        assert!(e.starts_with("invalid node.data_dir = (not set): node 2 has 1 vote(s)"), "{e}");
        assert!(err(&GOOD.replace("data_dir = \"state\"", "data_dir = \"\"")).contains("node.data_dir"));
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

    proptest::proptest! {
        #[test]
        fn any_duration_text_in_any_field_parses_or_is_a_named_error(
            field in 0..DURATION_FIELDS.len(),
            n in proptest::prelude::any::<u64>(),
            unit in proptest::sample::select(vec!["ns", "us", "ms", "s", "m", "h", "d", "w", "M", "y"]),
        ) {
            let (table, key) = DURATION_FIELDS[field];
            let text = format!("{n}{unit}");
            match checked(&with_duration(table, key, &text)) {
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
