//! The wire format: a versioned envelope around postcard-encoded messages.
//!
//! ```text
//! +---------+----------------+---------------------------+
//! | version | cluster id     | message (postcard)        |
//! | 1 byte  | 8 bytes, LE    | enum tag + fields         |
//! +---------+----------------+---------------------------+
//! ```
//!
//! The version byte is read before anything else, so a future format can change every byte
//! after it and still be told apart. The cluster id is checked before the message body is
//! parsed, so traffic from another cluster costs nine bytes of reading. Every failure is a
//! typed [`DecodeError`]; nothing here panics or allocates beyond the input's length, and
//! input longer than the limit is refused unread: [`DATAGRAM_BYTES_MAX`] for datagrams
//! ([`encode`], [`decode`]), [`STREAM_BYTES_MAX`] for requests and replies on reliable
//! streams ([`encode_stream`], [`decode_stream`]: gossip rows and fence checks).

use serde::{Deserialize, Serialize};

use crate::ids::{ClusterId, Incarnation, NodeId, Seq};

/// The format version this build writes and the only one it reads.
///
/// Version 2 added [`Terms`] to every heartbeat (the sender's lease, drift bound and
/// quorum definition). A node refuses every message of another version, counted as
/// `unknown_version`: nodes of the two formats never count each other's votes.
pub const WIRE_VERSION: u8 = 2;

/// The largest message quorate sends or accepts, in bytes. 1200 is the payload QUIC
/// guarantees on any path (RFC 9000, section 14), so a heartbeat never needs fragmenting.
pub const DATAGRAM_BYTES_MAX: usize = 1200;

/// The largest request or reply on a reliable stream, in bytes.
pub const STREAM_BYTES_MAX: usize = 64 * 1024;

/// Everything one node says to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// The periodic liveness beacon, also carrying the ack that grants leases.
    Heartbeat(Heartbeat),
    /// The sender leaves gracefully: its gate is already fenced for good in this life.
    Leave(Leave),
    /// Gossip of reachability rows (scuttlebutt): a digest, rows the peer lacks, or both.
    Gossip(Gossip),
    /// "Do you consider `peer` down now?": one question of a fence check.
    FenceQuery(FenceQuery),
    /// The answer to a [`FenceQuery`].
    FenceAnswer(FenceAnswer),
    /// "My check is over; release the hold you promised for it."
    FenceRelease(FenceQuery),
    /// "This is the quorum definition I run": sent as a request when a heartbeat shows a
    /// definition digest the receiver does not know; the reply is the receiver's own.
    Definition(Definition),
    /// A versioned definition in full, with its members' addresses: the reply to a
    /// [`Message::Definition`] request from a node whose definition changed while the
    /// cluster ran (version above 0). See [`crate::roster`].
    Roster(crate::roster::RosterMessage),
}

/// A node's quorum definition in full (its digest travels in every heartbeat's [`Terms`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// The sender. Must match the node the transport authenticated.
    pub from: NodeId,
    /// The sender's current life.
    pub incarnation: Incarnation,
    /// Every member and its votes, in id order.
    pub members: Vec<(NodeId, u32)>,
    /// The resolved tie-breaker; `None` when an exact half never wins.
    pub tie_breaker: Option<NodeId>,
}

/// One gossip exchange. A request carries the sender's digest (and maybe rows); the reply
/// carries the rows newer than that digest and the replier's digest; a final push carries
/// the rows the replier lacked and no digest. An empty message is a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gossip {
    /// The sender. Must match the node the transport authenticated.
    pub from: NodeId,
    /// The sender's current life.
    pub incarnation: Incarnation,
    /// Versions of the rows the sender holds; empty when it wants nothing back.
    pub digest: Vec<RowVersion>,
    /// Rows (or their changes) the sender believes the receiver lacks.
    pub rows: Vec<RowDelta>,
}

/// A member's view of the cluster as gossip carries it: every entry, or only the entries
/// that changed after `base`.
///
/// The owner raises `version` every gossip round (it doubles as the owner's heartbeat
/// counter: a row whose version keeps rising comes from a live owner) and stamps each
/// entry with the version at which it last changed, so a peer that holds version `v`
/// needs only the entries stamped after `v`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowDelta {
    /// The node that owns (and alone writes) the row.
    pub owner: NodeId,
    /// The owner's life when it wrote this version.
    pub incarnation: Incarnation,
    /// The row's version.
    pub version: u64,
    /// `None`: every entry of the row follows. `Some(v)`: only the entries that changed
    /// after version `v` of the same life follow.
    pub base: Option<u64>,
    /// The entries.
    pub entries: Vec<RowEntry>,
}

