//! Z85, the printable encoding of binary keys (RFC 32).
//!
//! Input lengths must be multiples of 4 bytes (encoding) or 5 characters
//! (decoding); anything else, any character outside the alphabet, and any
//! 5-character group whose value exceeds 2^32 - 1 is refused rather than
//! silently truncated or wrapped.

const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Maps an ASCII byte to its Z85 digit, 0xFF where the byte is not in the alphabet.
const DECODE: [u8; 256] = {
    let mut table = [0xFF_u8; 256];
    let mut i = 0;
    // The index is below 85, so it fits a u8.
    #[allow(clippy::cast_possible_truncation)]
    while i < 85 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Why a Z85 string or buffer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Z85Error {
    /// Binary input to encode was not a multiple of 4 bytes.
    #[error(
        "Z85 encodes whole 4-byte groups, but the input has {0} bytes; pad it to a multiple of 4"
    )]
    BadBinaryLength(usize),
    /// Text to decode was not a multiple of 5 characters.
    #[error("Z85 text must be a multiple of 5 characters, but it has {0}; check that the key was copied whole")]
    BadTextLength(usize),
    /// Text contained a character outside the Z85 alphabet.
    #[error("Z85 text has an invalid character {byte:#04x} at position {position}")]
    BadCharacter {
        /// Offset of the character.
        position: usize,
        /// The byte found there.
        byte: u8,
    },
    /// A 5-character group encodes a value above 2^32 - 1.
    #[error(
        "Z85 group at position {position} encodes a value above 2^32-1; the text is not valid Z85"
    )]
    Overflow {
        /// Offset of the group's first character.
        position: usize,
    },
    /// A public key does not belong to the secret key it was paired with.
    #[error(
        "the public key does not match the secret key; the certificate is corrupt or mixed up"
    )]
    KeyMismatch,
    /// A decoded key did not have the expected length.
    #[error("expected a {expected}-character Z85 key, got {actual} characters")]
    BadKeyLength {
        /// Expected characters.
        expected: usize,
        /// Characters given.
        actual: usize,
    },
}

/// Encodes `data` (a multiple of 4 bytes) as Z85 text.
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if data.len() % 4 != 0 {
        return Err(Z85Error::BadBinaryLength(data.len()));
    }
    let mut out = String::with_capacity(data.len() / 4 * 5);
    for chunk in data.chunks_exact(4) {
        let mut value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let mut digits = [0u8; 5];
        for digit in digits.iter_mut().rev() {
            *digit = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        out.extend(digits.iter().map(|&b| char::from(b)));
    }
    Ok(out)
}

/// Decodes Z85 `text` (a multiple of 5 characters) to bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    let bytes = text.as_bytes();
    if bytes.len() % 5 != 0 {
        return Err(Z85Error::BadTextLength(bytes.len()));
    }
    let mut out = Vec::with_capacity(bytes.len() / 5 * 4);
    for (group, chunk) in bytes.chunks_exact(5).enumerate() {
        let mut value: u64 = 0;
        for (i, &b) in chunk.iter().enumerate() {
            let digit = DECODE[usize::from(b)];
            if digit == 0xFF {
                return Err(Z85Error::BadCharacter {
                    position: group * 5 + i,
                    byte: b,
                });
            }
            value = value * 85 + u64::from(digit);
        }
        let value = u32::try_from(value).map_err(|_| Z85Error::Overflow {
            position: group * 5,
        })?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

/// Decodes a 40-character Z85 text into a 32-byte key.
pub fn decode_key(text: &str) -> Result<[u8; 32], Z85Error> {
    if text.len() != 40 {
        return Err(Z85Error::BadKeyLength {
            expected: 40,
            actual: text.len(),
        });
    }
    let bytes = decode(text)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc32_hello_world() {
        let bytes = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode(&bytes).unwrap(), "HelloWorld");
        assert_eq!(decode("HelloWorld").unwrap(), bytes);
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::BadBinaryLength(3)));
        assert_eq!(decode("Hell"), Err(Z85Error::BadTextLength(4)));
    }

    #[test]
    fn rejects_characters_outside_alphabet() {
        assert_eq!(
            decode("Hell\"World"),
            Err(Z85Error::BadCharacter {
                position: 4,
                byte: b'"'
            })
        );
        assert!(matches!(
            decode("Hello Worl"),
            Err(Z85Error::BadCharacter { position: 5, .. })
        ));
    }

    #[test]
    fn rejects_overflowing_group() {
        // "%nSc0" is 2^32 - 1; "%nSc1" is one above.
        assert_eq!(decode("%nSc0").unwrap(), [0xFF; 4]);
        assert_eq!(decode("%nSc1"), Err(Z85Error::Overflow { position: 0 }));
        assert_eq!(decode("#####"), Err(Z85Error::Overflow { position: 0 }));
    }

    #[test]
    fn key_decoding_checks_length() {
        assert!(matches!(
            decode_key("HelloWorld"),
            Err(Z85Error::BadKeyLength { .. })
        ));
        let key = [7u8; 32];
        assert_eq!(decode_key(&encode(&key).unwrap()).unwrap(), key);
    }
}
