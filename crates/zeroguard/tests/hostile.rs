//! Hostile peers against real sockets: each published libzmq advisory (and
//! its relatives in other implementations) replayed byte by byte by a raw
//! TCP peer. Every case asserts that the hostile connection is closed (or
//! gets the documented safe answer), that nothing reaches the application,
//! that a well-behaved peer on the same socket is unaffected, and that the
//! process carries on. See docs/SECURITY.md (T1, T2, T11, T12).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use zeroguard::zmtp::{command, frame, greeting, MechanismKind, Metadata};
use zeroguard::{Context, Message, MonitorEvent, Pub, Pull, Push, Socket, SocketOptions, Sub};

fn opts() -> SocketOptions {
    SocketOptions {
        recv_timeout: Some(Duration::from_secs(5)),
        send_timeout: Some(Duration::from_secs(5)),
        ..SocketOptions::default()
    }
}

/// The bytes a NULL peer of `socket_type` sends up to and including READY.
fn preamble(socket_type: &str) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_slice(&greeting::encode_greeting(MechanismKind::Null, false));
    let mut md = Metadata::new();
    md.insert("Socket-Type", socket_type.to_owned()).unwrap();
    command::encode_metadata_command(&mut out, "READY", &md);
    out
}

/// Whether the server closed the connection within `within` (reading and
/// discarding whatever it sends first: its greeting and READY).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// A PULL socket under attack, and a well-behaved PUSH beside the attacker.
struct Target {
    _ctx: Context,
    pull: Socket<Pull>,
    monitor: zeroguard::Monitor,
    addr: String,
    friend: Socket<Push>,
}

impl Target {
    fn new() -> Target {
        Target::with_security(zeroguard::Security::Null, zeroguard::Security::Null)
    }

    fn with_security(server: zeroguard::Security, client: zeroguard::Security) -> Target {
        let ctx = Context::new().unwrap();
        let pull = Socket::<Pull>::with_options(
            &ctx,
            SocketOptions {
                security: server,
                ..opts()
            },
        )
        .unwrap();
        let monitor = pull.monitor();
        let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
        let friend = Socket::<Push>::with_options(
            &ctx,
            SocketOptions {
                security: client,
                ..opts()
            },
        )
        .unwrap();
        friend.connect(&ep).unwrap();
        Target {
            addr: ep.trim_start_matches("tcp://").to_owned(),
            _ctx: ctx,
            pull,
            monitor,
            friend,
        }
    }

    /// Sends `bytes` from a raw peer (in `chunk`-sized writes) and checks
    /// the outcome every case must have.
    fn attack(&self, bytes: &[u8], chunk: usize) {
        let mut peer = TcpStream::connect(&self.addr).unwrap();
        for piece in bytes.chunks(chunk.max(1)) {
            if peer.write_all(piece).is_err() {
                break; // already closed on us: fine
            }
        }
        assert!(
            closed_by_server(&mut peer, Duration::from_secs(5)),
            "hostile connection left open"
        );
        self.assert_unharmed();
    }

    /// Nothing from the attacker was delivered; the friend still gets through.
    fn assert_unharmed(&self) {
        self.friend.send("friendly").unwrap();
        let m = self.pull.recv().unwrap();
        assert_eq!(
            m,
            Message::from("friendly"),
            "the application got the attacker's data"
        );
        assert!(
            self.pull.try_recv().unwrap().is_none(),
            "more than the friend's message arrived"
        );
        let mut saw_failure = false;
        while let Some(e) = self.monitor.try_recv() {
            saw_failure |= matches!(
                e,
                MonitorEvent::HandshakeFailed { .. } | MonitorEvent::Disconnected { .. }
            );
        }
        assert!(saw_failure, "no monitor event for the closed connection");
    }
}

#[test]
fn cve_2014_7202_mechanism_mismatch_closes() {
    let t = Target::new();
    let mut bytes = BytesMut::new();
    bytes.put_slice(&greeting::encode_greeting(MechanismKind::Plain, false));
    command::encode_command(&mut bytes, "HELLO", &[b"\x01a\x01b"]);
    frame::encode_frame(&mut bytes, false, false, b"smuggled");
    t.attack(&bytes, 4096);
}

