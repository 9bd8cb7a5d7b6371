//! What the gate knows, as values: epochs, status snapshots and the reasons for a fence.

use core::fmt;

use quorate_detector::PeerState;
use quorate_gossip::PartitionView;
use quorate_proto::{DefinitionDigest, Instant, NodeId};

/// A fencing epoch: increases every time this node gains quorum, and across restarts.
///
/// The epoch of a node's `n`-th quorum in its life with incarnation `i` is
/// `i * 2^20 + n`. The runtime takes incarnations as `max(wall-clock ms at start, previous
/// incarnation + 1)`, the previous one kept in the node's data directory, so a later life
/// starts above the previous one as long as that life gained quorum fewer than 2^20 times
/// (at most one gain per two heartbeat intervals); after a normal restart it starts
/// `uptime_ms * 2^20` above it. Two writes with the same epoch from one node happened
/// within one unbroken stretch of quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

impl Epoch {
    /// Bits of the epoch that count quorum gains within one incarnation.
    pub const GAIN_BITS: u32 = 20;

    /// The epoch before the first quorum of a life with this incarnation.
    pub fn base(incarnation: quorate_proto::Incarnation) -> Epoch {
        Epoch(incarnation.0.saturating_mul(1 << Self::GAIN_BITS))
    }

    /// The next epoch.
    pub fn next(self) -> Epoch {
        Epoch(self.0.saturating_add(1))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A snapshot of a node's quorum state, built by the core from all its parts and published
/// by the driver on every material change (see `quorate_core::Node::poll_status`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuorumStatus {
    /// This node.
    pub node: NodeId,
    /// When this snapshot's writability and vote counts were evaluated (gate clock).
    pub as_of: Instant,
    /// Whether the node may write at `as_of`.
    pub writable: bool,
    /// The current (or last) fencing epoch.
    pub epoch: Epoch,
    /// Until when the held leases form a quorum; [`Instant::ZERO`] when they do not.
    pub deadline: Instant,
    /// Votes this node holds at `as_of`, its own included.
    pub held_votes: u64,
    /// A strict majority of `total_votes`.
    pub needed_votes: u64,
    /// Sum of all configured votes.
    pub total_votes: u64,
    /// The member whose presence lets an exact half win, if any.
    pub tie_breaker: Option<NodeId>,
    /// Every other member, in id order.
    pub peers: Vec<PeerStatus>,
    /// Voters not yet heard while `wait_for_all` holds the first quorum back.
    pub waiting_for: Vec<NodeId>,
    /// Who hears whom, from gossip; `None` when gossip is off.
    pub partition: Option<PartitionView>,
    /// Peers a fence check confirmed fenced (see [`crate::QuorumEvent::PeerFenced`]) and
    /// not heard from since.
    pub fenced: Vec<NodeId>,
    /// This life used every epoch it may (2^20 stretches of quorum): it stays fenced until
    /// the node restarts (a new life, a new range of epochs).
    pub epochs_exhausted: bool,
    /// Digest of this node's quorum definition (cluster, members, votes, tie-breaker,
    /// version).
    pub definition: DefinitionDigest,
    /// The version of this node's definition: 0 as the configuration file gives it, one
    /// more with each change made while the cluster runs.
    pub definition_version: u64,
    /// Peers last heard running another quorum definition. Their votes are not counted
    /// (and they get no acks from here), and while any is listed the node writes only if
    /// the votes it holds are a quorum under every listed definition as well as its own.
    pub mismatched: Vec<ForeignDefinition>,
}

/// A peer that runs another quorum definition than this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignDefinition {
    /// The peer.
    pub peer: NodeId,
    /// Digest of its definition.
    pub digest: DefinitionDigest,
    /// The definition's version (0: as a configuration file gives it), once the peer sent
    /// it.
    pub version: Option<u64>,
    /// Its members as `(id, votes)` and its resolved tie-breaker, once the peer sent them;
    /// `None` until then (the node is not writable while a definition is unknown).
    pub members: Option<quorate_proto::quorum::DefinitionParts>,
}

impl fmt::Display for ForeignDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} runs definition {}", self.peer, self.digest)?;
        if let Some(v) = self.version.filter(|v| *v > 0) {
            write!(f, " version {v}")?;
        }
        match &self.members {
            Some((members, tb)) => {
                f.write_str(" (members")?;
                for (i, (id, votes)) in members.iter().enumerate() {
                    write!(f, "{}{}:{votes}", if i == 0 { " " } else { "," }, id.0)?;
                }
                match tb {
                    Some(tb) => write!(f, "; tie-breaker {})", tb.0),
                    None => f.write_str("; no tie-breaker)"),
                }
            }
            None => f.write_str(" (not yet received)"),
        }
    }
}

