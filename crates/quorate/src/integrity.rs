//! What the files of the data directory share: a CRC-32 over their contents, the ways a
//! file can be found damaged ([`Corruption`]), and the frame of the files whose length
//! varies ([`frame`], [`seal`], [`unframe`]: magic, format version, length, body, CRC-32)
//! with a bounds-checked [`Reader`] over the body. The state file (`state_file`), the peers
//! file (`peers_file`) and the definition file (`roster_file`) define their layouts on top.

use std::ops::RangeInclusive;

/// How a file of the data directory is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// Too short or too long: typically truncated by a crash of the file system or a copy.
    #[error("it is {len} bytes long, a version-1 state file has {expected} (truncated or appended to)")]
    Length {
        /// Bytes read (at most the file's read bound).
        len: usize,
        /// The length the format (or the file's own header) gives.
        expected: usize,
    },
    /// The first bytes are not the file's magic: another program's file, or damage.
    #[error("it does not start with the quorate state header (another program's file, or damaged)")]
    NotAStateFile,
    /// A format version this build does not know.
    #[error(
        "it has format version {version}, this build reads version {readable} \
         (written by a newer quorate, or damaged)"
    )]
    UnknownVersion {
        /// The version in the file.
        version: u32,
        /// The version this build reads.
        readable: u32,
    },
    /// The bytes changed after they were written.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): bytes changed after it was written")]
    Checksum {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the file's contents.
        computed: u32,
    },
    /// Intact (the checksum matches) but what it holds is not valid: a definition without
    /// members, with a member twice, an address that is not text. Written by a faulty build.
    #[error("it holds a definition that is not valid (written by a faulty build?)")]
    Invalid,
}

/// CRC-32 (IEEE 802.3 polynomial, reflected, as zlib and PNG use it), bit by bit: the files
/// are small (the state file is 40 bytes), a table would be larger than the data.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Magic (8 bytes), format version (4), length of the whole file (4).
pub(crate) const FRAME_HEADER_BYTES: usize = 16;

/// A count or length as the files store it. Every one is bounded far below `u32::MAX` by
/// its file's limits; a larger one would be saturated, never wrapped.
pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The start of a framed file: `magic`, format `version`, and a length that [`seal`] fills.
pub(crate) fn frame(magic: &[u8; 8], version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}

/// Ends a framed file begun with [`frame`]: fills in its length and appends the CRC-32 of
/// everything before it.
pub(crate) fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let len = count(out.len() + 4);
    out[12..16].copy_from_slice(&len.to_le_bytes());
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a framed file's magic, format version (one of `readable`), length and CRC-32;
/// returns the version and a reader over the body.
pub(crate) fn unframe<'a>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    readable: RangeInclusive<u32>,
) -> Result<(u32, Reader<'a>), Corruption> {
    if bytes.len() < FRAME_HEADER_BYTES + 4 {
        return Err(Corruption::Length { len: bytes.len(), expected: FRAME_HEADER_BYTES + 4 });
    }
    if bytes[0..8] != *magic {
        return Err(Corruption::NotAStateFile);
    }
    let mut r = Reader { bytes, at: 8 };
    let version = r.u32()?;
    if !readable.contains(&version) {
        return Err(Corruption::UnknownVersion { version, readable: *readable.end() });
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
    Ok((version, Reader { bytes: &bytes[..body], at: FRAME_HEADER_BYTES }))
}

/// A cursor over a framed file's bytes (the CRC excluded); running out is a length error.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// The next `n` bytes.
    pub(crate) fn slice(&mut self, n: usize) -> Result<&[u8], Corruption> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(Corruption::Length { len: self.bytes.len() + 4, expected: self.at + n + 4 });
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Corruption> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Corruption> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Corruption> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Corruption> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Corruption> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count of at most `max`; a larger one is a length error.
    pub(crate) fn bounded(&mut self, max: usize) -> Result<usize, Corruption> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Corruption::Length { len: self.bytes.len() + 4, expected: 0 });
        }
        Ok(n)
    }

    /// The body read to its end: bytes left over are a length error.
    pub(crate) fn finish(&self) -> Result<(), Corruption> {
        if self.at != self.bytes.len() {
            return Err(Corruption::Length { len: self.bytes.len() + 4, expected: self.at + 4 });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
