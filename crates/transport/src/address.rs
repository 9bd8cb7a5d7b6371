//! Member addresses: an IP address, or a DNS name resolved by the dial loop.
//!
//! ```text
//!   "10.0.0.3:7000"              -> MemberAddress::Ip      fixed for the life of the node
//!   "quorate-2.quorate:7000"     -> MemberAddress::Name    resolved before every dial
//! ```
//!
//! A name is resolved with the system resolver (`tokio::net::lookup_host`: getaddrinfo, so
//! `/etc/hosts` and the search domains apply) when its peer's dial loop starts and again
//! before every reconnect attempt, so a peer that comes back at a new IP under the same name
//! is found without restarting anyone. A lookup runs on tokio's blocking pool, never on the
//! task that sends heartbeats; the dial loop waits for it at most [`RESOLVE_TIMEOUT`], and a
//! peer has at most one lookup in flight (a slow one is waited for again by the next
//! attempt, never started twice). A name that does not resolve is not fatal: the peer counts
//! as unreachable, its status says why, and the dial loop keeps trying with its backoff.
//!
//! The certificate binds the node id, never the address: see `endpoint.rs` for what the
//! inbound checks become when a member is named.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::canonical;

/// How long a dial attempt waits for its peer's name to resolve before it counts as a
/// failed attempt (and backs off). The lookup itself is not abandoned: the next attempt waits
/// for the same one.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest host name, in bytes (RFC 1035: 253 characters of text).
pub const HOST_NAME_BYTES_MAX: usize = 253;

/// Where a member listens: `IP:PORT` or `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberAddress {
    /// A literal IP address and port: dialed as is, and inbound connections from this member
    /// must come from exactly this address.
    Ip(SocketAddr),
    /// A DNS name and port, resolved before every dial attempt.
    Name {
        /// The host name, lowercase, without a trailing dot.
        host: String,
        /// The UDP port, never 0.
        port: u16,
    },
}

impl MemberAddress {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            MemberAddress::Ip(addr) => addr.port(),
            MemberAddress::Name { port, .. } => *port,
        }
    }

    /// The host name, if the address is one.
    pub fn host_name(&self) -> Option<&str> {
        match self {
            MemberAddress::Ip(_) => None,
            MemberAddress::Name { host, .. } => Some(host),
        }
    }

    /// The IP address, if the address is one.
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            MemberAddress::Ip(addr) => Some(*addr),
            MemberAddress::Name { .. } => None,
        }
    }

    /// The same address with an IPv4-mapped IPv6 address written as IPv4 (see
    /// `config::canonical`); names are kept.
    pub(crate) fn canonical(&self) -> MemberAddress {
        match self {
            MemberAddress::Ip(addr) => MemberAddress::Ip(canonical(*addr)),
            named => named.clone(),
        }
    }
}

impl From<SocketAddr> for MemberAddress {
    fn from(addr: SocketAddr) -> Self {
        MemberAddress::Ip(addr)
    }
}

impl fmt::Display for MemberAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberAddress::Ip(addr) => write!(f, "{addr}"),
            MemberAddress::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl FromStr for MemberAddress {
    type Err = AddressError;

    /// `IP:PORT` (`[IPv6]:PORT` for IPv6) or `HOST:PORT`; the port is required and not 0.
    fn from_str(text: &str) -> Result<Self, AddressError> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(AddressError::BadPort { port: "0".to_owned() });
            }
            return Ok(MemberAddress::Ip(addr));
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(AddressError::MissingPort);
        };
        if host.contains(':') || host.starts_with('[') {
            // An IPv6 address needs brackets, and then parsed above unless it is malformed.
            return Err(AddressError::BadName { reason: "an IPv6 address is written [IP]:PORT" });
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(AddressError::BadPort { port: port.to_owned() }),
        };
        check_host_name(host)?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        Ok(MemberAddress::Name { host, port })
    }
}

/// A DNS host name: dot-separated labels of letters, digits and inner hyphens, each 1-63
/// bytes, at most [`HOST_NAME_BYTES_MAX`] in all, one trailing dot allowed. A name of
/// digits and dots only would be a malformed IPv4 address and is refused.
fn check_host_name(host: &str) -> Result<(), AddressError> {
    let bare = host.strip_suffix('.').unwrap_or(host);
    if bare.is_empty() {
        return Err(AddressError::BadName { reason: "the host is empty" });
    }
    if bare.len() > HOST_NAME_BYTES_MAX {
        return Err(AddressError::BadName { reason: "a host name is at most 253 bytes" });
    }
    for label in bare.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(AddressError::BadName { reason: "each dot-separated label is 1-63 bytes" });
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(AddressError::BadName {
                reason: "a host name has only letters, digits, '-' and '.'",
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::BadName { reason: "a label does not begin or end with '-'" });
        }
    }
    if bare.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(AddressError::BadName { reason: "not a valid IPv4 address" });
    }
    Ok(())
}

