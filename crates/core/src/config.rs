//! The configuration of one node, checked once.
//!
//! ```text
//!   Config (editable) ──check──► ValidConfig ──► Node::new / Node::with_memory
//!     members ─────────────────► VoteTable
//!     detector ──check─────────► Valid<DetectorConfig>
//!     gate ──check(detector)───► Valid<GateConfig>        (the lease safety rule)
//!     gossip ──check(drift)────► Valid<GossipConfig>
//! ```
//!
//! Every broken rule is a [`CoreConfigError`] that names the setting at fault by its path
//! in [`Config`] (`gate.lease`, `gossip.fence_hold`: see [`FieldError`]).

use quorate_detector::{DetectorConfig, DetectorConfigError};
use quorate_gate::{GateConfig, GateConfigError, MembershipError, VoteTable};
use quorate_gossip::{GossipConfig, GossipConfigError};
use std::collections::BTreeMap;

use quorate_proto::{ClusterId, FieldError, NodeId, Roster, Valid};

/// One configured member of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its node id (bound to its certificate by the transport).
    pub id: NodeId,
    /// Its votes; 0 makes an observer that follows the cluster without deciding quorum.
    pub votes: u32,
}

impl Member {
    /// A member with one vote.
    pub fn voter(id: u64) -> Self {
        Member { id: NodeId(id), votes: 1 }
    }

    /// A member without votes.
    pub fn observer(id: u64) -> Self {
        Member { id: NodeId(id), votes: 0 }
    }
}

/// Everything a node's core needs to know before it starts, as set by hand: change any
/// field, then [`Config::check`] it into the [`ValidConfig`] a node is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The cluster; messages for any other cluster are dropped.
    pub cluster: ClusterId,
    /// This node.
    pub me: NodeId,
    /// Every member, this node included. Total votes = sum of their votes.
    pub members: Vec<Member>,
    /// Where members are dialed (`HOST:PORT`), carried in the definition a change
    /// proposes so that every node can reach a member it adds. Empty by default: the
    /// core dials nothing itself.
    pub addresses: BTreeMap<NodeId, String>,
    /// Heartbeat timing and failure detection.
    pub detector: DetectorConfig,
    /// Leases, drift bound, tie-breaker, `wait_for_all`.
    pub gate: GateConfig,
    /// Gossip of reachability rows, the partition view and fence checks.
    pub gossip: GossipConfig,
}

/// Why a core configuration was refused: the first broken rule, with the setting at fault
/// ([`FieldError::field`]: its path in [`Config`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreConfigError {
    /// The member list cannot form quorums, or does not contain this node.
    #[error("members: {0}")]
    Membership(#[from] MembershipError),
    /// A detector rule is broken, or the detector cannot watch that many peers.
    #[error(transparent)]
    Detector(#[from] DetectorConfigError),
    /// A gate rule is broken, the lease safety rule among them.
    #[error(transparent)]
    Gate(#[from] GateConfigError),
    /// A gossip rule is broken.
    #[error(transparent)]
    Gossip(#[from] GossipConfigError),
    /// A timing change asked for another drift bound than the node runs: the bound
    /// describes the clocks, and every lease and floor in force was sized with it.
    #[error(
        "gate.max_clock_drift cannot change while the node runs ({running} in force, {asked} asked); \
         restart the nodes one at a time with the new bound"
    )]
    DriftChanged {
        /// The bound in force.
        running: f64,
        /// The bound asked for.
        asked: f64,
    },
}

impl FieldError for CoreConfigError {
    fn field(&self) -> String {
        match self {
            CoreConfigError::Membership(m) => match m {
                MembershipError::NotAMember { .. } => "me",
                MembershipError::TieBreakerNotVoter { .. } => "gate.tie_breaker",
                MembershipError::DuplicateMember { .. } => "members.id",
                _ => "members.votes",
            }
            .to_owned(),
            // The detector is handed the peers the members make.
            CoreConfigError::Detector(DetectorConfigError::TooManyPeers { .. }) => "members".to_owned(),
            CoreConfigError::Detector(e) => format!("detector.{}", e.field()),
            CoreConfigError::Gate(e) => format!("gate.{}", e.field()),
            CoreConfigError::Gossip(e) => format!("gossip.{}", e.field()),
            CoreConfigError::DriftChanged { .. } => "gate.max_clock_drift".to_owned(),
        }
    }

    fn value(&self) -> String {
        match self {
            CoreConfigError::Membership(m) => match m {
                MembershipError::NotAMember { id }
                | MembershipError::TieBreakerNotVoter { id }
                | MembershipError::DuplicateMember { id } => id.0.to_string(),
                MembershipError::NoVoters => "0".to_owned(),
                _ => String::new(),
            },
            CoreConfigError::Detector(e) => e.value(),
            CoreConfigError::Gate(e) => e.value(),
            CoreConfigError::Gossip(e) => e.value(),
            CoreConfigError::DriftChanged { asked, .. } => asked.to_string(),
        }
    }
}

impl Config {
    /// A configuration with default timing for `me` in `members`.
    pub fn new(cluster: ClusterId, me: NodeId, members: Vec<Member>) -> Self {
        Config {
            cluster,
            me,
            members,
            addresses: BTreeMap::new(),
            detector: DetectorConfig::default(),
            gate: GateConfig::default(),
            gossip: GossipConfig::default(),
        }
    }

    /// This configuration, if it passes every rule: membership, each part's own rules, and
    /// the rules across parts (the lease against the detector's floor, fence checks against
    /// the drift bound). Each rule runs once; the parts come out checked.
    pub fn check(self) -> Result<ValidConfig, CoreConfigError> {
        let votes = VoteTable::new(self.members.iter().map(|m| (m.id, m.votes)), self.gate.tie_breaker)?;
        if !votes.is_member(self.me) {
            return Err(MembershipError::NotAMember { id: self.me }.into());
        }
        let drift = self.gate.max_clock_drift;
        let detector = self.detector.check()?;
        let gate = self.gate.check(&detector)?;
        let gossip = self.gossip.check(drift)?;
        let roster = Roster::initial(votes, self.addresses);
        Ok(ValidConfig { cluster: self.cluster, me: self.me, roster, detector, gate, gossip })
    }
}

/// A [`Config`] that passed [`Config::check`]: what a node is built from. Read-only; to
/// change a setting, change the [`Config`] and check it again.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidConfig {
    pub(crate) cluster: ClusterId,
    pub(crate) me: NodeId,
    pub(crate) roster: Roster,
    pub(crate) detector: Valid<DetectorConfig>,
    pub(crate) gate: Valid<GateConfig>,
    pub(crate) gossip: Valid<GossipConfig>,
}

