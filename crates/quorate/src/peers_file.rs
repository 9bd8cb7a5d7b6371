//! The peers file in the data directory: the quorum definition each peer was last heard
//! running (`quorate_core::PeerDefinitions`), so that a restarted node knows at once that a
//! rolling change of the member list is under way.
//!
//! # Format version 1
//!
//! Little-endian, all counts bounded:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `qrpeers\n` |
//! | 4 | format version, `1` |
//! | 4 | length of the whole file in bytes |
//! | 4 | peer count `p` (at most [`PEERS_MAX`]) |
//! | `p` x 16 | peer id (8), definition digest (8) |
//! | 4 | definition count `d` (at most [`PEERS_MAX`]) |
//! | per definition | member count `m` (4, at most [`MEMBERS_MAX`]), `m` x (id 8, votes 4), tie-breaker flag (1) and id (8) |
//! | 4 | CRC-32 of everything before it |
//!
//! A damaged file stops the node like a damaged state file: forgetting it could let a
//! restarted node count a quorum that another definition in use does not.

use quorate_core::PeerDefinitions;
use quorate_proto::{DefinitionDigest, NodeId};

use crate::integrity::{crc32, Corruption};

/// The peers file inside the data directory.
pub const PEERS_FILE: &str = "quorate.peers";
/// Its temporary name while it is replaced.
pub const PEERS_TMP_FILE: &str = "quorate.peers.tmp";
/// Format version this build writes and reads.
pub const PEERS_FORMAT_VERSION: u32 = 1;
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
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&PEERS_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // length, filled in below
    let peers = &defs.peers[..defs.peers.len().min(PEERS_MAX)];
    out.extend_from_slice(&count(peers.len()).to_le_bytes());
    for (id, digest) in peers {
        out.extend_from_slice(&id.0.to_le_bytes());
        out.extend_from_slice(&digest.0);
    }
    let tables = &defs.tables[..defs.tables.len().min(PEERS_MAX)];
    out.extend_from_slice(&count(tables.len()).to_le_bytes());
    for (members, tie_breaker) in tables {
        let members = &members[..members.len().min(MEMBERS_MAX)];
        out.extend_from_slice(&count(members.len()).to_le_bytes());
        for (id, votes) in members {
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&votes.to_le_bytes());
        }
        out.push(u8::from(tie_breaker.is_some()));
        out.extend_from_slice(&tie_breaker.map_or(0, |t| t.0).to_le_bytes());
    }
    let len = count(out.len() + 4);
    out[12..16].copy_from_slice(&len.to_le_bytes());
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a peers file, refusing anything but an intact version-1 file.
pub fn decode(bytes: &[u8]) -> Result<PeerDefinitions, Corruption> {
    if bytes.len() < 20 {
        return Err(Corruption::Length { len: bytes.len(), expected: 20 });
    }
    if bytes[0..8] != MAGIC {
        return Err(Corruption::NotAStateFile);
    }
    let mut r = Reader { bytes, at: 8 };
    let version = r.u32()?;
    if version != PEERS_FORMAT_VERSION {
        return Err(Corruption::UnknownVersion { version, readable: PEERS_FORMAT_VERSION });
    }
    let len = r.u32()? as usize;
    if len != bytes.len() {
        return Err(Corruption::Length { len: bytes.len(), expected: len });
    }
    let body = bytes.len() - 4;
    let stored = u32::from_le_bytes([bytes[body], bytes[body + 1], bytes[body + 2], bytes[body + 3]]);
    let computed = crc32(&bytes[..body]);
    if stored != computed {
        return Err(Corruption::Checksum { stored, computed });
    }
    let mut r = Reader { bytes: &bytes[..body], at: 16 };
    let peers_len = r.bounded(PEERS_MAX)?;
    let mut peers = Vec::with_capacity(peers_len);
    for _ in 0..peers_len {
        let id = NodeId(r.u64()?);
        peers.push((id, DefinitionDigest(r.array()?)));
    }
    let tables_len = r.bounded(PEERS_MAX)?;
    let mut tables = Vec::with_capacity(tables_len);
    for _ in 0..tables_len {
        let members_len = r.bounded(MEMBERS_MAX)?;
        let mut members = Vec::with_capacity(members_len);
        for _ in 0..members_len {
            let id = NodeId(r.u64()?);
            members.push((id, r.u32()?));
        }
        let has_tie_breaker = r.u8()? == 1;
        let tie_breaker = r.u64()?;
        tables.push((members, has_tie_breaker.then_some(NodeId(tie_breaker))));
    }
    if r.at != body {
        return Err(Corruption::Length { len: bytes.len(), expected: r.at + 4 });
    }
    Ok(PeerDefinitions { peers, tables })
}

fn count(n: usize) -> u32 {
    // Every count is bounded by PEERS_MAX or MEMBERS_MAX, and a file by PEERS_READ_MAX.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A cursor over the file's bytes; running out is a length error.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Corruption> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(Corruption::Length { len: self.bytes.len() + 4, expected: self.at + N + 4 });
        };
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(out)
    }

    fn array(&mut self) -> Result<[u8; 8], Corruption> {
        self.take::<8>()
    }

    fn u8(&mut self) -> Result<u8, Corruption> {
        Ok(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Corruption> {
        Ok(u32::from_le_bytes(self.take::<4>()?))
    }

    fn u64(&mut self) -> Result<u64, Corruption> {
        Ok(u64::from_le_bytes(self.take::<8>()?))
    }

    fn bounded(&mut self, max: usize) -> Result<usize, Corruption> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Corruption::Length { len: self.bytes.len() + 4, expected: 0 });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> PeerDefinitions {
        PeerDefinitions {
            peers: vec![(NodeId(2), DefinitionDigest([1; 8])), (NodeId(3), DefinitionDigest([9; 8]))],
            tables: vec![
                ((1..=3).map(|i| (NodeId(i), 1)).collect(), Some(NodeId(1))),
                ((1..=5).map(|i| (NodeId(i), 1)).collect(), None),
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
