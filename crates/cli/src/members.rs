//! `quorate members add|remove|set-votes` and `quorate config set`: one change to the
//! cluster's definition, sent to a member's admin endpoint, then followed until every
//! reachable voter runs the new version.
//!
//! ```text
//!   POST /members or /config ──► 200: the new definition, version N ──► poll GET /status
//!        │                                                              until every voter
//!        └─► 4xx/5xx: the reason (unsafe: the safe route; pending:       runs N, or the rest
//!            the voters that have not moved) ──► exit 1                  is unreachable, or
//!                                                                        --timeout ──► exit 1
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use quorate::{ChangeErrorReport, DefinitionReport, NodeStatus};

use crate::{http, parse_duration, Failure};

/// How long the change request itself may take (the node persists the definition first).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often progress is read.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// A voter never heard yet (a member just added, not started?) counts as unreachable after
/// this long.
const UNHEARD_GRACE: Duration = Duration::from_secs(5);

/// `--help` epilogue of `quorate members` and `quorate config`.
pub(crate) const AFTER_HELP: &str = "\
Send the command to any member's admin endpoint, on that member's host: changes are accepted
from loopback only. One change at a time: a change is refused while a voter has not been heard
running the previous one (it names the voters), and a change that could let two disjoint
quorums exist while nodes switch over is refused with the reason and a safe sequence of single
changes. After it is accepted the command shows which voters run the new version until every
reachable voter does. A timeout does not undo the change: it is persisted on the nodes that
run it and spreads to the others when they hear it. docs/operations.md has the procedures.

Exit codes:
  0  the change is in effect on every reachable voter
  1  refused (the reason is printed), node unreachable, or not in effect within --timeout
  2  usage error";

/// Where to send a change and how long to follow it.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// A member's admin address (its `--admin` / `[node] admin`), e.g. 127.0.0.1:9001.
    #[arg(long, value_name = "ADDR")]
    admin: SocketAddr,
    /// How long to wait for every reachable voter to run the new version.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
}

/// `quorate members ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum MembersCommand {
    /// Add a member (start it with a config file that lists the definition after the change).
    Add {
        /// Its node id, as in its certificate.
        #[arg(long)]
        id: u64,
        /// Where it listens: IP:PORT or HOST:PORT.
        #[arg(long, value_name = "ADDR")]
        addr: String,
        /// Its votes; 0 makes an observer.
        #[arg(long, default_value_t = 1)]
        votes: u32,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a member (it learns it and stops; send this to another member).
    Remove {
        /// The member's node id.
        #[arg(long)]
        id: u64,
        /// Change the tie-breaker in the same step (none, lowest-id or a voter's id): how a
        /// dead member is removed when removing it alone is refused as unsafe.
        #[arg(long)]
        tie_breaker: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Change a member's votes (0 makes an observer).
    SetVotes {
        /// The member's node id.
        #[arg(long)]
        id: u64,
        /// Its new votes.
        #[arg(long)]
        votes: u32,
        #[command(flatten)]
        target: Target,
    },
}

/// `quorate config ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Set one setting online: quorum.tie_breaker=none|lowest-id|<id>, or
    /// timing.preset=lan|wan (every node switches its timing without a restart).
    Set {
        /// KEY=VALUE, e.g. quorum.tie_breaker=none.
        #[arg(value_name = "KEY=VALUE")]
        setting: String,
        #[command(flatten)]
        target: Target,
    },
}

/// Runs `quorate members ...`.
pub(crate) async fn members(cmd: MembersCommand) -> Result<(), Failure> {
    let (body, target) = match cmd {
        MembersCommand::Add { id, addr, votes, target } => {
            (serde_json::json!({"action": "add", "id": id, "addr": addr, "votes": votes}), target)
        }
        MembersCommand::Remove { id, tie_breaker, target } => {
            let mut body = serde_json::json!({"action": "remove", "id": id});
            if let Some(tb) = tie_breaker {
                body["tie_breaker"] = serde_json::Value::String(tb);
            }
            (body, target)
        }
        MembersCommand::SetVotes { id, votes, target } => {
            (serde_json::json!({"action": "set-votes", "id": id, "votes": votes}), target)
        }
    };
    change(&target, "/members", &body).await
}

/// Between two tries of a change refused while votes lent may still be held.
const LENT_RETRY: Duration = Duration::from_millis(200);

