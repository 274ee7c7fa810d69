//! Interop with libzmq 4.3 (through pyzmq): every compatible socket pair,
//! both directions (zeroguard binds / libzmq binds), over tcp and ipc, with
//! multipart, empty, binary and > 8 KiB frames.
//!
//! The Python interpreter comes from `ZEROGUARD_PYTHON`, or the project's
//! `.venv` made by `scripts/python-env.sh`. Without pyzmq these tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use zeroguard::{
    Context, Dealer, Message, MonitorEvent, Pair, Pub, Pull, Push, Rep, Req, Router, Socket,
    SocketOptions, Sub, XPub, XSub,
};

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("ZEROGUARD_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with pyzmq: run scripts/python-env.sh (or set ZEROGUARD_PYTHON)"
    );
    venv
}

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/peer.py")
}

/// A libzmq peer running a plan.
struct Py {
    child: Child,
    lines: Receiver<String>,
    stdin: Option<ChildStdin>,
}

impl Py {
    fn spawn(plan: String) -> Py {
        let arg = if plan.len() > 32 * 1024 {
            let path = std::env::temp_dir().join(format!(
                "zg-plan-{}-{}.json",
                std::process::id(),
                IPC_SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, &plan).unwrap();
            format!("@{}", path.display())
        } else {
            plan
        };
        let mut child = Command::new(python())
            .arg(peer_script())
            .arg(&arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python peer");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Py {
            child,
            lines,
            stdin,
        }
    }

    fn line(&self) -> String {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the Python peer said nothing for 20 s");
        assert!(!line.contains("\"error\""), "Python peer failed: {line}");
        line
    }

    fn endpoint(&self) -> String {
        let line = self.line();
        let ep = line.split('"').nth(3).expect("endpoint line");
        ep.to_owned()
    }

    fn message(&self) -> Vec<Vec<u8>> {
        parse_message(&self.line())
    }

    fn try_message(&self, timeout: Duration) -> Option<Vec<Vec<u8>>> {
        self.lines
            .recv_timeout(timeout)
            .ok()
            .map(|line| parse_message(&line))
    }

    fn go(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) {
        assert_eq!(self.line(), "{\"done\": true}");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "Python peer exited with {status}");
    }
}