impl QuorumStatus {
    /// The snapshot of a node nothing was published for yet: fenced, nothing known.
    pub fn empty(node: NodeId) -> Self {
        QuorumStatus {
            node,
            as_of: Instant::ZERO,
            writable: false,
            epoch: Epoch(0),
            deadline: Instant::ZERO,
            held_votes: 0,
            needed_votes: 0,
            total_votes: 0,
            tie_breaker: None,
            peers: Vec::new(),
            waiting_for: Vec::new(),
            partition: None,
            fenced: Vec::new(),
            epochs_exhausted: false,
            definition: DefinitionDigest::default(),
            definition_version: 0,
            mismatched: Vec::new(),
        }
    }

    /// Re-evaluates the time-dependent fields at `now`, given the latest published
    /// deadline and epoch. Leases run out between publications; this keeps a snapshot
    /// read later from overstating the votes held.
    pub fn refreshed(mut self, now: Instant, deadline: Instant, epoch: Epoch, own_votes: u64) -> Self {
        self.as_of = now;
        self.deadline = deadline;
        self.epoch = epoch;
        self.writable = now < deadline;
        self.held_votes = own_votes
            + self
                .peers
                .iter()
                .filter(|p| p.lease_until.is_some_and(|u| u > now))
                .map(|p| u64::from(p.votes))
                .sum::<u64>();
        self
    }

    /// Why the node is not writable at `as_of`, or `None` when it is.
    pub fn why_not(&self) -> Option<Why> {
        if self.writable {
            return None;
        }
        Some(self.fence_reason())
    }

    /// What keeps (or would keep) the node from writing at `as_of`: voters whose leases
    /// are not held, or the voters `wait_for_all` still waits for.
    pub fn fence_reason(&self) -> Why {
        if !self.waiting_for.is_empty() {
            return Why::WaitingForAll { unseen: self.waiting_for.clone() };
        }
        if self.epochs_exhausted && !self.writable {
            return Why::EpochsExhausted;
        }
        if !self.mismatched.is_empty() && self.holds_own_quorum() {
            return Why::DefinitionMismatch { ours: self.definition, theirs: self.mismatched.clone() };
        }
        let missing = self
            .peers
            .iter()
            .filter(|p| p.votes > 0 && p.lease_until.is_none_or(|u| u <= self.as_of))
            .map(|p| MissingVote { peer: p.id, votes: p.votes, state: p.state })
            .collect();
        Why::MissingVotes {
            held: self.held_votes,
            needed: self.needed_votes,
            total: self.total_votes,
            missing,
        }
    }
}

impl QuorumStatus {
    /// Whether the votes held at `as_of` are a quorum under this node's own definition
    /// (more than half, or half with the tie-breaker among the holders).
    fn holds_own_quorum(&self) -> bool {
        let tie_breaker_held = self.tie_breaker.is_some_and(|tb| {
            tb == self.node
                || self.peers.iter().any(|p| p.id == tb && p.lease_until.is_some_and(|u| u > self.as_of))
        });
        2 * self.held_votes > self.total_votes
            || (2 * self.held_votes == self.total_votes && tie_breaker_held)
    }
}

/// One peer as the gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStatus {
    /// The peer.
    pub id: NodeId,
    /// Its configured votes (0 for an observer).
    pub votes: u32,
    /// What this node's detector thinks of it.
    pub state: PeerState,
    /// When this node last heard a fresh heartbeat from it.
    pub last_heard: Option<Instant>,
    /// Until when this node holds its vote; `None` if it never acked.
    pub lease_until: Option<Instant>,
}

/// The answer to "may I write?" when it is no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not quorate: {why}")]
#[non_exhaustive]
pub struct NotQuorate {
    /// What is missing.
    pub why: Why,
}

impl NotQuorate {
    /// Wraps a reason.
    pub fn new(why: Why) -> Self {
        NotQuorate { why }
    }
}

/// Why a node may not write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Why {
    /// The votes held do not form a quorum.
    MissingVotes {
        /// Votes held, own included.
        held: u64,
        /// Votes for a strict majority.
        needed: u64,
        /// All configured votes.
        total: u64,
        /// Voters whose votes are not held, with what the detector thinks of them.
        missing: Vec<MissingVote>,
    },
    /// `wait_for_all` is set and these voters have not been heard yet.
    WaitingForAll {
        /// Voters never heard.
        unseen: Vec<NodeId>,
    },
    /// The permit belongs to an earlier stretch of quorum: quorum was lost and regained
    /// since, so a write under it could interleave with another side's writes.
    EpochChanged {
        /// The permit's epoch.
        permit: Epoch,
        /// The gate's epoch now.
        current: Epoch,
    },
    /// The node is shut down.
    Stopped,
    /// Members run other quorum definitions, and the votes held are not a quorum under
    /// every one of them (a node never writes on a quorum that another definition in use
    /// does not also call a quorum).
    DefinitionMismatch {
        /// Digest of this node's definition.
        ours: DefinitionDigest,
        /// The peers that run other definitions.
        theirs: Vec<ForeignDefinition>,
    },
    /// This life gained quorum 2^20 times and has no epoch left that is above all of its
    /// own and below every later life's: restart the node.
    EpochsExhausted,
}

