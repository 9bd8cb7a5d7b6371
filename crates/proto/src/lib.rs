//! The vocabulary quorate nodes share: ids, time, the wire format, heartbeat bookkeeping
//! and quorum definitions.
//!
//! This crate is the bottom of quorate's dependency graph and holds no protocol decisions:
//!
//! * [`wire`]: the versioned envelope and the messages nodes exchange (serde + postcard),
//!   decoded with a typed error for every way bytes can be wrong.
//! * [`sequencing`]: per-link heartbeat numbering, the ring of send times that turns an ack
//!   into a lease start, and replay/duplicate refusal on receipt.
//! * [`time`]: [`Instant`], a reading of a node's monotonic clock in nanoseconds.
//! * [`ids`]: [`NodeId`], [`ClusterId`], [`Incarnation`], [`Seq`].
//! * [`valid`]: [`Valid<T>`](Valid), settings checked once against their [`Rules`].
//!
//! * [`quorum`]: [`VoteTable`], who votes, what makes a quorum, and the digest that names a
//!   definition on the wire.
//! * [`roster`]: [`Roster`], one version of the definition with its members' addresses,
//!   as it changes while the cluster runs.
//! * [`succession`]: one [`Change`] at a time, and the exact check a node runs before it
//!   adopts a new definition while the cluster runs ([`check_successor`]: every quorum of
//!   the new one meets every quorum of the old), with a safe route when a change is refused.
//!
//! Everything here is sans-IO: no sockets, no clock reads. The QUIC transport that carries
//! these bytes is the `quorate-transport` crate; nothing here depends on it.

pub mod ids;
pub mod quorum;
pub mod roster;
pub mod sequencing;
pub mod succession;
pub mod time;
pub mod valid;
pub mod wire;

pub use ids::{ClusterId, Incarnation, NodeId, Seq};
pub use quorum::{DefinitionParts, MembershipError, TieBreaker, VoteTable};
pub use roster::{
    check_timing_name, Roster, RosterError, RosterMessage, ADDRESS_BYTES_MAX, TIMING_NAME_BYTES_MAX,
};
pub use sequencing::{AckOutcome, Link, Received, Refused, SentLog};
pub use succession::{
    apply, check_successor, disjoint_quorums, safe_path, Change, ChangeError, SuccessionError, UnsafeChange,
    Witness,
};
pub use time::Instant;
pub use valid::{FieldError, Rules, Valid};
pub use wire::{
    decode, decode_stream, encode, encode_stream, Ack, DecodeError, Definition, DefinitionDigest,
    EncodeError, FenceAnswer, FenceQuery, Gossip, Heartbeat, Leave, Message, RowDelta, RowEntry, RowVersion,
    Terms, View, DATAGRAM_BYTES_MAX, STREAM_BYTES_MAX, WIRE_VERSION,
};
