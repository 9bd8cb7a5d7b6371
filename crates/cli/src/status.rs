//! `quorate status`: a running node's view of the cluster, read from `GET /status` on its
//! admin address and printed as a table (or as the raw JSON with `--json`).

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use quorate::{NodeStatus, PeerReport};

use crate::{http, Failure};

/// How long the whole request may take before the node counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// `--help` epilogue of `quorate status`.
pub(crate) const AFTER_HELP: &str = "\
Columns: PHI is the detector's suspicion level (down at 8 by default); HEARD is the time since
the last fresh heartbeat from that peer; LEASE LEFT is how long this node still holds that
peer's vote; DEF is the version of the definition that peer was last heard running (the node
line shows this node's). The node is writable while its own vote plus the leased ones are a
majority.

Exit codes:
  0  status printed (whether or not the node is writable)
  1  node unreachable within 3 s, or it answered with an error
  2  usage error";

/// Flags of `quorate status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The node's admin address (its `--admin` / `[node] admin`), e.g. 127.0.0.1:9001.
    #[arg(long, value_name = "ADDR")]
    admin: SocketAddr,
    /// Print the node's JSON status document unchanged instead of a table.
    #[arg(long)]
    json: bool,
}

/// Fetches and prints the status; unreachable or unreadable is exit 1.
pub(crate) async fn run(args: StatusArgs) -> Result<(), Failure> {
    let response = http::get(args.admin, "/status", REQUEST_TIMEOUT)
        .await
        .map_err(|e| Failure::Runtime(format!("node unreachable: {e}")))?;
    let body = String::from_utf8_lossy(&response.body);
    if response.status != 200 {
        return Err(Failure::Runtime(format!(
            "{} answered HTTP {} to GET /status: {}",
            args.admin,
            response.status,
            body.trim()
        )));
    }
    if args.json {
        println!("{}", body.trim_end());
        return Ok(());
    }
    let status: NodeStatus = serde_json::from_str(&body)
        .map_err(|e| Failure::Runtime(format!("{} sent a status this tool cannot read: {e}", args.admin)))?;
    print!("{}", render(&status));
    Ok(())
}

/// The table: one header line for the node, one row per peer.
fn render(s: &NodeStatus) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "node {}  cluster {}  epoch {}  writable {}  votes {}/{}/{} held/needed/total  definition v{}",
        s.node,
        s.cluster,
        s.epoch,
        if s.writable { "yes" } else { "NO" },
        s.held_votes,
        s.needed_votes,
        s.total_votes,
        s.definition_version,
    );
    match (&s.why_not, s.writable) {
        (Some(why), _) => {
            let _ = write!(out, "  not quorate: {why}");
        }
        (None, false) => out.push_str("  not quorate"),
        (None, true) => {}
    }
    out.push('\n');
    if let Some(t) = &s.timing {
        let _ = writeln!(
            out,
            "timing {} (lease {} ms, heartbeats every {} ms, down after {} ms at least)",
            t.preset.as_deref().unwrap_or("from the config file"),
            t.lease_ms,
            t.heartbeat_interval_ms,
            t.down_after_min_ms,
        );
    }
    if let Some(version) = s.removed_at_version {
        let _ = writeln!(out, "REMOVED from the cluster by definition version {version}: this node has left");
    }
    let refusing: Vec<String> = s.refused_as_non_member_by.iter().map(u64::to_string).collect();
    if s.removed_by_refusals {
        let _ = writeln!(
            out,
            "REMOVED from the cluster while it was down (version unknown): members {} refuse it as a \
             non-member; this node has left",
            refusing.join(",")
        );
    } else if !refusing.is_empty() {
        let _ = writeln!(
            out,
            "refused as a non-member by {} (fewer than a quorum: still running; a change may be spreading)",
            refusing.join(",")
        );
    }
    if let Some(p) = &s.partition {
        let _ = writeln!(out, "{}", p.summary);
    }
    if !s.fenced.is_empty() {
        let ids: Vec<String> = s.fenced.iter().map(u64::to_string).collect();
        let _ = writeln!(out, "confirmed fenced: {}", ids.join(","));
    }
    if !s.mismatched.is_empty() {
        let _ = writeln!(out, "CONFIG MISMATCH: {}", s.definition);
        for m in &s.mismatched {
            let _ = writeln!(out, "  but {m}");
        }
    }

    let header =
        ["PEER", "VOTES", "DEF", "STATE", "PHI", "RTT ms", "HEARD ms ago", "LEASE LEFT ms", "CONNECTED"];
    let rows: Vec<[String; 9]> = s.peers.iter().map(row).collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 9]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Text columns align left, numbers right.
            if matches!(i, 3 | 8) {
                let _ = write!(l, "{cell:<w$}  ");
            } else {
                let _ = write!(l, "{cell:>w$}  ");
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    out.push_str(&line(header));
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6], &r[7], &r[8]]));
    }

    for p in &s.peers {
        if let Some(why) = &p.resolve_error {
            let name = p.host_name().or(p.address.as_deref()).unwrap_or("?");
            let _ = writeln!(out, "node {} ({name}): {why}", p.id);
        }
    }
    let drops: Vec<String> =
        s.drops.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}={n}")).collect();
    if !drops.is_empty() {
        let _ = writeln!(out, "dropped datagrams: {}", drops.join(" "));
    }
    for c in &s.certificates {
        let name = c.dns_names.first().unwrap_or(&c.subject);
        if c.days_left < 0.0 {
            let _ = writeln!(out, "certificate {} {name} EXPIRED {:.0} days ago", c.role, -c.days_left);
        } else {
            let _ = writeln!(out, "certificate {} {name} expires in {:.0} days", c.role, c.days_left.floor());
        }
    }
    out
}

