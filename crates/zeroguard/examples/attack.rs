//! The attack harness (not a pattern example). One zeroguard ROUTER server
//! with default limits echoes messages while, all at once:
//!
//! - hundreds of connections never finish their handshake (and reconnect
//!   when the handshake timeout closes them),
//! - peers send a valid greeting and READY one byte at a time,
//! - peers complete the handshake, declare a frame just under the maximum
//!   message size, send 1 MiB of it and stall,
//! - peers complete the handshake and flood valid messages as fast as they
//!   can, never reading the replies,
//! - peers send garbage and reconnect when closed,
//!
//! and one legitimate libzmq client (pyzmq REQ, through
//! `tests/interop/peer.py`) does round trips from another source address.
//! Attackers come from 127.0.0.2 and up: loopback has the whole 127/8, and
//! per-address limits are part of the defence being measured.
//!
//! Asserted: the client's round trips complete in every second of the
//! attack and none takes longer than `--rtt-limit-ms`; resident memory
//! stays within `--rss-limit-mb` of the pre-attack baseline; after each
//! round the server serves again and, over `--rounds`, resident memory
//! goes back to where it was after the first round (`--leak-limit-mb`).
//! `--curve` runs the same with CURVE (attackers that handshake hold valid
//! keys: the server admits any key, the worst case).
//!
//! ```text
//! cargo run --release -p zeroguard --example attack -- [--curve] [--seconds 10]
//!     [--rounds 3] [--stalled 300] [--rtt-limit-ms 250] [--rss-limit-mb 64]
//!     [--leak-limit-mb 8] [--only stalled|slow|nearmax|flood|garbage]
//! ```
//! The Python interpreter comes from `ZEROGUARD_PYTHON` or `.venv/bin/python`
//! (`scripts/python-env.sh` makes it); without it the harness fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use zeroguard::zmtp::{Config, Connection, Event, MechanismConfig, SocketType};
use zeroguard::{Context, CurveKeyPair, Message, MonitorEvent, Router, Security, Socket};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    curve: bool,
    seconds: u64,
    rounds: usize,
    stalled: usize,
    rtt_limit: Duration,
    rss_limit_kib: u64,
    leak_limit_kib: u64,
    /// Run only this attack (stalled, slow, nearmax, flood, garbage).
    only: Option<String>,
    /// Attacker mode (the child process): the server's address.
    attackers: Option<SocketAddr>,
    /// Attacker mode: the CURVE server's public key, if any.
    server_key: Option<[u8; 32]>,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut a = Args {
        curve: false,
        seconds: 10,
        rounds: 3,
        stalled: 300,
        rtt_limit: Duration::from_millis(250),
        rss_limit_kib: 64 * 1024,
        leak_limit_kib: 8 * 1024,
        only: None,
        attackers: None,
        server_key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> Result<u64, BoxError> {
            Ok(it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .parse()?)
        };
        match flag.as_str() {
            "--curve" => a.curve = true,
            "--only" => a.only = Some(it.next().ok_or("--only needs an attack name")?),
            "--attackers" => {
                a.attackers = Some(it.next().ok_or("--attackers needs an address")?.parse()?)
            }
            "--server-key" => {
                let z85 = it.next().ok_or("--server-key needs a key")?;
                a.server_key = Some(zeroguard::zmtp::z85::decode_key(&z85)?);
            }
            "--seconds" => a.seconds = value()?.max(2),
            "--rounds" => a.rounds = usize::try_from(value()?)?.max(1),
            "--stalled" => a.stalled = usize::try_from(value()?)?,
            "--rtt-limit-ms" => a.rtt_limit = Duration::from_millis(value()?),
            "--rss-limit-mb" => a.rss_limit_kib = value()? * 1024,
            "--leak-limit-mb" => a.leak_limit_kib = value()? * 1024,
            other => return Err(format!("unknown option {other} (see the file's header)").into()),
        }
    }
    Ok(a)
}

mod support;

fn rss_kib() -> u64 {
    support::rss_kib().unwrap_or(0)
}

