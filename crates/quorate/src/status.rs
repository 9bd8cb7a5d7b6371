//! [`NodeStatus`]: what `/status`, `/metrics` (see `metrics.rs`) and `quorate status` show.

use std::collections::BTreeMap;

use quorate_core::Node as Core;
use quorate_detector::PeerState;
use quorate_gate::QuorumStatus;
use quorate_gossip::PartitionView;
use quorate_proto::{Instant, NodeId};
use quorate_transport::{LinkInfo, MemberAddress, Resolution, TransportCounters};
use serde::{Deserialize, Serialize};

/// A node's view of the cluster at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node's id.
    pub node: u64,
    /// The cluster name.
    pub cluster: String,
    /// This node's incarnation: `max(wall-clock milliseconds at start, previous
    /// incarnation + 1)` for a node with a data directory, else the wall clock.
    pub incarnation: u64,
    /// Whether the gate answers "writable" now.
    pub writable: bool,
    /// The current (or last) fencing epoch.
    pub epoch: u64,
    /// Votes held now, own included.
    pub held_votes: u64,
    /// Votes for a strict majority.
    pub needed_votes: u64,
    /// All configured votes.
    pub total_votes: u64,
    /// Why the node is not writable, in words; `None` when it is.
    pub why_not: Option<String>,
    /// Every other member.
    pub peers: Vec<PeerReport>,
    /// Datagrams dropped by the core, by reason.
    pub drops: BTreeMap<String, u64>,
    /// Transport counters (datagrams, bytes, refused connections), by name.
    pub transport: BTreeMap<String, u64>,
    /// Who hears whom, from gossip rows; `None` when gossip is off.
    #[serde(default)]
    pub partition: Option<PartitionReport>,
    /// Peers a fence check confirmed fenced (`PeerFenced`) and not heard from since.
    #[serde(default)]
    pub fenced: Vec<u64>,
    /// Gossip counters by name (empty when gossip is off).
    #[serde(default)]
    pub gossip: BTreeMap<String, u64>,
    /// This node's quorum definition in words:
    /// `node 1 runs definition 3f..a2 (members 1:1,2:1,3:1; tie-breaker 1)`.
    #[serde(default)]
    pub definition: String,
    /// Peers last heard running another quorum definition, each in the same words. Their
    /// votes are not counted, and this node writes only on votes that are a quorum under
    /// every definition listed here as well as its own.
    #[serde(default)]
    pub mismatched: Vec<String>,
    /// The ids of the peers in `mismatched`.
    #[serde(default)]
    pub mismatched_peers: Vec<u64>,
    /// The certificates this node presents and trusts, with the days each has left; empty
    /// when they were handed over in memory rather than read from files.
    #[serde(default)]
    pub certificates: Vec<CertificateReport>,
    /// The version of the definition this node runs: 0 for its configuration file's, one
    /// more with every change made while the cluster runs.
    #[serde(default)]
    pub definition_version: u64,
    /// The version that removed this node from the cluster, once one did (it has fenced
    /// itself for good and left).
    #[serde(default)]
    pub removed_at_version: Option<u64>,
    /// True once this node concluded that it was removed from the cluster while it was
    /// down: peers carrying a quorum of its definition's votes refuse it as a non-member
    /// (`refused_as_non_member_by`). The version that removed it is unknown. It has fenced
    /// itself for good and left; nothing is recorded in its data directory.
    #[serde(default)]
    pub removed_by_refusals: bool,
    /// Peers whose last word on a connection from this node was that it is not their member
    /// (they run a definition that does not list it), in id order. Fewer than a quorum: the
    /// node keeps running (a change may still be spreading).
    #[serde(default)]
    pub refused_as_non_member_by: Vec<u64>,
    /// The runtime's counters of definition changes (`proposed`, `refused`,
    /// `bad_addresses`, `leaving_kept`, `leaving_cut_short`, `persist_failures`).
    #[serde(default)]
    pub reconfiguration: BTreeMap<String, u64>,
    /// The timing in force; `None` from a build that did not report it.
    #[serde(default)]
    pub timing: Option<TimingReport>,
}

