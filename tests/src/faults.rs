//! Network faults as nftables rules inside the test's namespace.
//!
//! Node `i` binds `127.0.0.1:(7000 + i)` for QUIC and uses that one socket both to listen
//! and to dial, so a (source port, destination port) pair names one directed link. Rules
//! live in the table `inet qe2e`, chain `input` on the input hook: a dropped datagram is
//! lost on its way in, as on a real wire. (Dropping on the output hook instead would make
//! the sender's `sendmsg` fail with `EPERM`, which no real network does.) Loopback traffic
//! passes the input hook once per datagram, so each rule acts exactly once.
//!
//! Every change replaces the whole rule set in one `nft -f -` transaction. Each rule has a
//! counter; [`crate::cluster::Cluster::dropped`] reads them.

/// UDP port of node `id`'s QUIC socket.
pub fn quic_port(id: u64) -> u64 {
    7000 + id
}

/// TCP port of node `id`'s admin server (`/status`, `/metrics`).
pub fn admin_port(id: u64) -> u64 {
    9000 + id
}

/// TCP port of node `id`'s key-value HTTP API ([`crate::cluster::Program::Kv`]).
pub fn http_port(id: u64) -> u64 {
    8000 + id
}

/// One fault rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Drop every datagram from node `from` to node `to` (one direction).
    Link {
        /// Sending node.
        from: u64,
        /// Receiving node.
        to: u64,
    },
    /// Drop `percent` of all datagrams between nodes, chosen at random per datagram
    /// (`numgen random`).
    Loss {
        /// 0-100.
        percent: u8,
    },
    /// Drop the last flight of every QUIC handshake that node `from` dials to node `to`
    /// (its Finished), and nothing else that matters: `from`'s side of the connection
    /// completes, `to`'s never does. See [`handshake_tail_rules`].
    HandshakeTail {
        /// The dialing node.
        from: u64,
        /// The node it dials.
        to: u64,
    },
    /// Drop the first flight of every QUIC handshake that node `from` dials to node `to`
    /// (its ClientHello: an Initial packet with the client's random 20-byte destination
    /// connection id): `from`'s dials to `to` cannot start, the rest of the link works.
    ClientHello {
        /// The dialing node.
        from: u64,
        /// The node it dials.
        to: u64,
    },
}

/// The nftables matches for [`Rule::HandshakeTail`], from the QUIC v1 headers (RFC 9000
/// 17.2), which are not encrypted (the low 4 bits of the first byte are masked, the rest is
/// clear; the fixed bit 0x40 may be greased, so it is ignored):
///
/// * a datagram that begins with an Initial packet (`first byte & 0xb0 == 0x80`) with an
///   8-byte destination connection id (a connection id the peer chose: not the client's
///   first flight, whose random one is 20 bytes) and a Length under 64 bytes (varint
///   `0x4000-0x403f` at payload offset 24, after the empty token): the client's ACK-only
///   Initial, which quinn sends coalesced with its Finished. The server's Initial carries
///   its ServerHello and is longer.
/// * a datagram that begins with a Handshake packet (`& 0xb0 == 0xa0`) under 200 IP bytes:
///   the Finished sent again alone, or a Handshake ACK. The server's certificate flight is
///   larger.
///
/// What else matches is at most a server's Handshake ACK, which the handshake does not need
/// (the server confirms with HANDSHAKE_DONE in a short-header packet, which passes).
pub fn handshake_tail_rules(from: u64, to: u64) -> [String; 2] {
    let ports = format!("udp sport {} udp dport {}", quic_port(from), quic_port(to));
    [
        format!("{ports} @th,64,8 & 0xb0 == 0x80 @th,104,8 8 @th,256,16 0x4000-0x403f counter drop"),
        format!("{ports} @th,64,8 & 0xb0 == 0xa0 ip length 0-999 counter drop"),
    ]
}

/// A clean partition: both directions between every node of `a` and every node of `b`.
pub fn partition(a: &[u64], b: &[u64]) -> Vec<Rule> {
    let mut rules = one_way(a, b);
    rules.extend(one_way(b, a));
    rules
}

/// A one-way cut: datagrams from `from` to `to` are dropped, the reverse direction works.
pub fn one_way(from: &[u64], to: &[u64]) -> Vec<Rule> {
    from.iter().flat_map(|&f| to.iter().map(move |&t| Rule::Link { from: f, to: t })).collect()
}