/// One cell of a row: what the row's owner thinks of `peer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowEntry {
    /// The member this entry is about.
    pub peer: NodeId,
    /// Whether the owner hears it.
    pub view: View,
    /// The peer's incarnation as the owner last heard it; `None` if never heard.
    pub incarnation: Option<Incarnation>,
    /// The row version at which this entry last changed.
    pub changed: u64,
}

/// What a row's owner thinks of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum View {
    /// Never heard since the owner started.
    Unknown,
    /// Heard recently (the owner's detector says reachable).
    Heard,
    /// Heartbeats are late (suspect), not yet down.
    Suspect,
    /// Down: not heard for at least the down floor.
    Down,
    /// Left gracefully.
    Left,
}

impl View {
    /// Whether the owner still hears the peer (reachable or only suspect).
    pub fn hears(self) -> bool {
        matches!(self, View::Heard | View::Suspect)
    }
}

/// One question of a fence check: "do you consider `peer` down now?". The receiver
/// answers with a [`FenceAnswer`]; if it says yes it also promises not to acknowledge
/// `peer`'s heartbeats for `hold_us` of its own clock (see `docs/guarantees.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceQuery {
    /// The asking node. Must match the node the transport authenticated.
    pub from: NodeId,
    /// The asker's current life.
    pub incarnation: Incarnation,
    /// The asker's number for this check, echoed in the answer.
    pub check: u64,
    /// The member the question is about.
    pub peer: NodeId,
}

/// The answer to a [`FenceQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceAnswer {
    /// The answering node. Must match the node the transport authenticated.
    pub from: NodeId,
    /// The answerer's current life.
    pub incarnation: Incarnation,
    /// The check this answers.
    pub check: u64,
    /// The member the question was about.
    pub peer: NodeId,
    /// `Some(d)`: the answerer has considered `peer` down for `d` microseconds of its own
    /// clock. `None`: it does not consider `peer` down.
    pub down_for_us: Option<u64>,
    /// With a yes: for how long (microseconds of the answerer's clock, from when it
    /// answered) the answerer withholds acks from `peer`. Zero with a no.
    pub hold_us: u64,
}

/// "I am leaving; my gate is fenced and this life will never write again."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    /// The sender. Must match the node the transport authenticated.
    pub from: NodeId,
    /// The life that ends.
    pub incarnation: Incarnation,
}

/// A heartbeat from `from` to one peer.
///
/// Heartbeats are numbered per link (sender, receiver) and per sender incarnation. The
/// receiver answers with [`Ack`]s in its own heartbeats; the sender turns an ack into a
/// lease on the receiver's vote (see `quorate-gate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sender. Must match the node the transport authenticated.
    pub from: NodeId,
    /// The sender's current life.
    pub incarnation: Incarnation,
    /// This heartbeat's number on the link; strictly increasing within an incarnation.
    pub seq: Seq,
    /// The highest heartbeat the sender has received from the destination, naming the
    /// destination's incarnation. `None` until the sender has heard the destination.
    pub ack: Option<Ack>,
    /// What the receiver must honour before it acks: the sender's lease and drift bound,
    /// and the quorum definition it counts votes under.
    pub terms: Terms,
    /// Versions of the gossip rows the sender holds (scuttlebutt digest). Empty until
    /// gossip is enabled.
    pub digest: Vec<RowVersion>,
}

/// The rules a heartbeat's sender lives by, which its receiver needs before it may grant
/// the sender a lease: every rule that relates two nodes' configurations travels here, so
/// nodes with different files still keep their promises to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Terms {
    /// The sender's lease, in microseconds: an ack from the receiver holds the receiver's
    /// vote for this long (the sender's clock) from when the acked heartbeat was sent.
    pub lease_us: u32,
    /// The sender's clock drift bound, in parts per million.
    pub drift_ppm: u32,
    /// Digest of the sender's quorum definition (cluster, members, votes, tie-breaker).
    pub definition: DefinitionDigest,
}

/// A 64-bit digest of a quorum definition, fixed 8 bytes on the wire. Two nodes with
/// equal digests count votes the same way.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct DefinitionDigest(pub [u8; 8]);

impl core::fmt::Debug for DefinitionDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "definition {self}")
    }
}

