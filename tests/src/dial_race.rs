//! `half-open-dial`: the race in which a node holds a connection it dialed that its peer
//! never completed.
//!
//! Node 3 of 3 is killed and restarted at once, while rules drop the last flight of every
//! handshake node 1 dials to node 3 ([`Rule::HandshakeTail`], for [`TAIL_DROPPED_FOR`]) and,
//! for the first [`NODE_1_DIALS_FIRST`], the first flight of node 3's dials to node 1
//! ([`Rule::ClientHello`]): node 1 dials first (its old connection is reset by the new node
//! 3), and its side of that connection completes while node 3's never does. Then node 3's
//! dials get through. The one-connection rule prefers the connection the lower
//! id dialed; if node 1 used its half-open connection, it would close every connection
//! node 3 dials as a duplicate, and the pair would call each other down until the rule is
//! lifted and a retransmission gets through. A dialer installs a connection only once its
//! peer confirmed the handshake, so node 3's connection carries the link at once.

use std::thread::sleep;
use std::time::Duration;

use crate::checker::{no_peer_down, Report};
use crate::cluster::Cluster;
use crate::events::{Kind, Log};
use crate::faults::Rule;
use crate::scenarios::{finish, started, Check};
use crate::timing::{secs, us};

/// How long node 1's last handshake packets to node 3 are dropped after node 3's restart:
/// twice the down floor, so a link held down by the race is seen down.
pub const TAIL_DROPPED_FOR: Duration = Duration::from_secs(2);

/// The detection bound: a restarted node must hear each peer within the down floor (1 s
/// with the LAN timing) of its start, or that peer would be due to be declared down.
pub const HEARD_WITHIN: Duration = Duration::from_secs(1);

/// How long node 3's dials to node 1 cannot start after its restart: long enough for node 1
/// to learn that its old connection is dead (the next heartbeat draws a stateless reset) and
/// to dial.
pub const NODE_1_DIALS_FIRST: Duration = Duration::from_millis(350);

/// Quiet time after the rule is lifted, before the checked span ends.
const AFTER: Duration = Duration::from_secs(1);

/// The scenario's driver (see the module docs).
pub fn half_open_dial(c: &mut Cluster) -> Result<Check, String> {
    let (begin, _) = started(c)?;
    let tail = Rule::HandshakeTail { from: 1, to: 3 };
    let hello = Rule::ClientHello { from: 3, to: 1 };
    c.faults(
        &[tail, hello],
        "drop the last handshake flight of node 1's dials to node 3, and node 3's dials to node 1",
    )?;
    c.kill(3)?;
    let start = c.spawn(3)?;
    sleep(NODE_1_DIALS_FIRST);
    // Replacing the rules resets their counters: read them first.
    let early = c.namespace().nft_args(&["list", "chain", "inet", "qe2e", "input"]);
    c.faults(&[tail], "let node 3's dials to node 1 through")?;
    sleep(TAIL_DROPPED_FOR - NODE_1_DIALS_FIRST);
    let late = c.namespace().nft_args(&["list", "chain", "inet", "qe2e", "input"]);
    let dropped = early.and_then(|e| late.map(|l| tail_drops(&e) + tail_drops(&l)));
    c.heal()?;
    sleep(AFTER);
    let (status, end) = finish(c);
    Ok(Box::new(move |log: &Log, r: &mut Report| {
        r.check(
            "the race was forced: node 1's last handshake packets to node 3 were dropped",
            match dropped {
                Ok(n) if n > 0 => Ok(format!("{n} datagrams dropped")),
                Ok(_) => Err("the rule dropped nothing: node 1 never completed a dial to node 3".into()),
                Err(e) => Err(format!("cannot read the rule's counters: {e}")),
            },
        );
        r.check("restarted node 3 hears node 1 within the down floor", heard(log, 3, 1, start.at_us));
        for node in [1, 3] {
            r.check(
                &format!("node {node} calls no peer down"),
                no_peer_down(log, node, begin.at_us, end.at_us),
            );
        }
        r.check("status", status);
    }))
}

/// Datagrams dropped by the [`Rule::HandshakeTail`] rules in an `nft list` output.
fn tail_drops(listing: &str) -> u64 {
    listing
        .lines()
        .filter(|l| l.contains(" drop") && !l.contains("@th,104,8 0x14"))
        .filter_map(|l| l.split("counter packets ").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// When `node` first heard `peer` (its `peer_up`) after `since`, within [`HEARD_WITHIN`].
fn heard(log: &Log, node: u64, peer: u64, since: u64) -> Result<String, String> {
    let up = log
        .events
        .iter()
        .find(|e| e.node == node && e.kind == Kind::PeerUp && e.peer == Some(peer) && e.at_us >= since);
    match up {
        Some(e) if e.at_us - since <= us(HEARD_WITHIN) => {
            Ok(format!("after {}", secs((e.at_us - since) as i64)))
        }
        Some(e) => Err(format!("only after {}", secs((e.at_us - since) as i64))),
        None => Err("never".into()),
    }
}
