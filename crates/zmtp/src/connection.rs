//! One ZMTP connection as a deterministic state machine: greeting, security
//! handshake, then framed traffic with heartbeats.
//!
//! # Call order
//!
//! 1. [`Connection::new`] queues our greeting.
//! 2. Whenever bytes arrive, [`handle_input`](Connection::handle_input).
//!    Input is only buffered there; it is decoded lazily, one event at a time,
//!    by [`poll_event`](Connection::poll_event), so a caller that stops polling
//!    (because its queues are full) stops consuming input, and can stop
//!    reading the transport: back-pressure reaches the peer.
//! 3. Call [`poll_event`](Connection::poll_event) until it returns `Ok(None)`
//!    (a busy driver may take runs of messages with
//!    [`poll_messages`](Connection::poll_messages) in between). Answer
//!    [`Event::Authenticate`] with [`complete_auth`](Connection::complete_auth).
//! 4. Append output with [`poll_transmit`](Connection::poll_transmit) and
//!    messages with [`send`](Connection::send) (or a batch with
//!    [`send_all`](Connection::send_all)), then write the buffer out.
//! 5. Arm a timer for [`poll_timeout`](Connection::poll_timeout) and call
//!    [`handle_timeout`](Connection::handle_timeout) when it fires.
//!
//! Errors are sticky: after the first one every call reports it again, and
//! [`poll_transmit`](Connection::poll_transmit) yields only what must still be
//! flushed (an ERROR command telling the peer why), after which the
//! transport should be closed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::body::{BodyPool, LargeBody, BODY_MAX, BODY_MIN, HELD_BODIES_BYTES, LEAD_READ};
use crate::command::{self, encode_error, parse_ping, parse_pong, RawCommand};
use crate::config::{Config, MechanismConfig};
use crate::error::{Error, ErrorCategory};
use crate::frame::{
    decode_frame, encode_header, FrameBody, FrameLimits, FLAGS_RESERVED, FLAG_COMMAND,
};
use crate::greeting::{check_peer_greeting, encode_greeting, MechanismKind, Version, GREETING_LEN};
use crate::heartbeat::{Heartbeat, HeartbeatAction};
use crate::mechanism::curve::cipher::{CurveCipher, OVERHEAD as CURVE_OVERHEAD};
use crate::mechanism::curve::client::CurveClient;
use crate::mechanism::curve::server::CurveServer;
use crate::mechanism::{
    self, null::NullHandshake, plain, AuthDecision, AuthRequest, Ctx, Handshake, Step,
};
use crate::message::{Frame, Message};
use crate::metadata::{self, Metadata};
use crate::socket_type::SocketType;

/// Above this much undecoded input, [`Connection::wants_input`] says stop reading.
const INPUT_HIGH_WATER: usize = 256 * 1024;

/// What a connection reports to its driver.
///
/// The once-a-connection variants are boxed so that the event is no larger
/// than the message most events carry (48 bytes rather than 120, copied
/// through every return on the way out).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer must be judged; answer with [`Connection::complete_auth`].
    /// Nothing more is decoded until then.
    Authenticate(Box<AuthRequest>),
    /// The handshake is complete. From now on messages may be sent.
    Ready(Box<PeerInfo>),
    /// A whole multipart message.
    Message(Message),
    /// The peer subscribed to a topic prefix (only raised for PUB and XPUB).
    Subscribe(Bytes),
    /// The peer cancelled a subscription (only raised for PUB and XPUB).
    Cancel(Bytes),
}

/// What we know about the peer once the handshake is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The ZMTP revision in use.
    pub version: Version,
    /// The security mechanism in use.
    pub mechanism: MechanismKind,
    /// The peer's socket type.
    pub socket_type: SocketType,
    /// The routing id the peer announced, if any and not empty.
    pub routing_id: Option<Bytes>,
    /// All properties the peer sent.
    pub metadata: Metadata,
    /// User id assigned by the local authenticator, if it ran.
    pub user_id: Option<Bytes>,
    /// Properties attached by the local authenticator.
    pub auth_metadata: Metadata,
}

#[derive(Debug)]
enum Phase {
    Greeting,
    Handshake,
    Active,
    Failed,
}

