//! CURVE client: HELLO, then INITIATE once WELCOME proves the server holds
//! the secret key of the public key we pinned, then READY.

use bytes::BytesMut;
use zeroize::Zeroizing;

use super::cipher::CurveCipher;
use super::crypto::{self, nonce, SessionBox};
use super::CurveKeyPair;
use crate::command::{encode_command, RawCommand};
use crate::error::Error;
use crate::mechanism::{peer_error, Ctx, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Welcome,
    Ready,
}

pub(crate) struct CurveClient {
    keys: CurveKeyPair,
    server_key: [u8; 32],
    short_public: [u8; 32],
    short_secret: Zeroizing<[u8; 32]>,
    state: State,
    next_nonce: u64,
    session: Option<SessionBox>,
}

impl std::fmt::Debug for CurveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveClient")
            .field("keys", &self.keys)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl CurveClient {
    pub(crate) fn new(keys: CurveKeyPair, server_key: [u8; 32]) -> CurveClient {
        let short_secret = crypto::generate_secret();
        CurveClient {
            short_public: crypto::public_of(&short_secret),
            short_secret,
            keys,
            server_key,
            state: State::Welcome,
            next_nonce: 1,
            session: None,
        }
    }

    fn take_nonce(&mut self) -> u64 {
        let n = self.next_nonce;
        self.next_nonce += 1;
        n
    }

    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        let n = self.take_nonce().to_be_bytes();
        let signature = crypto::seal(
            &self.server_key,
            &self.short_secret,
            &nonce(b"CurveZMQHELLO---", &n),
            &[&[0u8; 64]],
        );
        // Version 1.0, then 72 bytes of padding so HELLO is as large as
        // WELCOME: the server cannot be used to amplify traffic.
        encode_command(
            ctx.out,
            "HELLO",
            &[&[1, 0], &[0u8; 72], &self.short_public, &n, &signature],
        );
        Ok(Step::Continue)
    }

    pub(crate) fn on_command(&mut self, cmd: RawCommand, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        if cmd.is("ERROR") {
            return Err(peer_error(&cmd));
        }
        match self.state {
            State::Welcome if cmd.is("WELCOME") => self.on_welcome(&cmd.data, ctx),
            State::Ready if cmd.is("READY") => self.on_ready(&cmd.data, ctx),
            _ => Err(Error::unexpected(
                &cmd.name,
                "during the CURVE handshake (client)",
            )),
        }
    }

    fn on_welcome(&mut self, data: &[u8], ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        if data.len() != 160 {
            return Err(Error::malformed(b"WELCOME", "must be 168 bytes"));
        }
        let plain = crypto::open(
            &self.server_key,
            &self.short_secret,
            &nonce(b"WELCOME-", &data[..16]),
            &data[16..],
        )
        .ok_or(Error::Decryption {
            what: "WELCOME: the server does not hold the secret key of the server key we expect",
        })?;
        if plain.len() != 128 {
            return Err(Error::malformed(
                b"WELCOME",
                "box holds the wrong amount of data",
            ));
        }
        let mut server_short = [0u8; 32];
        server_short.copy_from_slice(&plain[..32]);
        let cookie = &plain[32..128];
        let session = SessionBox::new(&server_short, &self.short_secret);

        let mut vouch_nonce = [0u8; 16];
        crypto::random_bytes(&mut vouch_nonce);
        let vouch = crypto::seal(
            &server_short,
            self.keys.secret(),
            &nonce(b"VOUCH---", &vouch_nonce),
            &[&self.short_public, &self.server_key],
        );
        let mut metadata = BytesMut::with_capacity(ctx.ours.encoded_len());
        ctx.ours.encode(&mut metadata);
        let n = self.take_nonce().to_be_bytes();
        let mut boxed = BytesMut::new();
        session.seal(
            &nonce(b"CurveZMQINITIATE", &n),
            &[self.keys.public(), &vouch_nonce, &vouch, &metadata],
            &mut boxed,
        );
        encode_command(ctx.out, "INITIATE", &[cookie, &n, &boxed]);
        self.session = Some(session);
        self.state = State::Ready;
        Ok(Step::Continue)
    }

    fn on_ready(&mut self, data: &[u8], ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        if data.len() < 8 + crypto::TAG_LEN {
            return Err(Error::malformed(b"READY", "shorter than 30 bytes"));
        }
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&data[..8]);
        let peer_nonce = u64::from_be_bytes(raw);
        if peer_nonce == 0 {
            return Err(Error::NonceNotIncreasing { command: "READY" });
        }
        let session = self
            .session
            .take()
            .ok_or(Error::unexpected(b"READY", "before WELCOME"))?;
        let plain = session
            .open(&nonce(b"CurveZMQREADY---", &raw), &data[8..])
            .ok_or(Error::Decryption { what: "READY" })?;
        let peer = ctx.peer_metadata(&plain)?;
        let cipher = CurveCipher::new(session, true, self.next_nonce, peer_nonce);
        Ok(Step::Done(peer, Some(Box::new(cipher))))
    }
}
