//! The text form of messages on the command line: frames separated by TAB,
//! bytes outside printable ASCII (and `\` and TAB themselves) as `\xNN`.

use zeroguard::Message;

/// Parses one line into a message: TAB separates frames, `\xNN` is a byte.
pub(crate) fn decode(line: &str) -> Result<Message, String> {
    let mut msg = Message::new();
    for part in line.split('\t') {
        let mut frame = Vec::with_capacity(part.len());
        let bytes = part.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
                let hex = part
                    .get(i + 2..i + 4)
                    .ok_or_else(|| format!("incomplete \\x escape in {line:?}"))?;
                let b = u8::from_str_radix(hex, 16)
                    .map_err(|_| format!("bad \\x escape {hex:?} in {line:?}"))?;
                frame.push(b);
                i += 4;
            } else {
                frame.push(bytes[i]);
                i += 1;
            }
        }
        msg.push_back(frame);
    }
    Ok(msg)
}

/// Renders a message as one line.
pub(crate) fn encode(msg: &Message) -> String {
    let mut out = String::new();
    for (i, frame) in msg.frames().iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        for &b in frame.iter() {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Message::from_frames([&b"a\\b"[..], b"", b"\x00\t\xff z"]);
        let line = encode(&m);
        assert_eq!(line, "a\\x5cb\t\t\\x00\\x09\\xff z");
        assert_eq!(decode(&line).unwrap(), m);
        assert!(decode("\\x4").is_err());
        assert!(decode("\\xzz").is_err());
    }
}
