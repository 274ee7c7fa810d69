//! `keygen`, `recv`, `send`, `echo` and `proxy`, and the SECURITY options.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zeroguard::{
    proxy_dyn, AddressFilter, Authenticator, Certificate, CertificateDirectory, Cidr, Context,
    DynSocket, Error, Message, MonitorEvent, PasswordFile, Security, SocketOptions, SocketType,
};

use crate::args::{
    EchoArgs, Endpoints, KeygenArgs, Limits, ProxyArgs, RecvArgs, SecurityArgs, SendArgs,
};
use crate::text;
use crate::Failure;

/// How often blocking loops look at the monitor for fatal failures.
const TICK: Duration = Duration::from_millis(50);

pub(crate) fn socket_type(name: &str) -> Result<SocketType, Failure> {
    let t = match name {
        "pair" => SocketType::Pair,
        "pub" => SocketType::Pub,
        "sub" => SocketType::Sub,
        "xpub" => SocketType::XPub,
        "xsub" => SocketType::XSub,
        "push" => SocketType::Push,
        "pull" => SocketType::Pull,
        "req" => SocketType::Req,
        "rep" => SocketType::Rep,
        "dealer" => SocketType::Dealer,
        "router" => SocketType::Router,
        other => {
            return Err(Failure::config(format!(
                "unknown socket type {other:?}; use pair pub sub xpub xsub push pull req rep dealer router"
            )))
        }
    };
    Ok(t)
}

/// Builds the security value, refusing every inconsistent combination.
fn security(a: &SecurityArgs) -> Result<Security, Failure> {
    let modes = [
        a.curve_server,
        a.curve_client,
        a.plain_server,
        a.plain_client,
    ];
    if modes.iter().filter(|&&m| m).count() > 1 {
        return Err(Failure::config(
            "choose one of --curve-server, --curve-client, --plain-server, --plain-client",
        ));
    }
    let needs = |flag: bool, what: &str, mode: &str| {
        if flag {
            Err(Failure::config(format!(
                "{what} only makes sense with {mode}"
            )))
        } else {
            Ok(())
        }
    };
    needs(
        a.cert.is_some() && !a.curve_server && !a.curve_client,
        "--cert",
        "--curve-server or --curve-client",
    )?;
    needs(
        a.allow_certs.is_some() && !a.curve_server,
        "--allow-certs",
        "--curve-server",
    )?;
    needs(
        a.allow_any_client && !a.curve_server,
        "--allow-any-client",
        "--curve-server",
    )?;
    needs(
        (a.server_key.is_some() || a.server_cert.is_some()) && !a.curve_client,
        "--server-key/--server-cert",
        "--curve-client",
    )?;
    needs(
        a.passwords.is_some() && !a.plain_server,
        "--passwords",
        "--plain-server",
    )?;
    needs(
        (a.user.is_some() || a.password.is_some()) && !a.plain_client,
        "--user/--password",
        "--plain-client",
    )?;
    let is_client = a.curve_client || a.plain_client;
    needs(
        is_client && (!a.allow.is_empty() || !a.deny.is_empty()),
        "--allow/--deny (they filter incoming peers)",
        "a server",
    )?;
    let secret_cert = || -> Result<zeroguard::CurveKeyPair, Failure> {
        let path = a
            .cert
            .as_ref()
            .ok_or_else(|| Failure::config("CURVE needs --cert FILE (our secret certificate)"))?;
        let cert = Certificate::load(path).map_err(Failure::config)?;
        cert.keys().cloned().ok_or_else(|| {
            Failure::config(format!(
                "{} holds no secret key: give the .key_secret file",
                path.display()
            ))
        })
    };
    let filter =
        |inner: Option<Arc<dyn Authenticator>>| -> Result<Option<Arc<dyn Authenticator>>, Failure> {
            if a.allow.is_empty() && a.deny.is_empty() {
                return Ok(inner);
            }
            let parse = |list: &[String]| -> Result<Vec<Cidr>, Failure> {
                list.iter()
                    .map(|s| s.parse::<Cidr>().map_err(Failure::config))
                    .collect()
            };
            Ok(Some(Arc::new(AddressFilter::new(
                parse(&a.allow)?,
                parse(&a.deny)?,
                inner,
            ))))
        };
    if a.curve_server {
        let keys = secret_cert()?;
        let judge: Arc<dyn Authenticator> =
            match (&a.allow_certs, a.allow_any_client) {
                (Some(_), true) | (None, false) => return Err(Failure::config(
                    "a CURVE server needs exactly one of --allow-certs DIR or --allow-any-client",
                )),
                (Some(dir), false) => {
                    Arc::new(CertificateDirectory::new(dir).map_err(Failure::config)?)
                }
                (None, true) => {
                    return Ok(match filter(None)? {
                        Some(f) => Security::CurveServer {
                            keys,
                            authenticator: f,
                        },
                        None => Security::curve_server_allow_any(keys),
                    })
                }
            };
        let judge = filter(Some(judge))?.unwrap_or_else(|| unreachable_judge());
        return Ok(Security::CurveServer {
            keys,
            authenticator: judge,
        });
    }
    if a.curve_client {
        let keys = secret_cert()?;
        let server_key =
            match (&a.server_key, &a.server_cert) {
                (Some(z), None) => zeroguard::zmtp::z85::decode_key(z)
                    .map_err(|e| Failure::config(format!("--server-key: {e}")))?,
                (None, Some(path)) => *Certificate::load(path).map_err(Failure::config)?.public(),
                _ => return Err(Failure::config(
                    "a CURVE client needs exactly one of --server-key Z85 or --server-cert FILE",
                )),
            };
        return Ok(Security::curve_client(keys, server_key));
    }
    if a.plain_server {
        let path = a
            .passwords
            .as_ref()
            .ok_or_else(|| Failure::config("--plain-server needs --passwords FILE"))?;
        let file: Arc<dyn Authenticator> =
            Arc::new(PasswordFile::new(path).map_err(Failure::config)?);
        let judge = filter(Some(file))?.unwrap_or_else(|| unreachable_judge());
        return Ok(Security::PlainServer(judge));
    }
    if a.plain_client {
        let (Some(user), Some(password)) = (&a.user, &a.password) else {
            return Err(Failure::config(
                "--plain-client needs --user U and --password P",
            ));
        };
        return Ok(Security::plain_client(
            user.clone().into_bytes(),
            password.as_bytes(),
        ));
    }
    Ok(match filter(None)? {
        Some(f) => Security::NullAuthenticated(f),
        None => Security::Null,
    })
}