/// A TCP connection from a chosen loopback source address.
fn connect_from(
    rt: &tokio::runtime::Runtime,
    source: Ipv4Addr,
    to: SocketAddr,
) -> std::io::Result<TcpStream> {
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source.into(), 0))?;
        let stream = tokio::time::timeout(Duration::from_secs(2), socket.connect(to))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        Ok(stream)
    })
}

fn small_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("cannot build a runtime for an attacker: {e}");
            None
        }
    }
}

/// What the attackers share: where to aim, when to stop, what they counted.
struct Aim {
    target: SocketAddr,
    curve_server: Option<[u8; 32]>,
    stop: AtomicBool,
    connections: AtomicU64,
    closed_on_us: AtomicU64,
    flooded: AtomicU64,
}

impl Aim {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn mechanism(&self) -> MechanismConfig {
        match self.curve_server {
            Some(server_key) => MechanismConfig::CurveClient {
                keys: CurveKeyPair::generate(),
                server_key,
            },
            None => MechanismConfig::Null {
                authenticate: false,
            },
        }
    }

    fn connect(&self, rt: &tokio::runtime::Runtime, source: Ipv4Addr) -> Option<TcpStream> {
        let s = connect_from(rt, source, self.target).ok()?;
        self.connections.fetch_add(1, Ordering::Relaxed);
        Some(s)
    }

    /// Sleeps up to `d`, returning early when the attack ends.
    fn pause(&self, d: Duration) {
        let end = Instant::now() + d;
        while self.running() && Instant::now() < end {
            thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
        }
    }
}

/// Whether the server closed `s` (never blocks; discards what it sent).
fn closed(s: &mut TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut buf = [0u8; 4096];
    let gone = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    gone || s.set_nonblocking(false).is_err()
}

/// Completes a handshake as a DEALER with the protocol core, over a blocking stream.
fn handshake(s: &mut TcpStream, mechanism: MechanismConfig) -> Result<Connection, BoxError> {
    let mut conn = Connection::new(Config::new(SocketType::Dealer, mechanism), Instant::now())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = BytesMut::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut ready = false;
        while let Some(event) = conn.poll_event()? {
            ready |= matches!(event, Event::Ready(_));
        }
        out.clear();
        conn.poll_transmit(&mut out);
        s.write_all(&out)?;
        if ready {
            return Ok(conn);
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err("closed during the handshake".into());
        }
        conn.handle_input(Instant::now(), &buf[..n]);
    }
}

/// Connections that never send a byte; reopened once a second when closed.
fn stalled(aim: &Aim, count: usize, first_source: u8) {
    let Some(rt) = small_runtime() else { return };
    let sources = count.div_ceil(15).max(1);
    let source = |i: usize| {
        Ipv4Addr::new(
            127,
            0,
            0,
            first_source + u8::try_from(i % sources).unwrap_or(0),
        )
    };
    let mut held: Vec<Option<TcpStream>> =
        (0..count).map(|i| aim.connect(&rt, source(i))).collect();
    while aim.running() {
        aim.pause(Duration::from_secs(1));
        for (i, slot) in held.iter_mut().enumerate() {
            if slot.as_mut().is_none_or(closed) {
                if slot.is_some() {
                    aim.closed_on_us.fetch_add(1, Ordering::Relaxed);
                }
                *slot = aim.connect(&rt, source(i));
            }
        }
    }
}

/// Peers sending a valid greeting and READY one byte per 100 ms each.
fn slow_greeting(aim: &Aim, count: usize, source: Ipv4Addr) {
    let Some(rt) = small_runtime() else { return };
    let mut preamble = BytesMut::new();
    preamble.put_slice(&zeroguard::zmtp::greeting::encode_greeting(
        zeroguard::zmtp::MechanismKind::Null,
        false,
    ));
    let mut md = zeroguard::zmtp::Metadata::new();
    let _ = md.insert("Socket-Type", "DEALER");
    zeroguard::zmtp::command::encode_metadata_command(&mut preamble, "READY", &md);
    let mut peers: Vec<(Option<TcpStream>, usize)> =
        (0..count).map(|_| (aim.connect(&rt, source), 0)).collect();
    while aim.running() {
        aim.pause(Duration::from_millis(100));
        for (slot, sent) in peers.iter_mut() {
            let ok = match slot.as_mut() {
                Some(s) if *sent < preamble.len() => {
                    let r = s.write_all(&preamble[*sent..*sent + 1]);
                    *sent += 1;
                    r.is_ok()
                }
                Some(s) => !closed(s),
                None => false,
            };
            if !ok {
                if slot.is_some() {
                    aim.closed_on_us.fetch_add(1, Ordering::Relaxed);
                }
                *slot = aim.connect(&rt, source);
                *sent = 0;
            }
        }
    }
}