/// The nftables script that makes `rules` the complete rule set (empty `rules`: heal).
pub fn script(rules: &[Rule]) -> String {
    let mut s = String::from(
        "table inet qe2e {\n  chain input {\n    type filter hook input priority filter; policy accept;\n  }\n}\n\
         flush chain inet qe2e input\n",
    );
    for rule in rules {
        if let Rule::HandshakeTail { from, to } = *rule {
            for body in handshake_tail_rules(from, to) {
                s.push_str(&format!("add rule inet qe2e input {body}\n"));
            }
            continue;
        }
        let body = match *rule {
            Rule::Link { from, to } => {
                format!("udp sport {} udp dport {} counter drop", quic_port(from), quic_port(to))
            }
            Rule::Loss { percent } => format!(
                "udp dport {}-{} counter numgen random mod 100 < {percent} counter drop",
                quic_port(1),
                quic_port(99)
            ),
            Rule::ClientHello { from, to } => format!(
                "udp sport {} udp dport {} @th,64,8 & 0xb0 == 0x80 @th,104,8 20 counter drop",
                quic_port(from),
                quic_port(to)
            ),
            Rule::HandshakeTail { .. } => continue,
        };
        s.push_str("add rule inet qe2e input ");
        s.push_str(&body);
        s.push('\n');
    }
    s
}

/// Sums the `counter packets N` figures of an `nft list` output, per rule line: returns
/// (packets seen by the first counter of each rule, packets dropped by its last counter).
pub fn counters(listing: &str) -> (u64, u64) {
    let mut seen = 0;
    let mut dropped = 0;
    for line in listing.lines().filter(|l| l.contains(" drop")) {
        let packets: Vec<u64> = line
            .split("counter packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .collect();
        seen += packets.first().copied().unwrap_or(0);
        dropped += packets.last().copied().unwrap_or(0);
    }
    (seen, dropped)
}

/// The nftables script that counts (and lets pass) datagrams from source port `sport` to
/// each of `targets`' QUIC ports, in the table `inet qe2e_count` of its own, hooked before
/// the fault rules so that it counts what arrives, dropped or not.
pub fn count_script(sport: u16, targets: &[u64]) -> String {
    let mut s = String::from(
        "table inet qe2e_count {\n  chain input {\n    type filter hook input priority filter - 10; policy accept;\n  }\n}\n\
         flush chain inet qe2e_count input\n",
    );
    for &id in targets {
        s.push_str(&format!(
            "add rule inet qe2e_count input udp sport {sport} udp dport {} counter\n",
            quic_port(id)
        ));
    }
    s
}

/// Reads the counters of [`count_script`]'s rules from an `nft list` output: (node,
/// packets) for each rule.
pub fn port_counters(listing: &str) -> Vec<(u64, u64)> {
    listing
        .lines()
        .filter_map(|line| {
            let dport: u64 = line.split("udp dport ").nth(1)?.split_whitespace().next()?.parse().ok()?;
            let packets = line.split("counter packets ").nth(1)?.split_whitespace().next()?.parse().ok()?;
            Some((dport.checked_sub(quic_port(0))?, packets))
        })
        .collect()
}

/// `{1,2} | {3,4,5}`-style text for a split.
pub fn groups(a: &[u64], b: &[u64]) -> String {
    format!("{} | {}", set(a), set(b))
}

/// `{1,2}`.
pub fn set(nodes: &[u64]) -> String {
    let inner: Vec<String> = nodes.iter().map(u64::to_string).collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_cuts_both_directions_between_groups_only() {
        let rules = partition(&[1, 2], &[3]);
        assert_eq!(rules.len(), 4);
        assert!(rules.contains(&Rule::Link { from: 1, to: 3 }));
        assert!(rules.contains(&Rule::Link { from: 3, to: 2 }));
        assert!(!rules.contains(&Rule::Link { from: 1, to: 2 }));
    }

    #[test]
    fn script_flushes_then_adds_port_pair_rules() {
        let s = script(&[Rule::Link { from: 1, to: 3 }, Rule::Loss { percent: 30 }]);
        assert!(s.contains("flush chain inet qe2e input\n"));
        assert!(s.contains("add rule inet qe2e input udp sport 7001 udp dport 7003 counter drop\n"));
        assert!(s.contains("numgen random mod 100 < 30 counter drop"));
        assert!(!script(&[]).contains("add rule"));
    }

    #[test]
    fn count_rules_name_each_target_and_read_back_per_node() {
        let s = count_script(6999, &[1, 3]);
        assert!(s.contains("add rule inet qe2e_count input udp sport 6999 udp dport 7003 counter\n"));
        let listing = "\t\tudp sport 6999 udp dport 7001 counter packets 120 bytes 9000\n\
                       \t\tudp sport 6999 udp dport 7003 counter packets 7 bytes 700\n";
        assert_eq!(port_counters(listing), vec![(1, 120), (3, 7)]);
    }

    #[test]
    fn counters_read_seen_and_dropped_per_rule() {
        let listing = "\t\tudp dport 7001-7099 counter packets 100 bytes 9000 numgen random mod 100 < 30 counter packets 31 bytes 2000 drop\n\
                       \t\tudp sport 7001 udp dport 7003 counter packets 7 bytes 700 drop\n";
        assert_eq!(counters(listing), (107, 38));
    }
}