/// A vote the node does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingVote {
    /// The voter.
    pub peer: NodeId,
    /// Its votes.
    pub votes: u32,
    /// What the detector thinks of it (reachable peers whose acks are late show up here
    /// as `Reachable`).
    pub state: PeerState,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::MissingVotes { held, needed, total, missing } => {
                write!(f, "holding {held} of {total} votes, {needed} needed")?;
                for (i, m) in missing.iter().enumerate() {
                    f.write_str(if i == 0 { "; missing " } else { ", " })?;
                    write!(f, "{} ({})", m.peer, state_word(m.state))?;
                }
                Ok(())
            }
            Why::WaitingForAll { unseen } => {
                f.write_str("wait_for_all: not yet heard from")?;
                for (i, id) in unseen.iter().enumerate() {
                    write!(f, "{}{id}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
            Why::EpochChanged { permit, current } => {
                write!(f, "quorum was lost and regained since the permit (epoch {permit} -> {current})")
            }
            Why::Stopped => f.write_str("the node is shut down"),
            Why::EpochsExhausted => f.write_str(
                "this life used all 2^20 of its fencing epochs (quorum gained and lost that often); \
                 restart the node to continue with a new range",
            ),
            Why::DefinitionMismatch { ours, theirs } => {
                write!(f, "quorum definitions differ: this node runs {ours}")?;
                for t in theirs {
                    write!(f, "; {t}")?;
                }
                f.write_str("; the votes held are not a quorum under all of them")
            }
        }
    }
}

fn state_word(state: PeerState) -> &'static str {
    match state {
        PeerState::Unknown => "never heard",
        PeerState::Reachable => "no recent ack",
        PeerState::Suspect => "suspect",
        PeerState::Unreachable => "down",
        PeerState::Left => "left",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: u64, state: PeerState, lease_ms: Option<u64>) -> PeerStatus {
        PeerStatus {
            id: NodeId(id),
            votes: 1,
            state,
            last_heard: None,
            lease_until: lease_ms.map(|ms| Instant::from_nanos(ms * 1_000_000)),
        }
    }

    fn status() -> QuorumStatus {
        QuorumStatus {
            node: NodeId(1),
            as_of: Instant::ZERO,
            writable: true,
            epoch: Epoch(1),
            deadline: Instant::from_nanos(500_000_000),
            held_votes: 3,
            needed_votes: 3,
            total_votes: 5,
            tie_breaker: None,
            peers: vec![
                peer(2, PeerState::Reachable, Some(500)),
                peer(3, PeerState::Reachable, Some(800)),
                peer(4, PeerState::Unreachable, None),
                peer(5, PeerState::Unknown, None),
            ],
            waiting_for: vec![],
            partition: None,
            fenced: vec![],
            epochs_exhausted: false,
            definition: DefinitionDigest::default(),
            definition_version: 0,
            mismatched: vec![],
        }
    }

    #[test]
    fn refresh_counts_only_unexpired_leases() {
        let s = status();
        let at = |ms: u64| Instant::from_nanos(ms * 1_000_000);
        let later = s.clone().refreshed(at(600), at(500), Epoch(1), 1);
        assert!(!later.writable);
        assert_eq!(later.held_votes, 2);
        let earlier = s.refreshed(at(100), at(500), Epoch(1), 1);
        assert!(earlier.writable && earlier.why_not().is_none());
        assert_eq!(earlier.held_votes, 3);
    }

    #[test]
    fn reason_names_every_missing_vote_and_why() {
        let s = status().refreshed(Instant::from_nanos(600_000_000), Instant::ZERO, Epoch(1), 1);
        let why = s.why_not().map(|w| NotQuorate::new(w).to_string()).unwrap_or_default();
        assert_eq!(
            why,
            "not quorate: holding 2 of 5 votes, 3 needed; missing node 2 (no recent ack), node 4 (down), \
             node 5 (never heard)"
        );
    }

    #[test]
    fn epoch_of_a_later_life_is_above_any_epoch_of_an_earlier_one() {
        use quorate_proto::Incarnation;
        let first = Epoch::base(Incarnation(1_795_000_000_000));
        // A life of one second that gained quorum ten times (far more than heartbeats
        // allow)...
        let busy = Epoch(first.0 + 10);
        // ...is followed by a life whose incarnation is at least 1000 ms later.
        let second = Epoch::base(Incarnation(1_795_000_001_000));
        assert!(second.next() > busy);
    }
}
