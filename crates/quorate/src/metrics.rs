//! `/metrics`: the node's status and the runtime's observations as typed OpenMetrics
//! (`prometheus-client`).
//!
//! ```text
//!   NodeStatus (read afresh per scrape) ──► gauges and counters, built per scrape
//!   Observed (fed by the driver)        ──► histograms that live as long as the node:
//!       every RTT_SAMPLE_EVERY           quorate_peer_rtt_observed_seconds{peer}
//!       PeerFenced (check_started, at)   quorate_fence_check_seconds
//!       QuorumLost (at, missing votes)   quorate_cut_to_fence_seconds
//! ```
//!
//! Every series carries `node="<id>"`. Counter names end in `_total` (the encoder adds it).
//! `docs/deploy.md` lists what to alert on.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use quorate_gate::{PeerStatus, QuorumEvent, Why};
use quorate_proto::NodeId;

use crate::status::NodeStatus;

/// The media type of the exposition `/metrics` serves.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How often the driver records each connected peer's round-trip estimate.
pub(crate) const RTT_SAMPLE_EVERY: Duration = Duration::from_secs(1);

type Labels = Vec<(&'static str, String)>;
type IntGauges = Family<Labels, Gauge>;
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;
type Counters = Family<Labels, Counter>;

/// Histograms the runtime feeds as things happen (clones share the same series).
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    rtt: Family<Labels, Histogram>,
    fence_check: Histogram,
    cut_to_fence: Histogram,
}

/// 100 µs to about 3.3 s, doubling: loopback to intercontinental round trips.
fn rtt_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// 5 ms to about 41 s, doubling: a fence check takes a round trip or two after the down
/// floor; the time from a cut to the fence is about one lease.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Observed {
    pub(crate) fn new() -> Observed {
        Observed {
            rtt: Family::new_with_constructor(rtt_histogram),
            fence_check: duration_histogram(),
            cut_to_fence: duration_histogram(),
        }
    }

    /// One sample of the round trip to `peer`.
    pub(crate) fn rtt(&self, peer: NodeId, rtt: Duration) {
        self.rtt.get_or_create(&vec![("peer", peer.0.to_string())]).observe(rtt.as_secs_f64());
    }

    /// Records what `event` tells: how long a fence check took (`PeerFenced`), and how long
    /// after it last heard the peers whose votes it lost this node fenced itself
    /// (`QuorumLost`; `peers` is the status the core published with the event).
    pub(crate) fn event(&self, event: &QuorumEvent, peers: &[PeerStatus]) {
        match event {
            QuorumEvent::PeerFenced { at, check_started, .. } => {
                self.fence_check.observe((*at - *check_started).as_secs_f64());
            }
            QuorumEvent::QuorumLost { at, why: Why::MissingVotes { missing, .. }, .. } => {
                // The cut that fenced the node is the last of the missing peers to go quiet.
                let last_heard = peers
                    .iter()
                    .filter(|p| missing.iter().any(|m| m.peer == p.id))
                    .filter_map(|p| p.last_heard)
                    .max();
                if let Some(heard) = last_heard.filter(|h| *h <= *at) {
                    self.cut_to_fence.observe((*at - heard).as_secs_f64());
                }
            }
            _ => {}
        }
    }
}

fn one(name: &'static str, value: impl ToString) -> Labels {
    vec![(name, value.to_string())]
}

fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The exposition for `status` and `observed`: OpenMetrics text, ending in `# EOF`.
/// `event_lines_dropped` is the runtime's count of event-log lines it could not write.
pub(crate) fn render(status: &NodeStatus, observed: &Observed, event_lines_dropped: u64) -> String {
    let node = [(Cow::Borrowed("node"), Cow::Owned(status.node.to_string()))];
    let mut r = Registry::with_labels(node.into_iter());
    gate_metrics(&mut r, status);
    peer_metrics(&mut r, status);
    drop_metrics(&mut r, status, event_lines_dropped);
    certificate_metrics(&mut r, status);
    r.register(
        "quorate_peer_rtt_observed_seconds",
        "QUIC round-trip estimate, sampled every second",
        observed.rtt.clone(),
    );
    r.register(
        "quorate_fence_check_seconds",
        "Time from the start of a fence check this node ran to its PeerFenced",
        observed.fence_check.clone(),
    );
    r.register(
        "quorate_cut_to_fence_seconds",
        "Time from the last heartbeat heard from the peers whose votes went missing to QuorumLost (about one lease)",
        observed.cut_to_fence.clone(),
    );
    let mut out = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in a label.
    if let Err(e) = encode(&mut out, &r) {
        tracing::warn!(error = %e, "cannot encode metrics");
    }
    out
}