/// Why a member address could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// No `:PORT`.
    #[error("no port: expected HOST:PORT or IP:PORT, e.g. quorate-0.quorate:7000 or 10.0.0.1:7000")]
    MissingPort,
    /// The port is not a number from 1 to 65535.
    #[error("port {port:?} is not a number from 1 to 65535")]
    BadPort {
        /// The port as written.
        port: String,
    },
    /// The host is neither an IP address nor a DNS name.
    #[error("not an IP address or a DNS host name: {reason}")]
    BadName {
        /// The rule it breaks.
        reason: &'static str,
    },
}

/// Where a peer's address stands, as [`Transport::resolution`](super::Transport::resolution)
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolution {
    /// A literal IP address: nothing to resolve.
    Fixed(SocketAddr),
    /// A name not looked up yet (the peer is not dialed by this node, or its first lookup is
    /// still running).
    Pending,
    /// The name's address at the last lookup.
    Resolved(SocketAddr),
    /// The last lookup failed; the dial loop keeps trying.
    Failed(ResolveFailure),
}

impl Resolution {
    /// The address to dial, if any.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Resolution::Fixed(a) | Resolution::Resolved(a) => Some(*a),
            Resolution::Pending | Resolution::Failed(_) => None,
        }
    }
}

/// Why a name lookup gave no address to dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveFailure {
    /// The resolver knows no address for the name (or failed to look it up).
    #[error("name does not resolve")]
    NotFound,
    /// The lookup took longer than [`RESOLVE_TIMEOUT`]; the next attempt waits for it again.
    #[error("name lookup timed out")]
    TimedOut,
    /// The name has addresses, none of the family of this node's socket (an IPv6 address for
    /// a node bound to IPv4).
    #[error("name has no address of this node's IP version")]
    NoUsableAddress,
}

/// One peer's lookups: at most one in flight, waited for at most [`RESOLVE_TIMEOUT`] per
/// attempt.
#[derive(Debug)]
pub(crate) struct Lookup {
    host: String,
    port: u16,
    /// Only IPv4 addresses can be dialed from an IPv4 socket.
    ipv4_only: bool,
    pending: Option<JoinHandle<io::Result<Vec<SocketAddr>>>>,
}

impl Lookup {
    pub(crate) fn new(host: &str, port: u16, local: SocketAddr) -> Self {
        Lookup { host: host.to_owned(), port, ipv4_only: local.is_ipv4(), pending: None }
    }

    /// The name's first address this node can dial, canonical.
    pub(crate) async fn resolve(&mut self, wait: Duration) -> Result<SocketAddr, ResolveFailure> {
        let (host, port) = (self.host.clone(), self.port);
        let handle = self.pending.get_or_insert_with(|| {
            tokio::spawn(async move {
                #[cfg(test)]
                if let Some(addr) = fake_hosts::get(&host) {
                    return Ok(vec![SocketAddr::new(addr, port)]);
                }
                tokio::net::lookup_host((host.as_str(), port)).await.map(Iterator::collect)
            })
        });
        let joined = match tokio::time::timeout(wait, handle).await {
            Ok(joined) => joined,
            // Still running: kept in `pending`, so the next attempt waits for it again.
            Err(_) => return Err(ResolveFailure::TimedOut),
        };
        self.pending = None;
        match joined {
            Ok(Ok(addrs)) => pick(&addrs, self.ipv4_only),
            Ok(Err(e)) => {
                tracing::debug!(host = %self.host, error = %e, "name lookup failed");
                Err(ResolveFailure::NotFound)
            }
            Err(e) => {
                tracing::debug!(host = %self.host, error = %e, "name lookup task failed");
                Err(ResolveFailure::NotFound)
            }
        }
    }
}

/// The first address of `addrs` this node can dial.
fn pick(addrs: &[SocketAddr], ipv4_only: bool) -> Result<SocketAddr, ResolveFailure> {
    if addrs.is_empty() {
        return Err(ResolveFailure::NotFound);
    }
    addrs
        .iter()
        .map(|a| canonical(*a))
        .find(|a| !ipv4_only || a.is_ipv4())
        .ok_or(ResolveFailure::NoUsableAddress)
}