/// The timing a node runs, in a [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimingReport {
    /// The preset the cluster's definition names (set online); `None`: the configuration
    /// file's timing.
    pub preset: Option<String>,
    /// Between two heartbeats, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// The lease this node's heartbeats ask for, in milliseconds.
    pub lease_ms: u64,
    /// This node's own down floor, in milliseconds.
    pub down_after_min_ms: u64,
}

/// One certificate in a [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateReport {
    /// `"node"` (this node's own certificate, the first of its chain), `"chain"` (an
    /// intermediate after it) or `"ca"` (a trusted cluster CA).
    pub role: String,
    /// The file it was read from.
    pub file: String,
    /// The subject, e.g. `CN=node-3.prod-eu.quorate`.
    pub subject: String,
    /// Its DNS names.
    pub dns_names: Vec<String>,
    /// When it expires, Unix seconds.
    pub not_after_unix: i64,
    /// Days until it expires (negative once it has), when the status was read.
    pub days_left: f64,
}

/// The partition view in a [`NodeStatus`] (see `quorate_detector::PartitionView`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReport {
    /// In words: `partition A: {1,2}; partition B: {3,4,5}; node 2 sees 3 one-way`.
    pub summary: String,
    /// Groups of members that hear each other; this node's group first.
    pub components: Vec<Vec<u64>>,
    /// `[a, b]`: `a` hears `b`, `b` does not hear `a`.
    pub one_way: Vec<[u64; 2]>,
    /// Members nobody with a fresh row hears.
    pub unseen: Vec<u64>,
    /// Members that left.
    pub left: Vec<u64>,
}

impl From<&PartitionView> for PartitionReport {
    fn from(v: &PartitionView) -> Self {
        let ids = |ids: &[NodeId]| ids.iter().map(|id| id.0).collect::<Vec<u64>>();
        PartitionReport {
            summary: v.to_string(),
            components: v.components.iter().map(|c| ids(c)).collect(),
            one_way: v.one_way.iter().map(|(a, b)| [a.0, b.0]).collect(),
            unseen: ids(&v.unseen),
            left: ids(&v.left),
        }
    }
}

/// One peer in a [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    /// The peer's id.
    pub id: u64,
    /// Its votes.
    pub votes: u32,
    /// "reachable", "suspect", "down", "left" or "unknown" (never heard).
    pub state: String,
    /// Current suspicion level (phi accrual).
    pub phi: f64,
    /// QUIC's round-trip estimate, if connected.
    pub rtt_ms: Option<f64>,
    /// Milliseconds since the last fresh heartbeat.
    pub last_heard_ms_ago: Option<f64>,
    /// Milliseconds until the lease on its vote ends (0 if ended).
    pub lease_left_ms: Option<f64>,
    /// Whether a QUIC connection is up.
    pub connected: bool,
    /// What this node sent on the connection, from QUIC's own counts; `None` without one.
    #[serde(default)]
    pub quic: Option<QuicReport>,
    /// Its configured address, `IP:PORT` or `HOST:PORT`.
    #[serde(default)]
    pub address: Option<String>,
    /// For a member by name: the address its last lookup gave (`None` before the first and
    /// after a failed one).
    #[serde(default)]
    pub resolved: Option<String>,
    /// For a member by name: why its last lookup gave no address to dial, e.g. `name does
    /// not resolve`; `None` when it resolved. The node keeps trying.
    #[serde(default)]
    pub resolve_error: Option<String>,
    /// The live connection's remote address, if connected.
    #[serde(default)]
    pub remote: Option<String>,
    /// The version of the definition the peer was last heard running; `None` while
    /// unknown (never heard, or its definition not received yet).
    #[serde(default)]
    pub definition_version: Option<u64>,
}

impl PeerReport {
    /// The peer's host name, if it is configured by one (`quorate-2.quorate.db.svc` of
    /// `quorate-2.quorate.db.svc:7000`).
    pub fn host_name(&self) -> Option<&str> {
        let address = self.address.as_deref()?;
        let (host, _) = address.rsplit_once(':')?;
        (!host.ends_with(']') && host.parse::<std::net::IpAddr>().is_err()).then_some(host)
    }
}

