//! Protocol tests of the sans-IO core: a simulated pair of connections with
//! a virtual clock, exact byte vectors, property tests, and one named test
//! per wire-level threat (see docs/SECURITY.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use zeroguard_zmtp::command::{encode_command, encode_metadata_command};
use zeroguard_zmtp::frame::{decode_frame, encode_frame, FrameLimits};
use zeroguard_zmtp::greeting::encode_greeting;
use zeroguard_zmtp::{
    AuthDecision, Config, Connection, Credentials, Error, ErrorCategory, Event, MechanismConfig,
    MechanismKind, Message, Metadata, SocketType, Version,
};

const NULL: MechanismConfig = MechanismConfig::Null {
    authenticate: false,
};

fn null_config(t: SocketType) -> Config {
    Config::new(t, NULL)
}

/// Two connections joined by a perfect, instantaneous wire.
struct Pair {
    a: Connection,
    b: Connection,
    now: Instant,
    a_events: Vec<Event>,
    b_events: Vec<Event>,
    a_error: Option<Error>,
    b_error: Option<Error>,
}

type Judge = fn(&Credentials) -> AuthDecision;

impl Pair {
    fn new(a: Config, b: Config) -> Pair {
        let now = Instant::now();
        Pair {
            a: Connection::new(a, now).unwrap(),
            b: Connection::new(b, now).unwrap(),
            now,
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_error: None,
            b_error: None,
        }
    }

    /// Moves bytes both ways and drains events until nothing moves, answering
    /// authentication requests with `judge`.
    fn pump(&mut self, judge: Judge) {
        for _ in 0..64 {
            let mut moved = false;
            let mut wire = BytesMut::new();
            if self.a.poll_transmit(&mut wire) > 0 {
                self.b.handle_input(self.now, &wire);
                moved = true;
            }
            let mut wire = BytesMut::new();
            if self.b.poll_transmit(&mut wire) > 0 {
                self.a.handle_input(self.now, &wire);
                moved = true;
            }
            moved |= drain(&mut self.a, &mut self.a_events, &mut self.a_error, judge);
            moved |= drain(&mut self.b, &mut self.b_events, &mut self.b_error, judge);
            if !moved {
                return;
            }
        }
        panic!("pair did not settle");
    }

    fn send_a_to_b(&mut self, msg: &Message) {
        let mut wire = BytesMut::new();
        self.a.send(msg, &mut wire).unwrap();
        self.b.handle_input(self.now, &wire);
        self.pump(accept_all);
    }

    fn b_messages(&self) -> Vec<Message> {
        messages(&self.b_events)
    }
}

fn drain(
    c: &mut Connection,
    events: &mut Vec<Event>,
    error: &mut Option<Error>,
    judge: Judge,
) -> bool {
    let mut any = false;
    loop {
        match c.poll_event() {
            Ok(Some(Event::Authenticate(req))) => {
                c.complete_auth(judge(&req.credentials)).unwrap();
                events.push(Event::Authenticate(req));
                any = true;
            }
            Ok(Some(e)) => {
                events.push(e);
                any = true;
            }
            Ok(None) => return any,
            Err(e) => {
                if error.is_none() {
                    *error = Some(e);
                    any = true;
                }
                return any;
            }
        }
    }
}

fn accept_all(_: &Credentials) -> AuthDecision {
    AuthDecision::accept()
}

fn admin_only(c: &Credentials) -> AuthDecision {
    match c {
        Credentials::Plain(hello)
            if &hello.username[..] == b"admin" && &hello.password[..] == b"secret" =>
        {
            AuthDecision::Accept {
                user_id: Bytes::from_static(b"admin"),
                metadata: Metadata::new(),
            }
        }
        _ => AuthDecision::refuse("wrong password"),
    }
}

fn messages(events: &[Event]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn ready_count(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Ready(_)))
        .count()
}

/// A server under test fed raw bytes by a hand-written peer.
fn raw_server(t: SocketType) -> (Connection, Instant) {
    let now = Instant::now();
    let mut config = null_config(t);
    config.limits.max_message_size = 64 * 1024;
    (Connection::new(config, now).unwrap(), now)
}

/// The bytes a well-behaved NULL peer of type `t` sends up to and including READY.
fn null_preamble(t: SocketType) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_slice(&encode_greeting(MechanismKind::Null, false));
    let mut md = Metadata::new();
    md.insert("Socket-Type", t.as_str()).unwrap();
    encode_metadata_command(&mut out, "READY", &md);
    out
}

/// Feeds `bytes` and drains events; returns delivered messages and the error, if any.
fn feed(c: &mut Connection, now: Instant, bytes: &[u8]) -> (Vec<Message>, Option<Error>) {
    c.handle_input(now, bytes);
    let mut events = Vec::new();
    let mut error = None;
    drain(c, &mut events, &mut error, accept_all);
    (messages(&events), error)
}

// ---------------------------------------------------------------- handshakes

#[test]
fn null_handshake_and_messages_both_ways() {
    let mut p = Pair::new(
        null_config(SocketType::Dealer),
        null_config(SocketType::Router),
    );
    p.pump(accept_all);
    assert_eq!(ready_count(&p.a_events), 1);
    assert_eq!(ready_count(&p.b_events), 1);
    let Event::Ready(info) = &p.b_events[0] else {
        panic!("first event is not Ready")
    };
    assert_eq!(info.socket_type, SocketType::Dealer);
    assert_eq!(info.version, Version::V3_1);
    assert_eq!(info.mechanism, MechanismKind::Null);

    let msg = Message::from_frames(["", "hello", "world"]);
    p.send_a_to_b(&msg);
    assert_eq!(p.b_messages(), vec![msg]);

    let mut wire = BytesMut::new();
    p.b.send(&Message::from("back"), &mut wire).unwrap();
    p.a.handle_input(p.now, &wire);
    p.pump(accept_all);
    assert_eq!(messages(&p.a_events), vec![Message::from("back")]);
}

#[test]
fn routing_id_is_announced_by_dealer() {
    let mut dealer = null_config(SocketType::Dealer);
    dealer.routing_id = Bytes::from_static(b"worker-1");
    let mut p = Pair::new(dealer, null_config(SocketType::Router));
    p.pump(accept_all);
    let Event::Ready(info) = &p.b_events[0] else {
        panic!("no Ready")
    };
    assert_eq!(info.routing_id.as_deref(), Some(&b"worker-1"[..]));
}

#[test]
fn incompatible_socket_types_are_refused_with_error_command() {
    let mut p = Pair::new(null_config(SocketType::Push), null_config(SocketType::Push));
    p.pump(accept_all);
    assert!(matches!(
        p.a_error,
        Some(Error::IncompatibleSocketType { .. })
    ));
    assert_eq!(
        p.a_error.as_ref().unwrap().category(),
        ErrorCategory::Incompatible
    );
    assert_eq!(ready_count(&p.a_events) + ready_count(&p.b_events), 0);
}

