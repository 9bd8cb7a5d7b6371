//! The invariants, checked on the merged log in real time.
//!
//! Each check returns `Ok(text)` with what it measured or `Err(text)` with what went wrong.
//! Times are measured from the harness's clock read just before it started the action
//! (`Mark::at_us`), so they overstate the true delay by at most the action's own duration
//! (an `nft` command: a few milliseconds), never understate it.

use std::time::Duration;

use crate::cluster::Spec;
use crate::events::{epoch_text, Event, Kind, Log, Mark};
use crate::faults::set;
use crate::timing::{secs, us};

/// What a scenario measured and what it found wrong.
#[derive(Debug, Default)]
pub struct Report {
    /// `label: measured` lines, in order.
    pub lines: Vec<String>,
    /// Violations and errors; empty means passed.
    pub failures: Vec<String>,
}

impl Report {
    /// Records a check's outcome under `label`.
    pub fn check(&mut self, label: &str, outcome: Result<String, String>) {
        match outcome {
            Ok(text) => self.lines.push(format!("{label}: {text}")),
            Err(text) => {
                self.lines.push(format!("{label}: FAILED: {text}"));
                self.failures.push(format!("{label}: {text}"));
            }
        }
    }

    /// Records a figure that is not checked against a bound.
    pub fn info(&mut self, label: &str, text: impl Into<String>) {
        self.lines.push(format!("{label}: {}", text.into()));
    }
}

fn span(from: u64, to: u64) -> i64 {
    to as i64 - from as i64
}

/// Every node of `nodes` was writable at the cut, fenced itself within `bound` of it, and
/// stayed fenced until `until_us` (the heal).
pub fn fenced_within(
    log: &Log,
    nodes: &[u64],
    cut: &Mark,
    until_us: u64,
    bound: Duration,
) -> Result<String, String> {
    let mut parts = Vec::new();
    for &node in nodes {
        if !log.writable_at(node, cut.at_us) {
            return Err(format!("node {node} was not writable when the cut began"));
        }
        let Some(lost) = log.of(node, Kind::QuorumLost, cut.at_us, until_us).next() else {
            return Err(format!(
                "node {node} never fenced during the {} cut",
                secs(span(cut.at_us, until_us))
            ));
        };
        let fence = span(cut.at_us, lost.at_us);
        if fence > us(bound) as i64 {
            return Err(format!(
                "node {node} fenced {} after the cut, bound {}",
                secs(fence),
                secs(us(bound) as i64)
            ));
        }
        if let Some(gained) = log.of(node, Kind::QuorumGained, lost.at_us, until_us).next() {
            return Err(format!(
                "node {node} became writable again {} after the cut, before the heal",
                secs(span(cut.at_us, gained.at_us))
            ));
        }
        parts.push(format!("node {node} {}", secs(fence)));
    }
    Ok(format!("{} (bound {})", parts.join(", "), secs(us(bound) as i64)))
}

/// Every node of `nodes` was writable at `from` and logged no `quorum_lost` up to `to`.
pub fn never_fenced(log: &Log, nodes: &[u64], from: u64, to: u64) -> Result<String, String> {
    for &node in nodes {
        if !log.writable_at(node, from) {
            return Err(format!("node {node} was not writable at the start of the checked span"));
        }
        if let Some(lost) = log.of(node, Kind::QuorumLost, from, to).next() {
            return Err(format!(
                "node {node} fenced at {}: {}",
                secs(span(log.origin_us, lost.at_us)),
                lost.why.as_deref().unwrap_or("")
            ));
        }
    }
    Ok(format!("{} writable throughout ({})", set(nodes), secs(span(from, to))))
}

/// The first time at or after `from` at which node is writable, if any up to `to`.
fn writable_from(log: &Log, node: u64, from: u64, to: u64) -> Option<u64> {
    if log.writable_at(node, from) {
        return Some(from);
    }
    log.of(node, Kind::QuorumGained, from, to).map(|e| e.at_us).find(|&t| log.writable_at(node, t))
}