#[test]
fn cve_2014_9721_zmtp_1_0_and_2_0_greetings_close() {
    let t = Target::new();
    // ZMTP 1.0: an identity frame then a message, no signature.
    t.attack(b"\x01\x00\x06\x00hello", 4096);
    // ZMTP 2.0: signature, revision 1, socket type, identity, then a message.
    t.attack(
        &[
            0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1, 8, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o',
        ],
        4096,
    );
}

#[test]
fn cve_2019_6250_size_wrapping_a_pointer_closes() {
    let t = Target::new();
    let mut bytes = preamble("PUSH");
    bytes.put_slice(&[0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0]);
    bytes.put_slice(&[0u8; 64]);
    t.attack(&bytes, 4096);
}

#[test]
fn negative_64_bit_sizes_close() {
    // JeroMQ #440, NetMQ #1168: sizes with the sign bit set.
    let t = Target::new();
    for size in [1u64 << 63, u64::MAX, i64::MAX as u64] {
        let mut bytes = preamble("PUSH");
        bytes.put_u8(0x02);
        bytes.put_u64(size);
        t.attack(&bytes, 4096);
    }
}

#[test]
fn cve_2019_13132_oversized_metadata_closes() {
    let t = Target::new();
    // A property whose declared length runs past the command.
    let mut bytes = BytesMut::new();
    bytes.put_slice(&greeting::encode_greeting(MechanismKind::Null, false));
    command::encode_command(
        &mut bytes,
        "READY",
        &[b"\x0bSocket-Type\x7f\xff\xff\xffPUSH"],
    );
    t.attack(&bytes, 4096);
    // A READY declared far above the handshake command limit, never sent in full.
    let mut bytes = BytesMut::new();
    bytes.put_slice(&greeting::encode_greeting(MechanismKind::Null, false));
    bytes.put_u8(0x06);
    bytes.put_u64(1 << 40);
    bytes.put_slice(&[0u8; 1024]);
    t.attack(&bytes, 4096);
}

#[test]
fn cve_2021_20234_partial_multipart_is_never_delivered() {
    let t = Target::new();
    let mut bytes = preamble("PUSH");
    frame::encode_frame(&mut bytes, true, false, b"first part");
    frame::encode_frame(&mut bytes, true, false, b"second part");
    // ...and the peer goes away before the last frame.
    let mut peer = TcpStream::connect(&t.addr).unwrap();
    peer.write_all(&bytes).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(peer);
    std::thread::sleep(Duration::from_millis(200));
    t.assert_unharmed();
}

#[test]
fn cve_2021_20235_large_frames_across_reads_arrive_intact() {
    // The safe answer here is correct delivery: frames over 8 KiB written a
    // few bytes at a time arrive whole.
    let t = Target::new();
    let mut bytes = preamble("PUSH");
    let big = vec![0xABu8; 8193];
    frame::encode_frame(&mut bytes, true, false, &big);
    frame::encode_frame(&mut bytes, false, false, &vec![0xCDu8; 70_000]);
    let mut peer = TcpStream::connect(&t.addr).unwrap();
    for piece in bytes.chunks(997) {
        peer.write_all(piece).unwrap();
    }
    let m = t.pull.recv().unwrap();
    assert_eq!(m.frames()[0].len(), 8193);
    assert_eq!(m.frames()[1].len(), 70_000);
    assert!(m.frames()[1].iter().all(|&b| b == 0xCD));
    drop(peer);
}

