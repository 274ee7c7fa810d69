//! The NULL handshake (RFC 23): both sides send READY with their metadata.
//!
//! When the local side authenticates (by address, as libzmq does with a ZAP
//! domain), READY is held back until the caller has admitted the peer, and a
//! refusal is answered with ERROR carrying the status code.

use crate::command::{encode_metadata_command, RawCommand};
use crate::error::Error;
use crate::greeting::MechanismKind;

use super::{peer_error, refused, AuthDecision, AuthRequest, Credentials, Ctx, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingDecision,
    AwaitingReady,
}

#[derive(Debug)]
pub(crate) struct NullHandshake {
    authenticate: bool,
    state: State,
}

impl NullHandshake {
    pub(crate) fn new(authenticate: bool) -> NullHandshake {
        NullHandshake {
            authenticate,
            state: State::AwaitingReady,
        }
    }

    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        if self.authenticate {
            self.state = State::AwaitingDecision;
            return Ok(Step::Authenticate(AuthRequest {
                mechanism: MechanismKind::Null,
                credentials: Credentials::Null,
            }));
        }
        encode_metadata_command(ctx.out, "READY", ctx.ours);
        Ok(Step::Continue)
    }

    pub(crate) fn on_decision(
        &mut self,
        decision: &AuthDecision,
        ctx: &mut Ctx<'_>,
    ) -> Result<Step, Error> {
        if self.state != State::AwaitingDecision {
            return Err(Error::NoAuthenticationPending);
        }
        if let Some(err) = refused(decision) {
            return Err(err);
        }
        encode_metadata_command(ctx.out, "READY", ctx.ours);
        self.state = State::AwaitingReady;
        Ok(Step::Continue)
    }

    pub(crate) fn on_command(&mut self, cmd: RawCommand, ctx: &mut Ctx<'_>) -> Result<Step, Error> {
        if cmd.is("ERROR") {
            return Err(peer_error(&cmd));
        }
        if self.state == State::AwaitingReady && cmd.is("READY") {
            return Ok(Step::Done(ctx.peer_metadata(&cmd.data)?, None));
        }
        Err(Error::unexpected(&cmd.name, "during the NULL handshake"))
    }
}