/// `filter(Some(_))` always returns `Some`; this keeps that total without a panic.
fn unreachable_judge() -> Arc<dyn Authenticator> {
    Arc::new(|_: &zeroguard::AuthContext| zeroguard::AuthDecision::refuse("no authenticator"))
}

pub(crate) fn keygen(a: KeygenArgs) -> Result<(), Failure> {
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| Failure::runtime(format!("{}: {e}", a.dir.display())))?;
    let mut cert = Certificate::generate();
    cert.set_metadata("name", &a.name)
        .map_err(Failure::config)?;
    cert.write(&a.dir, &a.name).map_err(Failure::runtime)?;
    println!("{}", cert.public_z85());
    Ok(())
}

fn options(limits: &Limits, security_args: &SecurityArgs) -> Result<SocketOptions, Failure> {
    let mut o = SocketOptions {
        security: security(security_args)?,
        ..SocketOptions::default()
    };
    if let Some(v) = limits.max_msg_size {
        o.max_message_size = v;
    }
    if let Some(v) = limits.sndhwm {
        o.sndhwm = v;
    }
    if let Some(v) = limits.rcvhwm {
        o.rcvhwm = v;
    }
    if let Some(v) = limits.handshake_timeout {
        o.handshake_timeout = Duration::from_millis(v);
    }
    if let Some(v) = limits.max_connections {
        o.max_connections = v;
    }
    if let Some(v) = limits.heartbeat {
        o.heartbeat.interval = (v > 0).then(|| Duration::from_millis(v));
        o.heartbeat.timeout = Duration::from_millis(v.saturating_mul(3).max(1));
    }
    if let Some(v) = limits.spin {
        o.spin = Duration::from_micros(v);
    }
    o.allow_plaintext = security_args.allow_plaintext;
    Ok(o)
}