#[test]
fn ping_ttl_above_655_deciseconds_is_answered_without_wrapping() {
    // TTL 0xFFFF deciseconds (6553.5 s) overflows 16-bit millisecond
    // arithmetic: it must neither crash nor shorten anything. The PING is
    // answered with its context, the session stays up, the friend is served.
    let t = Target::new();
    let mut bytes = preamble("PUSH");
    command::encode_command(&mut bytes, "PING", &[&[0xFF, 0xFF], b"ctx-42"]);
    let mut peer = TcpStream::connect(&t.addr).unwrap();
    peer.write_all(&bytes).unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !received.windows(10).any(|w| w == b"PONGctx-42") && Instant::now() < deadline {
        let mut buf = [0u8; 1024];
        match peer.read(&mut buf) {
            Ok(0) => panic!("closed after a PING with a large TTL"),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    assert!(
        received.windows(10).any(|w| w == b"PONGctx-42"),
        "no PONG echoing the context"
    );
    assert!(
        !closed_by_server(&mut peer, Duration::from_millis(500)),
        "the session did not survive a PING with a large TTL"
    );
    let mut m = BytesMut::new();
    frame::encode_frame(&mut m, false, false, b"after the ping");
    peer.write_all(&m).unwrap();
    assert_eq!(t.pull.recv().unwrap(), Message::from("after the ping"));
    t.friend.send("friendly").unwrap();
    assert_eq!(t.pull.recv().unwrap(), Message::from("friendly"));
}

#[test]
fn short_ping_is_refused_and_never_echoed() {
    let t = Target::new();
    let mut bytes = preamble("PUSH");
    command::encode_command(&mut bytes, "PING", &[]);
    let mut peer = TcpStream::connect(&t.addr).unwrap();
    peer.write_all(&bytes).unwrap();
    // Read everything until the close: it must not contain a PONG.
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut received = Vec::new();
    let _ = peer.read_to_end(&mut received);
    assert!(
        !received.windows(5).any(|w| w == b"\x04PONG"),
        "a PING without TTL was answered"
    );
    t.assert_unharmed();
}

#[test]
fn reserved_flags_and_message_before_handshake_close() {
    let t = Target::new();
    let mut bytes = preamble("PUSH");
    bytes.put_slice(&[0x80, 1, b'x']);
    t.attack(&bytes, 4096);
    let mut bytes = BytesMut::new();
    bytes.put_slice(&greeting::encode_greeting(MechanismKind::Null, false));
    frame::encode_frame(&mut bytes, false, false, b"before READY");
    t.attack(&bytes, 4096);
}

#[test]
fn garbage_byte_by_byte_closes() {
    let t = Target::new();
    let garbage: Vec<u8> = (0..2000u32)
        .map(|i| i.wrapping_mul(2654435761).to_be_bytes()[1])
        .collect();
    t.attack(&garbage, 1);
}

#[test]
fn cve_2021_20236_very_long_topic_needs_no_recursion() {
    // A subscriber subscribing and cancelling an 8 MiB topic: the publisher
    // stays up and keeps serving a normal subscriber.
    let ctx = Context::new().unwrap();
    let publisher = Socket::<Pub>::with_options(&ctx, opts()).unwrap();
    let events = publisher.monitor();
    let ep = publisher.bind("tcp://127.0.0.1:0").unwrap();
    let normal = Socket::<Sub>::with_options(&ctx, opts()).unwrap();
    normal.subscribe("news").unwrap();
    normal.connect(&ep).unwrap();
    let topic = vec![b'a'; 8 * 1024 * 1024];
    let mut bytes = preamble("SUB");
    command::encode_command(&mut bytes, "SUBSCRIBE", &[&topic]);
    command::encode_command(&mut bytes, "CANCEL", &[&topic]);
    let mut peer = TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
    peer.write_all(&bytes).unwrap();
    // Both subscribers are attached (the long topic was processed).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut handshakes = 0;
    while handshakes < 2 {
        assert!(Instant::now() < deadline);
        if let Some(MonitorEvent::HandshakeSucceeded { .. }) =
            events.recv(Some(Duration::from_millis(100)))
        {
            handshakes += 1;
        }
    }
    let got = loop {
        publisher.send("news flash").unwrap();
        if let Some(m) = normal.try_recv().unwrap() {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the normal subscriber got nothing"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(got, Message::from("news flash"));
    drop(peer);
}

#[test]
fn cve_2014_7203_replayed_curve_message_closes() {
    use zeroguard::zmtp::{Config, Connection, CurveKeyPair, Event, MechanismConfig, SocketType};
    use zeroguard::Security;

    let ctx = Context::new().unwrap();
    let server_keys = CurveKeyPair::generate();
    let mut o = opts();
    o.security = Security::curve_server_allow_any(server_keys.clone());
    let pull = Socket::<Pull>::with_options(&ctx, o).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();

    // A raw peer that completes a genuine CURVE handshake with our own
    // protocol core, so the bytes it replays are a real, valid MESSAGE.
    let mut stream = TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let config = Config::new(
        SocketType::Push,
        MechanismConfig::CurveClient {
            keys: CurveKeyPair::generate(),
            server_key: *server_keys.public(),
        },
    );
    let mut conn = Connection::new(config, Instant::now()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !conn.is_ready() {
        assert!(Instant::now() < deadline, "handshake did not complete");
        let mut out = BytesMut::new();
        conn.poll_transmit(&mut out);
        stream.write_all(&out).unwrap();
        if let Ok(n) = stream.read(&mut buf) {
            conn.handle_input(Instant::now(), &buf[..n]);
        }
        while let Ok(Some(event)) = conn.poll_event() {
            assert!(!matches!(event, Event::Message(_)));
        }
    }
    let mut wire = BytesMut::new();
    conn.send(&Message::from("pay alice 100"), &mut wire)
        .unwrap();
    stream.write_all(&wire).unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("pay alice 100"));

    // The same bytes again: a replay. The server closes, nothing more arrives.
    stream.write_all(&wire).unwrap();
    assert!(
        closed_by_server(&mut stream, Duration::from_secs(5)),
        "replay left the connection open"
    );
    let mut o = pull.options();
    o.recv_timeout = Some(Duration::from_millis(300));
    pull.set_options(o).unwrap();
    assert!(pull.recv().is_err(), "the replayed message was delivered");
}

#[test]
fn stalled_handshakes_from_one_address_cannot_lock_others_out() {
    // 300 connections from 127.0.0.2 that never send a byte: more than all
    // 256 handshake slots. Only 16 get a slot (the per-address limit); a
    // client from 127.0.0.1 connects and is served while they stall.
    let ctx = Context::new().unwrap();
    let pull = Socket::<Pull>::with_options(&ctx, opts()).unwrap();
    let monitor = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let addr: std::net::SocketAddr = ep.trim_start_matches("tcp://").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stalled: Vec<std::net::TcpStream> = rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..300 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            if let Ok(stream) = socket.connect(addr).await {
                held.push(stream.into_std().unwrap());
            }
        }
        held
    });
    assert!(
        stalled.len() >= 250,
        "could not open the attacking connections"
    );
    std::thread::sleep(Duration::from_millis(300));

    let mut o = opts();
    o.send_timeout = Some(Duration::from_secs(3));
    let friend = Socket::<Push>::with_options(&ctx, o).unwrap();
    friend.connect(&ep).unwrap();
    let start = Instant::now();
    for i in 0..20 {
        friend.send(format!("{i}").into_bytes()).unwrap();
        assert_eq!(
            pull.recv().unwrap(),
            Message::from(format!("{i}").into_bytes())
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "served only after {:?}",
        start.elapsed()
    );
    let mut refused_for_address = 0;
    while let Some(e) = monitor.try_recv() {
        if let MonitorEvent::AcceptRefused { reason, .. } = e {
            refused_for_address += usize::from(reason.contains("from this address"));
        }
    }
    assert!(
        refused_for_address >= 250,
        "refusals: {refused_for_address}"
    );
    drop(stalled);
}

#[test]
fn peers_holding_partial_frames_are_bounded_by_the_socket_budget() {
    // Eight peers each declare an 8 MiB frame (within the message limit)
    // and push 2 MiB of it: 16 MiB the socket would hold without a budget.
    // With a 1 MiB budget it holds at most 1 MiB plus 320 KiB a connection,
    // small messages from others still flow, and all is given back when
    // the peers leave.
    let ctx = Context::new().unwrap();
    let budget = 1024 * 1024;
    let pull = Socket::<Pull>::with_options(
        &ctx,
        SocketOptions {
            max_partial_bytes: budget,
            ..opts()
        },
    )
    .unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let addr = ep.trim_start_matches("tcp://").to_owned();
    let attackers = 8;
    let mut header = preamble("PUSH");
    header.put_u8(0x02);
    header.put_u64(8 << 20);
    let writers: Vec<_> = (0..attackers)
        .map(|_| {
            let addr = addr.clone();
            let header = header.clone();
            std::thread::spawn(move || {
                let mut peer = TcpStream::connect(&addr).unwrap();
                peer.set_write_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                peer.write_all(&header).unwrap();
                let chunk = vec![0x5Au8; 64 * 1024];
                for _ in 0..32 {
                    if peer.write_all(&chunk).is_err() {
                        break; // the server stopped reading us
                    }
                }
                peer
            })
        })
        .collect();
    let peers: Vec<TcpStream> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let held = pull
        .statistics()
        .partial_bytes
        .load(std::sync::atomic::Ordering::Acquire);
    let bound = (budget + attackers * 320 * 1024) as u64;
    assert!(held > 0, "the peers' partial frames were not accounted");
    assert!(held <= bound, "holding {held} bytes, bound {bound}");

    let friend = Socket::<Push>::with_options(&ctx, opts()).unwrap();
    friend.connect(&ep).unwrap();
    friend.send("small").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("small"));

    drop(peers);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pull
        .statistics()
        .partial_bytes
        .load(std::sync::atomic::Ordering::Acquire)
        > 0
    {
        assert!(Instant::now() < deadline, "partial bytes not given back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn curve_flooders_cannot_hold_the_io_thread() {
    // Two CURVE peers flood one PULL socket (one I/O thread) with 64-byte
    // messages, and the application takes them as fast as they are
    // decoded, so a flooder's queue never fills and never stops its
    // decoding. A third peer sends a timestamped message every 20 ms; it
    // must arrive within a bound far below what a flooder's whole input
    // takes to decode (every connection's turn on the thread is bounded).
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use zeroguard::zmtp::CurveKeyPair;
    use zeroguard::Security;

    let server_ctx = Context::new().unwrap();
    let server_keys = CurveKeyPair::generate();
    let mut o = opts();
    o.security = Security::curve_server_allow_any(server_keys.clone());
    o.recv_timeout = Some(Duration::from_millis(100));
    let pull = Socket::<Pull>::with_options(&server_ctx, o).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let client_opts = || {
        let mut o = opts();
        o.security = Security::curve_client(CurveKeyPair::generate(), *server_keys.public());
        o
    };

    let t0 = Instant::now();
    let running = Arc::new(AtomicBool::new(true));
    let flooding = Arc::new(AtomicBool::new(true));
    let consumer = {
        let running = running.clone();
        std::thread::spawn(move || {
            let (mut flood, mut delays) = (0u64, Vec::new());
            while running.load(Ordering::Relaxed) {
                let Ok(m) = pull.recv() else { continue };
                let body = m.frames()[0].to_vec();
                match body.strip_prefix(b"at ") {
                    Some(sent) => {
                        let sent: u128 = std::str::from_utf8(sent).unwrap().parse().unwrap();
                        delays.push(t0.elapsed().as_micros() - sent);
                    }
                    None => flood += 1,
                }
            }
            (flood, delays)
        })
    };
    let flood_ctx = Context::with_io_threads(2).unwrap();
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let push = Socket::<Push>::with_options(&flood_ctx, client_opts()).unwrap();
            push.connect(&ep).unwrap();
            let flooding = flooding.clone();
            std::thread::spawn(move || {
                let body = vec![b'f'; 64];
                while flooding.load(Ordering::Relaxed) {
                    let _ = push.send(body.clone());
                }
            })
        })
        .collect();
    let friend_ctx = Context::new().unwrap();
    let friend = Socket::<Push>::with_options(&friend_ctx, client_opts()).unwrap();
    friend.connect(&ep).unwrap();
    // The flood is under way before the timed messages start.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..100 {
        let at = t0.elapsed().as_micros();
        friend.send(format!("at {at}").into_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    flooding.store(false, Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }
    running.store(false, Ordering::Relaxed);
    let (flood, delays) = consumer.join().unwrap();
    let worst = delays.iter().max().copied().unwrap_or(u128::MAX);
    assert!(
        flood > 10_000,
        "the flood did not get going ({flood} messages)"
    );
    assert_eq!(delays.len(), 100, "timed messages lost");
    eprintln!("flood {flood} messages; timed messages: worst {worst} us");
    assert!(
        worst < 250_000,
        "a timed message waited {worst} us behind the flood"
    );
}

/// Inputs for the server-side connection fuzz target: the committed seeds,
/// whatever corpus directories `ZEROGUARD_BOUNCE_DIRS` names (`fuzz/run.sh`
/// points it at the corpus a run grew), and deterministic mutations of the
/// seeds. Each is a selector byte and the bytes a peer sends.
fn fuzz_inputs() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut dirs = vec![root.join("connection_server")];
    if let Ok(extra) = std::env::var("ZEROGUARD_BOUNCE_DIRS") {
        dirs.extend(extra.split(':').filter(|d| !d.is_empty()).map(Into::into));
    }
    let mut inputs = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read fuzz inputs in {}: {e}", dir.display()));
        for entry in entries.flatten() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                inputs.push(bytes);
            }
        }
    }
    assert!(!inputs.is_empty(), "no fuzz inputs found");
    // Mutations: flipped bits, cut tails, repeated slices.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        usize::try_from(x >> 40).unwrap_or(0)
    };
    let seeds = inputs.clone();
    for seed in seeds.iter().filter(|s| s.len() > 2) {
        for _ in 0..20 {
            let mut m = seed.clone();
            let at = 1 + next() % (m.len() - 1);
            match next() % 3 {
                0 => m[at] ^= 1 << (next() % 8),
                1 => m.truncate(at),
                _ => {
                    let end = (at + 1 + next() % 64).min(m.len());
                    let slice = m[at..end].to_vec();
                    m.splice(at..at, slice);
                }
            }
            inputs.push(m);
        }
    }
    inputs
}

