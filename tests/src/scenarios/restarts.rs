//! Kills, restarts (one with its wall clock an hour behind, one at a new address under the
//! same name) and a rolling restart.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn kill_restart(c: &mut Cluster) -> Result<Check, String> {
    let node = 2;
    let (begin, _) = started(c)?;
    let kill = c.kill(node)?;
    sleep(Duration::from_secs(2));
    let start = c.spawn(node)?;
    let _ = c.wait_all_writable(REJOIN_BOUND + Duration::from_secs(2));
    sleep(AFTER);
    let (status, end) = finish(c);
    let others: Vec<u64> = c.spec().ids().into_iter().filter(|&n| n != node).collect();
    Ok(Box::new(move |log, r| {
        r.check("the others saw node 2 down", seen_down(log, &others, &[node], &kill, start.at_us));
        r.check("restarted node 2 rejoined (G4)", rejoined(log, node, &start, REJOIN_BOUND));
        r.check(&format!("others {}", set(&others)), never_fenced(log, &others, begin.at_us, end.at_us));
        r.check("status", status);
    }))
}

/// How far back the restarted node's wall clock is set: a host that booted before NTP
/// synced. Far more than any life of a node in this scenario lasts.
pub(super) const CLOCK_BEHIND: &str = "-1h";

/// A node whose wall clock is an hour behind its previous life restarts, twice. Before the
/// data directory its incarnation (wall-clock milliseconds) was below the previous one and
/// every peer refused it as stale; now it must take `last + 1` and rejoin. The incarnation
/// being exactly one more than the previous life's (read from the epochs its events carry,
/// `epoch >> 20`) shows both that the clock really was behind in the new process and that
/// the stored incarnation was used.
pub(super) fn restart_clock_behind(c: &mut Cluster) -> Result<Check, String> {
    let node = 2;
    let lib = libfaketime()?;
    let lib = lib.display().to_string();
    // FAKETIME_DONT_FAKE_MONOTONIC: only the wall clock goes back; the node's timers and
    // the monotonic stamps of its event log stay true.
    let env =
        [("LD_PRELOAD", lib.as_str()), ("FAKETIME", CLOCK_BEHIND), ("FAKETIME_DONT_FAKE_MONOTONIC", "1")];
    let (begin, _) = started(c)?;
    let mut lives = Vec::new();
    // First down long enough for the peers to declare it down (a reboot); then a quick
    // restart, before the down floor, while the peers still hold its previous incarnation.
    for (round, down) in [(1, Duration::from_secs(2)), (2, Duration::from_millis(300))] {
        let kill = c.kill(node)?;
        sleep(down);
        let start = c.spawn_with_env(node, &env)?;
        let _ = c.wait_all_writable(REJOIN_BOUND + Duration::from_secs(2));
        sleep(AFTER);
        lives.push((round, down, kill, start));
    }
    let (status, end) = finish(c);
    let others: Vec<u64> = c.spec().ids().into_iter().filter(|&n| n != node).collect();
    Ok(Box::new(move |log, r| {
        for (round, down, kill, start) in &lives {
            r.info(
                &format!("restart {round}"),
                format!("after {} down, wall clock {CLOCK_BEHIND} (libfaketime)", secs(us(*down) as i64)),
            );
            if *round == 1 {
                r.check("  the others saw node 2 down", seen_down(log, &others, &[node], kill, start.at_us));
            }
            r.check("  rejoined with a higher epoch (G4)", rejoined(log, node, start, REJOIN_BOUND));
            r.check("  incarnation is the last one + 1", one_past_the_last(log, node, start));
        }
        r.check(&format!("others {}", set(&others)), never_fenced(log, &others, begin.at_us, end.at_us));
        r.check("status", status);
    }))
}

/// The life that began at `start` has incarnation (`epoch >> 20`) exactly one more than the
/// previous life's: larger, as G4 needs, and not the wall clock, which was behind.
pub(super) fn one_past_the_last(log: &Log, node: u64, start: &Mark) -> Result<String, String> {
    let incarnation = |epoch: u64| epoch >> 20;
    let before =
        log.max_epoch_before(node, start.at_us).map(incarnation).ok_or("no epoch before the restart")?;
    let after = log
        .of(node, Kind::QuorumGained, start.at_us, u64::MAX)
        .next()
        .and_then(|e| e.epoch)
        .map(incarnation)
        .ok_or("no quorum_gained after the restart")?;
    match after.checked_sub(before) {
        Some(1) => Ok(format!("{before} -> {after}")),
        Some(0) | None => Err(format!("incarnation {after} is not above the previous life's {before}")),
        Some(d) => Err(format!(
            "incarnation {after} is {d} above the previous life's {before}: the wall clock was not set back \
             (libfaketime not in effect?)"
        )),
    }
}

