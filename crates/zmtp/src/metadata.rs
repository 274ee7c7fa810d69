//! Connection metadata: the name/value properties of READY and INITIATE (RFC 23).
//!
//! Parsing checks every length against what is actually left in the command
//! before reading (CVE-2019-13132 overflowed a fixed buffer with oversized
//! metadata), refuses names outside the RFC's character set and duplicate
//! names, and copies values out of the read buffer so that connection
//! metadata kept for the life of a connection never pins network buffers.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;

/// Property name of the sender's socket type.
pub const SOCKET_TYPE: &str = "Socket-Type";
/// Property name of the sender's routing id.
pub const IDENTITY: &str = "Identity";
/// Property name under which the authenticated user id is exposed.
pub const USER_ID: &str = "User-Id";

/// Largest value RFC 23 allows (2^31 - 1).
const MAX_VALUE_LEN: u32 = i32::MAX as u32;

/// An ordered set of properties with case-insensitive, unique names.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    props: Vec<(String, Bytes)>,
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.props
                    .iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

/// Checks a property name against RFC 23: 1 to 255 of `A-Z a-z 0-9 - _ . +`.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'+'))
}

impl Metadata {
    /// An empty set.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Adds or replaces a property. The name must satisfy RFC 23 and the
    /// value must fit in 2^31 - 1 bytes.
    pub fn insert(&mut self, name: &str, value: impl Into<Bytes>) -> Result<(), Error> {
        let value = value.into();
        if !is_valid_name(name.as_bytes()) {
            return Err(Error::InvalidConfig(format!(
                "metadata name {name:?} is invalid: use 1 to 255 characters from A-Z a-z 0-9 - _ . +"
            )));
        }
        if value.len() > MAX_VALUE_LEN as usize {
            return Err(Error::InvalidConfig(format!(
                "metadata value for {name:?} is {} bytes, above the 2^31-1 limit",
                value.len()
            )));
        }
        match self.position(name) {
            Some(i) => self.props[i].1 = value,
            None => self.props.push((name.to_owned(), value)),
        }
        Ok(())
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.props
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The value of a property, looked up without regard to case.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.position(name).map(|i| &self.props[i].1)
    }

    /// The properties in the order they were added or received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.props.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.props.len()
    }

    /// True when there are no properties.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    /// Bytes the properties take on the wire.
    pub fn encoded_len(&self) -> usize {
        self.props
            .iter()
            .map(|(k, v)| 1 + k.len() + 4 + v.len())
            .sum()
    }

    /// Appends the wire encoding of every property.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        for (name, value) in &self.props {
            // insert() bounded both lengths.
            out.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
            out.put_slice(name.as_bytes());
            out.put_u32(u32::try_from(value.len()).unwrap_or(MAX_VALUE_LEN));
            out.put_slice(value);
        }
    }

    /// Parses a property list that fills `data` exactly.
    pub fn parse(mut data: &[u8]) -> Result<Metadata, Error> {
        let mut md = Metadata::new();
        while let Some((&name_len, rest)) = data.split_first() {
            let name_len = usize::from(name_len);
            if name_len == 0 {
                return Err(Error::InvalidMetadata {
                    reason: "property name is empty",
                });
            }
            if rest.len() < name_len + 4 {
                return Err(Error::InvalidMetadata {
                    reason: "property is truncated",
                });
            }
            let (name, rest) = rest.split_at(name_len);
            if !is_valid_name(name) {
                return Err(Error::InvalidMetadata {
                    reason: "property name has characters outside A-Z a-z 0-9 - _ . +",
                });
            }
            let (len_bytes, rest) = rest.split_at(4);
            let value_len =
                u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            if value_len > MAX_VALUE_LEN {
                return Err(Error::InvalidMetadata {
                    reason: "property value length exceeds 2^31-1",
                });
            }
            let value_len = value_len as usize;
            if rest.len() < value_len {
                return Err(Error::InvalidMetadata {
                    reason: "property value is longer than the command",
                });
            }
            let (value, rest) = rest.split_at(value_len);
            // Names were checked to be ASCII above.
            let name = String::from_utf8_lossy(name).into_owned();
            if md.position(&name).is_some() {
                return Err(Error::InvalidMetadata {
                    reason: "property name appears twice",
                });
            }
            md.props.push((name, Bytes::copy_from_slice(value)));
            data = rest;
        }
        Ok(md)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_case_insensitive_lookup() {
        let mut md = Metadata::new();
        md.insert("Socket-Type", "DEALER").unwrap();
        md.insert("X-App", vec![0u8, 1, 2]).unwrap();
        let mut buf = BytesMut::new();
        md.encode(&mut buf);
        assert_eq!(buf.len(), md.encoded_len());
        let back = Metadata::parse(&buf).unwrap();
        assert_eq!(back, md);
        assert_eq!(
            back.get("socket-type").unwrap(),
            &Bytes::from_static(b"DEALER")
        );
    }

    #[test]
    fn rejects_truncated_and_oversized_values() {
        // name "A", declared value length 10, only 2 bytes present.
        let data = [1, b'A', 0, 0, 0, 10, b'x', b'y'];
        assert!(matches!(
            Metadata::parse(&data),
            Err(Error::InvalidMetadata { .. })
        ));
        let data = [1, b'A', 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            Metadata::parse(&data),
            Err(Error::InvalidMetadata {
                reason: "property value length exceeds 2^31-1"
            })
        );
    }

    #[test]
    fn rejects_bad_names_and_duplicates() {
        assert!(Metadata::parse(&[0, 0, 0, 0, 0]).is_err());
        assert!(Metadata::parse(&[1, b' ', 0, 0, 0, 0]).is_err());
        let dup = [1, b'a', 0, 0, 0, 0, 1, b'A', 0, 0, 0, 0];
        assert_eq!(
            Metadata::parse(&dup),
            Err(Error::InvalidMetadata {
                reason: "property name appears twice"
            })
        );
        let mut md = Metadata::new();
        assert!(md.insert("bad name", "x").is_err());
        assert!(md.insert("", "x").is_err());
    }
}
