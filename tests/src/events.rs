//! The nodes' event logs and the harness's own actions, merged into one timeline.
//!
//! Each node appends JSON lines to its events file (a restarted node appends to the same
//! file). `at_us` is when the event happened by the node's gate clock, converted to
//! `CLOCK_MONOTONIC` microseconds; the harness stamps its actions ([`Mark`]) with the same
//! clock, so the whole timeline is in one time base. A node's state at a time is derived
//! from its `quorum_gained` / `quorum_lost` events within its current life (between the
//! harness's start and stop marks for it): a process that is not running writes nothing.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::timing::secs;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The node became writable (new epoch).
    QuorumGained,
    /// The node fenced itself.
    QuorumLost,
    /// A peer was heard again.
    PeerUp,
    /// A peer's suspicion passed the warning level.
    PeerSuspect,
    /// A peer is considered down.
    PeerDown,
    /// A peer announced that it leaves.
    PeerLeft,
    /// A fence check confirmed the peer fenced (`PeerFenced`).
    PeerFenced,
    /// The peer runs another quorum definition.
    ConfigMismatch,
    /// Anything else the node logs.
    Other,
}

/// One line of a node's events file.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The node that logged it.
    pub node: u64,
    /// When it happened (gate clock, as `CLOCK_MONOTONIC` microseconds).
    pub at_us: u64,
    /// When it was written (`CLOCK_MONOTONIC` microseconds).
    pub mono_us: u64,
    /// What happened.
    pub kind: Kind,
    /// The fencing epoch (quorum events).
    pub epoch: Option<u64>,
    /// The peer (peer events).
    pub peer: Option<u64>,
    /// Why quorum was lost, in words.
    pub why: Option<String>,
    /// Why quorum was lost, as a keyword (`missing_votes`, `stopped`, ...).
    pub reason: Option<String>,
}

impl Event {
    /// Parses one JSON line.
    pub fn parse(line: &str) -> Result<Event, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        let num = |k: &str| v.get(k).and_then(Value::as_u64);
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let kind = match v.get("event").and_then(Value::as_str) {
            Some("quorum_gained") => Kind::QuorumGained,
            Some("quorum_lost") => Kind::QuorumLost,
            Some("peer_up") => Kind::PeerUp,
            Some("peer_suspect") => Kind::PeerSuspect,
            Some("peer_down") => Kind::PeerDown,
            Some("peer_left") => Kind::PeerLeft,
            Some("peer_fenced") => Kind::PeerFenced,
            Some("config_mismatch") => Kind::ConfigMismatch,
            Some(_) => Kind::Other,
            None => return Err(format!("no \"event\" field: {line}")),
        };
        Ok(Event {
            node: num("node").ok_or_else(|| format!("no \"node\" field: {line}"))?,
            at_us: num("at_us").ok_or_else(|| format!("no \"at_us\" field: {line}"))?,
            mono_us: num("mono_us").ok_or_else(|| format!("no \"mono_us\" field: {line}"))?,
            kind,
            epoch: num("epoch"),
            peer: num("peer"),
            why: text("why"),
            reason: text("reason"),
        })
    }

    fn describe(&self) -> String {
        let mut s = match self.kind {
            Kind::QuorumGained => "quorum_gained".to_owned(),
            Kind::QuorumLost => "QUORUM_LOST".to_owned(),
            Kind::PeerUp => "peer_up".to_owned(),
            Kind::PeerSuspect => "peer_suspect".to_owned(),
            Kind::PeerDown => "peer_down".to_owned(),
            Kind::PeerLeft => "peer_left".to_owned(),
            Kind::PeerFenced => "PEER_FENCED".to_owned(),
            Kind::ConfigMismatch => "config_mismatch".to_owned(),
            Kind::Other => "other".to_owned(),
        };
        if let Some(p) = self.peer {
            let _ = write!(s, " {p}");
        }
        if let Some(e) = self.epoch {
            let _ = write!(s, " epoch {}", epoch_text(e));
        }
        if let Some(r) = &self.reason {
            let _ = write!(s, " ({r}: {})", self.why.as_deref().unwrap_or(""));
        }
        if self.mono_us > self.at_us + 50_000 {
            let _ = write!(s, " [logged {} later]", secs(self.mono_us as i64 - self.at_us as i64));
        }
        s
    }
}

/// An epoch as `incarnation:n` (the epoch is `incarnation x 2^20 + n`).
pub fn epoch_text(epoch: u64) -> String {
    format!("{}:{}", epoch >> 20, epoch & ((1 << 20) - 1))
}

/// Reads a node's events file: the events of complete lines, and the lines that did not
/// parse. A missing file is an empty log (the node has not written yet).
pub fn read_file(path: &Path) -> (Vec<Event>, Vec<String>) {
    let Ok(text) = std::fs::read_to_string(path) else { return (Vec::new(), Vec::new()) };
    // The writer may be halfway through the last line: only lines ending in '\n' count.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for line in complete.lines().filter(|l| !l.trim().is_empty()) {
        match Event::parse(line) {
            Ok(e) => events.push(e),
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    (events, errors)
}

/// What the harness did, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Started node N's process.
    Start(u64),
    /// Node N's process is gone (killed, or exited after SIGTERM).
    Stop(u64),
    /// Anything else: a fault applied or removed, a signal, a phase.
    Note,
}

