//! Identifiers that travel on the wire: cluster, node, incarnation, sequence.

use core::fmt;
use serde::{Deserialize, Serialize};

/// A member of the cluster, as named in the configuration and in its certificate.
///
/// Small ids encode in one byte on the wire (postcard varints), so prefer 1, 2, 3...
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.0)
    }
}

/// Which cluster a message belongs to; messages from any other cluster are dropped.
///
/// Encoded as 8 fixed bytes so its size on the wire does not depend on the value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClusterId(#[serde(with = "fixed_u64")] pub u64);

impl ClusterId {
    /// A cluster id derived from a human name with 64-bit FNV-1a, stable across versions
    /// and platforms, so every node configured with the same name agrees without
    /// coordination.
    pub fn from_name(name: &str) -> Self {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let hash = name.bytes().fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
        ClusterId(hash)
    }
}

impl fmt::Debug for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cluster {:016x}", self.0)
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One life of a node: it changes on every restart, and a larger value is a later life.
///
/// The runtime takes `max(wall-clock milliseconds at start, previous incarnation + 1)`,
/// the previous one kept in the node's data directory, so it grows across restarts even
/// when the wall clock went back. Acks name the incarnation they acknowledge, so an ack sent
/// to a previous life never extends a lease of the current one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Incarnation(pub u64);

impl fmt::Debug for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inc {}", self.0)
    }
}

/// Per-link heartbeat sequence number; the first heartbeat of a life on a link is 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Seq(pub u64);

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

mod fixed_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&v.to_le_bytes(), s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        <[u8; 8]>::deserialize(d).map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_from_name_is_stable_and_distinct() {
        // Reference value of 64-bit FNV-1a for "a"; pins the hash across releases.
        assert_eq!(ClusterId::from_name("a").0, 0xaf63_dc4c_8601_ec8c);
        assert_ne!(ClusterId::from_name("prod"), ClusterId::from_name("prod2"));
    }

    #[test]
    fn cluster_id_encodes_in_eight_bytes() {
        let bytes = postcard::to_allocvec(&ClusterId(u64::MAX)).unwrap_or_default();
        assert_eq!(bytes.len(), 8);
        let small = postcard::to_allocvec(&ClusterId(1)).unwrap_or_default();
        assert_eq!(small.len(), 8);
    }
}