/// Every node of `nodes` is writable within `bound` of the heal; reports the fenced ones.
pub fn healed_within(log: &Log, nodes: &[u64], heal: &Mark, bound: Duration) -> Result<String, String> {
    let limit = heal.at_us + us(bound);
    let mut parts = Vec::new();
    let mut worst = 0;
    for &node in nodes {
        let Some(t) = writable_from(log, node, heal.at_us, limit) else {
            return Err(format!("node {node} not writable within {} of the heal", secs(us(bound) as i64)));
        };
        if t > heal.at_us {
            parts.push(format!("node {node} {}", secs(span(heal.at_us, t))));
            worst = worst.max(span(heal.at_us, t));
        }
    }
    if parts.is_empty() {
        return Ok("nobody was fenced at the heal".into());
    }
    Ok(format!(
        "all writable {} after the heal ({}; bound {})",
        secs(worst),
        parts.join(", "),
        secs(us(bound) as i64)
    ))
}

/// A paused node (SIGSTOP at `stop`, SIGCONT at `cont`) fenced itself by its clock within
/// `bound` of the pause, while still paused (guarantee G3): its `quorum_lost` is stamped
/// inside the pause although it could only be written after the wake.
pub fn paused_wakes_fenced(
    log: &Log,
    node: u64,
    stop: &Mark,
    cont: &Mark,
    bound: Duration,
) -> Result<String, String> {
    if !log.writable_at(node, stop.at_us) {
        return Err(format!("node {node} was not writable when paused"));
    }
    let Some(lost) = log.of(node, Kind::QuorumLost, stop.at_us, u64::MAX).next() else {
        return Err(format!("node {node} never logged quorum_lost after its pause"));
    };
    let fence = span(stop.at_us, lost.at_us);
    if fence > us(bound) as i64 {
        return Err(format!(
            "node {node} fenced {} after SIGSTOP, bound {}",
            secs(fence),
            secs(us(bound) as i64)
        ));
    }
    if lost.at_us >= cont.at_us {
        return Err(format!(
            "node {node} was still writable when it woke: fenced {} after SIGCONT",
            secs(span(cont.at_us, lost.at_us))
        ));
    }
    Ok(format!(
        "fenced {} into the {} pause (bound {}), written {} after SIGCONT",
        secs(fence),
        secs(span(stop.at_us, cont.at_us)),
        secs(us(bound) as i64),
        secs(span(cont.at_us, lost.mono_us))
    ))
}

/// Node is writable within `bound` of `since` (a restart or a wake) with an epoch above
/// every epoch it logged before (guarantee G4).
pub fn rejoined(log: &Log, node: u64, since: &Mark, bound: Duration) -> Result<String, String> {
    let before = log.max_epoch_before(node, since.at_us);
    let Some(gained) = log.of(node, Kind::QuorumGained, since.at_us, since.at_us + us(bound)).next() else {
        return Err(format!(
            "node {node} not writable within {} of `{}`",
            secs(us(bound) as i64),
            since.what
        ));
    };
    let epoch = gained.epoch.unwrap_or(0);
    if before.is_some_and(|b| epoch <= b) {
        return Err(format!(
            "node {node} rejoined with epoch {} not above its earlier {}",
            epoch_text(epoch),
            epoch_text(before.unwrap_or(0))
        ));
    }
    Ok(format!(
        "node {node} writable {} later, epoch {} > {}",
        secs(span(since.at_us, gained.at_us)),
        epoch_text(epoch),
        before.map_or("none".into(), epoch_text)
    ))
}

/// Node declared no peer down in `[from, to]` (guarantee G6 after a pause).
pub fn no_peer_down(log: &Log, node: u64, from: u64, to: u64) -> Result<String, String> {
    match log.of(node, Kind::PeerDown, from, to).next() {
        Some(e) => Err(format!(
            "node {node} declared node {} down {} after waking",
            e.peer.unwrap_or(0),
            secs(span(from, e.at_us))
        )),
        None => Ok(format!("node {node} declared no peer down in the {} after waking", secs(span(from, to)))),
    }
}