impl core::fmt::Display for DefinitionDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// "I have received your heartbeat `seq` of your life `incarnation`."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The incarnation of the node being acknowledged (the heartbeat's destination).
    pub incarnation: Incarnation,
    /// The highest sequence number received from it.
    pub seq: Seq,
}

/// One entry of a gossip digest: the owner of a row and the version the sender holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowVersion {
    /// The node that owns (and alone writes) the row.
    pub owner: NodeId,
    /// The owner's life the row belongs to.
    pub incarnation: Incarnation,
    /// The row's version counter.
    pub version: u64,
}

/// Why bytes were not accepted as a message. Each variant is counted separately by the
/// node, so an operator can tell an attack from a version skew.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the message did.
    #[error("truncated message ({len} bytes)")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The input is longer than any message quorate sends.
    #[error("oversized message: {len} bytes, at most {max} accepted")]
    Oversized {
        /// Bytes received.
        len: usize,
        /// The limit, [`DATAGRAM_BYTES_MAX`].
        max: usize,
    },
    /// The version byte names a format this build does not read.
    #[error("unknown wire version {version}, this build reads version {WIRE_VERSION}")]
    UnknownVersion {
        /// The version byte found.
        version: u8,
    },
    /// The message belongs to another cluster.
    #[error("message for {found:?}, this node is in {expected:?}")]
    ForeignCluster {
        /// The cluster id in the message.
        found: ClusterId,
        /// This node's cluster id.
        expected: ClusterId,
    },
    /// The bytes do not form a valid message.
    #[error("malformed message")]
    Malformed,
    /// A valid message followed by extra bytes; refused whole so that two encoders can
    /// never disagree on what a datagram said.
    #[error("{extra} bytes after the end of the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded message would exceed [`DATAGRAM_BYTES_MAX`].
    #[error("message would take {len} bytes, at most {max} allowed")]
    Oversized {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The serializer failed (cannot happen for quorate's own types).
    #[error("cannot encode message")]
    Serialize,
}

/// Encodes `message` for `cluster` into a fresh buffer, to travel as a datagram.
pub fn encode(cluster: ClusterId, message: &Message) -> Result<Vec<u8>, EncodeError> {
    encode_within(cluster, message, DATAGRAM_BYTES_MAX)
}

/// Encodes `message` for `cluster`, to travel on a reliable stream (up to
/// [`STREAM_BYTES_MAX`]).
pub fn encode_stream(cluster: ClusterId, message: &Message) -> Result<Vec<u8>, EncodeError> {
    encode_within(cluster, message, STREAM_BYTES_MAX)
}

fn encode_within(cluster: ClusterId, message: &Message, max: usize) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    out.push(WIRE_VERSION);
    let out = postcard::to_extend(&(cluster, message), out).map_err(|_| EncodeError::Serialize)?;
    if out.len() > max {
        return Err(EncodeError::Oversized { len: out.len(), max });
    }
    Ok(out)
}

/// Decodes one datagram addressed to cluster `expected`.
///
/// Checks, in order: size limits, version byte, cluster id, body, trailing bytes.
pub fn decode(bytes: &[u8], expected: ClusterId) -> Result<Message, DecodeError> {
    decode_within(bytes, expected, DATAGRAM_BYTES_MAX)
}

/// Decodes one request or reply from a reliable stream (up to [`STREAM_BYTES_MAX`]),
/// with the same checks as [`decode`].
pub fn decode_stream(bytes: &[u8], expected: ClusterId) -> Result<Message, DecodeError> {
    decode_within(bytes, expected, STREAM_BYTES_MAX)
}

fn decode_within(bytes: &[u8], expected: ClusterId, max: usize) -> Result<Message, DecodeError> {
    let len = bytes.len();
    if len > max {
        return Err(DecodeError::Oversized { len, max });
    }
    let (&version, rest) = bytes.split_first().ok_or(DecodeError::Truncated { len })?;
    if version != WIRE_VERSION {
        return Err(DecodeError::UnknownVersion { version });
    }
    let (found, rest) = postcard::take_from_bytes::<ClusterId>(rest).map_err(|e| map_err(e, len))?;
    if found != expected {
        return Err(DecodeError::ForeignCluster { found, expected });
    }
    let (message, rest) = postcard::take_from_bytes::<Message>(rest).map_err(|e| map_err(e, len))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { extra: rest.len() });
    }
    Ok(message)
}

fn map_err(e: postcard::Error, len: usize) -> DecodeError {
    match e {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated { len },
        _ => DecodeError::Malformed,
    }
}

#[cfg(test)]
mod tests;
