//! Events as JSON lines, stamped so that logs of several processes line up.
//!
//! Each record carries `mono_us`, microseconds of `CLOCK_MONOTONIC` (system-wide on one
//! machine, so every process on it shares the time base), and `at_us`, when the event
//! happened on the node's gate clock converted to the same base. Tools outside the process
//! merge logs of several nodes by `at_us`.

use std::io::Write;

use quorate_gate::{QuorumEvent, Why};
use quorate_proto::NodeId;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::clock;

/// Lines buffered for the writer task before new ones are dropped (and counted): the
/// node's event loop never waits for a disk.
pub const EVENT_LINES_BUFFER: usize = 4096;

/// One JSON-lines record for `event` on node `node`.
pub fn event_json(node: NodeId, event: &QuorumEvent) -> Value {
    let at_us = clock::gate_to_monotonic_us(event.at());
    let mut v = json!({
        "mono_us": clock::monotonic_us(),
        "at_us": at_us,
        "node": node.0,
    });
    let fields = match event {
        QuorumEvent::QuorumGained { epoch, held_votes, needed_votes, .. } => {
            json!({"event": "quorum_gained", "epoch": epoch.0, "held_votes": held_votes, "needed_votes": needed_votes})
        }
        QuorumEvent::QuorumLost { epoch, why, .. } => {
            json!({"event": "quorum_lost", "epoch": epoch.0, "why": why.to_string(), "reason": why_kind(why)})
        }
        QuorumEvent::PeerUp { peer, .. } => json!({"event": "peer_up", "peer": peer.0}),
        QuorumEvent::PeerSuspect { peer, .. } => json!({"event": "peer_suspect", "peer": peer.0}),
        QuorumEvent::PeerDown { peer, .. } => json!({"event": "peer_down", "peer": peer.0}),
        QuorumEvent::PeerLeft { peer, .. } => json!({"event": "peer_left", "peer": peer.0}),
        QuorumEvent::PeerAliveElsewhere { peer, via, .. } => {
            json!({"event": "peer_alive_elsewhere", "peer": peer.0, "via": ids(via)})
        }
        QuorumEvent::PeerDownEverywhere { peer, .. } => {
            json!({"event": "peer_down_everywhere", "peer": peer.0})
        }
        QuorumEvent::PeerFenced { peer, confirmed_by, .. } => {
            json!({"event": "peer_fenced", "peer": peer.0, "confirmed_by": ids(confirmed_by)})
        }
        QuorumEvent::ConfigMismatch { peer, ours, theirs, .. } => json!({
            "event": "config_mismatch",
            "peer": peer.0,
            "ours": ours.to_string(),
            "theirs": theirs.to_string(),
        }),
        QuorumEvent::ConfigMatched { peer, .. } => json!({"event": "config_matched", "peer": peer.0}),
        _ => json!({"event": "other"}),
    };
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), fields) {
        obj.extend(extra);
    }
    v
}

fn ids(ids: &[NodeId]) -> Vec<u64> {
    ids.iter().map(|id| id.0).collect()
}

fn why_kind(why: &Why) -> &'static str {
    match why {
        Why::MissingVotes { .. } => "missing_votes",
        Why::WaitingForAll { .. } => "waiting_for_all",
        Why::EpochChanged { .. } => "epoch_changed",
        Why::Stopped => "stopped",
        Why::DefinitionMismatch { .. } => "definition_mismatch",
        Why::EpochsExhausted => "epochs_exhausted",
        _ => "other",
    }
}

/// A sink for event lines: a bounded channel to a writer task.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    tx: mpsc::Sender<String>,
}

impl EventSink {
    /// Starts the writer task for `out`.
    pub(crate) fn start(mut out: Box<dyn Write + Send>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<String>(EVENT_LINES_BUFFER);
        let task = tokio::task::spawn_blocking(move || {
            while let Some(line) = rx.blocking_recv() {
                if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                    // Nowhere to report a broken log but the tracing output.
                    tracing::warn!("cannot write event log; further events are not logged");
                    return;
                }
            }
        });
        (EventSink { tx }, task)
    }

    /// Queues a line; returns false if it had to be dropped.
    pub(crate) fn send(&self, line: String) -> bool {
        self.tx.try_send(line).is_ok()
    }
}