fn gate_metrics(r: &mut Registry, s: &NodeStatus) {
    let gauge = |r: &mut Registry, name: &str, help: &str, v: i64| {
        let g = Gauge::<i64>::default();
        g.set(v);
        r.register(name, help, g);
    };
    gauge(r, "quorate_writable", "1 if this node may write now", i64::from(s.writable));
    gauge(r, "quorate_epoch", "The current (or last) fencing epoch", sat(s.epoch));
    gauge(r, "quorate_votes_held", "Votes held now, own included", sat(s.held_votes));
    gauge(r, "quorate_votes_needed", "Votes for a quorum", sat(s.needed_votes));
    gauge(r, "quorate_votes_total", "All configured votes", sat(s.total_votes));
    gauge(r, "quorate_incarnation", "This life's incarnation", sat(s.incarnation));
}

fn peer_metrics(r: &mut Registry, s: &NodeStatus) {
    let (phi, rtt, lease, heard) =
        (FloatGauges::default(), FloatGauges::default(), FloatGauges::default(), FloatGauges::default());
    let (reachable, connected, mismatch, fenced) =
        (IntGauges::default(), IntGauges::default(), IntGauges::default(), IntGauges::default());
    for p in &s.peers {
        let l = one("peer", p.id);
        phi.get_or_create(&l).set(p.phi);
        reachable.get_or_create(&l).set(i64::from(p.state == "reachable"));
        connected.get_or_create(&l).set(i64::from(p.connected));
        mismatch.get_or_create(&l).set(i64::from(s.mismatched_peers.contains(&p.id)));
        fenced.get_or_create(&l).set(i64::from(s.fenced.contains(&p.id)));
        if let Some(v) = p.rtt_ms {
            rtt.get_or_create(&l).set(v / 1e3);
        }
        if let Some(v) = p.lease_left_ms {
            lease.get_or_create(&l).set(v / 1e3);
        }
        if let Some(v) = p.last_heard_ms_ago {
            heard.get_or_create(&l).set(v / 1e3);
        }
    }
    r.register("quorate_peer_phi", "The detector's suspicion level for the peer", phi);
    r.register("quorate_peer_reachable", "1 if the detector considers the peer reachable", reachable);
    r.register("quorate_peer_connected", "1 if a QUIC connection to the peer is up", connected);
    r.register("quorate_peer_rtt_seconds", "QUIC's current round-trip estimate", rtt);
    r.register("quorate_peer_lease_seconds", "Time left on the lease on the peer's vote", lease);
    r.register("quorate_peer_last_heard_seconds", "Time since the last fresh heartbeat", heard);
    r.register("quorate_config_mismatch", "1 if the peer runs another quorum definition", mismatch);
    r.register("quorate_peer_fenced", "1 if a fence check confirmed the peer fenced", fenced);
}

fn drop_metrics(r: &mut Registry, s: &NodeStatus, event_lines_dropped: u64) {
    let family = |entries: &mut dyn Iterator<Item = (Labels, u64)>| {
        let f = Counters::default();
        for (labels, v) in entries {
            f.get_or_create(&labels).inc_by(v);
        }
        f
    };
    let core = family(&mut s.drops.iter().map(|(k, v)| (one("reason", k), *v)));
    r.register("quorate_dropped", "Datagrams the core dropped, by reason", core);
    let transport_drops = family(&mut s.transport.iter().filter_map(|(k, v)| {
        let (kind, reason) = if let Some(r) = k.strip_prefix("datagrams_dropped_") {
            ("datagram", r)
        } else {
            ("request", k.strip_prefix("requests_dropped_")?)
        };
        Some((vec![("kind", kind.to_owned()), ("reason", reason.to_owned())], *v))
    }));
    r.register(
        "quorate_transport_dropped",
        "Datagrams and requests the transport dropped, by reason",
        transport_drops,
    );
    let refused = family(
        &mut s.transport.iter().filter_map(|(k, v)| Some((one("reason", k.strip_prefix("refused_")?), *v))),
    );
    r.register("quorate_connections_refused", "Connections refused at the TLS handshake, by reason", refused);
    let transport = family(&mut s.transport.iter().map(|(k, v)| (one("counter", k), *v)));
    r.register("quorate_transport", "Every transport counter, by name", transport);
    let gossip = family(&mut s.gossip.iter().map(|(k, v)| (one("counter", k), *v)));
    r.register("quorate_gossip", "Gossip and fence-check counters, by name", gossip);
    let lines = Counter::<u64>::default();
    lines.inc_by(event_lines_dropped);
    r.register(
        "quorate_event_lines_dropped",
        "Event-log lines dropped because the writer fell behind",
        lines,
    );
}

fn certificate_metrics(r: &mut Registry, s: &NodeStatus) {
    let (days, not_after) = (FloatGauges::default(), IntGauges::default());
    for c in &s.certificates {
        let labels = vec![("role", c.role.clone()), ("subject", c.subject.clone())];
        days.get_or_create(&labels).set(c.days_left);
        not_after.get_or_create(&labels).set(c.not_after_unix);
    }
    r.register(
        "quorate_certificate_days_left",
        "Days until the certificate expires (negative once it has)",
        days,
    );
    r.register(
        "quorate_certificate_not_after_seconds",
        "When the certificate expires, Unix seconds",
        not_after,
    );
}