/// One harness action, stamped before it began and after it completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// `CLOCK_MONOTONIC` microseconds read just before the action started.
    pub at_us: u64,
    /// `CLOCK_MONOTONIC` microseconds read just after it completed.
    pub done_us: u64,
    /// Its effect on node lifetimes.
    pub action: Action,
    /// In words.
    pub what: String,
}

/// The merged record of one scenario.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Every node's events, ordered by `at_us`.
    pub events: Vec<Event>,
    /// The harness's actions, in order.
    pub marks: Vec<Mark>,
    /// Lines that did not parse.
    pub errors: Vec<String>,
    /// The time origin for display: when the scenario started.
    pub origin_us: u64,
}

impl Log {
    /// Builds a log from per-node events and the harness's marks.
    pub fn new(mut events: Vec<Event>, marks: Vec<Mark>, errors: Vec<String>, origin_us: u64) -> Log {
        events.sort_by_key(|e| e.at_us);
        Log { events, marks, errors, origin_us }
    }

    /// The start of node's life that contains `t`: `None` when its process is not running
    /// at `t`. A stop counts from when the harness saw the process gone.
    pub fn life_start(&self, node: u64, t: u64) -> Option<u64> {
        let mut start = None;
        for m in self.marks.iter().take_while(|m| m.at_us <= t) {
            match m.action {
                Action::Start(n) if n == node => start = Some(m.at_us),
                Action::Stop(n) if n == node && m.done_us <= t => start = None,
                _ => {}
            }
        }
        start
    }

    /// Node's events of kind `kind` with `at_us` in `[from, to]`.
    pub fn of<'a>(
        &'a self,
        node: u64,
        kind: Kind,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = &'a Event> + 'a {
        self.events
            .iter()
            .filter(move |e| e.node == node && e.kind == kind && e.at_us >= from && e.at_us <= to)
    }

    /// The last `quorum_gained` / `quorum_lost` of node at or before `t` in its current life.
    pub fn quorum_state(&self, node: u64, t: u64) -> Option<&Event> {
        let start = self.life_start(node, t)?;
        self.events
            .iter()
            .take_while(|e| e.at_us <= t)
            .filter(|e| e.node == node && e.at_us >= start)
            .filter(|e| matches!(e.kind, Kind::QuorumGained | Kind::QuorumLost))
            .last()
    }

    /// Whether node was writable at `t`, by its own log: running, and its last quorum event
    /// in this life was a gain.
    pub fn writable_at(&self, node: u64, t: u64) -> bool {
        self.quorum_state(node, t).is_some_and(|e| e.kind == Kind::QuorumGained)
    }

    /// The highest epoch node logged at or before `t` (any life).
    pub fn max_epoch_before(&self, node: u64, t: u64) -> Option<u64> {
        self.events.iter().filter(|e| e.node == node && e.at_us <= t).filter_map(|e| e.epoch).max()
    }

    /// The last `lines` lines of the merged timeline of node events and harness actions,
    /// times in seconds since the scenario started.
    pub fn timeline(&self, lines: usize) -> String {
        let mut rows: Vec<(u64, String)> = self
            .events
            .iter()
            .map(|e| (e.at_us, format!("node {:<3} {}", e.node, e.describe())))
            .chain(self.marks.iter().map(|m| {
                let took = m.done_us.saturating_sub(m.at_us);
                let took = if took >= 1_000 { format!(" (took {} ms)", took / 1_000) } else { String::new() };
                (m.at_us, format!("harness  >>> {}{took}", m.what))
            }))
            .collect();
        rows.sort_by_key(|r| r.0);
        let skip = rows.len().saturating_sub(lines);
        let mut out = String::new();
        if skip > 0 {
            let _ = writeln!(out, "    ({skip} earlier lines not shown)");
        }
        for (at, text) in &rows[skip..] {
            let _ = writeln!(out, "    {:>9}  {text}", secs(*at as i64 - self.origin_us as i64));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(at_us: u64, action: Action) -> Mark {
        Mark { at_us, done_us: at_us + 1, action, what: String::new() }
    }

    fn quorum(node: u64, at_us: u64, kind: Kind) -> Event {
        Event { node, at_us, mono_us: at_us, kind, epoch: Some(1), peer: None, why: None, reason: None }
    }

    #[test]
    fn parses_a_quorum_lost_line() {
        let e = Event::parse(
            r#"{"at_us":5,"epoch":7,"event":"quorum_lost","mono_us":6,"node":3,"reason":"missing_votes","why":"x"}"#,
        );
        assert_eq!(
            e,
            Ok(Event {
                node: 3,
                at_us: 5,
                mono_us: 6,
                kind: Kind::QuorumLost,
                epoch: Some(7),
                peer: None,
                why: Some("x".into()),
                reason: Some("missing_votes".into())
            })
        );
        assert!(Event::parse("{\"node\":1}").is_err());
    }

    #[test]
    fn writable_follows_quorum_events_within_one_life() {
        let marks = vec![mark(0, Action::Start(1)), mark(100, Action::Stop(1)), mark(200, Action::Start(1))];
        let events = vec![
            quorum(1, 10, Kind::QuorumGained),
            quorum(1, 50, Kind::QuorumLost),
            quorum(1, 60, Kind::QuorumGained),
        ];
        let log = Log::new(events, marks, Vec::new(), 0);
        assert!(!log.writable_at(1, 5));
        assert!(log.writable_at(1, 10));
        assert!(!log.writable_at(1, 55));
        assert!(log.writable_at(1, 99));
        assert!(!log.writable_at(1, 150), "a stopped process writes nothing");
        assert!(!log.writable_at(1, 250), "a new life starts fenced");
    }
}