#[test]
fn null_with_authentication_waits_for_the_decision() {
    let mut server = null_config(SocketType::Rep);
    server.mechanism = MechanismConfig::Null { authenticate: true };
    let mut p = Pair::new(null_config(SocketType::Req), server);
    p.pump(|_| AuthDecision::refuse("address not allowed"));
    assert!(matches!(
        p.b_error,
        Some(Error::AuthenticationRefused { status: 400, .. })
    ));
    // The client is told why, with the status code libzmq expects.
    assert_eq!(
        p.a_error,
        Some(Error::PeerError {
            reason: "400".into()
        })
    );
    assert_eq!(
        p.a_error.as_ref().unwrap().category(),
        ErrorCategory::Authentication
    );
    assert_eq!(ready_count(&p.a_events), 0);
}

#[test]
fn plain_handshake_with_good_credentials() {
    let client = Config::new(
        SocketType::Req,
        MechanismConfig::plain_client("admin", "secret"),
    );
    let server = Config::new(SocketType::Rep, MechanismConfig::PlainServer);
    let mut p = Pair::new(client, server);
    p.pump(admin_only);
    assert!(p.a_error.is_none() && p.b_error.is_none());
    let ready = p
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::Ready(i) => Some(i.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ready.user_id.as_deref(), Some(&b"admin"[..]));
    assert_eq!(ready.mechanism, MechanismKind::Plain);
    p.send_a_to_b(&Message::from("request"));
    assert_eq!(p.b_messages(), vec![Message::from("request")]);
}

#[test]
fn plain_wrong_password_is_refused_and_nothing_is_delivered() {
    let client = Config::new(
        SocketType::Push,
        MechanismConfig::plain_client("admin", "guess"),
    );
    let server = Config::new(SocketType::Pull, MechanismConfig::PlainServer);
    let mut p = Pair::new(client, server);
    p.pump(admin_only);
    assert!(matches!(
        p.b_error,
        Some(Error::AuthenticationRefused { .. })
    ));
    assert_eq!(
        p.a_error,
        Some(Error::PeerError {
            reason: "400".into()
        })
    );
    assert_eq!(
        p.a.send(&Message::from("x"), &mut BytesMut::new()),
        Err(p.a_error.clone().unwrap())
    );
    assert!(p.b_messages().is_empty());
}

#[test]
fn plain_password_never_appears_in_debug_output() {
    let config = Config::new(
        SocketType::Req,
        MechanismConfig::plain_client("u", "hunter2-secret"),
    );
    assert!(!format!("{config:?}").contains("hunter2"));
    let conn = Connection::new(config, Instant::now()).unwrap();
    assert!(!format!("{conn:?}").contains("hunter2"));
}

#[test]
fn zmtp_3_0_peer_gets_subscriptions_as_messages() {
    let (mut publisher, now) = raw_server(SocketType::Pub);
    let mut peer = null_preamble(SocketType::Sub);
    peer[11] = 0; // minor version 0
                  // A 3.0 subscriber subscribes with a message whose first byte is 1.
    encode_frame(&mut peer, false, false, b"\x01weather");
    publisher.handle_input(now, &peer);
    let mut events = Vec::new();
    while let Some(e) = publisher.poll_event().unwrap() {
        events.push(e);
    }
    assert_eq!(publisher.version(), Version::V3_0);
    assert_eq!(
        events.last(),
        Some(&Event::Subscribe(Bytes::from_static(b"weather")))
    );
}

#[test]
fn runs_of_small_messages_decode_in_one_call_within_the_bounds_asked() {
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut wire = null_preamble(SocketType::Push);
    for i in 0..10u8 {
        encode_frame(&mut wire, false, false, &[i; 16]);
    }
    c.handle_input(now, &wire);
    assert_eq!(
        c.poll_messages(8, usize::MAX, |_| {}),
        (0, 0),
        "before READY"
    );
    assert!(matches!(c.poll_event(), Ok(Some(Event::Ready(_)))));
    let mut got = Vec::new();
    assert_eq!(c.poll_messages(3, usize::MAX, |m| got.push(m)), (3, 48));
    // A byte bound is reached, not kept under: at least one message goes.
    assert_eq!(c.poll_messages(8, 1, |m| got.push(m)), (1, 16));
    assert_eq!(c.poll_messages(8, 20, |m| got.push(m)), (2, 32));
    assert_eq!(c.poll_messages(8, usize::MAX, |m| got.push(m)), (4, 64));
    assert_eq!(c.poll_messages(8, usize::MAX, |m| got.push(m)), (0, 0));
    let expected: Vec<Message> = (0..10u8).map(|i| Message::from(vec![i; 16])).collect();
    assert_eq!(got, expected);
}

#[test]
fn subscriptions_from_3_0_peers_never_decode_as_message_runs() {
    let (mut publisher, now) = raw_server(SocketType::XPub);
    let mut peer = null_preamble(SocketType::XSub);
    peer[11] = 0;
    encode_frame(&mut peer, false, false, b"\x01weather");
    publisher.handle_input(now, &peer);
    assert!(matches!(publisher.poll_event(), Ok(Some(Event::Ready(_)))));
    assert_eq!(publisher.poll_messages(8, usize::MAX, |_| {}), (0, 0));
    assert_eq!(
        publisher.poll_event(),
        Ok(Some(Event::Subscribe(Bytes::from_static(b"weather"))))
    );
}

#[test]
fn subscribe_commands_for_3_1_and_messages_for_3_0() {
    for (minor, expected) in [
        (1u8, &b"\x04\x0c\x09SUBSCRIBEab"[..]),
        (0u8, &b"\x00\x03\x01ab"[..]),
    ] {
        let now = Instant::now();
        let mut sub = Connection::new(null_config(SocketType::Sub), now).unwrap();
        let mut peer = null_preamble(SocketType::Pub);
        peer[11] = minor;
        sub.handle_input(now, &peer);
        while sub.poll_event().unwrap().is_some() {}
        let mut wire = BytesMut::new();
        sub.poll_transmit(&mut BytesMut::new());
        sub.send_subscribe(b"ab", &mut wire).unwrap();
        assert_eq!(&wire[..], expected);
    }
}

// -------------------------------------------------------------- byte vectors

#[test]
fn rfc23_worked_example_ready_bytes() {
    // The DEALER's READY from RFC 23's worked example: Socket-Type DEALER and an empty Identity.
    let expected: &[u8] =
        b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00";
    let now = Instant::now();
    let mut dealer = Connection::new(null_config(SocketType::Dealer), now).unwrap();
    let mut peer = BytesMut::new();
    peer.put_slice(&encode_greeting(MechanismKind::Null, false));
    dealer.handle_input(now, &peer);
    assert_eq!(dealer.poll_event().unwrap(), None);
    let mut out = BytesMut::new();
    dealer.poll_transmit(&mut out);
    assert_eq!(out.len(), 64 + expected.len());
    assert_eq!(&out[64..], expected);
    // And the same bytes parse back into a DEALER peer.
    let mut router = Connection::new(null_config(SocketType::Router), now).unwrap();
    let mut input = BytesMut::new();
    input.put_slice(&encode_greeting(MechanismKind::Null, false));
    input.put_slice(expected);
    router.handle_input(now, &input);
    let Some(Event::Ready(info)) = router.poll_event().unwrap() else {
        panic!("no Ready")
    };
    assert_eq!(info.socket_type, SocketType::Dealer);
    assert_eq!(info.routing_id, None);
}