/// Prints events (with --monitor) and notices handshakes that failed for good.
struct Watch {
    fatal: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    fn start(socket: &DynSocket, print: bool, connect_only: bool) -> Watch {
        let monitor = socket.monitor();
        let fatal = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (fatal2, stop2) = (fatal.clone(), stop.clone());
        let thread = std::thread::spawn(move || loop {
            let event = monitor.recv(Some(TICK));
            if let Some(event) = &event {
                if print {
                    eprintln!("event: {event}");
                }
                if let MonitorEvent::HandshakeFailed {
                    category, detail, ..
                } = event
                {
                    use zeroguard::zmtp::ErrorCategory::*;
                    // A connecting side whose peer refuses it will never get through.
                    if connect_only && matches!(category, Authentication | Incompatible | Protocol)
                    {
                        *fatal2.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("handshake failed: {detail}"));
                    }
                }
            } else if stop2.load(Ordering::Acquire) {
                break;
            }
        });
        Watch {
            fatal,
            stop,
            thread: Some(thread),
        }
    }

    fn check(&self) -> Result<(), Failure> {
        match self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(reason) => Err(Failure::runtime(reason)),
            None => Ok(()),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open(
    ctx: &Context,
    kind: SocketType,
    endpoints: &Endpoints,
    opts: SocketOptions,
    monitor: bool,
) -> Result<(DynSocket, Watch), Failure> {
    if endpoints.bind.is_empty() && endpoints.connect.is_empty() {
        return Err(Failure::config(
            "give at least one --bind EP or --connect EP",
        ));
    }
    let socket = DynSocket::new(ctx, kind, opts).map_err(Failure::config)?;
    let watch = Watch::start(&socket, monitor, endpoints.bind.is_empty());
    for ep in &endpoints.bind {
        socket.bind(ep).map_err(|e| match e {
            Error::InvalidEndpoint { .. } => Failure::config(e),
            other => Failure::runtime(other),
        })?;
    }
    for ep in &endpoints.connect {
        socket.connect(ep).map_err(Failure::config)?;
    }
    Ok((socket, watch))
}

/// Sends one message, waiting for a peer, but giving up on a fatal handshake failure.
fn send_one(socket: &DynSocket, watch: &Watch, msg: &Message) -> Result<(), Failure> {
    loop {
        watch.check()?;
        match socket.send(msg.clone()) {
            Ok(()) => return Ok(()),
            Err(Error::WouldBlock) => continue,
            Err(e) => return Err(Failure::runtime(e)),
        }
    }
}

/// Receives one message within `timeout` (None: forever), watching for fatal failures.
fn recv_one(
    socket: &DynSocket,
    watch: &Watch,
    timeout: Option<Duration>,
) -> Result<Option<Message>, Failure> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        watch.check()?;
        let slice = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(None);
                }
                (d - now).min(TICK)
            }
            None => TICK,
        };
        match socket.recv_timeout(Some(slice)) {
            Ok(m) => return Ok(Some(m)),
            Err(Error::WouldBlock) => continue,
            Err(e) => return Err(Failure::runtime(e)),
        }
    }
}

pub(crate) fn recv(a: RecvArgs) -> Result<(), Failure> {
    let kind = socket_type(&a.socket.socket_type)?;
    match kind {
        SocketType::Pub | SocketType::Push => {
            return Err(Failure::config(format!(
                "a {} socket cannot receive",
                a.socket.socket_type
            )))
        }
        SocketType::Req | SocketType::Rep => {
            return Err(Failure::config(
                "req and rep alternate: use `send req` or `echo rep`",
            ))
        }
        _ => {}
    }
    if !a.subscribe.is_empty() && kind != SocketType::Sub && kind != SocketType::XSub {
        return Err(Failure::config("--subscribe is for sub and xsub sockets"));
    }
    let ctx = Context::new().map_err(Failure::runtime)?;
    let (socket, watch) = open(
        &ctx,
        kind,
        &a.socket.endpoints,
        options(&a.socket.limits, &a.socket.security)?,
        a.socket.monitor,
    )?;
    if kind == SocketType::Sub || kind == SocketType::XSub {
        let prefixes = if a.subscribe.is_empty() {
            vec![String::new()]
        } else {
            a.subscribe.clone()
        };
        for p in prefixes {
            let prefix = text::decode(&p).map_err(Failure::config)?;
            let prefix = prefix.frames().first().cloned().unwrap_or_default();
            socket.subscribe(&prefix).map_err(Failure::runtime)?;
        }
    }
    let timeout = a.timeout.map(Duration::from_millis);
    let mut received = 0u64;
    while a.count.is_none_or(|n| received < n) {
        match recv_one(&socket, &watch, timeout)? {
            Some(m) => {
                println!("{}", text::encode(&m));
                received += 1;
            }
            None => {
                return Err(Failure::timeout(format!(
                    "no message within {} ms",
                    a.timeout.unwrap_or(0)
                )))
            }
        }
    }
    Ok(())
}

