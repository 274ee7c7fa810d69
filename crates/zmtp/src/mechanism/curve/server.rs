//! CURVE server: answers HELLO with a WELCOME carrying a cookie, checks
//! INITIATE's cookie and vouch, asks the caller to judge the client's
//! long-term key, and only then sends READY.

use bytes::BytesMut;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::cipher::CurveCipher;
use super::crypto::{self, nonce, SessionBox};
use super::CurveKeyPair;
use crate::command::{encode_command, RawCommand};
use crate::error::Error;
use crate::greeting::MechanismKind;
use crate::mechanism::{peer_error, refused, AuthDecision, AuthRequest, Credentials, Ctx, Step};
use crate::metadata::Metadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hello,
    Initiate,
    Decision,
}

pub(crate) struct CurveServer {
    keys: CurveKeyPair,
    state: State,
    client_short: [u8; 32],
    short_public: [u8; 32],
    short_secret: Zeroizing<[u8; 32]>,
    cookie_key: Zeroizing<[u8; 32]>,
    peer_nonce: u64,
    session: Option<SessionBox>,
    peer_metadata: Option<Metadata>,
}

impl std::fmt::Debug for CurveServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveServer")
            .field("keys", &self.keys)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl CurveServer {
    pub(crate) fn new(keys: CurveKeyPair) -> CurveServer {
        let short_secret = crypto::generate_secret();
        CurveServer {
            short_public: crypto::public_of(&short_secret),
            short_secret,
            keys,
            state: State::Hello,
            client_short: [0; 32],
            cookie_key: Zeroizing::new([0; 32]),
            peer_nonce: 0,
            session: None,
            peer_metadata: None,
        }
    }

    pub(crate) fn on_command(&mut self, cmd: RawCommand, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        if cmd.is("ERROR") {
            return Err(peer_error(&cmd));
        }
        match self.state {
            State::Hello if cmd.is("HELLO") => self.on_hello(&cmd.data, ctx),
            State::Initiate if cmd.is("INITIATE") => self.on_initiate(&cmd.data, ctx),
            _ => Err(Error::unexpected(
                &cmd.name,
                "during the CURVE handshake (server)",
            )),
        }
    }

    fn on_hello(&mut self, data: &[u8], ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        if data.len() != 194 {
            return Err(Error::malformed(b"HELLO", "must be 200 bytes"));
        }
        if data[..2] != [1, 0] {
            return Err(Error::malformed(
                b"HELLO",
                "unsupported CurveZMQ version (only 1.0 exists)",
            ));
        }
        self.client_short.copy_from_slice(&data[74..106]);
        let n = &data[106..114];
        let plain = crypto::open(
            &self.client_short,
            self.keys.secret(),
            &nonce(b"CurveZMQHELLO---", n),
            &data[114..194],
        )
        .ok_or(Error::Decryption {
            what: "HELLO: the client expects another server key",
        })?;
        if plain.iter().any(|&b| b != 0) {
            return Err(Error::malformed(
                b"HELLO",
                "signature box does not hold zeros",
            ));
        }
        let mut raw = [0u8; 8];
        raw.copy_from_slice(n);
        self.peer_nonce = u64::from_be_bytes(raw);

        // The cookie carries C' and s' under a key only this connection
        // knows, and is checked when it comes back in INITIATE.
        crypto::random_bytes(&mut self.cookie_key[..]);
        let mut cookie_nonce = [0u8; 16];
        crypto::random_bytes(&mut cookie_nonce);
        let mut cookie_plain = Zeroizing::new([0u8; 64]);
        cookie_plain[..32].copy_from_slice(&self.client_short);
        cookie_plain[32..].copy_from_slice(&self.short_secret[..]);
        let mut cookie = BytesMut::with_capacity(96);
        cookie.extend_from_slice(&cookie_nonce);
        crypto::secretbox_seal(
            &self.cookie_key,
            &nonce(b"COOKIE--", &cookie_nonce),
            &cookie_plain[..],
            &mut cookie,
        );

        let mut welcome_nonce = [0u8; 16];
        crypto::random_bytes(&mut welcome_nonce);
        let boxed = crypto::seal(
            &self.client_short,
            self.keys.secret(),
            &nonce(b"WELCOME-", &welcome_nonce),
            &[&self.short_public, &cookie],
        );
        encode_command(ctx.out, "WELCOME", &[&welcome_nonce, &boxed]);
        self.state = State::Initiate;
        Ok(Step::Continue)
    }

    fn on_initiate(&mut self, data: &[u8], ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        // Fixed part: cookie (96), nonce (8), box of at least 128 + 16.
        if data.len() < 96 + 8 + 144 {
            return Err(Error::malformed(b"INITIATE", "shorter than 257 bytes"));
        }
        let cookie_plain = crypto::secretbox_open(
            &self.cookie_key,
            &nonce(b"COOKIE--", &data[..16]),
            &data[16..96],
        )
        .ok_or(Error::Decryption {
            what: "the INITIATE cookie",
        })?;
        // The cookie key has served its purpose: forget it.
        *self.cookie_key = [0; 32];
        let mut expected = Zeroizing::new([0u8; 64]);
        expected[..32].copy_from_slice(&self.client_short);
        expected[32..].copy_from_slice(&self.short_secret[..]);
        if cookie_plain.len() != 64 || !bool::from(cookie_plain[..].ct_eq(&expected[..])) {
            return Err(Error::Decryption {
                what: "the INITIATE cookie (it is not ours)",
            });
        }
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&data[96..104]);
        let n = u64::from_be_bytes(raw);
        if n <= self.peer_nonce {
            return Err(Error::NonceNotIncreasing {
                command: "INITIATE",
            });
        }
        self.peer_nonce = n;
        let session = SessionBox::new(&self.client_short, &self.short_secret);
        let plain = Zeroizing::new(
            session
                .open(&nonce(b"CurveZMQINITIATE", &raw), &data[104..])
                .ok_or(Error::Decryption { what: "INITIATE" })?,
        );
        if plain.len() < 128 {
            return Err(Error::malformed(
                b"INITIATE",
                "box is too short for the client key and vouch",
            ));
        }
        let mut client_key = [0u8; 32];
        client_key.copy_from_slice(&plain[..32]);
        let vouch = crypto::open(
            &client_key,
            &self.short_secret,
            &nonce(b"VOUCH---", &plain[32..48]),
            &plain[48..128],
        )
        .ok_or(Error::Decryption {
            what: "the vouch: the client does not hold the secret key of the key it presents",
        })?;
        let mut vouched = [0u8; 64];
        vouched[..32].copy_from_slice(&self.client_short);
        vouched[32..].copy_from_slice(self.keys.public());
        if vouch.len() != 64 || !bool::from(vouch[..].ct_eq(&vouched[..])) {
            return Err(Error::Decryption {
                what: "the vouch (it names other keys)",
            });
        }
        self.peer_metadata = Some(ctx.peer_metadata(&plain[128..])?);
        self.session = Some(session);
        self.state = State::Decision;
        Ok(Step::Authenticate(AuthRequest {
            mechanism: MechanismKind::Curve,
            credentials: Credentials::Curve {
                public_key: client_key,
            },
        }))
    }

    pub(crate) fn on_decision(
        &mut self,
        decision: &AuthDecision,
        ctx: &mut Ctx<'_>,
    ) -> Result<Step, Error> {
        if self.state != State::Decision {
            return Err(Error::NoAuthenticationPending);
        }
        if let Some(err) = refused(decision) {
            return Err(err);
        }
        let peer = self.peer_metadata.take().unwrap_or_default();
        let session = self.session.take().ok_or(Error::NoAuthenticationPending)?;
        let mut ours = BytesMut::with_capacity(ctx.ours.encoded_len());
        ctx.ours.encode(&mut ours);
        let n = 1u64.to_be_bytes();
        let mut boxed = BytesMut::new();
        session.seal(&nonce(b"CurveZMQREADY---", &n), &[&ours], &mut boxed);
        encode_command(ctx.out, "READY", &[&n, &boxed]);
        Ok(Step::Done(
            peer,
            Some(Box::new(CurveCipher::new(
                session,
                false,
                2,
                self.peer_nonce,
            ))),
        ))
    }
}
