//! Nodes that run different files: mixed timing presets, and two member lists at once.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A rolling lan -> wan change, one node done: node 1 runs `wan`, the others `lan`. Node 1
/// is cut off for longer than its own fence bound; the others must keep the floor its
/// 2.5 s lease needs (2.55 s), not their own 1 s, before they call it down or fenced.
pub(super) fn mixed_presets(c: &mut Cluster) -> Result<Check, String> {
    let (begin, _) = started(c)?;
    let wan_hold = Duration::from_secs(5);
    let cut = c.faults(&partition(&[1], &[2, 3]), "cut {1} | {2,3}")?;
    sleep(wan_hold);
    let heal = c.heal()?;
    settle_after_heal(c, HEAL_BOUND);
    let (status, end) = finish(c);
    let wan = Timing::WAN;
    let lan_floor_for_wan = wan.lease.mul_f64((1.0 + wan.max_clock_drift) / (1.0 - wan.max_clock_drift));
    Ok(Box::new(move |log, r| {
        r.check(
            "node 1 (wan) fenced after the cut",
            fenced_within(log, &[1], &cut, heal.at_us, wan.fence_bound()),
        );
        r.check("nodes 2 and 3 (lan)", never_fenced(log, &[2, 3], begin.at_us, end.at_us));
        r.check(
            "nodes 2 and 3 call node 1 down no sooner than its lease needs",
            down_no_sooner_than(log, &[2, 3], 1, &cut, lan_floor_for_wan),
        );
        r.check(
            "nodes 2 and 3 announce node 1 fenced",
            announced_fenced(log, &[2, 3], 1, cut.at_us, heal.at_us),
        );
        r.check("heal", healed_within(log, &[1, 2, 3], &heal, HEAL_BOUND));
        r.check("status", status);
    }))
}

/// Nodes 1 and 2 list members 1-3; node 3 and the new nodes 4 and 5 list 1-5 (node 3 was
/// switched first). Nodes 3, 1 and 2 start first and must see the mismatch; then 4 and 5
/// start. At no instant may a node of the old definition and one of the new both write.
pub(super) fn mismatched_members(c: &mut Cluster) -> Result<Check, String> {
    let begin = c.note("nodes 1-3 started; 4 and 5 not yet");
    let seen = |log: &Log, node: u64, peer: u64| {
        log.events.iter().any(|e| e.node == node && e.kind == Kind::ConfigMismatch && e.peer == Some(peer))
    };
    c.wait_until("nodes 1, 2 and 3 see each other's definition", START_TIMEOUT, |log| {
        seen(log, 1, 3) && seen(log, 2, 3) && seen(log, 3, 1) && seen(log, 3, 2)
    })?;
    let mismatch = c.note("config_mismatch seen on 1, 2 (about 3) and 3 (about 1, 2)");
    sleep(SETTLE);
    c.spawn(4)?;
    c.spawn(5)?;
    // 4 and 5 hear only nodes of their own definition (1 and 2 do not list them): with 3
    // they hold three of five votes.
    c.wait_until("nodes 4 and 5 are writable", START_TIMEOUT, |log| {
        let now = crate::timing::monotonic_us();
        log.writable_at(4, now) && log.writable_at(5, now)
    })?;
    sleep(SETTLE);
    let status = c.status(1).and_then(|s| mismatch_in_status(&s, 3));
    let cut = c.faults(&partition(&[1, 2], &[3, 4, 5]), "cut {1,2} | {3,4,5}")?;
    sleep(HOLD);
    let heal = c.heal()?;
    sleep(HOLD);
    let end = c.note("checked span ends; stopping all nodes");
    Ok(Box::new(move |log, r| {
        r.check(
            "never a node of {1,2} writable with one of {3,4,5}",
            never_both_writable(log, &[1, 2], &[3, 4, 5]),
        );
        r.check(
            "nodes 1, 2 and 3 never writable once they heard the other definition",
            never_writable_after(log, &[(1, 3), (2, 3), (3, 1)], end.at_us),
        );
        r.check("/status of node 1 names node 3's definition", status);
        r.info(
            "span",
            format!(
                "mismatch seen {} after the start; cut at {}, healed at {}",
                secs(mismatch.at_us as i64 - begin.at_us as i64),
                secs(cut.at_us as i64 - begin.at_us as i64),
                secs(heal.at_us as i64 - begin.at_us as i64)
            ),
        );
    }))
}