/// When the last of `observers` declared each node of `targets` down after the action `from`, up to
/// `to` (not a guarantee: reported next to the fence times; the floor makes it >= 1 s after
/// the target was last heard).
pub fn seen_down(
    log: &Log,
    observers: &[u64],
    targets: &[u64],
    from: &Mark,
    to: u64,
) -> Result<String, String> {
    let (label, from) = (&from.what, from.at_us);
    let mut worst: Option<i64> = None;
    for &t in targets {
        for &o in observers {
            let down = log.events.iter().find(|e| {
                e.node == o
                    && e.peer == Some(t)
                    && e.kind == Kind::PeerDown
                    && e.at_us >= from
                    && e.at_us <= to
            });
            match down {
                Some(e) => worst = Some(worst.unwrap_or(0).max(span(from, e.at_us))),
                None => return Err(format!("node {o} never declared node {t} down")),
            }
        }
    }
    Ok(format!("{} saw {} down {} after `{label}`", set(observers), set(targets), secs(worst.unwrap_or(0))))
}

/// Whether `observer` considers `target` down at `t`, by its log in its current life:
/// after a `peer_down` or `peer_left` for it, until a `peer_up`.
fn considers_down(log: &Log, observer: u64, target: u64, t: u64) -> bool {
    let Some(start) = log.life_start(observer, t) else { return false };
    let mut down = false;
    for e in log.events.iter().take_while(|e| e.at_us <= t) {
        if e.node != observer || e.peer != Some(target) || e.at_us < start {
            continue;
        }
        match e.kind {
            Kind::PeerDown | Kind::PeerLeft => down = true,
            Kind::PeerUp => down = false,
            _ => {}
        }
    }
    down
}

/// Guarantees G1/G2 across processes: at no moment does a quorum of nodes consider a node
/// down while that node is writable. Checked at every moment either side changes: each
/// `peer_down` / `peer_left` and each `quorum_gained`.
pub fn down_implies_fenced(log: &Log, spec: &Spec) -> Result<String, String> {
    let ids = spec.ids();
    let mut moments = 0;
    for &target in &ids {
        let points: Vec<&Event> = log
            .events
            .iter()
            .filter(|e| {
                (e.peer == Some(target) && matches!(e.kind, Kind::PeerDown | Kind::PeerLeft))
                    || (e.node == target && e.kind == Kind::QuorumGained)
            })
            .collect();
        for p in points {
            let t = p.at_us;
            let down: Vec<u64> =
                ids.iter().copied().filter(|&o| o != target && considers_down(log, o, target, t)).collect();
            if !spec.is_quorum(&down) {
                continue;
            }
            moments += 1;
            if log.writable_at(target, t) {
                return Err(format!(
                    "at {} nodes {} consider node {target} down, a quorum, but node {target} is writable",
                    secs(span(log.origin_us, t)),
                    set(&down)
                ));
            }
        }
    }
    Ok(if moments == 0 {
        "no quorum ever considered a node down".into()
    } else {
        format!("{moments} moments at which a quorum considered a node down; that node was fenced at each")
    })
}

/// Guarantee G7 across processes: when a node logs `peer_fenced` for X, X is not writable
/// at that instant by its own log. Returns how many announcements were checked; a run with
/// none says so (it proves nothing about G7).
pub fn fenced_is_sound(log: &Log) -> Result<String, String> {
    let mut checked = 0;
    for e in log.events.iter().filter(|e| e.kind == Kind::PeerFenced) {
        let Some(peer) = e.peer else { continue };
        checked += 1;
        if log.writable_at(peer, e.at_us) {
            return Err(format!(
                "at {} node {} announced node {peer} fenced, but node {peer} was writable",
                secs(span(log.origin_us, e.at_us)),
                e.node
            ));
        }
    }
    Ok(match checked {
        0 => "no peer_fenced announced".into(),
        n => format!("{n} peer_fenced announcements; the peer was fenced at each"),
    })
}