#[test]
fn fuzz_inputs_replayed_leave_the_socket_serving() {
    // Every input goes to a real socket over TCP (NULL for selectors the
    // fuzz target runs as NULL, PLAIN for the others); after every input,
    // a normal peer on the same socket completes a round trip.
    let plain_server = zeroguard::Security::plain_server(|_: &zeroguard::AuthContext| {
        zeroguard::AuthDecision::Accept {
            user_id: "fuzz".into(),
            metadata: zeroguard::Metadata::new(),
        }
    });
    let targets = [
        Target::new(),
        Target::with_security(
            plain_server,
            zeroguard::Security::plain_client("user", "pass"),
        ),
    ];
    let inputs = fuzz_inputs();
    for (n, input) in inputs.iter().enumerate() {
        let Some((&selector, stream)) = input.split_first() else {
            continue;
        };
        let t = &targets[usize::from(selector % 4 >= 2)];
        let mut peer = TcpStream::connect(&t.addr).unwrap();
        let _ = peer.write_all(stream);
        // Whatever the server makes of it (close, wait, or a session),
        // the peer then goes away, and a friend must still get through.
        let _ = closed_by_server(&mut peer, Duration::from_millis(30));
        drop(peer);
        t.friend.send(format!("round trip {n}")).unwrap();
        // Inputs holding a valid session may deliver their own messages;
        // what matters is that the friend's arrives.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let m = t.pull.recv().unwrap_or_else(|e| panic!("input {n}: {e}"));
            if m == Message::from(format!("round trip {n}")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "input {n}: the friend never got through"
            );
        }
    }
    println!(
        "{} fuzz inputs replayed, each followed by a round trip",
        inputs.len()
    );
}