impl ValidConfig {
    /// The cluster.
    pub fn cluster(&self) -> ClusterId {
        self.cluster
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The members and their votes, with the quorum rule resolved.
    pub fn votes(&self) -> &VoteTable {
        &self.roster.votes
    }

    /// The definition the node starts from: version 0 from the [`Config`], or a later one
    /// ([`ValidConfig::with_roster`]).
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// This configuration starting from `roster` instead: a later definition the data
    /// directory kept from an earlier life. Fails if this node is not a member of it.
    pub fn with_roster(self, roster: Roster) -> Result<ValidConfig, CoreConfigError> {
        if !roster.votes.is_member(self.me) {
            return Err(MembershipError::NotAMember { id: self.me }.into());
        }
        Ok(ValidConfig { roster, ..self })
    }

    /// Heartbeat timing and failure detection.
    pub fn detector(&self) -> &Valid<DetectorConfig> {
        &self.detector
    }

    /// Leases, drift bound, tie-breaker, `wait_for_all`.
    pub fn gate(&self) -> &Valid<GateConfig> {
        &self.gate
    }

    /// Gossip of reachability rows, the partition view and fence checks.
    pub fn gossip(&self) -> &Valid<GossipConfig> {
        &self.gossip
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn three() -> Config {
        Config::new(ClusterId(1), NodeId(1), (1..=3).map(Member::voter).collect())
    }

    fn refused(cfg: Config) -> Option<CoreConfigError> {
        cfg.check().err()
    }

    #[test]
    fn default_three_node_config_is_valid() {
        assert_eq!(refused(three()), None);
    }

    #[test]
    fn node_outside_the_member_list_is_refused() {
        let err = refused(Config { me: NodeId(9), ..three() });
        assert_eq!(err, Some(CoreConfigError::Membership(MembershipError::NotAMember { id: NodeId(9) })));
        assert_eq!(
            err.as_ref().map(ToString::to_string).as_deref(),
            Some("members: this node (node 9) is not in the member list")
        );
        assert_eq!(err.map(|e| (e.field(), e.value())), Some(("me".to_owned(), "9".to_owned())));
    }

    #[test]
    fn unsafe_lease_is_refused_with_both_values_named() {
        let mut cfg = three();
        cfg.gate.lease = Duration::from_millis(990);
        let err = refused(cfg);
        let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(text.contains("lease (990ms)") && text.contains("down_after_min (1s)"), "{text}");
        assert_eq!(err.map(|e| (e.field(), e.value())), Some(("gate.lease".to_owned(), "990ms".to_owned())));
    }

    #[test]
    fn each_part_is_named_by_its_path() {
        let mut cfg = three();
        cfg.detector.down_after_min = Duration::from_millis(150);
        assert_eq!(refused(cfg).map(|e| e.field()).as_deref(), Some("detector.down_after_min"));
        let mut cfg = three();
        cfg.gate.tie_breaker = quorate_gate::TieBreaker::Node(NodeId(7));
        assert_eq!(refused(cfg).map(|e| e.field()).as_deref(), Some("gate.tie_breaker"));
        let cfg = Config { members: vec![Member::voter(1), Member::voter(1)], ..three() };
        assert_eq!(refused(cfg).map(|e| e.field()).as_deref(), Some("members.id"));
        let cfg = Config { gossip: GossipConfig { fanout: 0, ..GossipConfig::default() }, ..three() };
        assert_eq!(refused(cfg).map(|e| (e.field(), e.value())), Some(("gossip.fanout".into(), "0".into())));
    }

    #[test]
    fn gossip_rules_name_the_fields() {
        let text = |g: GossipConfig| {
            refused(Config { gossip: g, ..three() }).map(|e| e.to_string()).unwrap_or_default()
        };
        let base = GossipConfig::default();
        let hold = text(GossipConfig { fence_hold: Duration::from_millis(300), ..base.clone() });
        assert!(
            hold.contains("gossip.fence_hold (300ms)") && hold.contains("gossip.fence_timeout (300ms)"),
            "{hold}"
        );
        let fresh = text(GossipConfig { fresh_for: Duration::from_millis(400), ..base.clone() });
        assert!(fresh.contains("gossip.fresh_for (400ms)") && fresh.contains("(250ms)"), "{fresh}");
        assert_eq!(
            text(GossipConfig { fanout: 0, ..base.clone() }),
            "gossip.fanout must be greater than zero"
        );
        assert!(text(GossipConfig { bytes_max: 10, ..base.clone() }).contains("gossip.bytes_max (10)"));
        // Off, nothing else is checked.
        assert_eq!(text(GossipConfig { enabled: false, fanout: 0, ..base }), "");
    }
}
