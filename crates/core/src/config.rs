//! The configuration of one node, validated once.

use quorate_detector::DetectorConfig;
use quorate_gate::{GateConfig, GateConfigError, MembershipError, VoteTable};
use quorate_gossip::{GossipConfig, GossipConfigError};
use quorate_heartbeat::{ClusterId, NodeId};

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

/// Everything a node's core needs to know before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The cluster; messages for any other cluster are dropped.
    pub cluster: ClusterId,
    /// This node.
    pub me: NodeId,
    /// Every member, this node included. Total votes = sum of their votes.
    pub members: Vec<Member>,
    /// Heartbeat timing and failure detection.
    pub detector: DetectorConfig,
    /// Leases, drift bound, tie-breaker, `wait_for_all`.
    pub gate: GateConfig,
    /// Gossip of reachability rows, the partition view and fence checks.
    pub gossip: GossipConfig,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The member list cannot form quorums, or does not contain this node.
    #[error("members: {0}")]
    Membership(#[from] MembershipError),
    /// A timing or gate rule is broken.
    #[error(transparent)]
    Gate(#[from] GateConfigError),
    /// A gossip rule is broken.
    #[error(transparent)]
    Gossip(#[from] GossipConfigError),
}

impl Config {
    /// A configuration with default timing for `me` in `members`.
    pub fn new(cluster: ClusterId, me: NodeId, members: Vec<Member>) -> Self {
        Config {
            cluster,
            me,
            members,
            detector: DetectorConfig::default(),
            gate: GateConfig::default(),
            gossip: GossipConfig::default(),
        }
    }

    /// Checks every rule: membership, detector timing, and the lease safety rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.vote_table().map(|_| ())?;
        self.gate.validate(&self.detector)?;
        self.gossip.validate(self.gate.max_clock_drift)?;
        Ok(())
    }

    pub(crate) fn vote_table(&self) -> Result<VoteTable, MembershipError> {
        let table = VoteTable::new(self.members.iter().map(|m| (m.id, m.votes)), self.gate.tie_breaker)?;
        if !table.is_member(self.me) {
            return Err(MembershipError::NotAMember { id: self.me });
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn three() -> Config {
        Config::new(ClusterId(1), NodeId(1), (1..=3).map(Member::voter).collect())
    }

    #[test]
    fn default_three_node_config_is_valid() {
        assert_eq!(three().validate(), Ok(()));
    }

    #[test]
    fn node_outside_the_member_list_is_refused() {
        let cfg = Config { me: NodeId(9), ..three() };
        assert_eq!(
            cfg.validate(),
            Err(ConfigError::Membership(MembershipError::NotAMember { id: NodeId(9) }))
        );
        assert_eq!(
            cfg.validate().err().map(|e| e.to_string()).unwrap_or_default(),
            "members: this node (node 9) is not in the member list"
        );
    }

    #[test]
    fn unsafe_lease_is_refused_with_both_values_named() {
        let mut cfg = three();
        cfg.gate.lease = Duration::from_millis(990);
        let text = cfg.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("lease (990ms)") && text.contains("down_after_min (1s)"), "{text}");
    }

    #[test]
    fn gossip_rules_name_the_fields() {
        let text = |g: GossipConfig| {
            let cfg = Config { gossip: g, ..three() };
            cfg.validate().err().map(|e| e.to_string()).unwrap_or_default()
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