/// Decodes a `{"msg": ["hex", ...]}` line from the peer into frames.
fn parse_message(line: &str) -> Vec<Vec<u8>> {
    assert!(
        line.starts_with("{\"msg\""),
        "expected a message, got {line}"
    );
    let list = &line[line.find('[').unwrap() + 1..line.rfind(']').unwrap()];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_msgs(msgs: &[Message]) -> String {
    let items: Vec<String> = msgs
        .iter()
        .map(|m| {
            let frames: Vec<String> = m
                .frames()
                .iter()
                .map(|f| format!("\"{}\"", hex(f)))
                .collect();
            format!("[{}]", frames.join(","))
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn frames(m: &Message) -> Vec<Vec<u8>> {
    m.frames().iter().map(|f| f.to_vec()).collect()
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    Ipc,
}

static IPC_SEQ: AtomicUsize = AtomicUsize::new(0);

impl Transport {
    fn bind_endpoint(self, python: bool) -> String {
        match self {
            Transport::Tcp if python => "tcp://127.0.0.1:*".into(),
            Transport::Tcp => "tcp://127.0.0.1:0".into(),
            Transport::Ipc => format!(
                "ipc:///tmp/zg-interop-{}-{}.sock",
                std::process::id(),
                IPC_SEQ.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }
}

/// Who binds.
#[derive(Clone, Copy, Debug)]
enum Binder {
    Zeroguard,
    Libzmq,
}

fn options() -> SocketOptions {
    SocketOptions {
        recv_timeout: Some(Duration::from_secs(10)),
        send_timeout: Some(Duration::from_secs(10)),
        ..SocketOptions::default()
    }
}

/// Sets up a zeroguard socket and a libzmq peer joined as `binder` says.
fn join<K: zeroguard::Kind>(
    ctx: &Context,
    transport: Transport,
    binder: Binder,
    py_type: &str,
    py_options: &str,
    steps: &str,
) -> (Socket<K>, Py) {
    join_with(
        ctx,
        options(),
        transport,
        binder,
        py_type,
        py_options,
        steps,
    )
}

fn join_with<K: zeroguard::Kind>(
    ctx: &Context,
    opts: SocketOptions,
    transport: Transport,
    binder: Binder,
    py_type: &str,
    py_options: &str,
    steps: &str,
) -> (Socket<K>, Py) {
    let (socket, py, _) = join_monitored(ctx, opts, transport, binder, py_type, py_options, steps);
    (socket, py)
}

/// Like `join_with`, with a monitor created before binding or connecting,
/// so no event (the handshake, say) can happen before it exists.
fn join_monitored<K: zeroguard::Kind>(
    ctx: &Context,
    opts: SocketOptions,
    transport: Transport,
    binder: Binder,
    py_type: &str,
    py_options: &str,
    steps: &str,
) -> (Socket<K>, Py, zeroguard::Monitor) {
    let socket = Socket::<K>::with_options(ctx, opts).unwrap();
    let monitor = socket.monitor();
    match binder {
        Binder::Zeroguard => {
            let ep = socket.bind(&transport.bind_endpoint(false)).unwrap();
            let plan = format!(
                "{{\"type\":\"{py_type}\",\"connect\":\"{ep}\",\"options\":{{{py_options}}},\"steps\":{steps}}}"
            );
            (socket, Py::spawn(plan), monitor)
        }
        Binder::Libzmq => {
            let ep = transport.bind_endpoint(true);
            let plan = format!(
                "{{\"type\":\"{py_type}\",\"bind\":\"{ep}\",\"options\":{{{py_options}}},\"steps\":{steps}}}"
            );
            let py = Py::spawn(plan);
            let ep = py.endpoint();
            socket.connect(&ep).unwrap();
            (socket, py, monitor)
        }
    }
}

/// Messages that exercise multipart, empty, binary and long frames.
fn samples() -> Vec<Message> {
    vec![
        Message::from("hello"),
        Message::from_frames([&b"multi"[..], b"", b"part"]),
        Message::from(vec![0u8, 255, 1, 254, b'\t', b'\n', 0]),
        Message::from_frames([vec![7u8; 8193], vec![], vec![9u8; 70_000]]),
        Message::from(Vec::<u8>::new()),
    ]
}

fn each_setup(test: impl Fn(Transport, Binder)) {
    for transport in [Transport::Tcp, Transport::Ipc] {
        for binder in [Binder::Zeroguard, Binder::Libzmq] {
            test(transport, binder);
        }
    }
}

#[test]
fn push_to_libzmq_pull() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let msgs = samples();
        let (push, py) = join::<Push>(
            &ctx,
            t,
            b,
            "PULL",
            "",
            &format!("[[\"recv\",{}]]", msgs.len()),
        );
        for m in &msgs {
            push.send(m.clone()).unwrap();
        }
        for m in &msgs {
            assert_eq!(py.message(), frames(m), "{t:?} {b:?}");
        }
        py.finish();
    });
}

#[test]
fn libzmq_push_to_pull() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let msgs = samples();
        let (pull, py) = join::<Pull>(
            &ctx,
            t,
            b,
            "PUSH",
            "",
            &format!("[[\"send\",{}]]", json_msgs(&msgs)),
        );
        for m in &msgs {
            assert_eq!(pull.recv().unwrap(), *m, "{t:?} {b:?}");
        }
        py.finish();
    });
}

