//! The members a node exchanges with, as one snapshot that [`crate::Transport::set_members`]
//! replaces whole.
//!
//! ```text
//!   set_members(list) ──► check (as the config) ──► build: keep each unchanged peer's slot,
//!        │                                           new Peer for a new id or address
//!        ├─► swap the snapshot (readers hold an Arc: a send or an accept sees the old set
//!        │   or the new one, never half of each)
//!        ├─► new peers: dial loop (unless passive)
//!        ├─► gone peers: marked removed, connection closed (CLOSE_REMOVED), dial loop ends
//!        │   (a peer whose address changed: CLOSE_MOVED, and dialed afresh at the new one)
//!        └─► gone ids remembered as former members (at most FORMER_MEMBERS_MAX)
//! ```
//!
//! # Former members
//!
//! A member removed while it was down never hears of its removal: when it comes back it
//! dials the members of the definition it last ran. Each snapshot remembers the last
//! [`FORMER_MEMBERS_MAX`] ids removed from the member list (and their addresses), so that
//! such a dial is answered rather than ignored: the handshake is let through from a former
//! member's address and the connection is then closed with [`crate::CLOSE_REMOVED`], which
//! the dialing side records ([`crate::Transport::refused_as_non_member`]). An id added back
//! is a member again and no longer a former one. The memory lasts as long as the transport:
//! a node that restarted since forgets it, and ignores the former member as any stranger.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use quorate_proto::NodeId;

use crate::address::MemberAddress;
use crate::names::node_dns_name;
use crate::peer::Peer;
use crate::tls::{identify_client, MemberNames};
use crate::TransportError;

/// Former members a snapshot remembers (see "Former members"); beyond this the one removed
/// longest ago is forgotten. A former member's handshakes cost crypto work (bounded, like
/// every handshake, by `handshakes_in_flight`), which is why the list is short.
pub const FORMER_MEMBERS_MAX: usize = 64;

/// One snapshot of the member list.
#[derive(Debug)]
pub(crate) struct Members {
    /// Every member but this node.
    pub(crate) peers: HashMap<NodeId, Arc<Peer>>,
    /// Members configured at an IP address, by that address.
    pub(crate) members_at: HashMap<SocketAddr, NodeId>,
    /// Whether any member is configured by name (see "Source addresses and names").
    pub(crate) any_named: bool,
    /// The certificate names of every member, this node included.
    pub(crate) names: MemberNames,
    /// Peers this node does not dial (it accepts them when they dial).
    pub(crate) passive: BTreeSet<NodeId>,
    /// Ids removed from the member list, oldest first, with their last address.
    pub(crate) former: Vec<(NodeId, MemberAddress)>,
    /// Former members configured at an IP address, by that address.
    pub(crate) former_at: HashMap<SocketAddr, NodeId>,
    /// The certificate names of the former members.
    pub(crate) former_names: MemberNames,
}

impl Members {
    /// The snapshot for `members` (this node among them or not). A peer of `previous` whose
    /// id and address are unchanged keeps its `Peer` (its connection and link filter).
    pub(crate) fn build(
        me: NodeId,
        cluster_name: &str,
        members: &[(NodeId, MemberAddress)],
        passive: BTreeSet<NodeId>,
        previous: Option<&Members>,
    ) -> Result<Members, TransportError> {
        let mut peers = HashMap::new();
        let mut members_at = HashMap::new();
        for (node, address) in members.iter().filter(|(n, _)| *n != me) {
            let address = address.canonical();
            let kept = previous.and_then(|p| p.peers.get(node)).filter(|p| p.address == address);
            let peer = match kept {
                Some(peer) => peer.clone(),
                None => Arc::new(Peer::new(*node, address, node_dns_name(cluster_name, *node))),
            };
            if let MemberAddress::Ip(addr) = peer.address {
                members_at.insert(addr, *node);
            }
            peers.insert(*node, peer);
        }
        let any_named = peers.values().any(|p| p.address.host_name().is_some());
        let names = MemberNames::new(cluster_name, members.iter().map(|(n, _)| *n).chain([me]))?;
        let former = previous.map(|p| p.former_after(&peers)).unwrap_or_default();
        let former_at = former
            .iter()
            .filter_map(|(id, address)| address.ip().map(|addr| (addr, *id)))
            .filter(|(addr, _)| !members_at.contains_key(addr))
            .collect();
        let former_names = MemberNames::new(cluster_name, former.iter().map(|(n, _)| *n))?;
        Ok(Members { peers, members_at, any_named, names, passive, former, former_at, former_names })
    }

    /// The former members once `next` are the peers: the ones remembered and the peers no
    /// longer listed, minus those listed again, the most recent [`FORMER_MEMBERS_MAX`].
    fn former_after(&self, next: &HashMap<NodeId, Arc<Peer>>) -> Vec<(NodeId, MemberAddress)> {
        let mut gone: Vec<(NodeId, MemberAddress)> = self
            .peers
            .values()
            .filter(|p| !next.contains_key(&p.id))
            .map(|p| (p.id, p.address.clone()))
            .collect();
        gone.sort_by_key(|(id, _)| *id);
        let mut former: Vec<(NodeId, MemberAddress)> = self
            .former
            .iter()
            .filter(|(id, _)| !next.contains_key(id) && !gone.iter().any(|(g, _)| g == id))
            .cloned()
            .collect();
        former.extend(gone);
        let excess = former.len().saturating_sub(FORMER_MEMBERS_MAX);
        former.drain(..excess);
        former
    }

    /// The former member a refused client certificate names, if it names one.
    pub(crate) fn former_member(&self, chain: Option<Box<dyn core::any::Any>>, me: NodeId) -> Option<NodeId> {
        identify_client(chain, &self.former_names, me).ok()
    }

    /// Peers of `self` that `next` no longer holds (or holds as another `Peer`: a new
    /// address), and peers of `next` that `self` did not hold.
    pub(crate) fn changes(&self, next: &Members) -> (Vec<Arc<Peer>>, Vec<Arc<Peer>>) {
        let same = |a: &Arc<Peer>, b: Option<&Arc<Peer>>| b.is_some_and(|b| Arc::ptr_eq(a, b));
        let gone = self.peers.iter().filter(|(id, p)| !same(p, next.peers.get(id))).map(|(_, p)| p.clone());
        let new = next.peers.iter().filter(|(id, p)| !same(p, self.peers.get(id))).map(|(_, p)| p.clone());
        (gone.collect(), new.collect())
    }
}
