//! ZAP (RFC 27): authentication by a handler bound on
//! `inproc://zeromq.zap.01`, as libzmq applications do it.
//!
//! Each request goes out on a fresh inproc REQ socket, so requests from
//! many handshakes never wait on one another. The reply must be exactly what
//! RFC 27 says (version `1.0`, our request id, a status of 200, 300, 400 or
//! 500, a user id and well-formed metadata); anything else is a refusal.
//! With no handler bound, every peer is refused: ZAP fails closed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use zeroguard_zmtp::{AuthDecision, Credentials, Message, Metadata};

use crate::context::Context;
use crate::options::SocketOptions;
use crate::security::{AuthContext, Authenticator};
use crate::socket::api::{Req, Socket};

/// Where ZAP handlers bind.
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// Asks the ZAP handler of a context.
#[derive(Debug)]
pub struct Zap {
    ctx: Context,
    domain: String,
    timeout: Duration,
    next_id: AtomicU64,
}

impl Zap {
    /// Asks the handler bound in `ctx`, naming `domain` in each request.
    /// A handler has 5 seconds to answer.
    pub fn new(ctx: &Context, domain: impl Into<String>) -> Zap {
        Zap {
            ctx: ctx.clone(),
            domain: domain.into(),
            timeout: Duration::from_secs(5),
            next_id: AtomicU64::new(1),
        }
    }

    /// Changes how long a handler has to answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Zap {
        self.timeout = timeout;
        self
    }

    fn request(&self, peer: &AuthContext, id: &[u8]) -> Message {
        let mut m = Message::from_frames([
            Bytes::from_static(b"1.0"),
            Bytes::copy_from_slice(id),
            Bytes::from(self.domain.clone().into_bytes()),
            Bytes::from(
                peer.address
                    .map(|a| a.to_string())
                    .unwrap_or_default()
                    .into_bytes(),
            ),
            // The identity frame: libzmq sends the server socket's routing id,
            // which handlers rarely use; ours has none to offer.
            Bytes::new(),
            Bytes::from_static(peer.mechanism.as_str().as_bytes()),
        ]);
        match &peer.credentials {
            Credentials::Plain(hello) => {
                m.push_back(hello.username.clone());
                m.push_back(Bytes::copy_from_slice(&hello.password));
            }
            Credentials::Curve { public_key } => m.push_back(Bytes::copy_from_slice(public_key)),
            _ => {}
        }
        m
    }
}

/// Checks a ZAP reply (without the REQ delimiter: six frames) for
/// `request_id`. Anything malformed is an error naming what is wrong.
pub fn parse_reply<F: AsRef<[u8]>>(reply: &[F], request_id: &[u8]) -> Result<AuthDecision, String> {
    let reply: Vec<&[u8]> = reply.iter().map(AsRef::as_ref).collect();
    if reply.len() != 6 {
        return Err(format!(
            "a ZAP reply has 7 frames with its delimiter; this one has {}",
            reply.len() + 1
        ));
    }
    if reply[0] != b"1.0" {
        return Err("ZAP reply version is not 1.0".into());
    }
    if reply[1] != request_id {
        return Err("ZAP reply answers another request".into());
    }
    let status = match reply[2] {
        b"200" => 200,
        b"300" => 300,
        b"400" => 400,
        b"500" => 500,
        _ => return Err("ZAP status is not 200, 300, 400 or 500".into()),
    };
    let text = String::from_utf8_lossy(&reply[3][..reply[3].len().min(255)]).into_owned();
    if reply[4].len() > 255 {
        return Err("ZAP user id is longer than 255 bytes".into());
    }
    let metadata = Metadata::parse(reply[5]).map_err(|e| format!("ZAP metadata: {e}"))?;
    Ok(if status == 200 {
        AuthDecision::Accept {
            user_id: Bytes::copy_from_slice(reply[4]),
            metadata,
        }
    } else {
        AuthDecision::Refuse {
            status,
            reason: text,
        }
    })
}

impl Authenticator for Zap {
    fn authenticate(&self, peer: &AuthContext) -> AuthDecision {
        let internal = |reason: String| AuthDecision::Refuse {
            status: 500,
            reason,
        };
        if !self
            .ctx
            .is_inproc_bound(ZAP_ENDPOINT.trim_start_matches("inproc://"))
        {
            return internal(format!("no ZAP handler is bound on {ZAP_ENDPOINT}"));
        }
        let options = SocketOptions {
            send_timeout: Some(self.timeout),
            recv_timeout: Some(self.timeout),
            linger: Duration::ZERO,
            ..SocketOptions::default()
        };
        let socket = match Socket::<Req>::with_options(&self.ctx, options) {
            Ok(s) => s,
            Err(e) => return internal(format!("ZAP: {e}")),
        };
        if let Err(e) = socket.connect(ZAP_ENDPOINT) {
            return internal(format!("ZAP: {e}"));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        if let Err(e) = socket.send(self.request(peer, id.as_bytes())) {
            return internal(format!("ZAP request not taken: {e}"));
        }
        match socket.recv() {
            Ok(reply) => parse_reply(reply.frames(), id.as_bytes()).unwrap_or_else(internal),
            Err(e) => internal(format!("ZAP handler did not answer: {e}")),
        }
    }

    fn may_block(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(frames: &[&[u8]]) -> Vec<Bytes> {
        frames.iter().map(|f| Bytes::copy_from_slice(f)).collect()
    }

    #[test]
    fn accepts_a_well_formed_reply() {
        let md = {
            let mut m = Metadata::new();
            m.insert("X-Role", "admin").unwrap();
            let mut b = bytes::BytesMut::new();
            m.encode(&mut b);
            b
        };
        let r = reply(&[b"1.0", b"7", b"200", b"OK", b"alice", &md]);
        match parse_reply(&r, b"7").unwrap() {
            AuthDecision::Accept { user_id, metadata } => {
                assert_eq!(&user_id[..], b"alice");
                assert_eq!(
                    metadata.get("x-role").unwrap(),
                    &Bytes::from_static(b"admin")
                );
            }
            other => panic!("{other:?}"),
        }
        let r = reply(&[b"1.0", b"7", b"400", b"no", b"", b""]);
        assert_eq!(
            parse_reply(&r, b"7").unwrap(),
            AuthDecision::Refuse {
                status: 400,
                reason: "no".into()
            }
        );
    }

    #[test]
    fn refuses_malformed_replies() {
        for (r, why) in [
            (reply(&[b"1.0", b"7", b"200", b"OK", b""]), "7 frames"),
            (
                reply(&[b"1.0", b"7", b"200", b"OK", b"", b"", b""]),
                "7 frames",
            ),
            (reply(&[b"2.0", b"7", b"200", b"OK", b"", b""]), "version"),
            (
                reply(&[b"1.0", b"8", b"200", b"OK", b"", b""]),
                "another request",
            ),
            (reply(&[b"1.0", b"7", b"201", b"OK", b"", b""]), "status"),
            (
                reply(&[b"1.0", b"7", b"200", b"OK", b"", b"\x05X-Rol"]),
                "metadata",
            ),
        ] {
            let err = parse_reply(&r, b"7").unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