#[test]
fn req_to_libzmq_rep() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let msgs = samples();
        let (req, py) = join::<Req>(
            &ctx,
            t,
            b,
            "REP",
            "",
            &format!("[[\"echo\",{}]]", msgs.len()),
        );
        for m in &msgs {
            req.send(m.clone()).unwrap();
            assert_eq!(req.recv().unwrap(), *m, "{t:?} {b:?}");
        }
        py.finish();
    });
}

#[test]
fn libzmq_req_to_rep() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let (rep, py) = join::<Rep>(
            &ctx,
            t,
            b,
            "REQ",
            "",
            &format!(
                "[[\"send\",{}],[\"recv\",1],[\"send\",{}],[\"recv\",1]]",
                json_msgs(&[Message::from("one")]),
                json_msgs(&[Message::from_frames(["two", "", "parts"])])
            ),
        );
        for expected in [
            Message::from("one"),
            Message::from_frames(["two", "", "parts"]),
        ] {
            let req = rep.recv().unwrap();
            assert_eq!(req, expected);
            let mut reply = req.clone();
            reply.push_back("ack");
            rep.send(reply.clone()).unwrap();
            assert_eq!(py.message(), frames(&reply), "{t:?} {b:?}");
        }
        py.finish();
    });
}

#[test]
fn dealer_to_libzmq_router() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let mut o = options();
        o.routing_id = Some("zg-dealer".into());
        let (dealer, py) =
            join_with::<Dealer>(&ctx, o, t, b, "ROUTER", "", "[[\"recv\",1],[\"echo\",1]]");
        // libzmq's ROUTER sees the routing id we announced.
        dealer.send("first").unwrap();
        assert_eq!(
            py.message(),
            vec![b"zg-dealer".to_vec(), b"first".to_vec()],
            "{t:?} {b:?}"
        );
        let m = Message::from_frames(["", "with", "delimiter"]);
        dealer.send(m.clone()).unwrap();
        assert_eq!(dealer.recv().unwrap(), m, "{t:?} {b:?}");
        py.finish();
    });
}

#[test]
fn libzmq_dealer_to_router_with_identity() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let steps = format!(
            "[[\"send\",{}],[\"recv\",1]]",
            json_msgs(&[Message::from_frames(["a", "b"])])
        );
        let (router, py) = join::<Router>(
            &ctx,
            t,
            b,
            "DEALER",
            &format!("\"ROUTING_ID\":\"{}\"", hex(b"py-dealer")),
            &steps,
        );
        let m = router.recv().unwrap();
        assert_eq!(
            frames(&m),
            vec![b"py-dealer".to_vec(), b"a".to_vec(), b"b".to_vec()],
            "{t:?} {b:?}"
        );
        router
            .send(Message::from_frames(["py-dealer", "reply"]))
            .unwrap();
        assert_eq!(py.message(), vec![b"reply".to_vec()]);
        py.finish();
    });
}

#[test]
fn libzmq_req_to_router_generated_identity() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let steps = format!(
            "[[\"send\",{}],[\"recv\",1]]",
            json_msgs(&[Message::from("ping")])
        );
        let (router, py) = join::<Router>(&ctx, t, b, "REQ", "", &steps);
        let mut m = router.recv().unwrap();
        let id = m.pop_front().unwrap();
        assert_eq!(id.len(), 5, "generated ids are 5 bytes");
        assert_eq!(id[0], 0);
        assert_eq!(frames(&m), vec![b"".to_vec(), b"ping".to_vec()]);
        router
            .send(Message::from_frames([id, "".into(), "pong".into()]))
            .unwrap();
        assert_eq!(py.message(), vec![b"pong".to_vec()], "{t:?} {b:?}");
        py.finish();
    });
}

fn wait_handshake(monitor: &zeroguard::Monitor) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(MonitorEvent::HandshakeSucceeded { .. }) =
            monitor.recv(Some(Duration::from_millis(100)))
        {
            return;
        }
    }
    panic!("no handshake within 10 s");
}

