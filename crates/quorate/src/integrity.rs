//! What the files of the data directory share: a CRC-32 over their contents, and the ways a
//! file can be found damaged ([`Corruption`]). The state file (`state_file`) and the peers
//! file (`peers_file`) each define their own layout on top.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
