//! `recv`, `send`, `echo` and `proxy`.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zeroguard::{
    proxy_dyn, Context, DynSocket, Error, Message, MonitorEvent, SocketOptions, SocketType,
};

use crate::args::{EchoArgs, Endpoints, Limits, ProxyArgs, RecvArgs, SecurityArgs, SendArgs};
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

fn options(limits: &Limits, security: &SecurityArgs) -> SocketOptions {
    let mut o = SocketOptions::default();
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
    o.allow_plaintext = security.allow_plaintext;
    o
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
    let kind = socket_type(&a.socket_type)?;
    match kind {
        SocketType::Pub | SocketType::Push => {
            return Err(Failure::config(format!(
                "a {} socket cannot receive",
                a.socket_type
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
        &a.endpoints,
        options(&a.limits, &a.security),
        a.monitor,
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
    let kind = socket_type(&a.socket_type)?;
    if matches!(kind, SocketType::Sub | SocketType::Pull) {
        return Err(Failure::config(format!(
            "a {} socket cannot send",
            a.socket_type
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
    let mut opts = options(&a.limits, &a.security);
    opts.linger = Duration::from_millis(a.linger);
    opts.send_timeout = Some(TICK);
    let ctx = Context::new().map_err(Failure::runtime)?;
    let (socket, watch) = open(&ctx, kind, &a.endpoints, opts, a.monitor)?;
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
    let kind = socket_type(&a.socket_type)?;
    if !matches!(
        kind,
        SocketType::Rep | SocketType::Router | SocketType::Dealer | SocketType::Pair
    ) {
        return Err(Failure::config(
            "echo works with rep, router, dealer and pair",
        ));
    }
    let ctx = Context::new().map_err(Failure::runtime)?;
    let mut opts = options(&a.limits, &a.security);
    opts.send_timeout = Some(TICK);
    let (socket, watch) = open(&ctx, kind, &a.endpoints, opts, a.monitor)?;
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
    let opts = options(&a.limits, &a.security);
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