#[test]
fn greeting_is_sent_first_and_whole() {
    let conn = Connection::new(null_config(SocketType::Pair), Instant::now());
    let mut out = BytesMut::new();
    conn.unwrap().poll_transmit(&mut out);
    assert_eq!(
        &out[..],
        &[
            0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 1, b'N', b'U', b'L', b'L', 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ][..]
    );
}

// ---------------------------------------------------------------- heartbeats

#[test]
fn heartbeat_pings_and_declares_a_silent_peer_dead() {
    let mut a = null_config(SocketType::Pair);
    a.heartbeat.interval = Some(Duration::from_secs(1));
    a.heartbeat.timeout = Duration::from_secs(3);
    let mut p = Pair::new(a, null_config(SocketType::Pair));
    p.pump(accept_all);
    let t0 = p.now;
    // The peer answers: PONGs keep the connection alive.
    for s in 1..=5 {
        p.now = t0 + Duration::from_secs(s);
        p.a.handle_timeout(p.now).unwrap();
        p.pump(accept_all);
        assert!(p.a_error.is_none());
    }
    // The peer goes silent: PINGs go unanswered until the timeout.
    let mut failed = None;
    for s in 6..=12 {
        let now = t0 + Duration::from_secs(s);
        if let Err(e) = p.a.handle_timeout(now) {
            failed = Some((s, e));
            break;
        }
        p.a.poll_transmit(&mut BytesMut::new());
    }
    let (at, error) = failed.expect("silent peer was never declared dead");
    assert_eq!(at, 9, "ping at 6 s, dead 3 s later");
    assert_eq!(error, Error::HeartbeatTimeout { millis: 3000 });
    assert_eq!(p.a.poll_timeout(), None);
}

#[test]
fn pong_echoes_the_ping_context_exactly() {
    let (mut c, now) = raw_server(SocketType::Pair);
    let mut input = null_preamble(SocketType::Pair);
    encode_command(&mut input, "PING", &[&[0, 0], b"0123456789abcdef"]);
    feed(&mut c, now, &input);
    let mut out = BytesMut::new();
    c.poll_transmit(&mut out);
    let expected: &[u8] = b"\x04\x15\x04PONG0123456789abcdef";
    assert!(out.ends_with(expected), "{out:?}");
}

#[test]
fn handshake_timeout_closes_a_silent_peer() {
    let (mut c, now) = raw_server(SocketType::Pull);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(10));
    assert!(c.handle_timeout(now + Duration::from_secs(9)).is_ok());
    assert_eq!(
        c.handle_timeout(deadline),
        Err(Error::HandshakeTimeout { millis: 10_000 })
    );
    assert_eq!(
        c.poll_event(),
        Err(Error::HandshakeTimeout { millis: 10_000 })
    );
}

// ------------------------------------------------- threats (docs/SECURITY.md)

#[test]
fn cve_2014_9721_zmtp_1_0_peer_refused() {
    let (mut c, now) = raw_server(SocketType::Pull);
    // ZMTP 1.0: identity frame (length 1, flags 0), then a message frame.
    let (delivered, error) = feed(&mut c, now, b"\x01\x00\x06\x00hello");
    assert!(delivered.is_empty());
    assert_eq!(error, Some(Error::LegacyVersion { major: 1 }));
    // A long identity length puts a zero flags bit at byte 9.
    let (mut c, now) = raw_server(SocketType::Pull);
    let (_, error) = feed(&mut c, now, b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x00");
    assert_eq!(error, Some(Error::LegacyVersion { major: 1 }));
}

#[test]
fn cve_2014_9721_zmtp_2_0_peer_refused() {
    let (mut c, now) = raw_server(SocketType::Pull);
    // ZMTP 2.0 greeting: signature, version 1, socket type PUSH, empty identity, then a message.
    let mut bytes = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1, 8, 0, 0];
    bytes.extend_from_slice(b"\x00\x05hello");
    let (delivered, error) = feed(&mut c, now, &bytes);
    assert!(delivered.is_empty());
    assert_eq!(error, Some(Error::LegacyVersion { major: 1 }));
    let mut output = BytesMut::new();
    c.poll_transmit(&mut output);
    assert_eq!(
        output.len(),
        64,
        "our greeting, but no ERROR frame, goes to a legacy peer"
    );
}

#[test]
fn cve_2014_7202_mechanism_mismatch_refused() {
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut bytes = BytesMut::new();
    bytes.put_slice(&encode_greeting(MechanismKind::Plain, false));
    // A PLAIN-speaking peer must not get past a NULL socket's greeting.
    encode_command(
        &mut bytes,
        "READY",
        &[b"\x0bSocket-Type\x00\x00\x00\x04PUSH"],
    );
    encode_frame(&mut bytes, false, false, b"smuggled");
    let (delivered, error) = feed(&mut c, now, &bytes);
    assert!(delivered.is_empty());
    assert_eq!(
        error,
        Some(Error::MechanismMismatch {
            ours: MechanismKind::Null,
            theirs: "PLAIN".into()
        })
    );
}

#[test]
fn cve_2019_6250_size_that_wraps_a_pointer_refused() {
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut bytes = null_preamble(SocketType::Push);
    // Long frame whose size would wrap a pointer on addition.
    bytes.put_slice(&[0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0]);
    bytes.put_slice(b"tail");
    let (delivered, error) = feed(&mut c, now, &bytes);
    assert!(delivered.is_empty());
    assert_eq!(
        error,
        Some(Error::FrameSizeOverflow {
            size: 0xFFFF_FFFF_FFFF_FFF0
        })
    );
}

#[test]
fn long_frame_of_2_pow_63_minus_1_refused_before_allocation() {
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut bytes = null_preamble(SocketType::Push);
    bytes.put_u8(0x02);
    bytes.put_u64(i64::MAX as u64);
    let (_, error) = feed(&mut c, now, &bytes);
    assert_eq!(
        error,
        Some(Error::FrameTooLarge {
            kind: "message",
            size: i64::MAX as u64,
            limit: 64 * 1024
        })
    );
    assert_eq!(
        c.buffered_input(),
        0,
        "input released, nothing reserved for the body"
    );
}

#[test]
fn negative_64_bit_size_refused() {
    // JeroMQ #440 / NetMQ #1168: sizes with the sign bit set.
    for size in [1u64 << 63, u64::MAX] {
        let (mut c, now) = raw_server(SocketType::Pull);
        let mut bytes = null_preamble(SocketType::Push);
        bytes.put_u8(0x02);
        bytes.put_u64(size);
        let (_, error) = feed(&mut c, now, &bytes);
        assert_eq!(error, Some(Error::FrameSizeOverflow { size }));
    }
}

