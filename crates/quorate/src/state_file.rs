//! The state file of the data directory (`quorate.state`): what a node keeps across
//! restarts ([`Durable`]), format version 1.
//!
//! 44 bytes, little-endian:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 8 | magic `qrstate\n` |
//! | 8 | 4 | format version, `1` |
//! | 12 | 4 | length of the whole file in bytes, `44` |
//! | 16 | 8 | `incarnation` of the life that wrote it |
//! | 24 | 8 | `ack_hold` in nanoseconds |
//! | 32 | 8 | `floor` in nanoseconds |
//! | 40 | 4 | CRC-32 (IEEE 802.3, as in zlib) of bytes 0..40 |
//!
//! A file that is shorter or longer, has another magic or version, or whose checksum does
//! not match is refused with [`Corruption`] (a `DataDirError::Corrupt` when a node starts): silently starting afresh could reuse
//! epochs of an earlier life. `docs/operations.md` says how an operator recovers.

use std::time::Duration;

use crate::integrity::{crc32, Corruption};

/// The state file inside the data directory.
pub const STATE_FILE: &str = "quorate.state";
/// The temporary file a new state is written to before it is renamed over [`STATE_FILE`].
pub const STATE_TMP_FILE: &str = "quorate.state.tmp";
/// The state file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of a version-1 state file in bytes.
pub const STATE_BYTES: usize = 44;

/// The file starts with these bytes.
const MAGIC: [u8; 8] = *b"qrstate\n";
/// Magic, version and length: enough to tell what the file claims to be.
const HEADER_BYTES: usize = 16;
/// The checksum covers everything before it.
const CHECKSUMMED_BYTES: usize = STATE_BYTES - 4;

/// What a node keeps across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Durable {
    /// The incarnation of the life that stored this: the next life takes a larger one.
    pub incarnation: u64,
    /// The longest fence hold an earlier life may have promised peers (withhold acks for
    /// this long). Stored in nanoseconds, saturating at 584 years.
    pub ack_hold: Duration,
    /// The longest down floor an earlier life may have promised peers. Stored in
    /// nanoseconds, saturating at 584 years.
    pub floor: Duration,
}

impl Durable {
    /// The version-1 encoding (see the module docs).
    pub fn encode(&self) -> [u8; STATE_BYTES] {
        let mut out = [0u8; STATE_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // STATE_BYTES is 44: the cast cannot truncate.
        out[12..16].copy_from_slice(&(STATE_BYTES as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.incarnation.to_le_bytes());
        out[24..32].copy_from_slice(&nanos(self.ack_hold).to_le_bytes());
        out[32..40].copy_from_slice(&nanos(self.floor).to_le_bytes());
        let crc = crc32(&out[..CHECKSUMMED_BYTES]);
        out[CHECKSUMMED_BYTES..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a state file, refusing anything but an intact version-1 file.
    pub fn decode(bytes: &[u8]) -> Result<Durable, Corruption> {
        if bytes.len() < HEADER_BYTES {
            return Err(Corruption::Length { len: bytes.len(), expected: STATE_BYTES });
        }
        if bytes[0..8] != MAGIC {
            return Err(Corruption::NotAStateFile);
        }
        let version = u32::from_le_bytes(array(&bytes[8..12]));
        if version != FORMAT_VERSION {
            return Err(Corruption::UnknownVersion { version, readable: FORMAT_VERSION });
        }
        let stated = u32::from_le_bytes(array(&bytes[12..16]));
        if bytes.len() != STATE_BYTES || stated as usize != STATE_BYTES {
            return Err(Corruption::Length { len: bytes.len(), expected: STATE_BYTES });
        }
        let stored = u32::from_le_bytes(array(&bytes[CHECKSUMMED_BYTES..]));
        let computed = crc32(&bytes[..CHECKSUMMED_BYTES]);
        if stored != computed {
            return Err(Corruption::Checksum { stored, computed });
        }
        Ok(Durable {
            incarnation: u64::from_le_bytes(array(&bytes[16..24])),
            ack_hold: Duration::from_nanos(u64::from_le_bytes(array(&bytes[24..32]))),
            floor: Duration::from_nanos(u64::from_le_bytes(array(&bytes[32..40]))),
        })
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX`.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The first `N` bytes of `bytes` as an array; callers pass slices of exactly `N` bytes.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Durable {
        Durable {
            incarnation: 1_795_000_000_123,
            ack_hold: Duration::from_millis(400),
            floor: Duration::from_secs(3),
        }
    }

    #[test]
    fn encoding_round_trips_and_has_the_documented_layout() {
        let bytes = sample().encode();
        assert_eq!(&bytes[0..8], b"qrstate\n");
        assert_eq!(bytes[8..12], 1u32.to_le_bytes());
        assert_eq!(bytes[12..16], 44u32.to_le_bytes());
        assert_eq!(bytes[16..24], 1_795_000_000_123u64.to_le_bytes());
        assert_eq!(Durable::decode(&bytes), Ok(sample()));
    }

    #[test]
    fn a_changed_incarnation_byte_is_caught_by_the_checksum() {
        let mut bytes = sample().encode();
        bytes[16] ^= 0x01;
        assert!(
            matches!(Durable::decode(&bytes), Err(Corruption::Checksum { .. })),
            "{:?}",
            Durable::decode(&bytes)
        );
    }

    #[test]
    fn truncated_padded_foreign_and_future_files_are_refused() {
        let bytes = sample().encode();
        for len in [0, 1, 15, 16, 40, 43] {
            assert_eq!(
                Durable::decode(&bytes[..len]),
                Err(Corruption::Length { len, expected: STATE_BYTES }),
                "{len} bytes"
            );
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(Durable::decode(&longer), Err(Corruption::Length { len: 45, expected: 44 }));
        let mut foreign = bytes;
        foreign[0] = b'Q';
        assert_eq!(Durable::decode(&foreign), Err(Corruption::NotAStateFile));
        let mut future = bytes;
        future[8] = 2;
        assert_eq!(Durable::decode(&future), Err(Corruption::UnknownVersion { version: 2, readable: 1 }));
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics_and_accepts_only_intact_files(
            bytes in proptest::collection::vec(any::<u8>(), 0..100)
        ) {
            if let Ok(d) = Durable::decode(&bytes) {
                let again = d.encode();
                prop_assert_eq!(again.as_slice(), bytes.as_slice());
            }
        }

        #[test]
        fn any_single_bit_flip_is_detected(
            incarnation in any::<u64>(), hold in any::<u64>(), floor in any::<u64>(), bit in 0usize..STATE_BYTES * 8
        ) {
            let d = Durable { incarnation, ack_hold: Duration::from_nanos(hold), floor: Duration::from_nanos(floor) };
            let mut bytes = d.encode();
            prop_assert_eq!(Durable::decode(&bytes), Ok(d));
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Durable::decode(&bytes).is_err());
        }
    }
}
