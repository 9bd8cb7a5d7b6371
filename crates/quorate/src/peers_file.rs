//! The peers file in the data directory: the quorum definition each peer was last heard
//! running (`quorate_core::PeerDefinitions`), so that a restarted node knows at once that a
//! rolling change of the member list is under way.
//!
//! # Format version 2
//!
//! Little-endian, all counts bounded:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `qrpeers\n` |
//! | 4 | format version, `2` |
//! | 4 | length of the whole file in bytes |
//! | 4 | peer count `p` (at most [`PEERS_MAX`]) |
//! | `p` x 16 | peer id (8), definition digest (8) |
//! | 4 | definition count `d` (at most [`PEERS_MAX`]) |
//! | per definition | definition version (8), member count `m` (4, at most [`MEMBERS_MAX`]), `m` x (id 8, votes 4), tie-breaker flag (1) and id (8) |
//! | 4 | CRC-32 of everything before it |
//!
//! Version 1 (written before definitions had versions) is the same without the definition
//! version, and is read as version 0 throughout.
//!
//! A damaged file stops the node like a damaged state file: forgetting it could let a
//! restarted node count a quorum that another definition in use does not.

use quorate_core::PeerDefinitions;
use quorate_proto::{DefinitionDigest, NodeId};

use crate::integrity::{count, frame, seal, unframe, Corruption};

/// The peers file inside the data directory.
pub const PEERS_FILE: &str = "quorate.peers";
/// Its temporary name while it is replaced.
pub const PEERS_TMP_FILE: &str = "quorate.peers.tmp";
/// Format version this build writes (it reads this one and version 1).
pub const PEERS_FORMAT_VERSION: u32 = 2;
/// Most peers (and most definitions) a file may list.
pub const PEERS_MAX: usize = 4096;
/// Most members a definition in the file may have.
pub const MEMBERS_MAX: usize = 4096;
/// Reading stops here; a larger file is corrupt anyway.
pub const PEERS_READ_MAX: u64 = 64 << 20;

const MAGIC: [u8; 8] = *b"qrpeers\n";

/// The encoding of `defs` (see the module docs). Lists beyond the bounds are cut at the
/// bound (the core never holds more peers than that).
pub fn encode(defs: &PeerDefinitions) -> Vec<u8> {
    let mut out = frame(&MAGIC, PEERS_FORMAT_VERSION);
    let peers = &defs.peers[..defs.peers.len().min(PEERS_MAX)];
    out.extend_from_slice(&count(peers.len()).to_le_bytes());
    for (id, digest) in peers {
        out.extend_from_slice(&id.0.to_le_bytes());
        out.extend_from_slice(&digest.0);
    }
    let tables = &defs.tables[..defs.tables.len().min(PEERS_MAX)];
    out.extend_from_slice(&count(tables.len()).to_le_bytes());
    for (version, (members, tie_breaker)) in tables {
        out.extend_from_slice(&version.to_le_bytes());
        let members = &members[..members.len().min(MEMBERS_MAX)];
        out.extend_from_slice(&count(members.len()).to_le_bytes());
        for (id, votes) in members {
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&votes.to_le_bytes());
        }
        out.push(u8::from(tie_breaker.is_some()));
        out.extend_from_slice(&tie_breaker.map_or(0, |t| t.0).to_le_bytes());
    }
    seal(out)
}

/// Decodes a peers file, refusing anything but an intact version-1 or version-2 file.
pub fn decode(bytes: &[u8]) -> Result<PeerDefinitions, Corruption> {
    let (version, mut r) = unframe(bytes, &MAGIC, 1..=PEERS_FORMAT_VERSION)?;
    let peers_len = r.bounded(PEERS_MAX)?;
    let mut peers = Vec::with_capacity(peers_len);
    for _ in 0..peers_len {
        let id = NodeId(r.u64()?);
        peers.push((id, DefinitionDigest(r.array()?)));
    }
    let tables_len = r.bounded(PEERS_MAX)?;
    let mut tables = Vec::with_capacity(tables_len);
    for _ in 0..tables_len {
        let definition_version = if version == 1 { 0 } else { r.u64()? };
        let members_len = r.bounded(MEMBERS_MAX)?;
        let mut members = Vec::with_capacity(members_len);
        for _ in 0..members_len {
            let id = NodeId(r.u64()?);
            members.push((id, r.u32()?));
        }
        let has_tie_breaker = r.u8()? == 1;
        let tie_breaker = r.u64()?;
        tables.push((definition_version, (members, has_tie_breaker.then_some(NodeId(tie_breaker)))));
    }
    r.finish()?;
    Ok(PeerDefinitions { peers, tables })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> PeerDefinitions {
        PeerDefinitions {
            peers: vec![(NodeId(2), DefinitionDigest([1; 8])), (NodeId(3), DefinitionDigest([9; 8]))],
            tables: vec![
                (0, ((1..=3).map(|i| (NodeId(i), 1)).collect(), Some(NodeId(1)))),
                (7, ((1..=5).map(|i| (NodeId(i), 1)).collect(), None)),
            ],
        }
    }

    #[test]
    fn round_trips_and_an_empty_record_too() -> Result<(), Corruption> {
        assert_eq!(decode(&encode(&sample()))?, sample());
        assert_eq!(decode(&encode(&PeerDefinitions::default()))?, PeerDefinitions::default());
        Ok(())
    }

    #[test]
    fn a_version_1_file_reads_with_every_definition_at_version_0() -> Result<(), Corruption> {
        // Version 1 had no definition version: write the sample that way by hand.
        let sample = PeerDefinitions {
            tables: sample().tables.into_iter().map(|(_, parts)| (0, parts)).collect(),
            ..sample()
        };
        let v2 = encode(&sample);
        let mut v1 = v2[..16].to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        let mut at = 16;
        let peers = u32::from_le_bytes([v2[at], v2[at + 1], v2[at + 2], v2[at + 3]]) as usize;
        let peers_end = at + 4 + 16 * peers + 4;
        v1.extend_from_slice(&v2[at..peers_end]);
        at = peers_end;
        for (_, (members, _)) in &sample.tables {
            at += 8; // the version field version 1 lacks
            let len = 4 + 12 * members.len() + 9;
            v1.extend_from_slice(&v2[at..at + len]);
            at += len;
        }
        let v1 = seal(v1);
        assert_eq!(decode(&v1)?, sample);
        Ok(())
    }

    #[test]
    fn truncation_and_appended_bytes_are_refused() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    proptest! {
        #[test]
        fn any_single_bit_flip_is_detected(bit in 0usize..(8 * 200)) {
            let mut bytes = encode(&sample());
            let bit = bit % (8 * bytes.len());
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&bytes).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
        }
    }
}