/// Runs `quorate config ...`.
pub(crate) async fn config(cmd: ConfigCommand) -> Result<(), Failure> {
    let ConfigCommand::Set { setting, target } = cmd;
    let Some((key, value)) = setting.split_once('=') else {
        return Err(Failure::Usage(format!(
            "expected KEY=VALUE, e.g. quorum.tie_breaker=none; got {setting:?}"
        )));
    };
    let body = serde_json::json!({"key": key.trim(), "value": value.trim()});
    change(&target, "/config", &body).await
}

/// Sends the change, then follows it.
async fn change(target: &Target, path: &str, body: &serde_json::Value) -> Result<(), Failure> {
    let started = Instant::now();
    let bytes = body.to_string().into_bytes();
    let mut told = false;
    let text = loop {
        let response = http::post_json(target.admin, path, bytes.clone(), REQUEST_TIMEOUT)
            .await
            .map_err(|e| Failure::Runtime(format!("node unreachable: {e}")))?;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        if response.status == 200 {
            break text;
        }
        let report = serde_json::from_str::<ChangeErrorReport>(&text);
        // Votes lent to a peer the change leaves behind expire within a lease or so: wait
        // for them (bounded by --timeout) rather than refuse.
        if let Some(r) =
            report.as_ref().ok().filter(|r| r.error == "lent" && started.elapsed() < target.timeout)
        {
            if !told {
                println!("waiting: {}", r.message);
                told = true;
            }
            tokio::time::sleep(LENT_RETRY).await;
            continue;
        }
        return Err(Failure::Runtime(match report {
            Ok(report) => refusal(&report),
            Err(_) => format!("{} answered HTTP {}: {}", target.admin, response.status, text.trim()),
        }));
    };
    let definition: DefinitionReport = serde_json::from_str(&text).map_err(|e| {
        Failure::Runtime(format!("{} sent an answer this tool cannot read: {e}", target.admin))
    })?;
    println!("accepted: definition version {} ({})", definition.version, describe(&definition));
    follow(target, &definition, started).await
}

/// The refusal in words: the reason, and the route or the voters waited for.
fn refusal(report: &ChangeErrorReport) -> String {
    let mut out = format!("refused ({}): {}", report.error, report.message);
    if !report.route.is_empty() {
        out.push_str("\nsafe sequence, one command at a time (each once the previous one is in effect):");
        for (i, step) in report.route.iter().enumerate() {
            out.push_str(&format!("\n  {}. {step}", i + 1));
        }
    }
    if report.error == "pending" {
        out.push_str("\nbring those voters back (or remove one that is gone for good), then retry");
    }
    if report.error == "behind" {
        out.push_str("\nretry in a moment");
    }
    out
}

/// `1:1@10.0.0.1:7001, 2:1@..; tie-breaker none`.
fn describe(d: &DefinitionReport) -> String {
    let members: Vec<String> = d
        .members
        .iter()
        .map(|m| format!("{}:{}@{}", m.id, m.votes, m.address.as_deref().unwrap_or("-")))
        .collect();
    let tie = d.tie_breaker.map_or_else(|| "none".to_owned(), |t| format!("node {t}"));
    format!("members {}; tie-breaker {tie}", members.join(", "))
}

/// Where the voters stand on version `want`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Progress {
    moved: BTreeSet<u64>,
    waiting: BTreeSet<u64>,
    unreachable: BTreeSet<u64>,
}

fn progress(status: &NodeStatus, d: &DefinitionReport, unheard_is_unreachable: bool) -> Progress {
    let mut p = Progress::default();
    for m in d.members.iter().filter(|m| m.votes > 0) {
        if m.id == status.node {
            if status.definition_version >= d.version {
                p.moved.insert(m.id);
            } else {
                p.waiting.insert(m.id);
            }
            continue;
        }
        let peer = status.peers.iter().find(|r| r.id == m.id);
        let version = peer.and_then(|r| r.definition_version);
        let state = peer.map_or("unknown", |r| r.state.as_str());
        if version.is_some_and(|v| v >= d.version) {
            p.moved.insert(m.id);
        } else if matches!(state, "down" | "left") || (state == "unknown" && unheard_is_unreachable) {
            p.unreachable.insert(m.id);
        } else {
            p.waiting.insert(m.id);
        }
    }
    p
}