#[test]
fn pub_to_libzmq_sub_filters_by_prefix() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let steps = format!("[[\"subscribe\",\"{}\"],[\"recv\",3]]", hex(b"A"));
        let (publisher, py) = join::<Pub>(&ctx, t, b, "SUB", "", &steps);
        // Subscriptions take a moment to arrive: publish until three A messages got through.
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while got.len() < 3 && Instant::now() < deadline {
            publisher.send("B-not-for-you").unwrap();
            publisher
                .send(Message::from_frames(["A-topic", "payload"]))
                .unwrap();
            if let Some(m) = py.try_message(Duration::from_millis(20)) {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 3, "{t:?} {b:?}");
        for m in got {
            assert_eq!(m, vec![b"A-topic".to_vec(), b"payload".to_vec()]);
        }
        py.finish();
    });
}

#[test]
fn libzmq_pub_to_sub() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let msgs = [
            Message::from("B-skip"),
            Message::from("A1"),
            Message::from_frames(["A2", "more"]),
        ];
        let steps = format!("[[\"wait_line\"],[\"send\",{}]]", json_msgs(&msgs));
        let (sub, mut py, monitor) =
            join_monitored::<Sub>(&ctx, options(), t, b, "PUB", "", &steps);
        sub.subscribe("A").unwrap();
        wait_handshake(&monitor);
        std::thread::sleep(Duration::from_millis(300));
        py.go();
        assert_eq!(sub.recv().unwrap(), msgs[1], "{t:?} {b:?}");
        assert_eq!(sub.recv().unwrap(), msgs[2]);
        py.finish();
    });
}

#[test]
fn xpub_sees_libzmq_xsub_subscriptions() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let steps = format!(
            "[[\"send\",{}],[\"recv\",1]]",
            json_msgs(&[Message::from(b"\x01news".to_vec())])
        );
        let (xpub, py) = join::<XPub>(&ctx, t, b, "XSUB", "", &steps);
        assert_eq!(
            xpub.recv().unwrap(),
            Message::from(b"\x01news".to_vec()),
            "{t:?} {b:?}"
        );
        xpub.send("news: it works").unwrap();
        xpub.send("sport: filtered out").unwrap();
        assert_eq!(py.message(), vec![b"news: it works".to_vec()]);
        py.finish();
    });
}

#[test]
fn xsub_subscribes_at_libzmq_xpub() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let msgs = [Message::from("other"), Message::from("news!")];
        let steps = format!(
            "[[\"recv\",1],[\"wait_line\"],[\"send\",{}]]",
            json_msgs(&msgs)
        );
        let (xsub, mut py) = join::<XSub>(&ctx, t, b, "XPUB", "", &steps);
        xsub.send(Message::from(b"\x01news".to_vec())).unwrap();
        assert_eq!(py.message(), vec![b"\x01news".to_vec()], "{t:?} {b:?}");
        py.go();
        assert_eq!(xsub.recv().unwrap(), msgs[1]);
        py.finish();
    });
}

#[test]
fn pair_both_ways_with_libzmq() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let msgs = samples();
        let (pair, py) = join::<Pair>(
            &ctx,
            t,
            b,
            "PAIR",
            "",
            &format!("[[\"echo\",{}]]", msgs.len()),
        );
        for m in &msgs {
            pair.send(m.clone()).unwrap();
            assert_eq!(pair.recv().unwrap(), *m, "{t:?} {b:?}");
        }
        py.finish();
    });
}

#[test]
fn dealer_to_libzmq_rep() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let (dealer, py) = join::<Dealer>(&ctx, t, b, "REP", "", "[[\"echo\",1]]");
        dealer.send(Message::from_frames(["", "request"])).unwrap();
        assert_eq!(
            dealer.recv().unwrap(),
            Message::from_frames(["", "request"]),
            "{t:?} {b:?}"
        );
        py.finish();
    });
}

