//! The definition file in the data directory (`quorate.definition`): the latest quorum
//! definition this node ran or is about to run ([`Roster`]: version, members with votes and
//! addresses, tie-breaker), so that a restarted node starts from it rather than from its
//! configuration file (version 0) and never goes back to a lower version.
//!
//! The runtime writes it before it adopts a definition (and so before it announces it in a
//! heartbeat): a definition some peer runs, or one an operator's change produced on this
//! node. A node that finds itself not listed (it was removed) refuses to start.
//!
//! # Format version 2
//!
//! Little-endian, all counts and lengths bounded:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `qrdefin\n` |
//! | 4 | format version, `2` |
//! | 4 | length of the whole file in bytes |
//! | 8 | definition version |
//! | 4 | member count `m` (1 to [`MEMBERS_MAX`]) |
//! | per member | id (8), votes (4), address length `a` (2, at most `ADDRESS_BYTES_MAX`; 0: none), `a` bytes of UTF-8 |
//! | 1 + 8 | tie-breaker flag and id |
//! | 1 | parent flag: 1 when the definition names the version it follows (`Roster::parent`) |
//! | if 1 | member count `p` (4, 1 to [`MEMBERS_MAX`]), `p` x (id 8, votes 4), tie-breaker flag and id (1 + 8) |
//! | 1 + `t` | timing preset name length `t` (0: none named, at most `TIMING_NAME_BYTES_MAX`), `t` bytes |
//! | 4 | CRC-32 of everything before it |
//!
//! Version 1 is the same without the parent fields, and is read with no parent.
//!
//! A damaged file stops the node like a damaged state file: starting from the file's
//! version 0 instead could make this node count votes under a definition the cluster left.

use std::collections::BTreeMap;

use quorate_proto::{check_timing_name, NodeId, Roster, VoteTable, ADDRESS_BYTES_MAX, TIMING_NAME_BYTES_MAX};

use crate::integrity::{count, frame, seal, unframe, Corruption, Reader};

/// The definition file inside the data directory.
pub const ROSTER_FILE: &str = "quorate.definition";
/// Its temporary name while it is replaced.
pub const ROSTER_TMP_FILE: &str = "quorate.definition.tmp";
/// The format version this build writes (it reads this one and version 1, which has no
/// parent and no timing preset).
pub const ROSTER_FORMAT_VERSION: u32 = 2;
/// Most members a stored definition may have.
pub const MEMBERS_MAX: usize = 4096;
/// Reading stops here; a larger file is corrupt anyway (4096 members with the longest
/// addresses take about 1.1 MiB).
pub const ROSTER_READ_MAX: u64 = 2 << 20;

const MAGIC: [u8; 8] = *b"qrdefin\n";