#[test]
fn cve_2021_20235_frames_over_8k_across_read_boundaries() {
    let msg = Message::from_frames([vec![0xA5u8; 8193], vec![0x5Au8; 8192 * 3 + 7], vec![1u8; 3]]);
    let mut wire = null_preamble(SocketType::Push);
    let start = wire.len();
    let mut client = Pair::new(null_config(SocketType::Push), null_config(SocketType::Pull));
    client.pump(accept_all);
    client.a.send(&msg, &mut wire).unwrap();
    for chunk in [1usize, 7, 4095, 4096, 8191, 8192, 8193] {
        let (mut c, now) = raw_server(SocketType::Pull);
        let mut delivered = Vec::new();
        for piece in wire[..start]
            .chunks(chunk)
            .chain(wire[start..].chunks(chunk))
        {
            let (got, error) = feed(&mut c, now, piece);
            assert_eq!(error, None, "chunk size {chunk}");
            delivered.extend(got);
        }
        assert_eq!(delivered, vec![msg.clone()], "chunk size {chunk}");
    }
}

#[test]
fn cve_2019_13132_oversized_metadata_refused() {
    // A property value declaring more bytes than the command holds.
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut bytes = BytesMut::new();
    bytes.put_slice(&encode_greeting(MechanismKind::Null, false));
    encode_command(
        &mut bytes,
        "READY",
        &[b"\x0bSocket-Type\x00\x01\x00\x00PUSH"],
    );
    let (_, error) = feed(&mut c, now, &bytes);
    assert!(
        matches!(error, Some(Error::InvalidMetadata { .. })),
        "{error:?}"
    );
    // A READY larger than the handshake command limit is refused from its header alone.
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut bytes = BytesMut::new();
    bytes.put_slice(&encode_greeting(MechanismKind::Null, false));
    bytes.put_u8(0x06);
    bytes.put_u64(1 << 30);
    let (_, error) = feed(&mut c, now, &bytes);
    assert!(matches!(
        error,
        Some(Error::FrameTooLarge {
            kind: "command",
            ..
        })
    ));
}

#[test]
fn cve_2021_20234_partial_multipart_never_delivered() {
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut bytes = null_preamble(SocketType::Push);
    encode_frame(&mut bytes, true, false, b"part one");
    encode_frame(&mut bytes, true, false, b"part two");
    let (delivered, error) = feed(&mut c, now, &bytes);
    assert!(delivered.is_empty() && error.is_none());
    // The peer then breaks the protocol (or the connection ends): the partial message is dropped.
    let (delivered, error) = feed(&mut c, now, &[0xF0]);
    assert!(delivered.is_empty());
    assert_eq!(error, Some(Error::ReservedFlags { flags: 0xF0 }));
    assert_eq!(c.poll_event(), Err(Error::ReservedFlags { flags: 0xF0 }));
}

#[test]
fn short_ping_without_ttl_refused_and_never_echoed() {
    let (mut c, now) = raw_server(SocketType::Pair);
    let mut bytes = null_preamble(SocketType::Pair);
    let before = {
        feed(&mut c, now, &bytes);
        let mut out = BytesMut::new();
        c.poll_transmit(&mut out);
        out.len()
    };
    assert!(before > 0);
    bytes.clear();
    encode_command(&mut bytes, "PING", &[]);
    let (_, error) = feed(&mut c, now, &bytes);
    assert!(
        matches!(error, Some(Error::MalformedCommand { .. })),
        "{error:?}"
    );
    let mut out = BytesMut::new();
    c.poll_transmit(&mut out);
    assert!(out.is_empty(), "no PONG for a PING without TTL");
}

#[test]
fn ping_context_over_16_bytes_refused() {
    let (mut c, now) = raw_server(SocketType::Pair);
    let mut bytes = null_preamble(SocketType::Pair);
    encode_command(&mut bytes, "PING", &[&[0, 10], &[7u8; 17]]);
    let (_, error) = feed(&mut c, now, &bytes);
    assert!(matches!(error, Some(Error::MalformedCommand { .. })));
}

#[test]
fn ping_ttl_above_655_deciseconds_does_not_wrap() {
    let now = Instant::now();
    let mut config = null_config(SocketType::Pair);
    config.heartbeat.interval = None;
    let mut c = Connection::new(config, now).unwrap();
    let mut bytes = null_preamble(SocketType::Pair);
    // 700 ds = 70 s; a 16-bit product would wrap to 70000 - 65536 = 4464 ms.
    encode_command(&mut bytes, "PING", &[&700u16.to_be_bytes()]);
    let (_, error) = feed(&mut c, now, &bytes);
    assert_eq!(error, None);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(70)));
    assert!(c.handle_timeout(now + Duration::from_millis(4464)).is_ok());
    assert!(c.handle_timeout(now + Duration::from_secs(69)).is_ok());
    assert_eq!(
        c.handle_timeout(now + Duration::from_secs(70)),
        Err(Error::HeartbeatTimeout { millis: 70_000 })
    );
}

#[test]
fn reserved_flag_bits_refused() {
    for flags in [0x08u8, 0x10, 0x20, 0x40, 0x80] {
        let (mut c, now) = raw_server(SocketType::Pull);
        let mut bytes = null_preamble(SocketType::Push);
        bytes.put_slice(&[flags, 1, b'x']);
        let (delivered, error) = feed(&mut c, now, &bytes);
        assert!(delivered.is_empty());
        assert_eq!(error, Some(Error::ReservedFlags { flags }));
    }
}

#[test]
fn message_before_handshake_refused() {
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut bytes = BytesMut::new();
    bytes.put_slice(&encode_greeting(MechanismKind::Null, false));
    encode_frame(&mut bytes, false, false, b"early");
    let (delivered, error) = feed(&mut c, now, &bytes);
    assert!(delivered.is_empty());
    assert_eq!(error, Some(Error::MessageBeforeHandshake));
}

#[test]
fn command_with_more_flag_refused() {
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut bytes = null_preamble(SocketType::Push);
    bytes.put_slice(b"\x05\x05\x04PING");
    let (_, error) = feed(&mut c, now, &bytes);
    assert_eq!(error, Some(Error::CommandWithMore));
}

#[test]
fn message_size_and_frame_count_limits() {
    let (mut c, now) = raw_server(SocketType::Pull);
    let mut bytes = null_preamble(SocketType::Push);
    // Three frames of 30 KiB: each under the 64 KiB limit, together over it.
    for more in [true, true, false] {
        encode_frame(&mut bytes, more, false, &[0u8; 30 * 1024]);
    }
    let (delivered, error) = feed(&mut c, now, &bytes);
    assert!(delivered.is_empty());
    assert_eq!(error, Some(Error::MessageTooLarge { limit: 64 * 1024 }));

    let now = Instant::now();
    let mut config = null_config(SocketType::Pull);
    config.limits.max_frames = 8;
    let mut c = Connection::new(config, now).unwrap();
    let mut bytes = null_preamble(SocketType::Push);
    for _ in 0..9 {
        encode_frame(&mut bytes, true, false, b"");
    }
    let (_, error) = feed(&mut c, now, &bytes);
    assert_eq!(error, Some(Error::TooManyFrames { limit: 8 }));
}

