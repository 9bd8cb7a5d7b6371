//! The driver task of a running [`crate::Node`]: datagrams, requests, replies, timers and
//! operator changes into the core; transmits, events, status and records out (see the
//! `node` module docs for the picture).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quorate_core::Delivery;
use quorate_proto::{Incarnation, NodeId};
use quorate_transport::Inbound;
use tokio::sync::{mpsc, watch};

use crate::data_dir::{DataDir, DataDirError};
use crate::events::{event_json, EventSink};
use crate::metrics;
use crate::node::{Running, PERSIST_WARN_EVERY, POLL_REPLIES_MAX, RTT_CHECK_EVERY};
use crate::reconfigure::{self, Membership};
use crate::refused::{Refusals, Removal};
use crate::state_file::Durable;

/// Writes the definitions the core heard its peers run, when they changed. Nothing waits
/// for this write; it protects the next life.
fn persist_definitions(core: &mut quorate_core::Node, dir: Option<&DataDir>) -> Result<(), DataDirError> {
    let Some(dir) = dir else { return Ok(()) };
    let Some(peers) = core.poll_persist_definitions() else { return Ok(()) };
    dir.store_peers(&peers)?;
    core.handle_definitions_persisted(peers);
    Ok(())
}

/// Writes what the core asks to keep (see `quorate_core::Memory::Durable`) to the data
/// directory and confirms it to the core. Without a data directory the core never asks.
pub(crate) fn persist_promises(
    core: &mut quorate_core::Node,
    dir: Option<&DataDir>,
    incarnation: Incarnation,
) -> Result<(), DataDirError> {
    let (Some(want), Some(dir)) = (core.poll_persist(), dir) else { return Ok(()) };
    let durable = Durable { incarnation: incarnation.0, ack_hold: want.ack_hold, floor: want.floor };
    dir.store(&durable)?;
    core.handle_persisted(want);
    Ok(())
}

/// The driver loop: datagrams and timers into the core, transmits and events out.
pub(crate) async fn drive(
    shared: Arc<Running>,
    mut inbound: mpsc::Receiver<Inbound>,
    mut changes: mpsc::Receiver<reconfigure::Request>,
    mut stop: watch::Receiver<bool>,
    sink: Option<EventSink>,
    me: NodeId,
) {
    // Replies to our polls come back through here; bounded like everything else (a poll
    // is only sent when a peer turns suspect, so this never fills in practice).
    let (poll_tx, mut poll_rx) = mpsc::channel::<(NodeId, Bytes)>(POLL_REPLIES_MAX);
    let poll_deadline = shared.poll_deadline;
    let mut next_rtt_check = tokio::time::Instant::now() + RTT_CHECK_EVERY;
    let mut next_rtt_sample = tokio::time::Instant::now() + metrics::RTT_SAMPLE_EVERY;
    let mut membership = Membership::default();
    let mut refusals = Refusals::default();
    loop {
        if tokio::time::Instant::now() >= next_rtt_check {
            next_rtt_check = tokio::time::Instant::now() + RTT_CHECK_EVERY;
            warn_if_floor_too_short(&shared);
        }
        if tokio::time::Instant::now() >= next_rtt_sample {
            next_rtt_sample = tokio::time::Instant::now() + metrics::RTT_SAMPLE_EVERY;
            sample_rtts(&shared);
        }
        let mut wait = {
            let core = shared.core.lock();
            core.poll_timeout().map(|t| t - shared.clock.now()).unwrap_or(Duration::from_secs(1))
        };
        if let Some(at) = membership.next_expiry() {
            wait = wait.min(at.saturating_duration_since(tokio::time::Instant::now()));
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            msg = inbound.recv() => match msg {
                Some(Inbound::Datagram { from, bytes }) => {
                    let now = shared.clock.now();
                    shared.core.lock().handle_datagram(now, from, &bytes);
                }
                Some(Inbound::Request { from, bytes, reply }) => {
                    let now = shared.clock.now();
                    let answer = shared.core.lock().handle_request(now, from, &bytes);
                    if let Some(answer) = answer {
                        // The poller may have given up; nothing to do then.
                        let _ = reply.send(Bytes::from(answer));
                    }
                }
                Some(_) => {}
                None => break,
            },
            Some((from, bytes)) = poll_rx.recv() => {
                let now = shared.clock.now();
                shared.core.lock().handle_reply(now, from, &bytes);
            }
            Some(request) = changes.recv() => membership.propose(&shared, request),
            _ = tokio::time::sleep(wait) => {
                let now = shared.clock.now();
                shared.core.lock().handle_timeout(now);
            }
        }
        // A later definition some peer runs: persisted, then run (see `reconfigure`).
        if let Some(version) = membership.adopt_newer(&shared) {
            shared.removed.send_replace(Some(Removal::ByDefinition { version }));
        }
        // Removed while it was down: the members' refusals say so (see `refused`).
        if let Some(removal) = refusals.check(&shared) {
            shared.removed.send_replace(Some(removal));
        }
        membership.expire(&shared);
        flush(&shared, sink.as_ref(), me, &poll_tx, poll_deadline);
    }
    flush(&shared, sink.as_ref(), me, &poll_tx, poll_deadline);
    shared.driver_running.store(false, Ordering::Relaxed);
}