pub(crate) fn send(a: SendArgs) -> Result<(), Failure> {
    let kind = socket_type(&a.socket.socket_type)?;
    if matches!(kind, SocketType::Sub | SocketType::Pull) {
        return Err(Failure::config(format!(
            "a {} socket cannot send",
            a.socket.socket_type
        )));
    }
    let mut messages = Vec::new();
    if a.message.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(Failure::runtime)?;
            messages.push(text::decode(&line).map_err(Failure::config)?);
        }
    } else {
        for m in &a.message {
            messages.push(text::decode(m).map_err(Failure::config)?);
        }
    }
    let mut opts = options(&a.socket.limits, &a.socket.security)?;
    opts.linger = Duration::from_millis(a.linger);
    opts.send_timeout = Some(TICK);
    let ctx = Context::new().map_err(Failure::runtime)?;
    let (socket, watch) = open(&ctx, kind, &a.socket.endpoints, opts, a.socket.monitor)?;
    if let Some(d) = a.delay {
        std::thread::sleep(Duration::from_millis(d));
    }
    for _ in 0..a.repeat {
        for m in &messages {
            send_one(&socket, &watch, m)?;
            if kind == SocketType::Req {
                let reply = recv_one(&socket, &watch, None)?.unwrap_or_default();
                println!("{}", text::encode(&reply));
            }
        }
    }
    drop(socket);
    ctx.terminate();
    watch.check()
}

pub(crate) fn echo(a: EchoArgs) -> Result<(), Failure> {
    let kind = socket_type(&a.socket.socket_type)?;
    if !matches!(
        kind,
        SocketType::Rep | SocketType::Router | SocketType::Dealer | SocketType::Pair
    ) {
        return Err(Failure::config(
            "echo works with rep, router, dealer and pair",
        ));
    }
    let ctx = Context::new().map_err(Failure::runtime)?;
    let mut opts = options(&a.socket.limits, &a.socket.security)?;
    opts.send_timeout = Some(TICK);
    let (socket, watch) = open(&ctx, kind, &a.socket.endpoints, opts, a.socket.monitor)?;
    let mut echoed = 0u64;
    while a.count.is_none_or(|n| echoed < n) {
        if let Some(m) = recv_one(&socket, &watch, None)? {
            send_one(&socket, &watch, &m)?;
            echoed += 1;
        }
    }
    drop(socket);
    ctx.terminate();
    Ok(())
}

fn proxy_side(spec: &str, ctx: &Context, opts: SocketOptions) -> Result<DynSocket, Failure> {
    let (kind, endpoint) = spec
        .split_once('=')
        .ok_or_else(|| Failure::config(format!("{spec:?} is not TYPE=ENDPOINT")))?;
    let socket = DynSocket::new(ctx, socket_type(kind)?, opts).map_err(Failure::config)?;
    match endpoint.strip_prefix('>') {
        Some(ep) => socket.connect(ep).map_err(Failure::config)?,
        None => {
            socket
                .bind(endpoint.strip_prefix('@').unwrap_or(endpoint))
                .map_err(|e| match e {
                    Error::InvalidEndpoint { .. } => Failure::config(e),
                    other => Failure::runtime(other),
                })?;
        }
    }
    Ok(socket)
}

pub(crate) fn proxy(a: ProxyArgs) -> Result<(), Failure> {
    let ctx = Context::new().map_err(Failure::runtime)?;
    let opts = options(&a.limits, &a.security)?;
    let front = proxy_side(&a.frontend, &ctx, opts.clone())?;
    let back = proxy_side(&a.backend, &ctx, opts)?;
    let _watches = (
        Watch::start(&front, a.monitor, false),
        Watch::start(&back, a.monitor, false),
    );
    if matches!(front.socket_type(), SocketType::Sub) {
        front.subscribe("").map_err(Failure::runtime)?;
    }
    proxy_dyn(&front, &back).map_err(Failure::runtime)
}