#[test]
fn libzmq_dealer_to_dealer() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let (dealer, py) = join::<Dealer>(&ctx, t, b, "DEALER", "", "[[\"echo\",2]]");
        for m in [Message::from("d1"), Message::from_frames(["d2", ""])] {
            dealer.send(m.clone()).unwrap();
            assert_eq!(dealer.recv().unwrap(), m, "{t:?} {b:?}");
        }
        py.finish();
    });
}

#[test]
fn req_to_libzmq_router() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let (req, py) = join::<Req>(&ctx, t, b, "ROUTER", "", "[[\"echo\",2]]");
        for m in [Message::from("r1"), Message::from_frames(["r2", "two"])] {
            req.send(m.clone()).unwrap();
            assert_eq!(req.recv().unwrap(), m, "{t:?} {b:?}");
        }
        py.finish();
    });
}

#[test]
fn libzmq_dealer_to_rep() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let steps = format!(
            "[[\"send\",{}],[\"recv\",1]]",
            json_msgs(&[Message::from_frames(["", "question"])])
        );
        let (rep, py) = join::<Rep>(&ctx, t, b, "DEALER", "", &steps);
        assert_eq!(
            rep.recv().unwrap(),
            Message::from("question"),
            "{t:?} {b:?}"
        );
        rep.send("answer").unwrap();
        assert_eq!(py.message(), vec![b"".to_vec(), b"answer".to_vec()]);
        py.finish();
    });
}

#[test]
fn router_to_libzmq_router() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let mut o = options();
        o.routing_id = Some("zg-router".into());
        let py_id = hex(b"py-router");
        let steps = match b {
            // libzmq learns our id from the handshake, then writes to it.
            Binder::Zeroguard => format!(
                "[[\"sleep\",300],[\"send\",[[\"{}\",\"{}\"]]],[\"recv\",1]]",
                hex(b"zg-router"),
                hex(b"hello")
            ),
            Binder::Libzmq => "[[\"echo\",1]]".to_owned(),
        };
        let (router, py) = join_with::<Router>(
            &ctx,
            o,
            t,
            b,
            "ROUTER",
            &format!("\"ROUTING_ID\":\"{py_id}\""),
            &steps,
        );
        match b {
            Binder::Zeroguard => {
                assert_eq!(
                    router.recv().unwrap(),
                    Message::from_frames(["py-router", "hello"]),
                    "{t:?}"
                );
                router
                    .send(Message::from_frames(["py-router", "hi back"]))
                    .unwrap();
                assert_eq!(
                    py.message(),
                    vec![b"zg-router".to_vec(), b"hi back".to_vec()]
                );
            }
            Binder::Libzmq => {
                // We learn libzmq's id from the handshake; send until it is known.
                let mut o = options();
                o.router_mandatory = true;
                router.set_options(o).unwrap();
                let deadline = Instant::now() + Duration::from_secs(10);
                while let Err(zeroguard::Error::HostUnreachable(_)) =
                    router.send(Message::from_frames(["py-router", "hello"]))
                {
                    assert!(Instant::now() < deadline, "libzmq ROUTER never attached");
                    std::thread::sleep(Duration::from_millis(10));
                }
                assert_eq!(
                    router.recv().unwrap(),
                    Message::from_frames(["py-router", "hello"]),
                    "{t:?}"
                );
            }
        }
        py.finish();
    });
}

#[test]
fn xpub_to_libzmq_sub() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let steps = format!("[[\"subscribe\",\"{}\"],[\"recv\",1]]", hex(b"t"));
        let (xpub, py) = join::<XPub>(&ctx, t, b, "SUB", "", &steps);
        assert_eq!(
            xpub.recv().unwrap(),
            Message::from(b"\x01t".to_vec()),
            "{t:?} {b:?}"
        );
        xpub.send("other").unwrap();
        xpub.send("topic").unwrap();
        assert_eq!(py.message(), vec![b"topic".to_vec()]);
        py.finish();
    });
}