/// libfaketime's preload library, where Debian, Ubuntu and Fedora install it.
pub(super) fn libfaketime() -> Result<std::path::PathBuf, String> {
    let mut dirs: Vec<std::path::PathBuf> =
        ["/usr/lib/faketime", "/usr/lib64/faketime", "/usr/local/lib/faketime"].map(Into::into).into();
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.flatten().map(|e| e.path().join("faketime")));
    }
    dirs.into_iter().map(|d| d.join("libfaketime.so.1")).find(|p| p.is_file()).ok_or_else(|| {
        "libfaketime.so.1 not found: install the faketime package (apt-get install faketime)".into()
    })
}

pub(super) fn rolling_restart(c: &mut Cluster) -> Result<Check, String> {
    started(c)?;
    let mut rounds = Vec::new();
    for node in c.spec().ids() {
        let term = c.terminate(node)?;
        let start = c.spawn(node)?;
        c.wait_all_writable(REJOIN_BOUND + Duration::from_secs(2))?;
        sleep(Duration::from_millis(300));
        rounds.push((node, term, start));
    }
    let (status, end) = finish(c);
    let all = c.spec().ids();
    Ok(Box::new(move |log, r| {
        for (i, (node, term, start)) in rounds.iter().enumerate() {
            let until = rounds.get(i + 1).map_or(end.at_us, |next| next.1.at_us);
            let others: Vec<u64> = all.iter().copied().filter(|n| n != node).collect();
            r.info(
                &format!("node {node}"),
                format!("SIGTERM to exit {}", secs((term.done_us - term.at_us) as i64)),
            );
            r.check("  rejoined (G4)", rejoined(log, *node, start, REJOIN_BOUND));
            r.check(&format!("  others {}", set(&others)), never_fenced(log, &others, term.at_us, until));
        }
        r.check("status", status);
    }))
}

/// How long the moved node stays down: past the 1 s down floor, so that its peers declare
/// it down, and well under QUIC's 10 s idle timeout, so that after a crash they still hold
/// the connection to its old address when it comes back.
const MOVED_DOWN: Duration = Duration::from_secs(2);

/// The highest node is stopped (SIGKILL, then SIGTERM), moved to a new namespace and
/// address under the same name, and started again. It has the highest id so that every
/// peer's connection to it was dialed by the peer (the lower id wins): after the crash each
/// peer holds a connection to the old address that its duplicate rule prefers, and only
/// looking the name up again lets the new life in before the idle timeout.
pub(super) fn moved_peer(c: &mut Cluster) -> Result<Check, String> {
    let node = c.spec().nodes;
    let others: Vec<u64> = c.spec().ids().into_iter().filter(|&n| n != node).collect();
    let (begin, _) = started(c)?;
    let mut lives = Vec::new();
    for (round, crash) in [(1, true), (2, false)] {
        let stop = if crash { c.kill(node)? } else { c.terminate(node)? };
        sleep(MOVED_DOWN);
        c.move_node(node)?;
        let addr = c.bridge().and_then(|b| b.address_of(node)).ok_or("the moved node has no address")?;
        let start = c.spawn(node)?;
        let _ = c.wait_all_writable(MOVED_REJOIN_BOUND + Duration::from_secs(2));
        sleep(AFTER);
        let found = connected_at(c, &others, node, &addr.to_string());
        lives.push((round, crash, stop, start, addr, found));
    }
    let (status, end) = finish(c);
    Ok(Box::new(move |log, r| {
        for (round, crash, stop, start, addr, found) in &lives {
            let how = if *crash { "SIGKILL" } else { "SIGTERM" };
            r.info(
                &format!("move {round}"),
                format!("{how} node {node}, back at {addr} as {}", host_name(node)),
            );
            if *crash {
                r.check("  the others saw it down", seen_down(log, &others, &[node], stop, start.at_us));
            }
            r.check(
                &format!("  writable within {} of its start (G4)", secs(us(MOVED_REJOIN_BOUND) as i64)),
                rejoined(log, node, start, MOVED_REJOIN_BOUND),
            );
            r.check("  the others are connected to its new address", found.clone());
        }
        r.check(&format!("others {}", set(&others)), never_fenced(log, &others, begin.at_us, end.at_us));
        r.check("status", status);
    }))
}

/// Every node of `observers` reports a live connection to `node` at `ip` in its `/status`.
fn connected_at(c: &Cluster, observers: &[u64], node: u64, ip: &str) -> Result<String, String> {
    for &o in observers {
        let status = c.status(o)?;
        let peers = status.get("peers").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
        let peer = peers
            .iter()
            .find(|p| p.get("id").and_then(serde_json::Value::as_u64) == Some(node))
            .ok_or_else(|| format!("node {o} does not list node {node}"))?;
        let remote = peer.get("remote").and_then(serde_json::Value::as_str).unwrap_or("");
        let address = peer.get("address").and_then(serde_json::Value::as_str).unwrap_or("");
        if !remote.starts_with(&format!("{ip}:")) {
            return Err(format!("node {o} has node {node} ({address}) at {remote:?}, not at {ip}"));
        }
    }
    Ok(format!("{} connected to node {node} at {ip} by its name", set(observers)))
}