#[test]
fn commands_out_of_order_refused() {
    for name in ["HELLO", "INITIATE", "WELCOME"] {
        let (mut c, now) = raw_server(SocketType::Pull);
        let mut bytes = BytesMut::new();
        bytes.put_slice(&encode_greeting(MechanismKind::Null, false));
        encode_command(&mut bytes, name, &[]);
        let (_, error) = feed(&mut c, now, &bytes);
        assert!(
            matches!(error, Some(Error::UnexpectedCommand { .. })),
            "{name}: {error:?}"
        );
    }
}

// ------------------------------------------------------------ property tests

fn arb_message() -> impl Strategy<Value = Message> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..6)
        .prop_map(Message::from_frames)
}

/// A PULL server that takes messages of up to `limit` bytes.
fn limited_server(limit: u64) -> (Connection, Instant) {
    let now = Instant::now();
    let mut config = null_config(SocketType::Pull);
    config.limits.max_message_size = limit;
    (Connection::new(config, now).unwrap(), now)
}

/// One thing a PUSH peer puts on the wire after its handshake.
#[derive(Debug, Clone)]
enum WirePart {
    Message(Message),
    Ping,
}

/// Mostly one-frame messages of every header form and around the sizes
/// where decoding changes path (inline bodies, the long header, the
/// zero-copy threshold, the 64 KiB limit of `raw_server`), some
/// multi-frame messages and heartbeats.
fn arb_wire_part() -> impl Strategy<Value = WirePart> {
    let size = prop_oneof![
        8 => 0usize..40,
        6 => 250usize..260,
        4 => 500usize..600,
        2 => 8_180usize..8_200,
        1 => 65_530usize..65_540,
    ];
    let frame = (size, any::<u8>()).prop_map(|(n, b)| vec![b; n]);
    let small = (0usize..600, any::<u8>()).prop_map(|(n, b)| vec![b; n]);
    prop_oneof![
        12 => frame.prop_map(|f| WirePart::Message(Message::from(f))),
        3 => prop::collection::vec(small, 2..4)
            .prop_map(|f| WirePart::Message(Message::from_frames(f))),
        1 => Just(WirePart::Ping),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn frames_round_trip(frames in prop::collection::vec((any::<bool>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..700)), 0..8)) {
        let limits = FrameLimits { max_message_frame: 1 << 20, max_command_frame: 1 << 20 };
        let mut buf = BytesMut::new();
        for (more, command, body) in &frames {
            encode_frame(&mut buf, *more && !*command, *command, body);
        }
        for (more, command, body) in &frames {
            let f = decode_frame(&mut buf, &limits).unwrap().unwrap();
            prop_assert_eq!(f.more, *more && !*command);
            prop_assert_eq!(f.command, *command);
            prop_assert_eq!(&f.body[..], &body[..]);
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn any_split_of_the_stream_gives_the_same_messages(
        msgs in prop::collection::vec(arb_message(), 1..5),
        cuts in prop::collection::vec(1usize..300, 1..40),
    ) {
        let wire = pusher_wire(&msgs);
        let (mut c, now) = raw_server(SocketType::Pull);
        let mut delivered = Vec::new();
        let mut rest = &wire[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            let (got, error) = feed(&mut c, now, &rest[..n]);
            prop_assert_eq!(error, None);
            delivered.extend(got);
            rest = &rest[n..];
            i += 1;
        }
        prop_assert_eq!(delivered, msgs);
    }

    #[test]
    fn decoding_runs_of_messages_gives_what_events_give(
        parts in prop::collection::vec(arb_wire_part(), 1..24),
        garbage in prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 1..24)),
        cuts in prop::collection::vec(1usize..2000, 1..20),
        maxes in prop::collection::vec((1usize..6, 1usize..3000), 1..8),
        limit in prop_oneof![Just(550u64), Just(64 * 1024)],
    ) {
        let mut sender = Pair::new(null_config(SocketType::Push), null_config(SocketType::Pull));
        sender.pump(accept_all);
        let mut wire = null_preamble(SocketType::Push);
        for part in &parts {
            match part {
                WirePart::Message(m) => sender.a.send(m, &mut wire).unwrap(),
                WirePart::Ping => encode_command(&mut wire, "PING", &[&[0, 0], b"ctx"]),
            }
        }
        wire.extend_from_slice(&garbage.unwrap_or_default());

        // Events alone, all at once.
        let (mut c, now) = limited_server(limit);
        let (expected, expected_error) = feed(&mut c, now, &wire);

        // Runs and events mixed, over reads of any size.
        let (mut c, now) = limited_server(limit);
        let mut got = Vec::new();
        let mut error = None;
        let mut rest = &wire[..];
        let mut i = 0;
        while error.is_none() && !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            c.handle_input(now, &rest[..n]);
            rest = &rest[n..];
            loop {
                let (max_msgs, max_bytes) = maxes[i % maxes.len()];
                i += 1;
                let before = got.len();
                let (msgs, bytes) = c.poll_messages(max_msgs, max_bytes, |m| got.push(m));
                prop_assert_eq!(msgs, got.len() - before);
                prop_assert_eq!(bytes, got[before..].iter().map(Message::payload_len).sum::<usize>());
                prop_assert!(msgs <= max_msgs);
                prop_assert!(msgs == 0 || bytes - got.last().map_or(0, Message::payload_len) < max_bytes);
                match c.poll_event() {
                    Ok(Some(Event::Message(m))) => got.push(m),
                    Ok(Some(_)) => {}
                    Ok(None) if msgs > 0 => {}
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
        }
        prop_assert_eq!(got, expected);
        prop_assert_eq!(error, expected_error);
    }

    #[test]
    fn encoding_a_batch_gives_what_encoding_each_gives(
        parts in prop::collection::vec(arb_wire_part(), 1..16),
    ) {
        let msgs: Vec<Message> = parts
            .into_iter()
            .filter_map(|p| match p {
                WirePart::Message(m) => Some(m),
                WirePart::Ping => None,
            })
            .collect();
        // Byte for byte in cleartext, large frames by reference alike.
        let wire_of = |batch: bool| {
            let mut p = Pair::new(null_config(SocketType::Push), null_config(SocketType::Pull));
            p.pump(accept_all);
            let (mut buf, mut segments) = (BytesMut::new(), Vec::<Bytes>::new());
            if batch {
                p.a.send_all(&msgs, &mut buf, &mut segments).unwrap();
            } else {
                for m in &msgs {
                    p.a.send_segmented(m, &mut buf, &mut segments).unwrap();
                }
            }
            let mut wire = segments.concat();
            wire.extend_from_slice(&buf);
            wire
        };
        prop_assert_eq!(wire_of(true), wire_of(false));

        // With CURVE every frame is boxed: the peer reads the same messages.
        let server_keys = CurveKeyPair::generate();
        let mut p = curve_pair(SocketType::Push, SocketType::Pull, &server_keys, *server_keys.public());
        p.pump(accept_all);
        let (mut buf, mut segments) = (BytesMut::new(), Vec::<Bytes>::new());
        p.a.send_all(&msgs, &mut buf, &mut segments).unwrap();
        prop_assert!(segments.is_empty());
        p.b.handle_input(p.now, &buf);
        p.pump(accept_all);
        prop_assert_eq!(p.b_messages(), msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_sticky(
        prefix in any::<bool>(),
        garbage in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let (mut c, now) = raw_server(SocketType::Pull);
        let mut bytes = if prefix { null_preamble(SocketType::Push) } else { BytesMut::new() };
        bytes.extend_from_slice(&garbage);
        let (_, error) = feed(&mut c, now, &bytes);
        if let Some(e) = error {
            prop_assert!(e.is_peer_fault());
            prop_assert_eq!(c.poll_event(), Err(e.clone()));
            prop_assert_eq!(c.send(&Message::from("x"), &mut BytesMut::new()), Err(e));
        }
    }

    #[test]
    fn metadata_round_trip(props in prop::collection::btree_map("[A-Za-z0-9._+-]{1,20}", prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut md = Metadata::new();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in &props {
            if seen.insert(k.to_ascii_lowercase()) {
                md.insert(k, v.clone()).unwrap();
            }
        }
        let mut buf = BytesMut::new();
        md.encode(&mut buf);
        prop_assert_eq!(Metadata::parse(&buf).unwrap(), md);
    }

    #[test]
    fn z85_round_trip(data in prop::collection::vec(any::<u8>(), 0..64).prop_map(|mut v| { v.truncate(v.len() / 4 * 4); v })) {
        let text = zeroguard_zmtp::z85::encode(&data).unwrap();
        prop_assert_eq!(zeroguard_zmtp::z85::decode(&text).unwrap(), data);
    }
}

// ------------------------------------------------- reads into the connection

/// A peer's bytes as the transport hands them over: `read_input` is offered
/// at most `chunk` of them at a time.
fn read_some(c: &mut Connection, now: Instant, rest: &mut &[u8], chunk: usize) -> usize {
    c.read_input(now, 64 * 1024, |buf| {
        let n = chunk.min(buf.remaining_mut()).min(rest.len());
        buf.put_slice(&rest[..n]);
        *rest = &rest[n..];
        Ok::<_, ()>(n)
    })
    .unwrap()
}

/// What a PUSH peer writes: its greeting and READY, then `msgs`.
fn pusher_wire(msgs: &[Message]) -> BytesMut {
    let mut wire = null_preamble(SocketType::Push);
    let mut sender = Pair::new(null_config(SocketType::Push), null_config(SocketType::Pull));
    sender.pump(accept_all);
    for m in msgs {
        sender.a.send(m, &mut wire).unwrap();
    }
    wire
}

/// `n` messages of 64 KiB, each of one byte value.
fn large_messages(n: u8) -> Vec<Message> {
    (0..n).map(|i| Message::from(vec![i; 64 * 1024])).collect()
}

fn large_server() -> (Connection, Instant) {
    let now = Instant::now();
    let mut config = null_config(SocketType::Pull);
    config.limits.max_message_size = 4 << 20;
    (Connection::new(config, now).unwrap(), now)
}

fn arb_sized_message() -> impl Strategy<Value = Message> {
    let size = prop_oneof![0usize..100, 8_000usize..40_000, 60_000usize..140_000];
    prop::collection::vec((size, any::<u8>()), 1..4).prop_map(|frames| {
        Message::from_frames(
            frames
                .into_iter()
                .map(|(n, b)| vec![b; n])
                .collect::<Vec<_>>(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Large frames are read into buffers of their own that are reused once
    /// the application drops them; whatever the read sizes and whenever
    /// messages are taken, the same messages arrive.
    #[test]
    fn reads_of_any_size_give_the_same_messages(
        msgs in prop::collection::vec(arb_sized_message(), 1..8),
        chunks in prop::collection::vec(1usize..100_000, 1..20),
        keep in any::<bool>(),
    ) {
        let wire = pusher_wire(&msgs);
        let (mut c, now) = large_server();
        let mut rest = &wire[..];
        let mut kept = Vec::new();
        let mut next = 0;
        let mut i = 0;
        while !rest.is_empty() || c.buffered_input() > 0 {
            if !rest.is_empty() && c.wants_input() {
                read_some(&mut c, now, &mut rest, chunks[i % chunks.len()]);
            }
            // Take events only every other read, so that reads also meet
            // complete bodies not yet decoded.
            if i % 2 == 1 || rest.is_empty() || !c.wants_input() {
                while let Some(event) = c.poll_event().unwrap() {
                    let Event::Message(m) = event else { continue };
                    prop_assert_eq!(&m, &msgs[next]);
                    next += 1;
                    if keep {
                        kept.push(m);
                    }
                }
            }
            i += 1;
            prop_assert!(i < 100_000, "no progress");
        }
        prop_assert_eq!(next, msgs.len());
        // Messages held while later ones arrived were not written over.
        if keep {
            prop_assert_eq!(kept, msgs);
        }
    }
}

/// A stream of large messages is read on past each complete body, so a
/// driver hands several to the application at once; but only so far: the
/// complete bodies a connection holds undecoded are bounded, and then it
/// asks for no more input until they are taken.
#[test]
fn complete_large_bodies_are_held_while_reading_on_within_a_bound() {
    let msgs = large_messages(8);
    let wire = pusher_wire(&msgs);
    let (mut c, now) = large_server();
    let mut rest = &wire[..];
    // The greeting and handshake first, then the first body begins.
    read_some(&mut c, now, &mut rest, 70_000);
    while c.poll_event().unwrap().is_some() {}
    let mut reads = 0;
    while c.wants_input() && !rest.is_empty() {
        read_some(&mut c, now, &mut rest, 64 * 1024);
        reads += 1;
        assert!(reads < 100, "input is never refused");
    }
    let held = c.retained_input();
    assert!(
        held >= 4 * 64 * 1024,
        "read on past complete bodies: {held} bytes held"
    );
    // Four set aside, the fifth complete in place, and a lead read's worth
    // (a body's buffer keeps room for the header that follows it).
    assert!(held <= 5 * (64 * 1024 + 9) + 8 * 1024, "held {held} bytes");
    assert!(!rest.is_empty(), "the whole stream was taken in");
    let mut next = 0;
    while !rest.is_empty() || c.retained_input() > 0 {
        while let Some(event) = c.poll_event().unwrap() {
            let Event::Message(m) = event else { continue };
            assert_eq!(m, msgs[next]);
            next += 1;
        }
        if !rest.is_empty() {
            read_some(&mut c, now, &mut rest, 64 * 1024);
        }
        reads += 1;
        assert!(reads < 200, "no progress");
    }
    assert_eq!(next, msgs.len());
}

/// Once their buffers come back, a stream of large frames costs one read
/// each: the read that ends a body brings the next frame's header, so the
/// next body goes straight into a buffer of its own (a read of the header
/// on its own would be a second system call per frame).
#[test]
fn a_stream_of_large_frames_costs_one_read_each() {
    let msgs = large_messages(16);
    let wire = pusher_wire(&msgs);
    let (mut c, now) = large_server();
    let mut rest = &wire[..];
    let mut next = 0;
    let mut reads = 0;
    while !rest.is_empty() || c.buffered_input() > 0 {
        if !rest.is_empty() {
            read_some(&mut c, now, &mut rest, usize::MAX);
            reads += 1;
        }
        // Taken and dropped at once, so every buffer is spare again.
        while let Some(event) = c.poll_event().unwrap() {
            let Event::Message(m) = event else { continue };
            assert_eq!(m, msgs[next]);
            next += 1;
        }
        assert!(reads < 100, "no progress");
    }
    assert_eq!(next, msgs.len());
    // The greeting and handshake, the first frame into the ordinary
    // buffer, then one read per frame.
    assert!(
        reads <= msgs.len() + 3,
        "{reads} reads for {} frames",
        msgs.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever a peer declares and sends around the sizes that get a
    /// buffer of their own, reading it never panics, errors blame the peer,
    /// and what is held stays within twice what arrived.
    #[test]
    fn declared_sizes_and_garbage_around_large_bodies_never_panic(
        flags in prop_oneof![3 => 0u8..8, 1 => any::<u8>()],
        size in prop_oneof![0u64..70_000, 32_000u64..2_000_000, any::<u64>()],
        sent in 0usize..150_000,
        byte in any::<u8>(),
        chunks in prop::collection::vec(1usize..70_000, 1..8),
    ) {
        let (mut c, now) = large_server();
        let mut wire = null_preamble(SocketType::Push);
        wire.put_u8(flags | 0x02);
        wire.put_u64(size);
        wire.extend(std::iter::repeat_n(byte, sent));
        let total = wire.len();
        let mut rest = &wire[..];
        let mut i = 0;
        while !rest.is_empty() && c.wants_input() {
            read_some(&mut c, now, &mut rest, chunks[i % chunks.len()]);
            i += 1;
            let arrived = total - rest.len();
            prop_assert!(c.retained_input() <= 2 * arrived + 64 * 1024);
            loop {
                match c.poll_event() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        prop_assert!(e.is_peer_fault(), "{e}");
                        return Ok(());
                    }
                }
            }
        }
    }
}

#[test]
fn a_large_frame_declared_but_not_sent_holds_only_what_arrived() {
    let (mut c, now) = large_server();
    let mut wire = null_preamble(SocketType::Push);
    encode_frame(&mut wire, false, false, &vec![7u8; 2 << 20]);
    // Header and 1000 bytes of a 2 MiB body (above the size that gets a
    // buffer of its own), then, on a fresh connection, of a 900 KiB body
    // (below it): neither may cost more than it brought.
    let mut rest = &wire[..wire.len() - (2 << 20) + 1000];
    while !rest.is_empty() {
        read_some(&mut c, now, &mut rest, 100);
        while let Some(event) = c.poll_event().unwrap() {
            assert!(matches!(event, Event::Ready(_)), "{event:?}");
        }
    }
    assert!(c.retained_input() < 16 * 1024, "{}", c.retained_input());

    let (mut c, now) = large_server();
    let mut wire = null_preamble(SocketType::Push);
    encode_frame(&mut wire, false, false, &vec![7u8; 900 * 1024]);
    let mut rest = &wire[..wire.len() - 900 * 1024 + 1000];
    while !rest.is_empty() {
        read_some(&mut c, now, &mut rest, 100);
        while c.poll_event().unwrap().is_some() {}
    }
    assert!(c.wants_input());
    assert!(c.retained_input() < 16 * 1024, "{}", c.retained_input());
}

// --------------------------------------------------------------------- CURVE

use zeroguard_zmtp::CurveKeyPair;

fn curve_pair(
    client_type: SocketType,
    server_type: SocketType,
    server_keys: &CurveKeyPair,
    pinned: [u8; 32],
) -> Pair {
    let client = Config::new(
        client_type,
        MechanismConfig::CurveClient {
            keys: CurveKeyPair::generate(),
            server_key: pinned,
        },
    );
    let server = Config::new(
        server_type,
        MechanismConfig::CurveServer {
            keys: server_keys.clone(),
        },
    );
    Pair::new(client, server)
}

#[test]
fn curve_handshake_and_messages_both_ways() {
    let server_keys = CurveKeyPair::generate();
    let mut p = curve_pair(
        SocketType::Dealer,
        SocketType::Router,
        &server_keys,
        *server_keys.public(),
    );
    p.pump(accept_all);
    assert!(
        p.a_error.is_none() && p.b_error.is_none(),
        "{:?} {:?}",
        p.a_error,
        p.b_error
    );
    let ready = p
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::Ready(i) => Some(i.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ready.mechanism, MechanismKind::Curve);
    assert_eq!(ready.socket_type, SocketType::Dealer);
    let msg = Message::from_frames([vec![], vec![1u8; 10_000], b"end".to_vec()]);
    p.send_a_to_b(&msg);
    assert_eq!(p.b_messages(), vec![msg.clone()]);
    let mut wire = BytesMut::new();
    p.b.send(&msg, &mut wire).unwrap();
    p.a.handle_input(p.now, &wire);
    p.pump(accept_all);
    assert_eq!(messages(&p.a_events), vec![msg]);
}

#[test]
fn curve_client_key_is_offered_for_judgement() {
    let server_keys = CurveKeyPair::generate();
    let client_keys = CurveKeyPair::generate();
    let client = Config::new(
        SocketType::Req,
        MechanismConfig::CurveClient {
            keys: client_keys.clone(),
            server_key: *server_keys.public(),
        },
    );
    let server = Config::new(
        SocketType::Rep,
        MechanismConfig::CurveServer { keys: server_keys },
    );
    let mut p = Pair::new(client, server);
    p.pump(accept_all);
    let offered = p
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::Authenticate(r) => Some(r.credentials.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        offered,
        Credentials::Curve {
            public_key: *client_keys.public()
        }
    );
}

#[test]
fn curve_wrong_server_key_fails_before_any_data() {
    let server_keys = CurveKeyPair::generate();
    let impostor_pin = *CurveKeyPair::generate().public();
    let mut p = curve_pair(
        SocketType::Push,
        SocketType::Pull,
        &server_keys,
        impostor_pin,
    );
    p.pump(accept_all);
    // The server cannot open HELLO (it was sealed for another key); nothing is exchanged.
    assert!(
        matches!(p.b_error, Some(Error::Decryption { .. })),
        "{:?}",
        p.b_error
    );
    assert_eq!(
        p.b_error.as_ref().unwrap().category(),
        ErrorCategory::Authentication
    );
    assert_eq!(ready_count(&p.a_events) + ready_count(&p.b_events), 0);
    assert!(p
        .a
        .send(&Message::from("secret"), &mut BytesMut::new())
        .is_err());
}

#[test]
fn curve_unknown_client_key_is_refused() {
    let server_keys = CurveKeyPair::generate();
    let mut p = curve_pair(
        SocketType::Dealer,
        SocketType::Router,
        &server_keys,
        *server_keys.public(),
    );
    p.pump(|_| AuthDecision::refuse("key not in the allowed set"));
    assert!(matches!(
        p.b_error,
        Some(Error::AuthenticationRefused { status: 400, .. })
    ));
    assert_eq!(
        p.a_error,
        Some(Error::PeerError {
            reason: "400".into()
        })
    );
    assert_eq!(ready_count(&p.a_events) + ready_count(&p.b_events), 0);
}

fn ready_curve_pair() -> Pair {
    let server_keys = CurveKeyPair::generate();
    let mut p = curve_pair(
        SocketType::Push,
        SocketType::Pull,
        &server_keys,
        *server_keys.public(),
    );
    p.pump(accept_all);
    assert!(p.a.is_ready() && p.b.is_ready());
    p
}

#[test]
fn cve_2014_7203_replayed_curve_message_refused() {
    let mut p = ready_curve_pair();
    let mut wire = BytesMut::new();
    p.a.send(&Message::from("pay 100"), &mut wire).unwrap();
    p.b.handle_input(p.now, &wire);
    p.pump(accept_all);
    assert_eq!(p.b_messages(), vec![Message::from("pay 100")]);
    // The same bytes again: a replay.
    p.b.handle_input(p.now, &wire);
    p.pump(accept_all);
    assert_eq!(p.b_messages().len(), 1, "the replay delivered nothing");
    assert_eq!(
        p.b_error,
        Some(Error::NonceNotIncreasing { command: "MESSAGE" })
    );
}

#[test]
fn curve_flipped_ciphertext_bit_refused() {
    let mut p = ready_curve_pair();
    let mut wire = BytesMut::new();
    p.a.send(&Message::from("transfer to alice"), &mut wire)
        .unwrap();
    let last = wire.len() - 1;
    wire[last] ^= 0x01;
    p.b.handle_input(p.now, &wire);
    p.pump(accept_all);
    assert!(p.b_messages().is_empty());
    assert!(matches!(p.b_error, Some(Error::Decryption { .. })));
}

#[test]
fn curve_wire_carries_no_payload_bytes() {
    let server_keys = CurveKeyPair::generate();
    let client = Config::new(
        SocketType::Dealer,
        MechanismConfig::CurveClient {
            keys: CurveKeyPair::generate(),
            server_key: *server_keys.public(),
        },
    );
    let mut metadata = Metadata::new();
    metadata
        .insert("X-Secret-Label", "top-secret-label")
        .unwrap();
    let mut client = client;
    client.metadata = metadata;
    let server = Config::new(
        SocketType::Router,
        MechanismConfig::CurveServer { keys: server_keys },
    );
    let now = Instant::now();
    let (mut a, mut b) = (
        Connection::new(client, now).unwrap(),
        Connection::new(server, now).unwrap(),
    );
    let mut captured = Vec::new();
    let payload = b"the quick brown fox jumps over the lazy dog";
    for round in 0..8 {
        let mut wa = BytesMut::new();
        let mut wb = BytesMut::new();
        a.poll_transmit(&mut wa);
        b.poll_transmit(&mut wb);
        if round == 6 {
            a.send(&Message::from(&payload[..]), &mut wa).unwrap();
        }
        captured.extend_from_slice(&wa);
        captured.extend_from_slice(&wb);
        b.handle_input(now, &wa);
        a.handle_input(now, &wb);
        while let Ok(Some(e)) = a.poll_event() {
            let _ = e;
        }
        while let Ok(Some(e)) = b.poll_event() {
            if let Event::Authenticate(_) = e {
                b.complete_auth(AuthDecision::accept()).unwrap();
            }
        }
    }
    assert!(a.is_ready() && b.is_ready());
    let contains = |needle: &[u8]| captured.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(b"quick brown fox"),
        "payload in clear on the wire"
    );
    assert!(
        !contains(b"top-secret-label"),
        "metadata in clear on the wire"
    );
    assert!(!contains(b"DEALER"), "socket type in clear on the wire");
}

#[test]
fn curve_heartbeats_and_subscriptions_travel_boxed() {
    let server_keys = CurveKeyPair::generate();
    let mut client = Config::new(
        SocketType::Sub,
        MechanismConfig::CurveClient {
            keys: CurveKeyPair::generate(),
            server_key: *server_keys.public(),
        },
    );
    client.heartbeat.interval = Some(Duration::from_secs(1));
    let server = Config::new(
        SocketType::Pub,
        MechanismConfig::CurveServer { keys: server_keys },
    );
    let mut p = Pair::new(client, server);
    p.pump(accept_all);
    let mut wire = BytesMut::new();
    p.a.send_subscribe(b"weather", &mut wire).unwrap();
    assert!(!wire.windows(7).any(|w| w == b"weather"));
    p.b.handle_input(p.now, &wire);
    p.pump(accept_all);
    assert!(p
        .b_events
        .contains(&Event::Subscribe(Bytes::from_static(b"weather"))));
    // A PING and its PONG go through the boxes too; the connection stays up.
    for s in 1..=4 {
        p.now += Duration::from_secs(1);
        let _ = s;
        p.a.handle_timeout(p.now).unwrap();
        p.pump(accept_all);
    }
    assert!(
        p.a_error.is_none() && p.b_error.is_none(),
        "{:?} {:?}",
        p.a_error,
        p.b_error
    );
}

#[test]
fn curve_keys_round_trip_through_z85_and_hide_the_secret() {
    let keys = CurveKeyPair::generate();
    let again = CurveKeyPair::from_z85(&keys.public_z85(), &keys.secret_z85()).unwrap();
    assert_eq!(again, keys);
    assert!(!format!("{keys:?}").contains(keys.secret_z85().as_str()));
    let other = CurveKeyPair::generate();
    assert!(CurveKeyPair::from_z85(&other.public_z85(), &keys.secret_z85()).is_err());
}

/// Every body length around the inline limit, in one message and in parts,
/// arrives whole and held the way its size says, in cleartext and in CURVE.
#[test]
fn frames_around_the_inline_limit_arrive_whole_in_null_and_curve() {
    use zeroguard_zmtp::message::INLINE_MAX;
    let mut null = Pair::new(null_config(SocketType::Push), null_config(SocketType::Pull));
    null.pump(accept_all);
    for mut p in [null, ready_curve_pair()] {
        let mut sent = Vec::new();
        for n in (0..=INLINE_MAX + 2).chain([511, 512, 513]) {
            let body: Vec<u8> = (0..n)
                .map(|i| u8::try_from((i * 7 + n) % 251).unwrap_or(0))
                .collect();
            let one = Message::from(body.clone());
            let parts = Message::from_frames([body.clone(), body.clone()]);
            p.send_a_to_b(&one);
            p.send_a_to_b(&parts);
            sent.extend([one, parts]);
        }
        let got = p.b_messages();
        assert_eq!(got, sent);
        for m in &got {
            for f in m.frames() {
                assert_eq!(f.is_inline(), f.len() <= INLINE_MAX, "{} bytes", f.len());
            }
        }
    }
}