/// The crate's own tests move a name between loopback addresses without touching the
/// machine's `/etc/hosts`: a name listed here resolves to its entry instead of through the
/// system resolver. Test builds only.
#[cfg(test)]
pub(crate) mod fake_hosts {
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::sync::Mutex;

    static HOSTS: Mutex<Option<HashMap<String, IpAddr>>> = Mutex::new(None);

    /// Makes `host` resolve to `ip` from now on.
    pub(crate) fn set(host: &str, ip: IpAddr) {
        let mut hosts = HOSTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts.get_or_insert_with(HashMap::new).insert(host.to_owned(), ip);
    }

    pub(super) fn get(host: &str) -> Option<IpAddr> {
        let hosts = HOSTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts.as_ref().and_then(|h| h.get(host).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MemberAddress, AddressError> {
        text.parse()
    }

    #[test]
    fn ip_and_name_addresses_parse_and_print_back() {
        let ip = "10.0.0.1:7000".parse::<SocketAddr>().map(MemberAddress::Ip);
        assert_eq!(parse("10.0.0.1:7000").ok(), ip.ok());
        assert!(matches!(parse("[::1]:7000"), Ok(MemberAddress::Ip(a)) if a.is_ipv6()));
        let named = parse("Quorate-2.quorate.db.svc.:7000");
        assert_eq!(named, Ok(MemberAddress::Name { host: "quorate-2.quorate.db.svc".into(), port: 7000 }));
        assert_eq!(named.map(|a| a.to_string()).ok().as_deref(), Some("quorate-2.quorate.db.svc:7000"));
        assert_eq!(
            parse("localhost:1").map(|a| a.host_name().map(str::to_owned)),
            Ok(Some("localhost".into()))
        );
    }

    #[test]
    fn missing_and_bad_ports_and_bad_names_are_refused_with_the_reason() {
        assert_eq!(parse("localhost"), Err(AddressError::MissingPort));
        assert_eq!(parse("10.0.0.1"), Err(AddressError::MissingPort));
        assert_eq!(parse("localhost:0"), Err(AddressError::BadPort { port: "0".into() }));
        assert_eq!(parse("10.0.0.1:0"), Err(AddressError::BadPort { port: "0".into() }));
        assert_eq!(parse("host:70000"), Err(AddressError::BadPort { port: "70000".into() }));
        assert_eq!(parse("host:"), Err(AddressError::BadPort { port: String::new() }));
        for bad in [":7000", "a..b:7000", "-a.b:7000", "a_b:7000", "a b:7000", "::1:7000", "10.0.0.256:7000"]
        {
            assert!(matches!(parse(bad), Err(AddressError::BadName { .. })), "{bad}: {:?}", parse(bad));
        }
        let long = format!("{}:7000", vec!["a".repeat(63); 5].join("."));
        assert!(matches!(parse(&long), Err(AddressError::BadName { .. })));
        let label = format!("{}.b:7000", "a".repeat(64));
        assert!(matches!(parse(&label), Err(AddressError::BadName { .. })));
    }

    #[test]
    fn the_first_address_of_the_socket_family_is_dialed() {
        let v6: SocketAddr = "[::1]:7000".parse().unwrap_or_else(|_| unreachable!());
        let v4: SocketAddr = "127.0.0.1:7000".parse().unwrap_or_else(|_| unreachable!());
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:7000".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(pick(&[v6, v4], true), Ok(v4));
        assert_eq!(pick(&[v6, v4], false), Ok(v6));
        assert_eq!(pick(&[v6], true), Err(ResolveFailure::NoUsableAddress));
        assert_eq!(pick(&[], false), Err(ResolveFailure::NotFound));
        assert_eq!(pick(&[mapped], true).map(|a| a.to_string()), Ok("10.0.0.1:7000".to_owned()));
    }

    #[tokio::test]
    async fn localhost_resolves_and_an_invalid_name_does_not() {
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        let mut lookup = Lookup::new("localhost", 7000, local);
        let addr = lookup.resolve(RESOLVE_TIMEOUT).await;
        assert_eq!(addr.map(|a| a.to_string()), Ok("127.0.0.1:7000".to_owned()));
        // RFC 6761: `.invalid` never resolves.
        let mut lookup = Lookup::new("nosuch.invalid", 7000, local);
        assert_eq!(lookup.resolve(RESOLVE_TIMEOUT).await, Err(ResolveFailure::NotFound));
    }
}
