//! The members a node exchanges with, as one snapshot that [`crate::Transport::set_members`]
//! replaces whole.
//!
//! ```text
//!   set_members(list) ──► check (as the config) ──► build: keep each unchanged peer's slot,
//!        │                                           new Peer for a new id or address
//!        ├─► swap the snapshot (readers hold an Arc: a send or an accept sees the old set
//!        │   or the new one, never half of each)
//!        ├─► new peers: dial loop (unless passive)
//!        └─► gone peers: marked removed, connection closed (CLOSE_REMOVED), dial loop ends
//! ```

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use quorate_proto::NodeId;

use crate::address::MemberAddress;
use crate::names::node_dns_name;
use crate::peer::Peer;
use crate::tls::MemberNames;
use crate::TransportError;

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
        Ok(Members { peers, members_at, any_named, names, passive })
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