/// The encoding of `roster` (see the module docs). Members beyond [`MEMBERS_MAX`] and
/// addresses longer than `ADDRESS_BYTES_MAX` cannot occur (the core refuses such
/// definitions); they would be cut at the bound.
pub fn encode(roster: &Roster) -> Vec<u8> {
    let mut out = frame(&MAGIC, ROSTER_FORMAT_VERSION);
    out.extend_from_slice(&roster.version.to_le_bytes());
    let members: Vec<(NodeId, u32)> = roster.votes.members().take(MEMBERS_MAX).collect();
    out.extend_from_slice(&count(members.len()).to_le_bytes());
    for (id, votes) in members {
        out.extend_from_slice(&id.0.to_le_bytes());
        out.extend_from_slice(&votes.to_le_bytes());
        let addr = roster.address(id).unwrap_or_default().as_bytes();
        let addr = &addr[..addr.len().min(ADDRESS_BYTES_MAX)];
        // ADDRESS_BYTES_MAX is 261: the length fits two bytes.
        out.extend_from_slice(&u16::try_from(addr.len()).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(addr);
    }
    let tie_breaker = roster.votes.tie_breaker();
    out.push(u8::from(tie_breaker.is_some()));
    out.extend_from_slice(&tie_breaker.map_or(0, |t| t.0).to_le_bytes());
    out.push(u8::from(roster.parent.is_some()));
    if let Some(parent) = &roster.parent {
        let members: Vec<(NodeId, u32)> = parent.members().take(MEMBERS_MAX).collect();
        out.extend_from_slice(&count(members.len()).to_le_bytes());
        for (id, votes) in members {
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&votes.to_le_bytes());
        }
        let tie_breaker = parent.tie_breaker();
        out.push(u8::from(tie_breaker.is_some()));
        out.extend_from_slice(&tie_breaker.map_or(0, |t| t.0).to_le_bytes());
    }
    let timing = roster.timing.as_deref().unwrap_or_default().as_bytes();
    let timing = &timing[..timing.len().min(TIMING_NAME_BYTES_MAX)];
    // TIMING_NAME_BYTES_MAX is 32: the length fits a byte.
    out.push(u8::try_from(timing.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(timing);
    seal(out)
}

/// Decodes a definition file, refusing anything but an intact version-1 or version-2 file
/// that holds a valid definition.
pub fn decode(bytes: &[u8]) -> Result<Roster, Corruption> {
    let (format, mut r) = unframe(bytes, &MAGIC, 1..=ROSTER_FORMAT_VERSION)?;
    let version = r.u64()?;
    let members_len = r.u32()? as usize;
    if members_len == 0 || members_len > MEMBERS_MAX {
        return Err(Corruption::Invalid);
    }
    let mut members = Vec::with_capacity(members_len);
    let mut addresses = BTreeMap::new();
    for _ in 0..members_len {
        let id = NodeId(r.u64()?);
        members.push((id, r.u32()?));
        let addr_len = usize::from(r.u16()?);
        if addr_len > ADDRESS_BYTES_MAX {
            return Err(Corruption::Invalid);
        }
        let addr = r.slice(addr_len)?;
        let addr = std::str::from_utf8(addr).map_err(|_| Corruption::Invalid)?;
        if !addr.is_empty() {
            addresses.insert(id, addr.to_owned());
        }
    }
    let has_tie_breaker = r.u8()? == 1;
    let tie_breaker = NodeId(r.u64()?);
    let votes = VoteTable::from_parts(&members, has_tie_breaker.then_some(tie_breaker))
        .map_err(|_| Corruption::Invalid)?;
    let (parent, timing) =
        if format >= 2 { (read_parent(&mut r)?, read_timing(&mut r)?) } else { (None, None) };
    r.finish()?;
    Ok(Roster { version, votes, addresses, parent, timing })
}

/// The parent section of format 2 (see the module docs).
fn read_parent(r: &mut Reader<'_>) -> Result<Option<VoteTable>, Corruption> {
    if r.u8()? != 1 {
        return Ok(None);
    }
    let len = r.u32()? as usize;
    if len == 0 || len > MEMBERS_MAX {
        return Err(Corruption::Invalid);
    }
    let mut members = Vec::with_capacity(len);
    for _ in 0..len {
        let id = NodeId(r.u64()?);
        members.push((id, r.u32()?));
    }
    let has_tie_breaker = r.u8()? == 1;
    let tie_breaker = NodeId(r.u64()?);
    let table = VoteTable::from_parts(&members, has_tie_breaker.then_some(tie_breaker));
    Ok(Some(table.map_err(|_| Corruption::Invalid)?))
}

/// The timing section of format 2 (see the module docs).
fn read_timing(r: &mut Reader<'_>) -> Result<Option<String>, Corruption> {
    let len = usize::from(r.u8()?);
    let name = std::str::from_utf8(r.slice(len)?).map_err(|_| Corruption::Invalid)?;
    if len > 0 && check_timing_name(name).is_err() {
        return Err(Corruption::Invalid);
    }
    Ok((len > 0).then(|| name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::FRAME_HEADER_BYTES;
    use proptest::prelude::*;
    use quorate_proto::{Change, TieBreaker};

    fn sample() -> Roster {
        let votes = VoteTable::new((1..=3).map(|i| (NodeId(i), 1)), TieBreaker::LowestId)
            .unwrap_or_else(|e| panic!("{e}"));
        let addresses = (1..=3).map(|i| (NodeId(i), format!("quorate-{i}.quorate:7001"))).collect();
        let r = Roster::initial(votes, addresses);
        let r = r.next(&Change::SetTieBreaker(TieBreaker::None), None).unwrap_or_else(|e| panic!("{e}"));
        r.next(&Change::AddMember { id: NodeId(9), votes: 0 }, None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn round_trips_with_addresses_a_member_without_one_and_the_tie_breaker() -> Result<(), Corruption> {
        let r = sample();
        assert_eq!((r.version, r.address(NodeId(9))), (2, None));
        assert_eq!(decode(&encode(&r))?, r);
        let with_tie = Roster {
            votes: VoteTable::new((1..=4).map(|i| (NodeId(i), i as u32)), TieBreaker::Node(NodeId(3)))
                .unwrap_or_else(|e| panic!("{e}")),
            ..r
        };
        assert_eq!(decode(&encode(&with_tie))?, with_tie);
        Ok(())
    }

    #[test]
    fn the_parent_and_timing_round_trip_and_a_version_1_file_reads_without_them() -> Result<(), Corruption> {
        let wan = sample().with_timing("wan").unwrap_or_else(|e| panic!("{e}"));
        assert!(wan.parent.is_some());
        assert_eq!(decode(&encode(&wan))?, wan);
        // Format 1: the same bytes without the parent flag and the timing field (both 0).
        let plain = Roster { parent: None, timing: None, ..sample() };
        let mut v1 = encode(&plain);
        v1.truncate(v1.len() - 6); // the CRC, the parent flag, the timing length
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(decode(&seal(v1))?, plain);
        Ok(())
    }

    #[test]
    fn truncation_appended_bytes_and_foreign_files_are_refused() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut foreign = bytes.clone();
        foreign[0] = b'Q';
        assert_eq!(decode(&foreign), Err(Corruption::NotAStateFile));
        let mut future = bytes;
        future[8] = 3;
        assert_eq!(decode(&future), Err(Corruption::UnknownVersion { version: 3, readable: 2 }));
    }

    #[test]
    fn an_intact_file_with_an_invalid_definition_is_refused() {
        // Two members with the same id, checksummed as if intact.
        let mut bytes = encode(&sample());
        let second = FRAME_HEADER_BYTES + 12;
        let first_len = 8 + 4 + 2 + "quorate-1.quorate:7001".len();
        bytes[second + first_len..second + first_len + 8].copy_from_slice(&1u64.to_le_bytes());
        bytes.truncate(bytes.len() - 4);
        assert_eq!(decode(&seal(bytes)), Err(Corruption::Invalid));
    }

    proptest! {
        #[test]
        fn any_single_bit_flip_is_detected(bit in 0usize..(8 * 400)) {
            let mut bytes = encode(&sample());
            let bit = bit % (8 * bytes.len());
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&bytes).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_header_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..300)
        ) {
            let mut bytes = frame(&MAGIC, ROSTER_FORMAT_VERSION);
            bytes.extend_from_slice(&tail);
            let _ = decode(&seal(bytes));
        }
    }
}