/// What a node sent on one QUIC connection since it was established: UDP packets and bytes
/// (payload, as QUIC counts them), and QUIC frames by kind. A packet may carry several
/// frames, so the frame counts do not add up to the packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuicReport {
    /// UDP datagrams sent.
    pub udp_tx_packets: u64,
    /// UDP payload bytes sent.
    pub udp_tx_bytes: u64,
    /// ACK frames sent.
    pub ack_frames: u64,
    /// DATAGRAM frames sent (heartbeats).
    pub datagram_frames: u64,
    /// STREAM frames sent (polls, gossip, fence checks).
    pub stream_frames: u64,
    /// PING frames sent (keep-alives, loss and path-MTU probes).
    pub ping_frames: u64,
    /// Flow-control credit frames sent.
    pub flow_control_frames: u64,
    /// Packets QUIC declared lost.
    pub lost_packets: u64,
}

impl From<&LinkInfo> for QuicReport {
    fn from(l: &LinkInfo) -> Self {
        QuicReport {
            udp_tx_packets: l.udp_tx_datagrams,
            udp_tx_bytes: l.udp_tx_bytes,
            ack_frames: l.frames_tx.ack,
            datagram_frames: l.frames_tx.datagram,
            stream_frames: l.frames_tx.stream,
            ping_frames: l.frames_tx.ping,
            flow_control_frames: l.frames_tx.flow_control,
            lost_packets: l.lost_packets,
        }
    }
}