fn row(p: &PeerReport) -> [String; 9] {
    [
        p.id.to_string(),
        p.votes.to_string(),
        p.definition_version.map_or_else(|| "-".to_owned(), |v| format!("v{v}")),
        p.state.clone(),
        format!("{:.1}", p.phi),
        opt_ms(p.rtt_ms, 1),
        opt_ms(p.last_heard_ms_ago, 0),
        opt_ms(p.lease_left_ms, 0),
        if p.connected { "yes" } else { "no" }.to_owned(),
    ]
}

fn opt_ms(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: u64, state: &str, connected: bool) -> PeerReport {
        PeerReport {
            id,
            votes: 1,
            state: state.to_owned(),
            phi: 0.26,
            rtt_ms: connected.then_some(0.43),
            last_heard_ms_ago: Some(12.4),
            lease_left_ms: None,
            connected,
            quic: None,
            address: Some(format!("127.0.0.1:700{id}")),
            resolved: None,
            resolve_error: None,
            remote: None,
            definition_version: Some(0),
        }
    }

    fn status(writable: bool, why: Option<&str>) -> Result<NodeStatus, serde_json::Error> {
        let peers = [peer(2, "reachable", true), peer(3, "down", false)];
        // Built from JSON so the test does not depend on every field of the struct.
        serde_json::from_value(serde_json::json!({
            "node": 1, "cluster": "demo", "incarnation": 7, "writable": writable, "epoch": 42,
            "held_votes": 2, "needed_votes": 2, "total_votes": 3, "why_not": why,
            "peers": serde_json::to_value(peers)?,
            "drops": {"replayed": 3, "malformed": 0},
            "transport": {},
        }))
    }

    #[test]
    fn table_shows_the_node_line_then_one_row_per_peer() -> Result<(), serde_json::Error> {
        let text = render(&status(true, None)?);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("node 1  cluster demo  epoch 42  writable yes  votes 2/2/3"), "{text}");
        assert!(lines[1].starts_with("PEER"), "{text}");
        assert!(
            lines[2].contains("reachable") && lines[2].contains("0.3") && lines[2].ends_with("yes"),
            "{text}"
        );
        assert!(lines[3].contains("down") && lines[3].contains(" - ") && lines[3].ends_with("no"), "{text}");
        assert_eq!(lines[4], "dropped datagrams: replayed=3");
        Ok(())
    }

    #[test]
    fn the_partition_view_and_fenced_peers_follow_the_node_line() -> Result<(), serde_json::Error> {
        let mut s = status(true, None)?;
        s.partition = Some(quorate::PartitionReport {
            summary: "partition A: {1,2}; unseen: {3}".to_owned(),
            components: vec![vec![1, 2]],
            one_way: vec![],
            unseen: vec![3],
            left: vec![],
        });
        s.fenced = vec![3];
        let text = render(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "partition A: {1,2}; unseen: {3}", "{text}");
        assert_eq!(lines[2], "confirmed fenced: 3", "{text}");
        assert!(lines[3].starts_with("PEER"), "{text}");
        Ok(())
    }

    #[test]
    fn a_config_mismatch_names_both_definitions() -> Result<(), serde_json::Error> {
        let mut s = status(false, None)?;
        s.definition = "node 1 runs definition 51faf85fb9c5fcbd (members 1:1,2:1,3:1; tie-breaker 1)".into();
        s.mismatched = vec![
            "node 3 runs definition 22dd16b1a2879a30 (members 1:1,2:1,3:1,4:1,5:1; tie-breaker 1)".into(),
        ];
        s.mismatched_peers = vec![3];
        let text = render(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], format!("CONFIG MISMATCH: {}", s.definition), "{text}");
        assert!(lines[2].starts_with("  but node 3 runs definition 22dd16b1a2879a30 (members 1:1"), "{text}");
        Ok(())
    }

    #[test]
    fn certificates_close_the_table_with_their_days_left() -> Result<(), serde_json::Error> {
        let mut s = status(true, None)?;
        let cert = |role: &str, name: &str, days_left: f64| quorate::CertificateReport {
            role: role.to_owned(),
            file: "x.pem".to_owned(),
            subject: format!("CN={name}"),
            dns_names: if role == "ca" { vec![] } else { vec![name.to_owned()] },
            not_after_unix: 0,
            days_left,
        };
        s.certificates = vec![cert("node", "node-1.demo.quorate", 29.7), cert("ca", "demo CA", -2.2)];
        let text = render(&s);
        let lines: Vec<&str> = text.lines().rev().take(2).collect();
        assert_eq!(
            lines,
            [
                "certificate ca CN=demo CA EXPIRED 2 days ago",
                "certificate node node-1.demo.quorate expires in 29 days"
            ]
        );
        Ok(())
    }

    #[test]
    fn a_name_that_does_not_resolve_is_shown_under_the_table() -> Result<(), serde_json::Error> {
        let mut s = status(false, None)?;
        s.peers[1].address = Some("quorate-2.quorate.db.svc:7000".to_owned());
        s.peers[1].resolve_error = Some("name does not resolve".to_owned());
        let text = render(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[4], "node 3 (quorate-2.quorate.db.svc): name does not resolve", "{text}");
        assert_eq!(lines.iter().filter(|l| l.contains("resolve")).count(), 1, "{text}");
        Ok(())
    }

    #[test]
    fn a_fenced_node_says_why() -> Result<(), serde_json::Error> {
        let text = render(&status(false, Some("holding 1 of 3 votes, 2 needed"))?);
        assert!(
            text.lines().next().unwrap_or_default().ends_with(
                "writable NO  votes 2/2/3 held/needed/total  definition v0  not quorate: holding 1 of 3 votes, 2 needed"
            ),
            "{text}"
        );
        Ok(())
    }
}