#[test]
fn libzmq_xpub_to_sub() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let msgs = [Message::from("no"), Message::from("yes: for you")];
        let steps = format!(
            "[[\"recv\",1],[\"wait_line\"],[\"send\",{}]]",
            json_msgs(&msgs)
        );
        let (sub, mut py) = join::<Sub>(&ctx, t, b, "XPUB", "", &steps);
        sub.subscribe("yes").unwrap();
        assert_eq!(py.message(), vec![b"\x01yes".to_vec()], "{t:?} {b:?}");
        py.go();
        assert_eq!(sub.recv().unwrap(), msgs[1]);
        py.finish();
    });
}

#[test]
fn pub_to_libzmq_xsub() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let steps = format!(
            "[[\"send\",{}],[\"recv\",1]]",
            json_msgs(&[Message::from(b"\x01q".to_vec())])
        );
        let (publisher, py) = join::<Pub>(&ctx, t, b, "XSUB", "", &steps);
        let deadline = Instant::now() + Duration::from_secs(10);
        let got = loop {
            publisher.send("skip").unwrap();
            publisher.send("quote").unwrap();
            if let Some(m) = py.try_message(Duration::from_millis(20)) {
                break m;
            }
            assert!(Instant::now() < deadline, "{t:?} {b:?}");
        };
        assert_eq!(got, vec![b"quote".to_vec()]);
        py.finish();
    });
}

#[test]
fn libzmq_pub_to_xsub() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let msgs = [Message::from("zzz"), Message::from("k1")];
        let steps = format!("[[\"wait_line\"],[\"send\",{}]]", json_msgs(&msgs));
        let (xsub, mut py, monitor) =
            join_monitored::<XSub>(&ctx, options(), t, b, "PUB", "", &steps);
        xsub.send(Message::from(b"\x01k".to_vec())).unwrap();
        wait_handshake(&monitor);
        std::thread::sleep(Duration::from_millis(300));
        py.go();
        assert_eq!(xsub.recv().unwrap(), msgs[1], "{t:?} {b:?}");
        py.finish();
    });
}

// ---------------------------------------------------------------- CURVE

use zeroguard::{CurveKeyPair, Security};

fn curve_py_options(server: bool, keys: &CurveKeyPair, server_key: Option<&str>) -> String {
    let mut o = format!(
        "\"CURVE_PUBLICKEY\":\"{}\",\"CURVE_SECRETKEY\":\"{}\"",
        keys.public_z85(),
        keys.secret_z85().as_str()
    );
    if server {
        o.push_str(",\"CURVE_SERVER\":1");
    }
    if let Some(k) = server_key {
        o.push_str(&format!(",\"CURVE_SERVERKEY\":\"{k}\""));
    }
    o
}

#[test]
fn curve_client_to_libzmq_server() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let server_keys = CurveKeyPair::generate();
        let mut o = options();
        o.security = Security::curve_client(CurveKeyPair::generate(), *server_keys.public());
        let (req, py) = join_with::<Req>(
            &ctx,
            o,
            t,
            b,
            "REP",
            &curve_py_options(true, &server_keys, None),
            "[[\"echo\",2]]",
        );
        for m in [
            Message::from("encrypted hello"),
            Message::from_frames([vec![3u8; 9000], vec![]]),
        ] {
            req.send(m.clone()).unwrap();
            assert_eq!(req.recv().unwrap(), m, "{t:?} {b:?}");
        }
        py.finish();
    });
}