/// A ZMTP 3.x connection: feed it bytes and time, take bytes and events out.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    ours: Metadata,
    phase: Phase,
    handshake: Handshake,
    awaiting_decision: bool,
    accepted: Option<(Bytes, Metadata)>,
    version: Version,
    input: BytesMut,
    output: BytesMut,
    queued: Option<Event>,
    error: Option<Error>,
    now: Instant,
    handshake_deadline: Option<Instant>,
    heartbeat: Heartbeat,
    partial: Vec<Frame>,
    partial_len: u64,
    /// Where a CURVE session copies small frame bodies to decrypt them.
    arena: crate::frame::Arena,
    /// CURVE: every frame after the handshake goes through this.
    cipher: Option<Box<CurveCipher>>,
    /// Scratch space for command bodies before they are framed or boxed.
    scratch: BytesMut,
    /// A large message frame being read into a buffer of its own; input
    /// is empty while it is incomplete, so it is the next frame decoded.
    body: Option<LargeBody>,
    /// Large frames complete but not yet decoded (with their MORE flags),
    /// which come before `body` and `input`. Reading on past a complete
    /// body lets a driver hand several to the application in one wake-up.
    done: VecDeque<(bool, Bytes)>,
    /// Bytes in `done`, at most [`HELD_BODIES_BYTES`].
    done_bytes: usize,
    /// Buffers of large bodies the application has dropped, for reuse.
    pool: Arc<BodyPool>,
    /// The last frame was a large body: the next read brings its successor's
    /// header and not much more.
    lead: bool,
}

impl Connection {
    /// Starts a connection at time `now`; our greeting is queued for transmission.
    pub fn new(config: Config, now: Instant) -> Result<Connection, Error> {
        let ours = config.validate()?;
        let handshake = match &config.mechanism {
            MechanismConfig::Null { authenticate } => {
                Handshake::Null(NullHandshake::new(*authenticate))
            }
            MechanismConfig::PlainClient { username, password } => {
                Handshake::PlainClient(plain::PlainClient::new(username.clone(), password.clone()))
            }
            MechanismConfig::PlainServer => Handshake::PlainServer(plain::PlainServer::new()),
            MechanismConfig::CurveClient { keys, server_key } => {
                Handshake::CurveClient(Box::new(CurveClient::new(keys.clone(), *server_key)))
            }
            MechanismConfig::CurveServer { keys } => {
                Handshake::CurveServer(Box::new(CurveServer::new(keys.clone())))
            }
        };
        let mut output = BytesMut::with_capacity(GREETING_LEN);
        output.put_slice(&encode_greeting(
            config.mechanism.kind(),
            config.mechanism.as_server(),
        ));
        Ok(Connection {
            handshake_deadline: now.checked_add(config.handshake_timeout),
            heartbeat: Heartbeat::new(config.heartbeat),
            config,
            ours,
            phase: Phase::Greeting,
            handshake,
            awaiting_decision: false,
            accepted: None,
            version: Version::V3_1,
            input: BytesMut::new(),
            output,
            queued: None,
            error: None,
            now,
            partial: Vec::new(),
            partial_len: 0,
            arena: crate::frame::Arena::new(),
            cipher: None,
            scratch: BytesMut::new(),
            body: None,
            done: VecDeque::new(),
            done_bytes: 0,
            pool: Arc::default(),
            lead: false,
        })
    }