/// One round-trip sample per connected peer, for the RTT histogram.
fn sample_rtts(shared: &Running) {
    let peers: Vec<NodeId> = shared.core.lock().detector().peers().map(|(id, _)| id).collect();
    for peer in peers {
        if let Some(link) = shared.transport.link(peer) {
            shared.observed.rtt(peer, link.rtt);
        }
    }
}

fn flush(
    shared: &Arc<Running>,
    sink: Option<&EventSink>,
    me: NodeId,
    polls: &mpsc::Sender<(NodeId, Bytes)>,
    poll_deadline: Duration,
) {
    let mut core = shared.core.lock();
    // Rare (a peer whose lease needs a longer floor than recorded, earlier lives' promises
    // expiring): one small fsynced write. The core withholds whatever the record does not
    // cover yet, so a slow or failing disk delays acks and never breaks a promise.
    let persisted = persist_promises(&mut core, shared.data_dir.as_ref(), shared.incarnation)
        .and_then(|()| persist_definitions(&mut core, shared.data_dir.as_ref()));
    if let Err(e) = persisted {
        let mut last = shared.persist_failed_at.lock();
        if last.is_none_or(|t| t.elapsed() >= PERSIST_WARN_EVERY) {
            *last = Some(std::time::Instant::now());
            tracing::warn!(node = me.0, error = %e, "cannot persist promises to the data directory; \
                acks that would need them are withheld until it works");
        }
    }
    while let Some(t) = core.poll_transmit() {
        match t.delivery {
            // Dropped sends are counted by the transport; a heartbeat is never queued.
            Delivery::Datagram => {
                let _ = shared.transport.send_datagram(t.to, Bytes::from(t.payload));
            }
            Delivery::Request => {
                let (shared, polls) = (shared.clone(), polls.clone());
                tokio::spawn(async move {
                    let asked = shared.transport.request(t.to, Bytes::from(t.payload), poll_deadline).await;
                    match asked {
                        Ok(reply) => {
                            let _ = polls.try_send((t.to, reply));
                        }
                        Err(e) => tracing::debug!(peer = t.to.0, error = %e, "poll unanswered"),
                    }
                });
            }
        }
    }
    // The status first: a subscriber that reacts to an event reads a status that has it.
    if let Some(status) = core.poll_status() {
        shared.publisher.status(status);
    }
    while let Some(event) = core.poll_event() {
        shared.publisher.event(&event);
        if matches!(event, quorate_gate::QuorumEvent::QuorumLost { .. }) {
            // Rare: the peers' last-heard times tell when the cut that fenced the node began.
            shared.observed.event(&event, &core.status(shared.clock.now()).peers);
        } else {
            shared.observed.event(&event, &[]);
        }
        if let quorate_gate::QuorumEvent::ConfigMismatch { peer, ours, theirs, .. } = &event {
            tracing::warn!(
                node = me.0,
                peer = peer.0,
                %ours,
                %theirs,
                "peer runs another quorum definition (members, votes or tie-breaker): no votes are \
                 counted across it, and this node writes only on a quorum under both; see /status"
            );
        }
        tracing::info!(node = me.0, ?event, "quorum event");
        if let Some(sink) = sink {
            if !sink.send(event_json(me, &event).to_string()) {
                shared.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The rule of thumb from failure-detector practice: a down floor shorter than ten round
/// trips convicts peers for ordinary network jitter. Not an error (the lease rule keeps
/// writes safe either way) but worth a warning, with the figures.
fn warn_if_floor_too_short(shared: &Running) {
    let floor = shared.down_after_min;
    let peers: Vec<NodeId> = shared.core.lock().detector().peers().map(|(id, _)| id).collect();
    for peer in peers {
        if let Some(link) = shared.transport.link(peer) {
            if floor < link.rtt * 10 {
                tracing::warn!(
                    peer = peer.0,
                    rtt = ?link.rtt,
                    down_after_min = ?floor,
                    "down_after_min is less than 10 x the measured round-trip time; expect false suspicions \
                     (raise timing.down_after_min or use the wan preset)"
                );
            }
        }
    }
}