#[test]
fn libzmq_curve_client_to_server() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let server_keys = CurveKeyPair::generate();
        let client_keys = CurveKeyPair::generate();
        let allowed = *client_keys.public();
        let mut o = options();
        o.security =
            Security::curve_server(server_keys.clone(), move |peer: &zeroguard::AuthContext| {
                match peer.credentials {
                    zeroguard::Credentials::Curve { public_key } if public_key == allowed => {
                        zeroguard::AuthDecision::accept()
                    }
                    _ => zeroguard::AuthDecision::refuse("unknown key"),
                }
            });
        let steps = format!(
            "[[\"send\",{}],[\"recv\",1]]",
            json_msgs(&[Message::from_frames(["a", "b"])])
        );
        let (rep, py) = join_with::<Rep>(
            &ctx,
            o,
            t,
            b,
            "REQ",
            &curve_py_options(false, &client_keys, Some(&server_keys.public_z85())),
            &steps,
        );
        assert_eq!(
            rep.recv().unwrap(),
            Message::from_frames(["a", "b"]),
            "{t:?} {b:?}"
        );
        rep.send("over curve").unwrap();
        assert_eq!(py.message(), vec![b"over curve".to_vec()]);
        py.finish();
    });
}

#[test]
fn curve_server_refuses_an_unknown_libzmq_client() {
    let ctx = Context::new().unwrap();
    let server_keys = CurveKeyPair::generate();
    let mut o = options();
    o.security = Security::curve_server(server_keys.clone(), |_: &zeroguard::AuthContext| {
        zeroguard::AuthDecision::refuse("nobody is allowed")
    });
    let pull = Socket::<Pull>::with_options(&ctx, o).unwrap();
    let monitor = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let plan = format!(
        "{{\"type\":\"PUSH\",\"connect\":\"{ep}\",\"timeout_ms\":1000,\"options\":{{{}}},\"steps\":[[\"send\",{}],[\"sleep\",500]]}}",
        curve_py_options(false, &CurveKeyPair::generate(), Some(&server_keys.public_z85())),
        json_msgs(&[Message::from("let me in")])
    );
    let py = Py::spawn(plan);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no handshake failure reported");
        if let Some(MonitorEvent::HandshakeFailed { category, .. }) =
            monitor.recv(Some(Duration::from_millis(100)))
        {
            assert_eq!(category, zeroguard::zmtp::ErrorCategory::Authentication);
            break;
        }
    }
    assert!(
        pull.try_recv().unwrap().is_none(),
        "nothing from a refused client"
    );
    drop(py);
}

#[test]
fn curve_client_judged_by_pyzmq_authenticator() {
    let ctx = Context::new().unwrap();
    let server_keys = CurveKeyPair::generate();
    let allowed = CurveKeyPair::generate();
    let stranger = CurveKeyPair::generate();
    let plan = format!(
        "{{\"type\":\"REP\",\"bind\":\"tcp://127.0.0.1:*\",\"curve_allow\":[\"{}\"],\"options\":{{{}}},\"steps\":[[\"echo\",1],[\"sleep\",3000]]}}",
        allowed.public_z85(),
        curve_py_options(true, &server_keys, None)
    );
    let py = Py::spawn(plan);
    let ep = py.endpoint();

    // A client whose certificate is in the directory gets through.
    let mut o = options();
    o.security = Security::curve_client(allowed, *server_keys.public());
    let req = Socket::<Req>::with_options(&ctx, o).unwrap();
    req.connect(&ep).unwrap();
    req.send("certified").unwrap();
    assert_eq!(req.recv().unwrap(), Message::from("certified"));

    // One whose certificate is not is refused: libzmq's ZAP answers 400.
    let mut o = options();
    o.security = Security::curve_client(stranger, *server_keys.public());
    o.send_timeout = Some(Duration::from_millis(500));
    let intruder = Socket::<Req>::with_options(&ctx, o).unwrap();
    let monitor = intruder.monitor();
    intruder.connect(&ep).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the refusal was never reported");
        if let Some(MonitorEvent::HandshakeFailed {
            category, detail, ..
        }) = monitor.recv(Some(Duration::from_millis(100)))
        {
            assert_eq!(
                category,
                zeroguard::zmtp::ErrorCategory::Authentication,
                "{detail}"
            );
            break;
        }
    }
    assert!(matches!(
        intruder.send("x"),
        Err(zeroguard::Error::WouldBlock)
    ));
    py.finish();
}