    /// The configuration the connection was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Buffers bytes received from the peer at time `now`.
    ///
    /// Nothing is decoded here; call [`poll_event`](Connection::poll_event).
    /// Input after a failure is discarded.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.now = now;
        if self.error.is_some() || data.is_empty() {
            return;
        }
        self.heartbeat.on_input();
        let taken = match &mut self.body {
            Some(body) => body.fill_from(data),
            None => 0,
        };
        self.input.extend_from_slice(&data[taken..]);
    }

    /// Reads straight into the connection's input buffer, saving the copy
    /// [`handle_input`](Connection::handle_input) makes: `read` gets a
    /// buffer with room for up to `room` bytes (less while the rest of a
    /// large frame is read into a buffer of its own), must only append to it
    /// (as tokio's `try_read_buf` does), and returns how many bytes it
    /// appended. Input after a failure is read and discarded.
    pub fn read_input<E>(
        &mut self,
        now: Instant,
        room: usize,
        read: impl FnOnce(&mut dyn BufMut) -> Result<usize, E>,
    ) -> Result<usize, E> {
        self.now = now;
        if self.error.is_some() {
            return read(&mut BytesMut::with_capacity(room));
        }
        if self.body.is_none() {
            self.start_large_body();
        }
        let n = match &mut self.body {
            Some(body) if body.missing() > 0 => {
                // The input is empty while a body is read (see
                // `start_large_body`), so the header read after the body
                // takes its place in the stream.
                let n = body.read_into(&mut self.input, read)?;
                self.hold_complete_body();
                n
            }
            _ => {
                let room = if std::mem::take(&mut self.lead) {
                    room.min(LEAD_READ)
                } else {
                    room
                };
                self.input.reserve(room);
                read(&mut (&mut self.input).limit(room))?
            }
        };
        if n > 0 {
            self.heartbeat.on_input();
        }
        Ok(n)
    }

    /// Sets a body that has just been completed aside (within
    /// [`HELD_BODIES_BYTES`]), so that reading goes on: its successor's
    /// header is likely already waiting. Beyond the limit the body stays
    /// where it is, and input stops until it is decoded.
    fn hold_complete_body(&mut self) {
        let room = HELD_BODIES_BYTES.saturating_sub(self.done_bytes);
        if let Some(body) = self.body.take_if(|b| b.missing() == 0 && b.held() <= room) {
            let (more, body) = self.finish_body(body);
            self.done_bytes += body.len();
            self.done.push_back((more, body));
        }
    }

    /// A complete large body as a frame's bytes (with its MORE flag); the
    /// next read brings its successor's header.
    fn finish_body(&mut self, body: LargeBody) -> (bool, Bytes) {
        self.lead = true;
        (body.more, body.finish(&self.pool))
    }

    /// The oldest large body complete but not yet decoded: one set aside,
    /// or the one in place.
    fn take_complete_body(&mut self) -> Option<(bool, Bytes)> {
        if let Some((more, body)) = self.done.pop_front() {
            self.done_bytes = self.done_bytes.saturating_sub(body.len());
            return Some((more, body));
        }
        let body = self.body.take_if(|b| b.missing() == 0)?;
        Some(self.finish_body(body))
    }

    /// When the input holds the start of a large message frame (and
    /// nothing after it), moves it to a buffer of its own, into which the
    /// rest of the body is then read.
    fn start_large_body(&mut self) {
        if !matches!(self.phase, Phase::Active) || self.cipher.is_some() {
            return;
        }
        let Ok(Some((header_len, size))) =
            crate::frame::parse_header(&self.input, &self.frame_limits())
        else {
            return;
        };
        let flags = self.input[0];
        if flags & FLAG_COMMAND != 0
            || !(BODY_MIN..=BODY_MAX).contains(&size)
            || self.input.len() >= header_len + size
        {
            return;
        }
        let more = flags & crate::frame::FLAG_MORE != 0;
        if let Some(body) = LargeBody::start(&self.pool, more, size, &self.input[header_len..]) {
            self.input.clear();
            self.body = Some(body);
        }
    }

    /// Gives back the capacity of buffers that hold nothing, so that an
    /// idle connection costs a few hundred bytes rather than its largest
    /// read. Cheap to call; a driver calls it when a connection is quiet.
    pub fn release_idle_buffers(&mut self) {
        if self.input.is_empty() && self.input.capacity() > 0 {
            self.input = BytesMut::new();
        }
        if self.output.is_empty() && self.output.capacity() > 0 {
            self.output = BytesMut::new();
        }
        if self.scratch.capacity() > 0 {
            self.scratch = BytesMut::new();
        }
        self.pool.release();
        if self.done.is_empty() && self.done.capacity() > 0 {
            self.done = VecDeque::new();
        }
        if self.partial.is_empty() && self.partial.capacity() > 0 {
            self.partial = Vec::new();
        }
        self.arena.release();
    }

    /// Bytes received but not yet decoded.
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    /// Bytes received and still held: undecoded input plus the frames of a
    /// multipart message not yet complete. A driver sums these across
    /// connections to bound what peers can make it hold.
    pub fn retained_input(&self) -> usize {
        self.input
            .len()
            .saturating_add(self.body.as_ref().map_or(0, LargeBody::held))
            .saturating_add(self.done_bytes)
            .saturating_add(usize::try_from(self.partial_len).unwrap_or(usize::MAX))
    }

    /// Tells the connection that its driver is deliberately not reading
    /// (back-pressure): the peer's bytes wait in the transport, so its
    /// silence must not count against it as a heartbeat timeout would.
    pub fn input_held_back(&mut self) {
        self.heartbeat.on_input();
    }

    /// Whether the driver should read more from the transport: false once a
    /// failure happened, while an authentication decision is pending, or when
    /// much undecoded input is already buffered (the caller is not polling
    /// events fast enough).
    pub fn wants_input(&self) -> bool {
        if self.error.is_some() || self.awaiting_decision {
            return false;
        }
        match &self.body {
            // A complete body is decoded before anything more is read.
            Some(body) => body.missing() > 0,
            None => self.input.len() < INPUT_HIGH_WATER || self.needs_more_for_current_frame(),
        }
    }

    fn needs_more_for_current_frame(&self) -> bool {
        // A frame larger than the high-water mark must still be completed.
        matches!(
            crate::frame::pending_frame_len(&self.input, &self.frame_limits()),
            Ok(Some(total)) if total > self.input.len()
        )
    }

    /// Advances time: sends heartbeats and enforces deadlines.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.now = now;
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.handshake_deadline.is_some_and(|d| d <= now) {
            let millis = duration_millis(self.config.handshake_timeout);
            return Err(self.fail(Error::HandshakeTimeout { millis }));
        }
        match self.heartbeat.on_timeout(now) {
            HeartbeatAction::None => Ok(()),
            HeartbeatAction::SendPing => {
                let ttl = self.heartbeat.config().ttl;
                let deciseconds = u16::try_from(ttl.as_millis() / 100).unwrap_or(u16::MAX);
                self.emit_command(None, "PING", &[&deciseconds.to_be_bytes()]);
                Ok(())
            }
            HeartbeatAction::Expired(after) => Err(self.fail(Error::HeartbeatTimeout {
                millis: duration_millis(after),
            })),
        }
    }

    /// The next instant at which [`handle_timeout`](Connection::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        [self.handshake_deadline, self.heartbeat.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Appends pending protocol output (greeting, handshake, PING/PONG, ERROR) to `buf`.
    /// Returns how many bytes were appended.
    pub fn poll_transmit(&mut self, buf: &mut BytesMut) -> usize {
        let n = self.output.len();
        if n > 0 {
            buf.extend_from_slice(&self.output);
            self.output.clear();
        }
        n
    }

    /// Whether [`poll_transmit`](Connection::poll_transmit) has anything to give.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// The failure that ended the connection, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Whether the handshake is complete and the connection has not failed.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Active)
    }

    /// The negotiated ZMTP revision (meaningful once the greeting is exchanged).
    pub fn version(&self) -> Version {
        self.version
    }

    /// Encodes a message into `buf`, after any pending protocol output so the
    /// bytes leave in the order they were produced.
    pub fn send(&mut self, msg: &Message, buf: &mut BytesMut) -> Result<(), Error> {
        self.check_sendable()?;
        if msg.is_empty() {
            return Err(Error::EmptyMessage);
        }
        self.poll_transmit(buf);
        let last = msg.len() - 1;
        match &mut self.cipher {
            Some(cipher) => {
                buf.reserve(msg.payload_len() + (9 + CURVE_OVERHEAD) * msg.len());
                for (i, frame) in msg.frames().iter().enumerate() {
                    cipher.encrypt_frame(i < last, false, frame, buf);
                }
            }
            None => {
                buf.reserve(msg.payload_len() + 9 * msg.len());
                for (i, frame) in msg.frames().iter().enumerate() {
                    encode_header(buf, i < last, false, frame.len());
                    buf.put_slice(frame);
                }
            }
        }
        Ok(())
    }

    /// As [`send`](Connection::send), but cleartext frames of
    /// [`ZERO_COPY_THRESHOLD`](crate::frame::ZERO_COPY_THRESHOLD) bytes and
    /// more are not copied: what `buf` holds (ending with the frame's
    /// header) moves to `segments`, followed by the frame itself, for a
    /// vectored write. Small frames, and every CURVE frame (encrypted
    /// anyway), are encoded into `buf` as by `send`.
    pub fn send_segmented(
        &mut self,
        msg: &Message,
        buf: &mut BytesMut,
        segments: &mut impl Extend<Bytes>,
    ) -> Result<(), Error> {
        let large = |f: &Frame| f.len() >= crate::frame::ZERO_COPY_THRESHOLD;
        if self.cipher.is_some() || !msg.frames().iter().any(large) {
            return self.send(msg, buf);
        }
        self.check_sendable()?;
        self.poll_transmit(buf);
        let last = msg.len() - 1;
        for (i, frame) in msg.frames().iter().enumerate() {
            encode_header(buf, i < last, false, frame.len());
            if large(frame) {
                segments.extend([buf.split().freeze(), frame.to_bytes()]);
            } else {
                buf.put_slice(frame);
            }
        }
        Ok(())
    }

    /// Encodes `msgs` in order, each as
    /// [`send_segmented`](Connection::send_segmented) would, checking the
    /// connection once for the lot: a batch of small cleartext messages is
    /// encoded without a call per message. On an error nothing more is
    /// encoded; what was is in `buf` and `segments`.
    pub fn send_all<'a>(
        &mut self,
        msgs: impl IntoIterator<Item = &'a Message>,
        buf: &mut BytesMut,
        segments: &mut impl Extend<Bytes>,
    ) -> Result<(), Error> {
        self.check_sendable()?;
        self.poll_transmit(buf);
        for msg in msgs {
            match msg.frames() {
                [frame]
                    if self.cipher.is_none() && frame.len() < crate::frame::ZERO_COPY_THRESHOLD =>
                {
                    match frame.inline_parts() {
                        Some((data, len)) => crate::frame::encode_inline(buf, data, len),
                        None => crate::frame::encode_frame(buf, false, false, frame),
                    }
                }
                _ => self.send_segmented(msg, buf, segments)?,
            }
        }
        Ok(())
    }

    /// Writes a command of the data phase (PING, PONG, SUBSCRIBE, CANCEL):
    /// framed as a command, or boxed as a MESSAGE with the COMMAND bit in a
    /// CURVE session. `None` writes to our own output queue.
    fn emit_command(&mut self, buf: Option<&mut BytesMut>, name: &str, parts: &[&[u8]]) {
        let out = match buf {
            Some(b) => b,
            None => &mut self.output,
        };
        match &mut self.cipher {
            Some(cipher) => {
                self.scratch.clear();
                self.scratch
                    .put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
                self.scratch.put_slice(name.as_bytes());
                for p in parts {
                    self.scratch.put_slice(p);
                }
                cipher.encrypt_frame(false, true, &self.scratch, out);
            }
            None => command::encode_command(out, name, parts),
        }
    }

    /// Sends a subscription to the peer: a SUBSCRIBE command to a 3.1 peer,
    /// a message starting with 1 to a 3.0 peer.
    pub fn send_subscribe(&mut self, topic: &[u8], buf: &mut BytesMut) -> Result<(), Error> {
        self.send_subscription(true, topic, buf)
    }

    /// Cancels a subscription: CANCEL to a 3.1 peer, a message starting with 0 to a 3.0 peer.
    pub fn send_cancel(&mut self, topic: &[u8], buf: &mut BytesMut) -> Result<(), Error> {
        self.send_subscription(false, topic, buf)
    }

    fn send_subscription(
        &mut self,
        subscribe: bool,
        topic: &[u8],
        buf: &mut BytesMut,
    ) -> Result<(), Error> {
        self.check_sendable()?;
        self.poll_transmit(buf);
        match (self.version, subscribe) {
            (Version::V3_0, _) => {
                let mut body = Vec::with_capacity(topic.len() + 1);
                body.push(u8::from(subscribe));
                body.extend_from_slice(topic);
                return self.send(&Message::from(body), buf);
            }
            (_, true) => self.emit_command(Some(buf), "SUBSCRIBE", &[topic]),
            (_, false) => self.emit_command(Some(buf), "CANCEL", &[topic]),
        }
        Ok(())
    }

    fn check_sendable(&self) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if !self.is_ready() {
            return Err(Error::NotReady);
        }
        Ok(())
    }

    /// Answers the pending [`Event::Authenticate`].
    ///
    /// A refusal fails the connection: an ERROR with the status is queued for
    /// the peer and [`poll_event`](Connection::poll_event) reports
    /// [`Error::AuthenticationRefused`]. Only misuse is returned here.
    pub fn complete_auth(&mut self, decision: AuthDecision) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if !self.awaiting_decision {
            return Err(Error::NoAuthenticationPending);
        }
        if let AuthDecision::Refuse { status, .. } = decision {
            if !matches!(status, 300 | 400 | 500) {
                return Err(Error::InvalidStatus(status));
            }
        }
        self.awaiting_decision = false;
        let mut ctx = Ctx {
            out: &mut self.output,
            ours: &self.ours,
            socket_type: self.config.socket_type,
        };
        match self.handshake.on_decision(&decision, &mut ctx) {
            Ok(step) => {
                if let AuthDecision::Accept { user_id, metadata } = decision {
                    self.accepted = Some((user_id, metadata));
                }
                if let Some(event) = self.apply(step) {
                    self.queued = Some(event);
                }
            }
            Err(e) => {
                self.fail(e);
            }
        }
        Ok(())
    }

    /// Decodes the next event from buffered input.
    ///
    /// `Ok(None)` means nothing more can be decoded until more input arrives
    /// (or an authentication decision is made). An error is final.
    pub fn poll_event(&mut self) -> Result<Option<Event>, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if let Some(event) = self.queued.take() {
            return Ok(Some(event));
        }
        match self.decode_next() {
            Ok(event) => Ok(event),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Decodes whole one-frame messages from the head of the input and
    /// hands each to `deliver`, until `max_msgs` messages or `max_bytes` of
    /// payload have gone (the message that reaches `max_bytes` goes too, so
    /// with both bounds above zero at least one goes, if one is there) or
    /// the input holds anything else: a multi-frame message, a command, a
    /// large or incomplete frame, a malformed header. Returns the messages and
    /// payload bytes delivered. What it stops at is left for
    /// [`poll_event`](Connection::poll_event), so the two may be mixed
    /// freely, and every check `poll_event` makes still holds: this takes
    /// only frames that pass them all.
    ///
    /// A stream of small messages is decoded this way without an event per
    /// message. Only cleartext sessions of socket types that take no
    /// subscriptions decode here; others get `(0, 0)`.
    pub fn poll_messages(
        &mut self,
        max_msgs: usize,
        max_bytes: usize,
        mut deliver: impl FnMut(Message),
    ) -> (usize, usize) {
        if self.error.is_some()
            || self.queued.is_some()
            || !matches!(self.phase, Phase::Active)
            || self.cipher.is_some()
            || self.body.is_some()
            || !self.done.is_empty()
            || !self.partial.is_empty()
            || self.config.socket_type.accepts_subscriptions()
        {
            return (0, 0);
        }
        let limit = self.config.limits.max_message_size;
        let (mut msgs, mut bytes, mut at) = (0, 0, 0);
        while msgs < max_msgs && bytes < max_bytes {
            let Some((header_len, size)) =
                crate::frame::whole_small_message(&self.input[at..], limit)
            else {
                break;
            };
            let body = &self.input[at + header_len..at + header_len + size];
            deliver(Message::from(Frame::copied(body)));
            at += header_len + size;
            msgs += 1;
            bytes += size;
        }
        self.input.advance(at);
        (msgs, bytes)
    }

    /// Records a failure, queues an ERROR for the peer where that helps it,
    /// and drops everything that will never be used.
    fn fail(&mut self, error: Error) -> Error {
        let tell_peer = matches!(self.phase, Phase::Handshake)
            && matches!(
                error.category(),
                ErrorCategory::Protocol
                    | ErrorCategory::Incompatible
                    | ErrorCategory::Limit
                    | ErrorCategory::Authentication
            )
            && !matches!(error, Error::PeerError { .. });
        // Output queued before the failure (our READY, say) still goes out,
        // so the peer can diagnose the mismatch on its side too.
        if tell_peer {
            let reason = match &error {
                // libzmq reads a 3-digit reason as a ZAP status code, and so
                // do we: the peer then reports an authentication failure.
                Error::AuthenticationRefused { status, .. } => status.to_string(),
                Error::Decryption { .. } => "400".to_owned(),
                other => other.to_string(),
            };
            encode_error(&mut self.output, &reason);
        }
        self.phase = Phase::Failed;
        self.awaiting_decision = false;
        self.input = BytesMut::new();
        self.body = None;
        self.done = VecDeque::new();
        self.done_bytes = 0;
        self.partial = Vec::new();
        self.partial_len = 0;
        self.queued = None;
        self.error = Some(error.clone());
        error
    }

    fn frame_limits(&self) -> FrameLimits {
        match self.phase {
            Phase::Active => {
                let remaining = self
                    .config
                    .limits
                    .max_message_size
                    .saturating_sub(self.partial_len);
                FrameLimits {
                    max_message_frame: remaining,
                    // Room for a SUBSCRIBE with a topic as large as a message.
                    max_command_frame: self.config.limits.max_message_size.saturating_add(16),
                }
            }
            _ => FrameLimits {
                max_message_frame: 0,
                max_command_frame: self.config.limits.max_handshake_command,
            },
        }
    }

    fn decode_next(&mut self) -> Result<Option<Event>, Error> {
        loop {
            match self.phase {
                Phase::Greeting => {
                    let kind = self.config.mechanism.kind();
                    let as_server = self.config.mechanism.as_server();
                    let seen = &self.input[..self.input.len().min(GREETING_LEN)];
                    let Some(peer) = check_peer_greeting(seen, kind, as_server)? else {
                        return Ok(None);
                    };
                    self.input.advance(GREETING_LEN);
                    self.version = peer.version;
                    self.phase = Phase::Handshake;
                    let mut ctx = Ctx {
                        out: &mut self.output,
                        ours: &self.ours,
                        socket_type: self.config.socket_type,
                    };
                    let step = self.handshake.start(&mut ctx)?;
                    if let Some(event) = self.apply(step) {
                        return Ok(Some(event));
                    }
                }
                Phase::Handshake => {
                    if self.awaiting_decision {
                        return Ok(None);
                    }
                    if self
                        .input
                        .first()
                        .is_some_and(|&f| f & (FLAG_COMMAND | FLAGS_RESERVED) == 0)
                    {
                        return Err(Error::MessageBeforeHandshake);
                    }
                    let limits = self.frame_limits();
                    let Some(frame) = decode_frame(&mut self.input, &limits)? else {
                        return Ok(None);
                    };
                    if !frame.command {
                        return Err(Error::MessageBeforeHandshake);
                    }
                    let cmd = RawCommand::parse_handshake(&frame.body)?;
                    let mut ctx = Ctx {
                        out: &mut self.output,
                        ours: &self.ours,
                        socket_type: self.config.socket_type,
                    };
                    let step = self.handshake.on_command(cmd, &mut ctx)?;
                    if let Some(event) = self.apply(step) {
                        return Ok(Some(event));
                    }
                }
                Phase::Active => {
                    if let Some((more, body)) = self.take_complete_body() {
                        if let Some(event) = self.on_message_frame(more, Frame::from(body))? {
                            return Ok(Some(event));
                        }
                        continue;
                    }
                    let limits = self.frame_limits();
                    let decoded = match &mut self.cipher {
                        // A CURVE body is copied once, into the arena, and
                        // decrypted there.
                        Some(cipher) => {
                            let arena = &mut self.arena;
                            crate::frame::decode_frame_with(
                                &mut self.input,
                                &limits,
                                |more, _, body| {
                                    if more {
                                        return Err(Error::malformed(
                                            b"MESSAGE",
                                            "MORE set on the frame that carries it",
                                        ));
                                    }
                                    match body {
                                        FrameBody::Lent(b) => cipher.decrypt_frame_in(b, arena),
                                        FrameBody::Owned(b) => cipher
                                            .decrypt_frame(b)
                                            .map(|(m, c, b)| (m, c, Frame::from(b))),
                                    }
                                },
                            )
                        }
                        None => crate::frame::decode_frame_with(
                            &mut self.input,
                            &limits,
                            |more, command, body| {
                                let body = match body {
                                    FrameBody::Lent(b) => Frame::copied(b),
                                    FrameBody::Owned(b) => Frame::from(b),
                                };
                                Ok((more, command, body))
                            },
                        ),
                    };
                    let (more, command, body) = match decoded {
                        Ok(Some(frame)) => frame,
                        Ok(None) => return Ok(None),
                        Err(Error::FrameTooLarge {
                            kind: "message", ..
                        }) if self.partial_len > 0 => {
                            return Err(Error::MessageTooLarge {
                                limit: self.config.limits.max_message_size,
                            });
                        }
                        Err(e) => return Err(e),
                    };
                    let event = if command {
                        if more {
                            return Err(Error::CommandWithMore);
                        }
                        self.on_command(&body)?
                    } else {
                        self.on_message_frame(more, body)?
                    };
                    if event.is_some() {
                        return Ok(event);
                    }
                }
                Phase::Failed => return Ok(None),
            }
        }
    }

    /// Acts on a mechanism step; returns the event to report, if any.
    fn apply(&mut self, step: Step) -> Option<Event> {
        match step {
            Step::Continue => None,
            Step::Authenticate(request) => {
                self.awaiting_decision = true;
                Some(Event::Authenticate(Box::new(request)))
            }
            Step::Done(peer, cipher) => {
                self.cipher = cipher;
                self.phase = Phase::Active;
                self.handshake_deadline = None;
                if self.version >= Version::V3_1 {
                    self.heartbeat.start(self.now);
                }
                let socket_type = peer
                    .get(metadata::SOCKET_TYPE)
                    .and_then(|t| SocketType::from_wire(t))
                    .unwrap_or(self.config.socket_type);
                let routing_id = peer
                    .get(metadata::IDENTITY)
                    .filter(|id| !id.is_empty())
                    .cloned();
                let (user_id, auth_metadata) = match self.accepted.take() {
                    Some((user_id, md)) => (Some(user_id), md),
                    None => (None, Metadata::new()),
                };
                Some(Event::Ready(Box::new(PeerInfo {
                    version: self.version,
                    mechanism: self.config.mechanism.kind(),
                    socket_type,
                    routing_id,
                    metadata: peer,
                    user_id,
                    auth_metadata,
                })))
            }
        }
    }

    fn on_command(&mut self, body: &Frame) -> Result<Option<Event>, Error> {
        // Commands are rare after the handshake: a copy of a small one is fine.
        let cmd = RawCommand::parse(&body.to_bytes())?;
        let accepts_subs = self.config.socket_type.accepts_subscriptions();
        match cmd.name.as_ref() {
            b"PING" => {
                let ping = parse_ping(&cmd.data)?;
                self.heartbeat.on_ping(self.now, ping.ttl);
                self.emit_command(None, "PONG", &[&ping.context]);
                Ok(None)
            }
            b"PONG" => {
                parse_pong(&cmd.data)?;
                Ok(None)
            }
            b"SUBSCRIBE" if accepts_subs => Ok(Some(Event::Subscribe(cmd.data))),
            b"CANCEL" if accepts_subs => Ok(Some(Event::Cancel(cmd.data))),
            // Other socket types have no use for subscriptions; libzmq drops them too.
            b"SUBSCRIBE" | b"CANCEL" => Ok(None),
            b"ERROR" => Err(mechanism::peer_error(&cmd)),
            b"READY" | b"HELLO" | b"WELCOME" | b"INITIATE" => {
                Err(Error::unexpected(&cmd.name, "after the handshake"))
            }
            // Unknown commands are ignored for forward compatibility (RFC 37).
            _ => Ok(None),
        }
    }

    fn on_message_frame(&mut self, more: bool, body: Frame) -> Result<Option<Event>, Error> {
        if self.partial.len() >= self.config.limits.max_frames {
            return Err(Error::TooManyFrames {
                limit: self.config.limits.max_frames,
            });
        }
        if !more && self.partial.is_empty() {
            // A one-frame message: no frame list to build.
            if self.config.socket_type.accepts_subscriptions() {
                // Subscriptions from 3.0 peers (and libzmq XSUB) travel as messages.
                match body.first() {
                    Some(1) => return Ok(Some(Event::Subscribe(body.slice_from(1).into_bytes()))),
                    Some(0) => return Ok(Some(Event::Cancel(body.slice_from(1).into_bytes()))),
                    _ => {}
                }
            }
            return Ok(Some(Event::Message(Message::from(body))));
        }
        self.partial_len += body.len() as u64;
        self.partial.push(body);
        if more {
            return Ok(None);
        }
        self.partial_len = 0;
        let frames = std::mem::take(&mut self.partial);
        Ok(Some(Event::Message(Message::from(frames))))
    }
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
