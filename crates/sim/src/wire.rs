//! The wire as the simulator sees it: how a message travels between two cores
//! ([`Carry`]), and reading or rewriting the heartbeat a payload carries (for the ack
//! ledger, planted bugs and the `local_only_terms` fault).

use quorate_proto::{
    decode, decode_stream, encode, encode_stream, ClusterId, Heartbeat, Message, NodeId, Terms,
};

/// How a message travels and is handed to the receiving core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carry {
    /// An unreliable datagram: `Node::handle_datagram`.
    Datagram,
    /// A request on a stream: `Node::handle_request`, whose reply travels back.
    Request,
    /// The reply to a request: `Node::handle_reply`.
    Reply,
}

/// `payload` rewritten, if it is a heartbeat, to carry `terms` instead of the sender's
/// (the `local_only_terms` fault: every receiver sees its own lease, drift and definition).
pub(crate) fn with_terms(payload: &[u8], carry: Carry, terms: Terms, cluster: ClusterId) -> Option<Vec<u8>> {
    let mut hb = heartbeat_of(payload, carry, cluster)?;
    hb.terms = terms;
    encode_heartbeat(hb, carry, cluster)
}

/// The heartbeat `payload` carries, if it is one (a datagram, or a request or reply on a
/// stream).
pub(crate) fn heartbeat_of(payload: &[u8], carry: Carry, cluster: ClusterId) -> Option<Heartbeat> {
    let message =
        if carry == Carry::Datagram { decode(payload, cluster) } else { decode_stream(payload, cluster) };
    match message {
        Ok(Message::Heartbeat(hb)) => Some(hb),
        _ => None,
    }
}

/// `hb` encoded for `carry`.
pub(crate) fn encode_heartbeat(hb: Heartbeat, carry: Carry, cluster: ClusterId) -> Option<Vec<u8>> {
    let message = Message::Heartbeat(hb);
    let encoded =
        if carry == Carry::Datagram { encode(cluster, &message) } else { encode_stream(cluster, &message) };
    encoded.ok()
}

/// The index of node `id` (ids are `index + 1`).
pub(crate) fn index_of(id: NodeId) -> usize {
    usize::try_from(id.0.saturating_sub(1)).unwrap_or(usize::MAX)
}