#[test]
fn libzmq_plain_client_to_server_and_back() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let mut o = options();
        o.security =
            Security::plain_server(|peer: &zeroguard::AuthContext| match &peer.credentials {
                zeroguard::Credentials::Plain(h)
                    if &h.username[..] == b"admin" && &h.password[..] == b"pw" =>
                {
                    zeroguard::AuthDecision::accept()
                }
                _ => zeroguard::AuthDecision::refuse("bad password"),
            });
        let steps = format!(
            "[[\"send\",{}],[\"recv\",1]]",
            json_msgs(&[Message::from("plain")])
        );
        let py_opts = format!(
            "\"PLAIN_USERNAME\":\"{}\",\"PLAIN_PASSWORD\":\"{}\"",
            hex(b"admin"),
            hex(b"pw")
        );
        let (rep, py) = join_with::<Rep>(&ctx, o, t, b, "REQ", &py_opts, &steps);
        assert_eq!(rep.recv().unwrap(), Message::from("plain"), "{t:?} {b:?}");
        rep.send("ok").unwrap();
        assert_eq!(py.message(), vec![b"ok".to_vec()]);
        py.finish();
    });
}

#[test]
fn plain_client_to_libzmq_server_with_pyzmq_authenticator() {
    each_setup(|t, b| {
        let ctx = Context::new().unwrap();
        let mut o = options();
        o.security = Security::plain_client("admin", "pw");
        let plan_extra = "\"PLAIN_SERVER\":1";
        let (req, py) = {
            // The password table rides in the plan next to the options.
            let socket = Socket::<Req>::with_options(&ctx, o).unwrap();
            let (ep, py) = match b {
                Binder::Zeroguard => {
                    let ep = socket.bind(&t.bind_endpoint(false)).unwrap();
                    let plan = format!(
                        "{{\"type\":\"REP\",\"connect\":\"{ep}\",\"plain_allow\":{{\"admin\":\"pw\"}},\"options\":{{{plan_extra}}},\"steps\":[[\"echo\",1]]}}"
                    );
                    (ep, Py::spawn(plan))
                }
                Binder::Libzmq => {
                    let plan = format!(
                        "{{\"type\":\"REP\",\"bind\":\"{}\",\"plain_allow\":{{\"admin\":\"pw\"}},\"options\":{{{plan_extra}}},\"steps\":[[\"echo\",1]]}}",
                        t.bind_endpoint(true)
                    );
                    let py = Py::spawn(plan);
                    let ep = py.endpoint();
                    socket.connect(&ep).unwrap();
                    (ep, py)
                }
            };
            let _ = ep;
            (socket, py)
        };
        req.send("plain text").unwrap();
        assert_eq!(
            req.recv().unwrap(),
            Message::from("plain text"),
            "{t:?} {b:?}"
        );
        py.finish();
    });
}

#[test]
fn plain_wrong_password_refused_by_libzmq() {
    let ctx = Context::new().unwrap();
    let plan = "{\"type\":\"REP\",\"bind\":\"tcp://127.0.0.1:*\",\"plain_allow\":{\"admin\":\"pw\"},\"options\":{\"PLAIN_SERVER\":1},\"steps\":[[\"sleep\",2000]]}".to_owned();
    let py = Py::spawn(plan);
    let ep = py.endpoint();
    let mut o = options();
    o.security = Security::plain_client("admin", "guess");
    let req = Socket::<Req>::with_options(&ctx, o).unwrap();
    let monitor = req.monitor();
    req.connect(&ep).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the refusal was never reported");
        if let Some(MonitorEvent::HandshakeFailed {
            category, detail, ..
        }) = monitor.recv(Some(Duration::from_millis(100)))
        {
            assert_eq!(
                category,
                zeroguard::zmtp::ErrorCategory::Authentication,
                "{detail}"
            );
            break;
        }
    }
    py.finish();
}