/// A peer that declares a frame just under the maximum message size, sends
/// 1 MiB of it and stalls; it starts over if the server closes it.
fn near_max_frame(aim: &Aim, source: Ipv4Addr) {
    let Some(rt) = small_runtime() else { return };
    let body = vec![0x42u8; 64 * 1024];
    while aim.running() {
        let Some(mut s) = aim.connect(&rt, source) else {
            aim.pause(Duration::from_millis(500));
            continue;
        };
        if handshake(&mut s, aim.mechanism()).is_err() {
            aim.pause(Duration::from_millis(500));
            continue;
        }
        let mut header = BytesMut::new();
        // Under CURVE every frame is a MESSAGE command frame.
        header.put_u8(if aim.curve_server.is_some() {
            0x06
        } else {
            0x02
        });
        header.put_u64(zeroguard::zmtp::config::DEFAULT_MAX_MESSAGE_SIZE - 1);
        let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
        let mut ok = s.write_all(&header).is_ok();
        for _ in 0..16 {
            ok = ok && s.write_all(&body).is_ok();
        }
        while ok && aim.running() {
            aim.pause(Duration::from_millis(500));
            ok = !closed(&mut s);
        }
        if !ok {
            aim.closed_on_us.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A peer that floods valid 64-byte messages and never reads.
fn flood(aim: &Aim, source: Ipv4Addr) {
    let Some(rt) = small_runtime() else { return };
    let msg = Message::from(vec![b'f'; 64]);
    let mut out = BytesMut::new();
    while aim.running() {
        let Some(mut s) = aim.connect(&rt, source) else {
            aim.pause(Duration::from_millis(500));
            continue;
        };
        let Ok(mut conn) = handshake(&mut s, aim.mechanism()) else {
            aim.pause(Duration::from_millis(500));
            continue;
        };
        let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
        while aim.running() {
            out.clear();
            for _ in 0..256 {
                if conn.send(&msg, &mut out).is_err() {
                    break;
                }
            }
            match s.write_all(&out) {
                Ok(()) => {
                    aim.flooded.fetch_add(256, Ordering::Relaxed);
                }
                // Pushed back: the server is not reading us now. A write
                // cut short leaves a broken stream: start over.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(_) => {
                    aim.closed_on_us.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

/// A peer that sends 1 KiB of garbage, waits to be closed, and comes back.
fn garbage(aim: &Aim, source: Ipv4Addr, seed: u64) {
    let Some(rt) = small_runtime() else { return };
    let mut x = seed | 1;
    let mut junk = vec![0u8; 1024];
    while aim.running() {
        for b in junk.iter_mut() {
            // xorshift: cheap bytes that are not a greeting.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x.to_le_bytes()[0];
        }
        let Some(mut s) = aim.connect(&rt, source) else {
            aim.pause(Duration::from_millis(200));
            continue;
        };
        let _ = s.write_all(&junk);
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 512];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        aim.closed_on_us.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs every attack against `target` for `args.seconds` (in the child
/// process), then prints what the attackers counted.
fn attack(args: &Args, target: SocketAddr, curve_server: Option<[u8; 32]>) {
    let aim = Arc::new(Aim {
        target,
        curve_server,
        stop: AtomicBool::new(false),
        connections: AtomicU64::new(0),
        closed_on_us: AtomicU64::new(0),
        flooded: AtomicU64::new(0),
    });
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut spawn = |name: &str, f: Box<dyn FnOnce(&Aim) + Send>| {
        if args.only.as_deref().is_none_or(|o| o == name) {
            let a = aim.clone();
            threads.push(thread::spawn(move || f(&a)));
        }
    };
    let at = |last: u8| Ipv4Addr::new(127, 0, 0, last);
    for i in 0..4u64 {
        spawn("flood", Box::new(move |a| flood(a, at(5))));
        let seed = ((i + 1) * 0x9E37_79B9) ^ u64::from(std::process::id());
        spawn("garbage", Box::new(move |a| garbage(a, at(6), seed)));
    }
    for _ in 0..8 {
        spawn("nearmax", Box::new(move |a| near_max_frame(a, at(4))));
    }
    spawn("slow", Box::new(move |a| slow_greeting(a, 16, at(3))));
    let count = args.stalled;
    spawn("stalled", Box::new(move |a| stalled(a, count, 10)));
    thread::sleep(Duration::from_secs(args.seconds));
    aim.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    println!(
        "{} attacking connections opened, {} closed by the server, {} flood messages sent",
        aim.connections.load(Ordering::Relaxed),
        aim.closed_on_us.load(Ordering::Relaxed),
        aim.flooded.load(Ordering::Relaxed),
    );
}

/// The attackers' process. It runs at the lowest CPU priority: attackers
/// stand for other machines, whose CPU time is not the server's to share;
/// the load they put on the server (connections, decoding, decryption) is
/// the server's all the same. Resident memory measured in the harness is
/// then the server's alone.
struct Attackers {
    child: Child,
}

impl Attackers {
    fn start(
        args: &Args,
        target: SocketAddr,
        server_key: Option<[u8; 32]>,
    ) -> Result<Attackers, BoxError> {
        let mut cmd = Command::new("nice");
        cmd.arg("-n")
            .arg("19")
            .arg(std::env::current_exe()?)
            .arg("--attackers")
            .arg(target.to_string())
            .arg("--seconds")
            .arg(args.seconds.to_string())
            .arg("--stalled")
            .arg(args.stalled.to_string())
            .stdout(Stdio::piped());
        if let Some(key) = server_key {
            cmd.arg("--server-key")
                .arg(zeroguard::zmtp::z85::encode(&key)?);
        }
        if let Some(only) = &args.only {
            cmd.arg("--only").arg(only);
        }
        Ok(Attackers {
            child: cmd.spawn()?,
        })
    }

    /// Waits for the attack to end; returns the attackers' counts.
    fn finish(mut self) -> String {
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        let _ = self.child.wait();
        out.trim().to_owned()
    }
}

impl Drop for Attackers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> Result<PathBuf, BoxError> {
    if let Ok(p) = std::env::var("ZEROGUARD_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    if venv.exists() {
        Ok(venv)
    } else {
        Err("no Python with pyzmq: run scripts/python-env.sh (or set ZEROGUARD_PYTHON)".into())
    }
}

/// The legitimate libzmq client: REQ round trips for `ms`, one line a second.
struct Client {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Client {
    fn start(
        endpoint: &str,
        ms: u64,
        rtt_limit: Duration,
        curve: Option<(&CurveKeyPair, &CurveKeyPair)>,
    ) -> Result<Client, BoxError> {
        // The client gives up on a round trip only past the harness's own
        // bound, so that bound (loose under valgrind) is the one that judges.
        let timeout_ms = rtt_limit.as_millis().max(10_000);
        let mut options = String::new();
        if let Some((server, client)) = curve {
            options = format!(
                r#""CURVE_SERVERKEY": "{}", "CURVE_PUBLICKEY": "{}", "CURVE_SECRETKEY": "{}""#,
                server.public_z85(),
                client.public_z85(),
                client.secret_z85().as_str()
            );
        }
        let plan = format!(
            r#"{{"type": "REQ", "connect": "{endpoint}", "timeout_ms": {timeout_ms}, "options": {{{options}}}, "steps": [["roundtrips", {ms}, 64]]}}"#
        );
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/peer.py");
        let mut child = Command::new(python()?)
            .arg(script)
            .arg(plan)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout from the client")?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Client { child, lines })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A number from a one-line JSON object such as `{"p99_us": 812}`.
fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!("\"{name}\": "))? + name.len() + 4;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The counts in a `{"second": [count, max_us]}` line.
fn second(line: &str) -> Option<(u64, u64)> {
    let inner = line.strip_prefix("{\"second\": [")?.strip_suffix("]}")?;
    let (count, max) = inner.split_once(", ")?;
    Some((count.parse().ok()?, max.parse().ok()?))
}

struct RoundReport {
    roundtrips: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    slowest_second: u64,
    peak_rss_kib: u64,
}

/// glibc's allocator raises its mmap threshold as large buffers are freed,
/// after which freed buffers stay in its heaps: resident memory would show
/// the high-water mark, not what is live. Pinning the threshold at 64 KiB
/// makes every large buffer go back to the system when freed, so resident
/// memory tracks live memory. The harness re-runs itself with that setting.
const MALLOC_TUNING: &str = "glibc.malloc.mmap_threshold=65536";

fn main() -> Result<(), BoxError> {
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        let status = Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", MALLOC_TUNING)
            .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let args = parse_args()?;
    if let Some(target) = args.attackers {
        attack(&args, target, args.server_key);
        return Ok(());
    }
    let ctx = Context::new()?;
    let server_keys = CurveKeyPair::generate();
    let client_keys = CurveKeyPair::generate();
    let security = if args.curve {
        Security::curve_server_allow_any(server_keys.clone())
    } else {
        Security::Null
    };
    // Default limits; only the receive timeout lets the echo loop see `stop`.
    let server = Socket::<Router>::with_options(
        &ctx,
        zeroguard::SocketOptions {
            security,
            recv_timeout: Some(Duration::from_millis(100)),
            ..zeroguard::SocketOptions::default()
        },
    )?;
    let monitor = server.monitor();
    let endpoint = server.bind("tcp://127.0.0.1:0")?;
    let target: SocketAddr = endpoint.trim_start_matches("tcp://").parse()?;

    let serving = Arc::new(AtomicBool::new(true));
    let echoed = Arc::new(AtomicU64::new(0));
    let echo = {
        let (serving, echoed) = (serving.clone(), echoed.clone());
        thread::spawn(move || {
            while serving.load(Ordering::Relaxed) {
                if let Ok(m) = server.recv() {
                    // Replies to peers that do not read are dropped at their
                    // high-water mark (counted), as ROUTER does.
                    if server.send(m).is_ok() {
                        echoed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            server
        })
    };
    let events = {
        let serving = serving.clone();
        thread::spawn(move || {
            let mut counts = [0u64; 3];
            while serving.load(Ordering::Relaxed) {
                match monitor.recv(Some(Duration::from_millis(100))) {
                    Some(MonitorEvent::AcceptRefused { .. }) => counts[0] += 1,
                    Some(MonitorEvent::HandshakeFailed { .. }) => counts[1] += 1,
                    Some(MonitorEvent::Disconnected { .. }) => counts[2] += 1,
                    _ => {}
                }
            }
            counts
        })
    };
    let curve_keys = args.curve.then_some((&server_keys, &client_keys));

    // Warm-up: the client alone, then the baseline.
    {
        let client = Client::start(&endpoint, 2000, args.rtt_limit, curve_keys)?;
        let done = client
            .lines
            .iter()
            .find(|l| l.contains("roundtrips"))
            .ok_or("the client ended before its warm-up round trips")?;
        println!("warm-up: {done}");
    }
    thread::sleep(Duration::from_millis(500));
    let baseline = rss_kib();
    println!(
        "mechanism: {}; attack: {} stalled handshakes, 16 one-byte-at-a-time greetings, 8 near-{} MiB frames, 4 flooders, 4 garbage senders; {} s x {} rounds",
        if args.curve { "CURVE" } else { "NULL" },
        args.stalled,
        zeroguard::zmtp::config::DEFAULT_MAX_MESSAGE_SIZE >> 20,
        args.seconds,
        args.rounds
    );
    println!("resident memory before the attack: {baseline} KiB");

    let mut failures: Vec<String> = Vec::new();
    let mut after_rounds = Vec::new();
    for round in 1..=args.rounds {
        let client = Client::start(
            &endpoint,
            args.seconds * 1000 + 1000,
            args.rtt_limit,
            curve_keys,
        )?;
        // The client is connected (its first second is done) before the attack.
        let first = client
            .lines
            .recv_timeout(Duration::from_secs(10).max(args.rtt_limit))?;
        second(&first).ok_or_else(|| format!("unexpected client output: {first}"))?;
        let attackers = Attackers::start(&args, target, args.curve.then(|| *server_keys.public()))?;

        let mut peak = 0;
        let mut slowest_second = u64::MAX;
        let mut report = None;
        let start = Instant::now();
        while report.is_none() {
            peak = peak.max(rss_kib());
            match client.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some((count, _)) = second(&line) {
                        slowest_second = slowest_second.min(count);
                    } else if line.contains("roundtrips") {
                        report = Some(line);
                    } else {
                        failures.push(format!("round {round}: client says {line}"));
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if start.elapsed() > Duration::from_secs(args.seconds + 30) + args.rtt_limit {
                        failures.push(format!("round {round}: the client stopped reporting"));
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    failures.push(format!(
                        "round {round}: the client ended without a result (a round trip timed out)"
                    ));
                    break;
                }
            }
        }
        let counts = attackers.finish();
        drop(client);
        thread::sleep(Duration::from_secs(1));
        let after = rss_kib();
        after_rounds.push(after);
        let Some(line) = report else { continue };
        let r = RoundReport {
            roundtrips: field(&line, "roundtrips").unwrap_or(0),
            p50_us: field(&line, "p50_us").unwrap_or(0),
            p99_us: field(&line, "p99_us").unwrap_or(0),
            max_us: field(&line, "max_us").unwrap_or(u64::MAX),
            slowest_second,
            peak_rss_kib: peak,
        };
        println!(
            "round {round}: {counts}; {} messages echoed so far",
            echoed.load(Ordering::Relaxed),
        );
        println!(
            "round {round}: client {} round trips, p50 {} us, p99 {} us, max {} us, fewest in one second {}; resident memory peak {} KiB (+{} KiB), after {} KiB",
            r.roundtrips,
            r.p50_us,
            r.p99_us,
            r.max_us,
            r.slowest_second,
            r.peak_rss_kib,
            r.peak_rss_kib.saturating_sub(baseline),
            after
        );
        if u128::from(r.max_us) > args.rtt_limit.as_micros() {
            failures.push(format!(
                "round {round}: a round trip took {} us, above the {} ms bound",
                r.max_us,
                args.rtt_limit.as_millis()
            ));
        }
        // With a bound under a second, every second must see round trips.
        if r.slowest_second == u64::MAX
            || (r.slowest_second == 0 && args.rtt_limit < Duration::from_secs(1))
        {
            failures.push(format!("round {round}: a second passed with no round trip"));
        }
        if r.peak_rss_kib.saturating_sub(baseline) > args.rss_limit_kib {
            failures.push(format!(
                "round {round}: resident memory grew by {} KiB, above the {} MiB bound",
                r.peak_rss_kib - baseline,
                args.rss_limit_kib / 1024
            ));
        }
    }
    if let (Some(first), Some(last)) = (after_rounds.first(), after_rounds.last()) {
        let grown = last.saturating_sub(*first);
        println!(
            "resident memory after each round: {after_rounds:?} KiB (+{grown} KiB from the first)"
        );
        if after_rounds.len() > 1 && grown > args.leak_limit_kib {
            failures.push(format!(
                "resident memory kept growing across rounds: +{grown} KiB, above {} MiB",
                args.leak_limit_kib / 1024
            ));
        }
    }

    serving.store(false, Ordering::Relaxed);
    let server = echo.join().map_err(|_| "the server's echo loop panicked")?;
    let [refused, failed, disconnected] = events.join().map_err(|_| "monitor thread panicked")?;
    let stats = server.statistics();
    println!(
        "server: {refused} connections refused at a limit, {failed} handshakes failed, {disconnected} sessions closed; {} replies dropped at a full peer",
        stats.dropped_full.load(Ordering::Relaxed)
    );
    drop(server);
    ctx.terminate();
    if failures.is_empty() {
        println!("attack harness: all bounds held");
        Ok(())
    } else {
        for f in &failures {
            eprintln!("FAILED: {f}");
        }
        Err(format!("{} bound(s) broken", failures.len()).into())
    }
}