#[test]
fn cve_2021_20237_departed_subscribers_leave_nothing_behind() {
    // 200 raw subscribers each announce 60 KiB of metadata (just under the
    // handshake command limit), subscribe, and leave. The publisher must
    // not keep them (libzmq kept their metadata): its peer table goes back
    // to empty, and a real subscriber still gets what is published.
    let ctx = Context::new().unwrap();
    let publisher = Socket::<Pub>::with_options(&ctx, opts()).unwrap();
    let events = publisher.monitor();
    let ep = publisher.bind("tcp://127.0.0.1:0").unwrap();
    let addr = ep.trim_start_matches("tcp://").to_owned();
    let mut hello = BytesMut::new();
    hello.put_slice(&greeting::encode_greeting(MechanismKind::Null, false));
    let mut md = Metadata::new();
    md.insert("Socket-Type", "SUB".to_owned()).unwrap();
    md.insert("X-Padding", vec![b'p'; 60 * 1024]).unwrap();
    command::encode_metadata_command(&mut hello, "READY", &md);
    command::encode_command(&mut hello, "SUBSCRIBE", &[b"topic"]);
    for _ in 0..200 {
        let mut peer = TcpStream::connect(&addr).unwrap();
        peer.write_all(&hello).unwrap();
        // Wait for the publisher's greeting and READY: the session exists.
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let mut got = 0;
        while got < 64 + 10 {
            match peer.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        drop(peer);
    }
    let mut attached = 0;
    while let Some(e) = events.try_recv() {
        attached += usize::from(matches!(e, MonitorEvent::HandshakeSucceeded { .. }));
    }
    assert!(attached >= 150, "only {attached} subscribers got a session");
    let deadline = Instant::now() + Duration::from_secs(5);
    while publisher.queued().peers > 0 {
        assert!(
            Instant::now() < deadline,
            "departed subscribers are still held: {:?}",
            publisher.queued()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sub = Socket::<Sub>::with_options(&ctx, opts()).unwrap();
    sub.subscribe("topic").unwrap();
    sub.connect(&ep).unwrap();
    let start = Instant::now();
    loop {
        publisher.send("topic ok").unwrap();
        if let Ok(Some(m)) = sub.try_recv() {
            assert_eq!(m, Message::from("topic ok"));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the real subscriber got nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
