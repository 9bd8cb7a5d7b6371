//! What a client may send, checked before anything touches the gate or the database.
//!
//! Keys come from the request path (`/kv/{key}`, percent-encoded), values from the body.
//! Both are UTF-8 text with byte limits; every refusal is an [`InputError`] that names the
//! rule, and becomes a 4xx answer with that reason.

/// Longest key, in bytes after percent-decoding.
pub const KEY_BYTES_MAX: usize = 256;
/// Largest value, in bytes.
pub const VALUE_BYTES_MAX: usize = 64 * 1024;

/// A request the service refuses to act on. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// `/kv/` with nothing after it.
    #[error("empty key")]
    EmptyKey,
    /// Longer than [`KEY_BYTES_MAX`].
    #[error("key longer than {KEY_BYTES_MAX} bytes (decoding stopped at {bytes})")]
    KeyTooLong {
        /// Bytes decoded when decoding stopped: the first length past the limit.
        bytes: usize,
    },
    /// A `%` not followed by two hex digits.
    #[error("bad percent-encoding in key at byte {at}")]
    BadPercent {
        /// Offset of the `%` in the encoded key.
        at: usize,
    },
    /// The decoded key is not UTF-8.
    #[error("key is not valid UTF-8 (byte {at})")]
    KeyNotUtf8 {
        /// Offset of the first bad byte in the decoded key.
        at: usize,
    },
    /// The key contains a control character (tabs, newlines, NUL...).
    #[error("key contains a control character at byte {at}")]
    KeyControl {
        /// Offset in the decoded key.
        at: usize,
    },
    /// Larger than [`VALUE_BYTES_MAX`].
    #[error("value is {bytes} bytes or more, at most {VALUE_BYTES_MAX} allowed")]
    ValueTooLarge {
        /// Bytes announced or received before the service stopped reading.
        bytes: u64,
    },
    /// The value is not UTF-8.
    #[error("value is not valid UTF-8 (byte {at})")]
    ValueNotUtf8 {
        /// Offset of the first bad byte.
        at: usize,
    },
    /// The body ended before its announced length, or the connection broke mid-body.
    #[error("request body truncated or unreadable: {0}")]
    Truncated(String),
    /// The body did not arrive in time.
    #[error("request body not complete within {0} s")]
    BodyTimeout(u64),
    /// `Content-Length` is not a number.
    #[error("bad Content-Length header")]
    BadLength,
}

impl InputError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            InputError::KeyTooLong { .. } => 414,
            InputError::ValueTooLarge { .. } => 413,
            InputError::BodyTimeout(_) => 408,
            _ => 400,
        }
    }

    /// A short machine-readable name for the JSON answer.
    pub fn kind(&self) -> &'static str {
        match self {
            InputError::EmptyKey => "empty_key",
            InputError::KeyTooLong { .. } => "key_too_long",
            InputError::BadPercent { .. } => "bad_percent_encoding",
            InputError::KeyNotUtf8 { .. } => "key_not_utf8",
            InputError::KeyControl { .. } => "key_control_character",
            InputError::ValueTooLarge { .. } => "value_too_large",
            InputError::ValueNotUtf8 { .. } => "value_not_utf8",
            InputError::Truncated(_) => "body_truncated",
            InputError::BodyTimeout(_) => "body_timeout",
            InputError::BadLength => "bad_content_length",
        }
    }
}

/// Decodes and checks a key taken from the request path (still percent-encoded).
pub fn parse_key(encoded: &str) -> Result<String, InputError> {
    if encoded.is_empty() {
        return Err(InputError::EmptyKey);
    }
    let raw = encoded.as_bytes();
    let mut out = Vec::with_capacity(raw.len().min(KEY_BYTES_MAX + 1));
    let mut i = 0;
    while i < raw.len() {
        if out.len() > KEY_BYTES_MAX {
            // Stop decoding early: the answer is the same however long the rest is.
            return Err(InputError::KeyTooLong { bytes: out.len() });
        }
        match raw[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3).and_then(|h| Some(hex_digit(h[0])? * 16 + hex_digit(h[1])?));
                out.push(hex.ok_or(InputError::BadPercent { at: i })?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if out.len() > KEY_BYTES_MAX {
        return Err(InputError::KeyTooLong { bytes: out.len() });
    }
    let key =
        String::from_utf8(out).map_err(|e| InputError::KeyNotUtf8 { at: e.utf8_error().valid_up_to() })?;
    if let Some((at, _)) = key.char_indices().find(|(_, c)| c.is_control()) {
        return Err(InputError::KeyControl { at });
    }
    Ok(key)
}

/// Checks a received body: the limit, then UTF-8.
pub fn parse_value(body: Vec<u8>) -> Result<String, InputError> {
    if body.len() > VALUE_BYTES_MAX {
        return Err(InputError::ValueTooLarge { bytes: body.len() as u64 });
    }
    String::from_utf8(body).map_err(|e| InputError::ValueNotUtf8 { at: e.utf8_error().valid_up_to() })
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes `key` for a request path: unreserved characters stay, every other byte
/// becomes `%XX`. The inverse of [`parse_key`] for any UTF-8 key.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_decoded_and_checked() {
        assert_eq!(parse_key("user%2F42"), Ok("user/42".to_owned()));
        assert_eq!(parse_key("caf%C3%A9"), Ok("café".to_owned()));
        assert_eq!(parse_key(""), Err(InputError::EmptyKey));
        assert_eq!(parse_key("a%2"), Err(InputError::BadPercent { at: 1 }));
        assert_eq!(parse_key("a%zz"), Err(InputError::BadPercent { at: 1 }));
        assert_eq!(parse_key("ab%FFcd"), Err(InputError::KeyNotUtf8 { at: 2 }));
        assert_eq!(parse_key("a%0Ab"), Err(InputError::KeyControl { at: 1 }));
    }

    #[test]
    fn key_length_is_counted_after_decoding_and_bounded() {
        let at_limit = "k".repeat(KEY_BYTES_MAX);
        assert_eq!(parse_key(&at_limit).map(|k| k.len()), Ok(KEY_BYTES_MAX));
        assert!(matches!(parse_key(&format!("{at_limit}k")), Err(InputError::KeyTooLong { .. })));
        // 100 encoded bytes of "%41" decode to 100 bytes: fine.
        assert_eq!(parse_key(&"%41".repeat(100)).map(|k| k.len()), Ok(100));
        // A megabyte of key stops decoding at the limit.
        let huge = "x".repeat(1 << 20);
        assert_eq!(parse_key(&huge), Err(InputError::KeyTooLong { bytes: KEY_BYTES_MAX + 1 }));
        assert_eq!(InputError::KeyTooLong { bytes: 300 }.status(), 414);
    }

    #[test]
    fn values_must_be_utf8_and_within_the_limit() {
        assert_eq!(parse_value(b"hello".to_vec()), Ok("hello".to_owned()));
        assert_eq!(parse_value(vec![b'a', 0xC3]), Err(InputError::ValueNotUtf8 { at: 1 }));
        let big = vec![b'v'; VALUE_BYTES_MAX + 1];
        assert_eq!(parse_value(big).map_err(|e| e.status()), Err(413));
        assert_eq!(parse_value(vec![b'v'; VALUE_BYTES_MAX]).map(|v| v.len()), Ok(VALUE_BYTES_MAX));
    }

    #[test]
    fn encoding_round_trips_any_utf8_key() {
        for key in ["plain", "with space/and?query#frag", "é€😀", "%41", "a+b"] {
            assert_eq!(parse_key(&encode_key(key)).as_deref(), Ok(key));
        }
    }
}
