//! A quorum definition that changes while the node runs (online membership change). See
//! `docs/reconfiguration.md` for the protocol this is a step of.
//!
//! ```text
//!   set_definition(now, votes) ──► links (new peers get one, former peers lose theirs)
//!                              ──► detector peers, gate votes, gossip members
//!                              ──► own digest in every heartbeat's terms; the previous
//!                                  definition stays in force (joint rule) for every peer
//!                                  still heard running it
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use quorate_proto::{Instant, Link, MembershipError, VoteTable};

use crate::config::CoreConfigError;
use crate::node::{sent_log_len, Node};

impl Node {
    /// From `now` this node runs `votes` as its quorum definition: the members it
    /// heartbeats, watches and gossips with, and the quorums its gate counts. Peers that
    /// stay members keep their links, detector history and the leases they lent; new
    /// members start unheard; former members are forgotten.
    ///
    /// Safety is the joint rule's: a peer still running the previous definition is a peer
    /// on another definition (no acks either way, and this node writes only on votes that
    /// are a quorum under both) until it is heard running this one. The caller checks
    /// beforehand that the change is a safe successor (`quorate_proto::succession`).
    ///
    /// Fails, changing nothing, if this node is not a member of `votes` or the members are
    /// more than the detector watches.
    pub fn set_definition(&mut self, now: Instant, votes: VoteTable) -> Result<(), CoreConfigError> {
        let now = self.advance(now);
        if !votes.is_member(self.me) {
            return Err(MembershipError::NotAMember { id: self.me }.into());
        }
        let peers: BTreeSet<_> = votes.peers_of(self.me).into_iter().collect();
        self.detector.set_peers(now, peers.iter().copied())?;
        let lease = Duration::from_micros(u64::from(self.terms.lease_us));
        let log_len = sent_log_len(lease, self.interval);
        let gone: Vec<_> = self.links.keys().filter(|id| !peers.contains(id)).copied().collect();
        for id in gone {
            if let Some(link) = self.links.remove(&id) {
                self.former_links.insert(id, link);
            }
        }
        for &id in &peers {
            let link = self.former_links.remove(&id).unwrap_or_else(|| Link::new(log_len));
            self.links.entry(id).or_insert(link);
        }
        self.fenced.retain(|id| peers.contains(id));
        let previous = self.gate.votes().clone();
        let digest = votes.digest(self.cluster);
        self.terms.definition = digest;
        if let Some(s) = self.gossip.as_mut() {
            s.gossiper.set_definition(&votes);
        }
        self.gate.set_votes(now, votes);
        let changes = self.definitions.set_own(digest, previous, &peers);
        for (peer, change) in changes {
            self.definition_changed(now, peer, change);
        }
        self.gate.set_other_definitions(now, self.definitions.others());
        self.drain_gate(now);
        self.status_clock.touch();
        self.settle(now);
        Ok(())
    }
}