fn ids(set: &BTreeSet<u64>) -> String {
    if set.is_empty() {
        return "-".to_owned();
    }
    set.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// Polls the node's status until every voter of `d` runs it, or the rest is unreachable,
/// or the timeout.
async fn follow(target: &Target, d: &DefinitionReport, started: Instant) -> Result<(), Failure> {
    let mut shown: Option<Progress> = None;
    loop {
        let elapsed = started.elapsed();
        let status = http::get(target.admin, "/status", REQUEST_TIMEOUT)
            .await
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_slice::<NodeStatus>(&r.body).ok());
        if let Some(status) = &status {
            let now = progress(status, d, elapsed >= UNHEARD_GRACE);
            if shown.as_ref() != Some(&now) {
                println!(
                    "version {}: running it {}; waiting for {}; unreachable {}",
                    d.version,
                    ids(&now.moved),
                    ids(&now.waiting),
                    ids(&now.unreachable)
                );
            }
            if now.waiting.is_empty() {
                if now.unreachable.is_empty() {
                    println!("in effect on every voter: definition version {} ({})", d.version, describe(d));
                } else {
                    println!(
                        "in effect on every reachable voter: definition version {} ({}); not reachable: {} \
                         (each adopts it when it is back; the next change waits for them, or remove one \
                         that is gone for good)",
                        d.version,
                        describe(d),
                        ids(&now.unreachable)
                    );
                }
                return Ok(());
            }
            shown = Some(now);
        }
        if elapsed >= target.timeout {
            let waiting = shown.as_ref().map_or_else(|| "(no status read)".to_owned(), |p| ids(&p.waiting));
            println!(
                "not in effect on every reachable voter within {}: not moved yet {waiting}. The change \
                 stays in force: version {} is persisted on the nodes that run it and spreads to the \
                 others when they hear it (check with `quorate status`); the next change waits for them",
                humantime::format_duration(target.timeout),
                d.version
            );
            return Err(Failure::Outcome);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition() -> DefinitionReport {
        serde_json::from_value(serde_json::json!({
            "version": 2, "tie_breaker": null,
            "members": [{"id": 1, "votes": 1, "address": "a:1"}, {"id": 2, "votes": 1, "address": "b:1"},
                        {"id": 3, "votes": 1, "address": "c:1"}, {"id": 4, "votes": 0, "address": "d:1"}],
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn status(peers: serde_json::Value) -> NodeStatus {
        serde_json::from_value(serde_json::json!({
            "node": 1, "cluster": "c", "incarnation": 1, "writable": true, "epoch": 1, "held_votes": 3,
            "needed_votes": 2, "total_votes": 3, "why_not": null, "peers": peers, "drops": {},
            "transport": {}, "definition_version": 2,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn peer(id: u64, state: &str, version: Option<u64>) -> serde_json::Value {
        serde_json::json!({"id": id, "votes": 1, "state": state, "phi": 0.0, "rtt_ms": null,
            "last_heard_ms_ago": null, "lease_left_ms": null, "connected": true, "definition_version": version})
    }

    #[test]
    fn voters_are_moved_waiting_or_unreachable_and_observers_do_not_count() {
        let s = status(serde_json::json!([peer(2, "reachable", Some(2)), peer(3, "reachable", Some(1))]));
        let p = progress(&s, &definition(), false);
        assert_eq!(
            (ids(&p.moved), ids(&p.waiting), ids(&p.unreachable)),
            ("1,2".into(), "3".into(), "-".into())
        );
        let s = status(serde_json::json!([peer(2, "reachable", Some(2)), peer(3, "down", Some(1))]));
        let p = progress(&s, &definition(), false);
        assert_eq!((ids(&p.waiting), ids(&p.unreachable)), ("-".into(), "3".into()));
        // Never heard: waited for at first, unreachable after the grace.
        let s = status(serde_json::json!([peer(2, "reachable", Some(3)), peer(3, "unknown", None)]));
        assert_eq!(ids(&progress(&s, &definition(), false).waiting), "3");
        assert_eq!(ids(&progress(&s, &definition(), true).unreachable), "3");
    }

    #[test]
    fn an_unsafe_refusal_lists_its_route_one_step_a_line() {
        let report = ChangeErrorReport {
            error: "unsafe".into(),
            message: "{2,3} is a quorum of the current definition and {1,4} of the new one: both could write"
                .into(),
            waiting: vec![],
            route: vec![
                "set the tie-breaker to none (strict majority)".into(),
                "add node 4 with 1 vote".into(),
            ],
        };
        let text = refusal(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("refused (unsafe): {2,3} is a quorum"), "{text}");
        assert_eq!(lines[2], "  1. set the tie-breaker to none (strict majority)");
        assert_eq!(lines[3], "  2. add node 4 with 1 vote");
    }
}
