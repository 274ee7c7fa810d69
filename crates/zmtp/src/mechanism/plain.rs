//! The PLAIN handshake (RFC 24): HELLO, WELCOME, INITIATE, READY.
//!
//! The server raises the client's user name and password as an
//! authentication request and sends WELCOME only once the caller admitted
//! them; a refusal is answered with ERROR carrying the status code, as libzmq
//! does, so libzmq clients report an authentication failure.

use crate::command::{
    encode_command, encode_metadata_command, encode_plain_hello, parse_plain_hello, RawCommand,
};
use crate::error::Error;
use crate::greeting::MechanismKind;

use super::{peer_error, refused, AuthDecision, AuthRequest, Credentials, Ctx, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    AwaitingWelcome,
    AwaitingReady,
}

/// Client side: sends the credentials, then its metadata.
pub(crate) struct PlainClient {
    username: bytes::Bytes,
    password: zeroize::Zeroizing<Vec<u8>>,
    state: ClientState,
}

impl std::fmt::Debug for PlainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainClient")
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl PlainClient {
    pub(crate) fn new(
        username: bytes::Bytes,
        password: zeroize::Zeroizing<Vec<u8>>,
    ) -> PlainClient {
        PlainClient {
            username,
            password,
            state: ClientState::AwaitingWelcome,
        }
    }

    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        encode_plain_hello(ctx.out, &self.username, &self.password);
        Ok(Step::Continue)
    }

    pub(crate) fn on_command(&mut self, cmd: RawCommand, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        if cmd.is("ERROR") {
            return Err(peer_error(&cmd));
        }
        match self.state {
            ClientState::AwaitingWelcome if cmd.is("WELCOME") => {
                if !cmd.data.is_empty() {
                    return Err(Error::malformed(&cmd.name, "WELCOME carries no data"));
                }
                encode_metadata_command(ctx.out, "INITIATE", ctx.ours);
                self.state = ClientState::AwaitingReady;
                Ok(Step::Continue)
            }
            ClientState::AwaitingReady if cmd.is("READY") => {
                Ok(Step::Done(ctx.peer_metadata(&cmd.data)?, None))
            }
            _ => Err(Error::unexpected(
                &cmd.name,
                "during the PLAIN handshake (client)",
            )),
        }
    }
}

/// What the server waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Hello,
    Decision,
    Initiate,
}

/// Server side: judges the credentials, then exchanges metadata.
#[derive(Debug)]
pub(crate) struct PlainServer {
    state: ServerState,
}

impl PlainServer {
    pub(crate) fn new() -> PlainServer {
        PlainServer {
            state: ServerState::Hello,
        }
    }

    pub(crate) fn on_command(&mut self, cmd: RawCommand, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        if cmd.is("ERROR") {
            return Err(peer_error(&cmd));
        }
        match self.state {
            ServerState::Hello if cmd.is("HELLO") => {
                let hello = parse_plain_hello(&cmd.data)?;
                self.state = ServerState::Decision;
                Ok(Step::Authenticate(AuthRequest {
                    mechanism: MechanismKind::Plain,
                    credentials: Credentials::Plain(hello),
                }))
            }
            ServerState::Initiate if cmd.is("INITIATE") => {
                let peer = ctx.peer_metadata(&cmd.data)?;
                encode_metadata_command(ctx.out, "READY", ctx.ours);
                Ok(Step::Done(peer, None))
            }
            _ => Err(Error::unexpected(
                &cmd.name,
                "during the PLAIN handshake (server)",
            )),
        }
    }

    pub(crate) fn on_decision(
        &mut self,
        decision: &AuthDecision,
        ctx: &mut Ctx<'_>,
    ) -> Result<Step, Error> {
        if self.state != ServerState::Decision {
            return Err(Error::NoAuthenticationPending);
        }
        if let Some(err) = refused(decision) {
            return Err(err);
        }
        encode_command(ctx.out, "WELCOME", &[]);
        self.state = ServerState::Initiate;
        Ok(Step::Continue)
    }
}