/// At no instant is a node of `a` writable while a node of `b` is: checked at every
/// `quorum_gained` of either group (the only instants at which the answer can turn yes).
pub fn never_both_writable(log: &Log, a: &[u64], b: &[u64]) -> Result<String, String> {
    let mut moments = 0;
    for e in log.events.iter().filter(|e| e.kind == Kind::QuorumGained) {
        let other = if a.contains(&e.node) {
            b
        } else if b.contains(&e.node) {
            a
        } else {
            continue;
        };
        moments += 1;
        if let Some(o) = other.iter().find(|&&o| log.writable_at(o, e.at_us)) {
            return Err(format!(
                "at {} node {} became writable while node {o} was writable",
                secs(span(log.origin_us, e.at_us)),
                e.node
            ));
        }
    }
    Ok(format!("{moments} quorum gains checked; never one of {} with one of {}", set(a), set(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Action;

    fn mark(at_us: u64, action: Action) -> Mark {
        Mark { at_us, done_us: at_us + 1, action, what: "m".into() }
    }

    fn ev(node: u64, at_us: u64, kind: Kind, peer: Option<u64>) -> Event {
        Event { node, at_us, mono_us: at_us, kind, epoch: Some(at_us), peer, why: None, reason: None }
    }

    fn three_node_log(events: Vec<Event>) -> Log {
        let marks = (1..=3).map(|n| mark(0, Action::Start(n))).collect();
        Log::new(events, marks, Vec::new(), 0)
    }

    #[test]
    fn a_fenced_announcement_about_a_writable_node_and_two_writable_groups_are_violations() {
        let base = vec![ev(1, 10, Kind::QuorumGained, None), ev(2, 10, Kind::QuorumGained, None)];
        let mut bad = base.clone();
        bad.push(ev(2, 500, Kind::PeerFenced, Some(1)));
        assert!(fenced_is_sound(&three_node_log(bad)).is_err());
        let mut good = base.clone();
        good.extend([ev(1, 450, Kind::QuorumLost, None), ev(2, 500, Kind::PeerFenced, Some(1))]);
        assert!(fenced_is_sound(&three_node_log(good)).is_ok_and(|t| t.starts_with("1 peer_fenced")));
        assert!(never_both_writable(&three_node_log(base), &[1], &[2, 3]).is_err());
        let apart = vec![
            ev(1, 10, Kind::QuorumGained, None),
            ev(1, 20, Kind::QuorumLost, None),
            ev(2, 30, Kind::QuorumGained, None),
        ];
        assert!(never_both_writable(&three_node_log(apart), &[1], &[2, 3]).is_ok());
    }

    #[test]
    fn a_quorum_seeing_a_writable_node_down_is_a_violation() {
        let base = vec![ev(1, 10, Kind::QuorumGained, None), ev(2, 10, Kind::QuorumGained, None)];
        let mut bad = base.clone();
        bad.extend([ev(2, 500, Kind::PeerDown, Some(1)), ev(3, 600, Kind::PeerDown, Some(1))]);
        assert!(down_implies_fenced(&three_node_log(bad), &Spec::lan(3)).is_err());
        let mut good = base;
        good.extend([
            ev(1, 450, Kind::QuorumLost, None),
            ev(2, 500, Kind::PeerDown, Some(1)),
            ev(3, 600, Kind::PeerDown, Some(1)),
        ]);
        assert!(down_implies_fenced(&three_node_log(good), &Spec::lan(3)).is_ok());
    }

    #[test]
    fn fence_time_is_measured_from_the_cut_and_bounded() {
        let log = three_node_log(vec![
            ev(1, 10, Kind::QuorumGained, None),
            ev(1, 1_000_000, Kind::QuorumLost, None),
        ]);
        let cut = mark(200_000, Action::Note);
        assert!(fenced_within(&log, &[1], &cut, 5_000_000, Duration::from_millis(900)).is_ok());
        assert!(fenced_within(&log, &[1], &cut, 5_000_000, Duration::from_millis(700)).is_err());
        assert!(never_fenced(&log, &[1], 100, 5_000_000).is_err());
    }
}