pub(crate) fn state_name(state: PeerState) -> &'static str {
    match state {
        PeerState::Unknown => "unknown",
        PeerState::Reachable => "reachable",
        PeerState::Suspect => "suspect",
        PeerState::Unreachable => "down",
        PeerState::Left => "left",
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

pub(crate) fn build(
    cluster: &str,
    core: &Core,
    gate: &QuorumStatus,
    now: Instant,
    links: impl Fn(NodeId) -> Option<LinkInfo>,
    addresses: impl Fn(NodeId) -> Option<(MemberAddress, Resolution)>,
    transport: &TransportCounters,
) -> NodeStatus {
    let peers = gate
        .peers
        .iter()
        .map(|p| {
            let link = links(p.id);
            let address = addresses(p.id);
            let named = address.as_ref().is_some_and(|(a, _)| a.host_name().is_some());
            let resolution = address.as_ref().map(|(_, r)| *r).filter(|_| named);
            PeerReport {
                id: p.id.0,
                votes: p.votes,
                state: state_name(p.state).to_owned(),
                phi: core.detector().phi(p.id, now).unwrap_or(0.0),
                rtt_ms: link.map(|l| ms(l.rtt)),
                last_heard_ms_ago: p.last_heard.map(|t| ms(now - t)),
                lease_left_ms: p.lease_until.map(|u| ms(u - now)),
                connected: link.is_some(),
                quic: link.as_ref().map(QuicReport::from),
                address: address.as_ref().map(|(a, _)| a.to_string()),
                resolved: resolution.and_then(|r| match r {
                    Resolution::Resolved(addr) => Some(addr.to_string()),
                    _ => None,
                }),
                resolve_error: resolution.and_then(|r| match r {
                    Resolution::Failed(why) => Some(why.to_string()),
                    _ => None,
                }),
                remote: link.as_ref().map(|l| l.remote.to_string()),
                definition_version: core.peer_version(p.id),
            }
        })
        .collect();
    let d = core.counters().dropped;
    let drops = [
        ("truncated", d.truncated),
        ("oversized", d.oversized),
        ("unknown_version", d.unknown_version),
        ("foreign_cluster", d.foreign_cluster),
        ("malformed", d.malformed),
        ("unknown_sender", d.unknown_sender),
        ("sender_mismatch", d.sender_mismatch),
        ("stale_incarnation", d.stale_incarnation),
        ("replayed", d.replayed),
        ("bogus_ack", core.counters().acks_bogus),
        ("ack_other_definition", core.counters().acks_mismatched),
        ("terms_refused", core.counters().terms_refused),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    NodeStatus {
        node: gate.node.0,
        cluster: cluster.to_owned(),
        incarnation: core.incarnation().0,
        writable: gate.writable,
        epoch: gate.epoch.0,
        held_votes: gate.held_votes,
        needed_votes: gate.needed_votes,
        total_votes: gate.total_votes,
        why_not: gate.why_not().map(|w| w.to_string()),
        peers,
        drops,
        transport: transport_counters(transport),
        partition: core.partition_view(now).as_ref().map(PartitionReport::from),
        fenced: gate.fenced.iter().map(|id| id.0).collect(),
        gossip: gossip_counters(core.gossip_counters(), core.fence_counters()),
        definition: own_definition(core, gate).to_string(),
        mismatched: gate.mismatched.iter().map(ToString::to_string).collect(),
        mismatched_peers: gate.mismatched.iter().map(|m| m.peer.0).collect(),
        certificates: Vec::new(),
        definition_version: gate.definition_version,
        removed_at_version: None,
        removed_by_refusals: false,
        refused_as_non_member_by: Vec::new(),
        reconfiguration: BTreeMap::new(),
        timing: Some(timing_report(core)),
    }
}

fn timing_report(core: &Core) -> TimingReport {
    let t = core.timing();
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    TimingReport {
        preset: core.roster().timing.clone(),
        heartbeat_interval_ms: ms(t.heartbeat_interval),
        lease_ms: ms(t.lease),
        down_after_min_ms: ms(t.down_after_min),
    }
}

fn own_definition(core: &Core, gate: &QuorumStatus) -> quorate_gate::ForeignDefinition {
    quorate_gate::ForeignDefinition {
        peer: gate.node,
        digest: gate.definition,
        version: Some(gate.definition_version),
        members: Some(core.definition().parts()),
    }
}

fn gossip_counters(
    g: Option<quorate_core::GossipCounters>,
    f: Option<quorate_core::FenceCounters>,
) -> BTreeMap<String, u64> {
    let (Some(g), Some(f)) = (g, f) else { return BTreeMap::new() };
    [
        ("rounds", g.rounds),
        ("messages_sent", g.messages_sent),
        ("messages_received", g.messages_received),
        ("rows_applied", g.rows_applied),
        ("rows_refused", g.rows_refused),
        ("encode_failures", g.encode_failures + f.encode_failures),
        ("fence_checks", f.checks),
        ("fence_confirmed", f.confirmed),
        ("fence_abandoned", f.abandoned),
        ("fence_yes_given", f.yes_given),
        ("fence_no_given", f.no_given),
        ("fence_answers_ignored", f.answers_ignored),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn transport_counters(t: &TransportCounters) -> BTreeMap<String, u64> {
    let (dg, rq, rf) = (&t.datagrams_dropped, &t.requests_dropped, &t.refused);
    [
        ("datagrams_sent", t.datagrams_sent),
        ("datagrams_received", t.datagrams_received),
        ("datagrams_dropped_unknown_peer", dg.unknown_peer),
        ("datagrams_dropped_no_connection", dg.no_connection),
        ("datagrams_dropped_too_large", dg.too_large),
        ("datagrams_dropped_send_buffer_full", dg.send_buffer_full),
        ("datagrams_dropped_blocked_outbound", dg.blocked_outbound),
        ("datagrams_dropped_blocked_inbound", dg.blocked_inbound),
        ("datagrams_dropped_inbound_channel_full", dg.inbound_channel_full),
        ("requests_sent", t.requests_sent),
        ("requests_received", t.requests_received),
        ("requests_dropped_too_large", rq.too_large),
        ("requests_dropped_blocked_outbound", rq.blocked_outbound),
        ("requests_dropped_blocked_inbound", rq.blocked_inbound),
        ("requests_dropped_inbound_channel_full", rq.inbound_channel_full),
        ("requests_dropped_unanswered", rq.unanswered),
        ("bytes_sent", t.bytes_sent),
        ("bytes_received", t.bytes_received),
        ("refused_no_client_cert", rf.no_client_cert),
        ("refused_bad_chain", rf.bad_chain),
        ("refused_unknown_node", rf.unknown_node),
        ("refused_address_mismatch", rf.address_mismatch),
        ("refused_handshake_failed", rf.handshake_failed),
        ("refused_former_member", rf.former_member),
        ("dial_failures", t.dial_failures),
        ("dials_unconfirmed", t.dials_unconfirmed),
        ("connections_established", t.connections_established),
        ("reconnects", t.reconnects),
        ("duplicates_closed", t.duplicates_closed),
        ("resolve_failures", t.resolve_failures),
        ("peers_moved", t.peers_moved),
        ("closed_as_non_member", t.closed_as_non_member),
        ("handshakes_from_unlisted_address", t.handshakes_from_unlisted_address),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