/// Checks that `node`'s `/status` lists `peer` as running another definition, in words that
/// name both definitions' members.
pub(super) fn mismatch_in_status(status: &serde_json::Value, peer: u64) -> Result<String, String> {
    let listed =
        status["mismatched_peers"].as_array().is_some_and(|a| a.iter().any(|p| p.as_u64() == Some(peer)));
    let text: Vec<&str> =
        status["mismatched"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
    let own = status["definition"].as_str().unwrap_or("");
    let names = text.iter().any(|t| t.contains(&format!("node {peer} runs definition")) && t.contains("5:1"));
    if listed && names && own.contains("members 1:1,2:1,3:1;") {
        Ok(format!("this node: {own}; {}", text.join("; ")))
    } else {
        Err(format!("mismatched_peers / mismatched / definition not as expected: {status}"))
    }
}

/// Each `(node, peer)`: once `node` logged `config_mismatch` about `peer`, it is never
/// writable again before `end`.
pub(super) fn never_writable_after(log: &Log, pairs: &[(u64, u64)], end: u64) -> Result<String, String> {
    let mut out = Vec::new();
    for &(node, peer) in pairs {
        let Some(seen) = log
            .events
            .iter()
            .find(|e| e.node == node && e.kind == Kind::ConfigMismatch && e.peer == Some(peer))
            .map(|e| e.at_us)
        else {
            return Err(format!("node {node} never logged config_mismatch about node {peer}"));
        };
        let gained = log
            .events
            .iter()
            .find(|e| e.node == node && e.kind == Kind::QuorumGained && e.at_us > seen && e.at_us < end);
        if let Some(g) = gained {
            return Err(format!(
                "node {node} became writable at {} after seeing the mismatch",
                secs(span(log, g.at_us))
            ));
        }
        // The node fences in the same step that hears the mismatch; its quorum_lost is
        // stamped by its clock a few microseconds later.
        if log.writable_at(node, seen + 1_000) {
            return Err(format!("node {node} still writable 1 ms after seeing the mismatch"));
        }
        out.push(format!("node {node} about {peer}"));
    }
    Ok(out.join(", "))
}

pub(super) fn span(log: &Log, t: u64) -> i64 {
    t as i64 - log.origin_us as i64
}

/// No node of `observers` calls `target` down sooner than `floor` after the cut.
pub(super) fn down_no_sooner_than(
    log: &Log,
    observers: &[u64],
    target: u64,
    cut: &Mark,
    floor: Duration,
) -> Result<String, String> {
    let mut out = Vec::new();
    for &o in observers {
        let down = log.events.iter().find(|e| {
            e.node == o && e.kind == Kind::PeerDown && e.peer == Some(target) && e.at_us >= cut.at_us
        });
        let Some(down) = down else { return Err(format!("node {o} never called node {target} down")) };
        let after = Duration::from_micros(down.at_us.saturating_sub(cut.at_us));
        // The last heartbeat node `o` heard may predate the cut by up to one wan interval.
        if after + Timing::WAN.heartbeat_interval < floor {
            return Err(format!(
                "node {o} called node {target} down {} after the cut (floor {floor:?})",
                secs_d(after)
            ));
        }
        out.push(format!("node {o} after {}", secs_d(after)));
    }
    Ok(out.join(", "))
}

/// Some node of `observers` logged `peer_fenced` about `target` within `[from, to]`.
pub(super) fn announced_fenced(
    log: &Log,
    observers: &[u64],
    target: u64,
    from: u64,
    to: u64,
) -> Result<String, String> {
    let first = log.events.iter().find(|e| {
        observers.contains(&e.node)
            && e.kind == Kind::PeerFenced
            && e.peer == Some(target)
            && e.at_us >= from
            && e.at_us <= to
    });
    match first {
        Some(e) => Ok(format!(
            "node {} at {} after the cut",
            e.node,
            secs_d(Duration::from_micros(e.at_us.saturating_sub(from)))
        )),
        None => Err(format!("no peer_fenced about node {target}")),
    }
}

pub(super) fn secs_d(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}
