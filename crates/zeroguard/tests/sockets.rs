//! Socket semantics, zeroguard to zeroguard: routing rules of each kind
//! (what libzmq's test_spec_* check), queues and limits, transports,
//! threads and async.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zeroguard::{
    AsyncSocket, Context, Dealer, Error, Interest, Message, Monitor, MonitorEvent, Pair, Poller,
    Pub, Pull, Push, Rep, Req, Router, Socket, SocketOptions, Sub, XPub, XSub,
};

fn opts() -> SocketOptions {
    SocketOptions {
        recv_timeout: Some(Duration::from_secs(5)),
        send_timeout: Some(Duration::from_secs(5)),
        ..SocketOptions::default()
    }
}

fn sock<K: zeroguard::Kind>(ctx: &Context) -> Socket<K> {
    Socket::with_options(ctx, opts()).unwrap()
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn ipc() -> String {
    format!(
        "ipc:///tmp/zg-sock-{}-{}.sock",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits for `n` events matching `pred`.
fn wait_events(
    monitor: &Monitor,
    n: usize,
    pred: impl Fn(&MonitorEvent) -> bool,
) -> Vec<MonitorEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while seen.len() < n {
        assert!(
            Instant::now() < deadline,
            "waited 10 s for events; saw {seen:?}"
        );
        if let Some(e) = monitor.recv(Some(Duration::from_millis(100))) {
            if pred(&e) {
                seen.push(e);
            }
        }
    }
    seen
}

fn handshakes(monitor: &Monitor, n: usize) {
    wait_events(monitor, n, |e| {
        matches!(e, MonitorEvent::HandshakeSucceeded { .. })
    });
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.frames()[0]).into_owned()
}

#[test]
fn push_round_robins_over_pullers() {
    let ctx = Context::new().unwrap();
    let push = sock::<Push>(&ctx);
    let events = push.monitor();
    let ep = push.bind("tcp://127.0.0.1:0").unwrap();
    let pulls: Vec<Socket<Pull>> = (0..2).map(|_| sock::<Pull>(&ctx)).collect();
    for p in &pulls {
        p.connect(&ep).unwrap();
    }
    handshakes(&events, 2);
    for i in 0..10 {
        push.send(format!("{i}").into_bytes()).unwrap();
    }
    for p in &pulls {
        let got: Vec<String> = (0..5).map(|_| text(&p.recv().unwrap())).collect();
        assert_eq!(got.len(), 5);
    }
    assert!(pulls.iter().all(|p| p.try_recv().unwrap().is_none()));
}

/// Messages sent while the connection is busy writing are set aside and
/// handed over in batches; what is left when a burst ends goes when the
/// connection runs out of work, not with the next send, which may never come.
#[test]
fn a_burst_arrives_whole_though_it_ends_between_batches() {
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = sock::<Push>(&ctx);
    let events = push.monitor();
    push.connect(&ep).unwrap();
    handshakes(&events, 1);
    for burst in 0..3 {
        let n = 20_000 + 7 * burst + 5;
        for i in 0..n {
            push.send(format!("{burst}:{i}").into_bytes()).unwrap();
        }
        for i in 0..n {
            let m = pull
                .recv()
                .unwrap_or_else(|e| panic!("burst {burst}: {i} of {n}: {e}"));
            assert_eq!(text(&m), format!("{burst}:{i}"));
        }
    }
    // And a sender closed right after its burst still delivers all of it.
    let n = 20_011;
    for i in 0..n {
        push.send(format!("last:{i}").into_bytes()).unwrap();
    }
    drop(push);
    for i in 0..n {
        assert_eq!(text(&pull.recv().unwrap()), format!("last:{i}"));
    }
}

#[test]
fn pull_fair_queues_over_pushers() {
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    let events = pull.monitor();
    let ep = pull.bind(&ipc()).unwrap();
    let pushers: Vec<Socket<Push>> = (0..2).map(|_| sock::<Push>(&ctx)).collect();
    for p in &pushers {
        p.connect(&ep).unwrap();
    }
    handshakes(&events, 2);
    for (i, p) in pushers.iter().enumerate() {
        for _ in 0..3 {
            p.send(format!("from{i}").into_bytes()).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let got: Vec<String> = (0..6).map(|_| text(&pull.recv().unwrap())).collect();
    // Fair queueing alternates between peers that both have messages waiting.
    for pair in got.chunks(2) {
        assert_ne!(pair[0], pair[1], "{got:?}");
    }
}

#[test]
fn push_without_peers_blocks_until_timeout() {
    let ctx = Context::new().unwrap();
    let mut o = opts();
    o.send_timeout = Some(Duration::from_millis(100));
    let push = Socket::<Push>::with_options(&ctx, o).unwrap();
    assert!(matches!(push.try_send("x"), Err(Error::WouldBlock)));
    let start = Instant::now();
    assert!(matches!(push.send("x"), Err(Error::WouldBlock)));
    assert!(start.elapsed() >= Duration::from_millis(90));
}

#[test]
fn send_hwm_blocks_a_pusher_and_releases_when_drained() {
    let ctx = Context::new().unwrap();
    let mut o = opts();
    o.sndhwm = 5;
    o.rcvhwm = 5;
    o.send_timeout = Some(Duration::from_millis(100));
    let pull = Socket::<Pull>::with_options(&ctx, o.clone()).unwrap();
    let ep = pull.bind("inproc://hwm").unwrap();
    let push = Socket::<Push>::with_options(&ctx, o).unwrap();
    push.connect(&ep).unwrap();
    // inproc queues hold sndhwm + rcvhwm, as libzmq's do.
    let mut sent = 0;
    while push.try_send("m").is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 10);
    assert!(matches!(push.send("m"), Err(Error::WouldBlock)));
    pull.recv().unwrap();
    push.send("m").unwrap();
}

#[test]
fn req_alternates_strictly() {
    let ctx = Context::new().unwrap();
    let rep = sock::<Rep>(&ctx);
    let ep = rep.bind("inproc://req-strict").unwrap();
    let req = sock::<Req>(&ctx);
    req.connect(&ep).unwrap();
    assert!(matches!(req.recv(), Err(Error::InvalidState(_))));
    req.send("q1").unwrap();
    assert!(matches!(req.send("q2"), Err(Error::InvalidState(_))));
    assert_eq!(rep.recv().unwrap(), Message::from("q1"));
    assert!(matches!(rep.recv(), Err(Error::InvalidState(_))));
    rep.send("a1").unwrap();
    assert!(matches!(rep.send("a2"), Err(Error::InvalidState(_))));
    assert_eq!(req.recv().unwrap(), Message::from("a1"));
}

#[test]
fn rep_keeps_the_envelope_and_drops_messages_without_one() {
    let ctx = Context::new().unwrap();
    let rep = sock::<Rep>(&ctx);
    let events = rep.monitor();
    let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
    let dealer = sock::<Dealer>(&ctx);
    dealer.connect(&ep).unwrap();
    handshakes(&events, 1);
    dealer.send("no delimiter").unwrap();
    dealer
        .send(Message::from_frames(["hop1", "hop2", "", "body"]))
        .unwrap();
    assert_eq!(rep.recv().unwrap(), Message::from("body"));
    rep.send("reply").unwrap();
    assert_eq!(
        dealer.recv().unwrap(),
        Message::from_frames(["hop1", "hop2", "", "reply"])
    );
    assert_eq!(
        rep.statistics().dropped_malformed.load(Ordering::Relaxed),
        1
    );
}

#[test]
fn req_round_robins_over_reps() {
    let ctx = Context::new().unwrap();
    let req = sock::<Req>(&ctx);
    let events = req.monitor();
    let reps: Vec<Socket<Rep>> = (0..2).map(|_| sock::<Rep>(&ctx)).collect();
    for r in &reps {
        let ep = r.bind("tcp://127.0.0.1:0").unwrap();
        req.connect(&ep).unwrap();
    }
    handshakes(&events, 2);
    let mut served = [0; 2];
    for i in 0..6 {
        req.send(format!("q{i}").into_bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let (which, got) = loop {
            if let Some(m) = reps[0].try_recv().unwrap() {
                break (0, m);
            }
            if let Some(m) = reps[1].try_recv().unwrap() {
                break (1, m);
            }
            assert!(Instant::now() < deadline, "no REP got the request");
            std::thread::sleep(Duration::from_millis(1));
        };
        served[which] += 1;
        reps[which].send(got).unwrap();
        assert_eq!(text(&req.recv().unwrap()), format!("q{i}"));
    }
    assert_eq!(served, [3, 3], "requests alternate between the two REPs");
}

#[test]
fn router_routes_by_id_and_counts_unroutable() {
    let ctx = Context::new().unwrap();
    let router = sock::<Router>(&ctx);
    let events = router.monitor();
    let ep = router.bind(&ipc()).unwrap();
    let mut o = opts();
    o.routing_id = Some("alice".into());
    let alice = Socket::<Dealer>::with_options(&ctx, o).unwrap();
    alice.connect(&ep).unwrap();
    handshakes(&events, 1);
    alice.send("hi").unwrap();
    assert_eq!(
        router.recv().unwrap(),
        Message::from_frames(["alice", "hi"])
    );
    router
        .send(Message::from_frames(["alice", "back"]))
        .unwrap();
    assert_eq!(alice.recv().unwrap(), Message::from("back"));
    router
        .send(Message::from_frames(["nobody", "lost"]))
        .unwrap();
    assert_eq!(
        router
            .statistics()
            .dropped_unroutable
            .load(Ordering::Relaxed),
        1
    );

    let mut o = opts();
    o.router_mandatory = true;
    router.set_options(o).unwrap();
    assert!(matches!(
        router.send(Message::from_frames(["nobody", "x"])),
        Err(Error::HostUnreachable(_))
    ));
    assert!(matches!(
        router.send("only an id"),
        Err(Error::InvalidMessage(_))
    ));
}

#[test]
fn router_refuses_a_duplicate_id_unless_handover() {
    for handover in [false, true] {
        let ctx = Context::new().unwrap();
        let mut o = opts();
        o.router_handover = handover;
        let router = Socket::<Router>::with_options(&ctx, o).unwrap();
        let events = router.monitor();
        let ep = router.bind("tcp://127.0.0.1:0").unwrap();
        let mut o = opts();
        o.routing_id = Some("same".into());
        let first = Socket::<Dealer>::with_options(&ctx, o.clone()).unwrap();
        first.connect(&ep).unwrap();
        handshakes(&events, 1);
        let second = Socket::<Dealer>::with_options(&ctx, o).unwrap();
        second.connect(&ep).unwrap();
        if handover {
            handshakes(&events, 1);
            router
                .send(Message::from_frames(["same", "to second"]))
                .unwrap();
            assert_eq!(second.recv().unwrap(), Message::from("to second"));
        } else {
            wait_events(&events, 1, |e| {
                matches!(e, MonitorEvent::HandshakeFailed { .. })
            });
            router
                .send(Message::from_frames(["same", "to first"]))
                .unwrap();
            assert_eq!(first.recv().unwrap(), Message::from("to first"));
        }
    }
}

#[test]
fn pub_sub_prefix_filtering_and_unsubscribe() {
    let ctx = Context::new().unwrap();
    let publisher = sock::<Pub>(&ctx);
    let ep = publisher.bind("inproc://pubsub").unwrap();
    let sub = sock::<Sub>(&ctx);
    sub.subscribe("a").unwrap();
    sub.connect(&ep).unwrap();
    publisher.send("apple").unwrap();
    publisher.send("banana").unwrap();
    publisher.send("avocado").unwrap();
    assert_eq!(text(&sub.recv().unwrap()), "apple");
    assert_eq!(text(&sub.recv().unwrap()), "avocado");
    sub.unsubscribe("a").unwrap();
    publisher.send("apricot").unwrap();
    assert!(sub.try_recv().unwrap().is_none());
}

#[test]
fn slow_subscriber_loses_only_its_own_messages() {
    let ctx = Context::new().unwrap();
    let mut o = opts();
    o.sndhwm = 50;
    o.rcvhwm = 50;
    let publisher = Socket::<Pub>::with_options(&ctx, o.clone()).unwrap();
    let events = publisher.monitor();
    let ep = publisher.bind("tcp://127.0.0.1:0").unwrap();
    let fast = Socket::<Sub>::with_options(&ctx, o.clone()).unwrap();
    let stalled = Socket::<Sub>::with_options(&ctx, o).unwrap();
    for s in [&fast, &stalled] {
        s.subscribe("").unwrap();
        s.connect(&ep).unwrap();
    }
    handshakes(&events, 2);
    std::thread::sleep(Duration::from_millis(100));
    let payload = vec![7u8; 4096];
    let total = 5000;
    let mut received = 0;
    for i in 0..total {
        let mut m = Message::from(format!("{i:08}").into_bytes());
        m.push_back(payload.clone());
        publisher.send(m).unwrap();
        // Memory stays bounded: at most a high-water mark's worth queued
        // for each subscriber, whatever the stalled one does.
        let q = publisher.queued();
        assert!(
            q.outgoing_messages <= 2 * 50 && q.outgoing_bytes <= 2 * 50 * (4096 + 8),
            "publisher queues grew past their marks: {q:?}"
        );
        // The fast subscriber keeps up; the stalled one never reads.
        while received <= i {
            let m = fast.recv().unwrap();
            assert_eq!(
                text(&m),
                format!("{received:08}"),
                "the fast subscriber missed nothing"
            );
            received += 1;
        }
    }
    assert_eq!(received, total);
    let dropped = publisher.statistics().dropped_full.load(Ordering::Relaxed);
    assert!(
        dropped > 0,
        "the stalled subscriber's queue filled up and its messages were dropped"
    );
    assert!(dropped < total as u64);
    let q = publisher.queued();
    assert!(
        q.outgoing_messages >= 40,
        "the stalled queue is full: {q:?}"
    );
}

#[test]
fn xpub_reports_new_subscriptions_once_unless_verbose() {
    for verbose in [false, true] {
        let ctx = Context::new().unwrap();
        let mut o = opts();
        o.xpub_verbose = verbose;
        let xpub = Socket::<XPub>::with_options(&ctx, o).unwrap();
        let ep = xpub.bind("inproc://xpub").unwrap();
        let subs: Vec<Socket<Sub>> = (0..2).map(|_| sock::<Sub>(&ctx)).collect();
        for s in &subs {
            s.connect(&ep).unwrap();
            s.subscribe("t").unwrap();
        }
        assert_eq!(xpub.recv().unwrap(), Message::from(b"\x01t".to_vec()));
        let second = xpub.try_recv().unwrap();
        assert_eq!(second.is_some(), verbose);
        drop(subs);
        // When the last subscriber goes, XPUB hears the cancellation.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(m) = xpub.try_recv().unwrap() {
                assert_eq!(m, Message::from(b"\x00t".to_vec()));
                break;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn xsub_forwards_subscriptions_and_data_upstream() {
    let ctx = Context::new().unwrap();
    let xpub = sock::<XPub>(&ctx);
    let events = xpub.monitor();
    let ep = xpub.bind("tcp://127.0.0.1:0").unwrap();
    let xsub = sock::<XSub>(&ctx);
    xsub.connect(&ep).unwrap();
    handshakes(&events, 1);
    xsub.send(Message::from(b"\x01k".to_vec())).unwrap();
    assert_eq!(xpub.recv().unwrap(), Message::from(b"\x01k".to_vec()));
    xsub.send("upstream data").unwrap();
    assert_eq!(xpub.recv().unwrap(), Message::from("upstream data"));
    xpub.send("key").unwrap();
    xpub.send("other").unwrap();
    assert_eq!(xsub.recv().unwrap(), Message::from("key"));
}

#[test]
fn pair_takes_only_one_peer() {
    let ctx = Context::new().unwrap();
    let a = sock::<Pair>(&ctx);
    let events = a.monitor();
    let ep = a.bind("tcp://127.0.0.1:0").unwrap();
    let b = sock::<Pair>(&ctx);
    b.connect(&ep).unwrap();
    handshakes(&events, 1);
    let c = sock::<Pair>(&ctx);
    c.connect(&ep).unwrap();
    wait_events(&events, 1, |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    });
    a.send("to b").unwrap();
    assert_eq!(b.recv().unwrap(), Message::from("to b"));
    b.send("to a").unwrap();
    assert_eq!(a.recv().unwrap(), Message::from("to a"));
}

#[test]
fn inproc_connect_before_bind() {
    let ctx = Context::new().unwrap();
    let push = sock::<Push>(&ctx);
    push.connect("inproc://later").unwrap();
    let pull = sock::<Pull>(&ctx);
    pull.bind("inproc://later").unwrap();
    push.send("late binding").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("late binding"));
    let other = sock::<Pull>(&ctx);
    assert!(matches!(
        other.bind("inproc://later"),
        Err(Error::InprocInUse(_))
    ));
}

#[test]
fn inproc_messages_are_not_copied() {
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    pull.bind("inproc://zero-copy").unwrap();
    let push = sock::<Push>(&ctx);
    push.connect("inproc://zero-copy").unwrap();
    let payload = bytes::Bytes::from(vec![1u8; 1 << 20]);
    push.send(Message::from(payload.clone())).unwrap();
    let got = pull.recv().unwrap();
    assert_eq!(got.frames()[0].as_ptr(), payload.as_ptr());
}

#[test]
fn several_threads_send_on_one_socket() {
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = sock::<Push>(&ctx);
    push.connect(&ep).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let push = push.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    push.send(Message::from_frames([format!("{t}"), format!("{i}")]))
                        .unwrap();
                }
            })
        })
        .collect();
    let mut last = [None::<u32>; 4];
    for _ in 0..2000 {
        let m = pull.recv().unwrap();
        let t: usize = text(&m).parse().unwrap();
        let i: u32 = String::from_utf8_lossy(&m.frames()[1]).parse().unwrap();
        // Messages of one thread arrive in order, and whole.
        assert!(last[t].is_none_or(|l| l < i));
        last[t] = Some(i);
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(last, [Some(499); 4]);
}

/// Threads sharing one receiving socket, while its connection delivers:
/// each message goes to exactly one of them, whole.
#[test]
fn several_threads_receive_from_one_socket() {
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = sock::<Push>(&ctx);
    push.connect(&ep).unwrap();
    const N: u32 = 20_000;
    const THREADS: usize = 4;
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let pull = pull.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let m = pull.recv().unwrap();
                    if text(&m) == "stop" {
                        return got;
                    }
                    assert_eq!(m.frames()[1], "end");
                    got.push(text(&m).parse::<u32>().unwrap());
                }
            })
        })
        .collect();
    for i in 0..N {
        push.send(Message::from_frames([i.to_string(), "end".into()]))
            .unwrap();
    }
    // Each thread ends at the first stop it gets, so each gets one.
    for _ in 0..THREADS {
        push.send("stop").unwrap();
    }
    let mut all: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>());
}

/// A message sent while its connection is idle is written by the sending
/// thread; the rest go through the queue and the I/O thread. Whichever way
/// each takes, the peer gets them in order and whole, including messages
/// too big for the socket buffer, whose rest the I/O thread writes.
#[test]
fn messages_written_by_the_sending_thread_keep_their_order() {
    let ctx = Context::new().unwrap();
    for endpoint in ["tcp://127.0.0.1:0".to_owned(), ipc()] {
        let pull = sock::<Pull>(&ctx);
        let ep = pull.bind(&endpoint).unwrap();
        let push = sock::<Push>(&ctx);
        push.connect(&ep).unwrap();
        let body = |i: u32| -> Vec<u8> {
            let len = if i % 100 == 50 {
                12 << 20
            } else {
                1 + (i as usize * 37) % 3000
            };
            (0..len)
                .map(|k| (k ^ i as usize).to_le_bytes()[0])
                .collect()
        };
        const N: u32 = 500;
        let sender = std::thread::spawn(move || {
            for i in 0..N {
                push.send(Message::from_frames([i.to_be_bytes().to_vec(), body(i)]))
                    .unwrap();
                // A pause leaves the connection idle, so the next message
                // goes out from this thread and the one after it is queued
                // (it follows too closely); a message sent a moment later,
                // before the I/O thread has taken that one, must not
                // overtake it.
                match i % 9 {
                    0 => std::thread::sleep(Duration::from_millis(1)),
                    2 | 5 => {
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(10) {
                            std::hint::spin_loop();
                        }
                    }
                    _ => {}
                }
            }
            push
        });
        for i in 0..N {
            let m = pull.recv().unwrap();
            assert_eq!(
                m.frames()[0][..],
                i.to_be_bytes(),
                "{endpoint}: out of order"
            );
            assert!(
                m.frames()[1][..] == body(i)[..],
                "{endpoint}: message {i} damaged"
            );
        }
        drop(sender.join().unwrap());
    }
}

#[test]
fn async_api_from_a_tokio_runtime() {
    let ctx = Context::new().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let rep = AsyncSocket::<Rep>::new(&ctx).unwrap();
        let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
        let req = AsyncSocket::<Req>::new(&ctx).unwrap();
        req.connect(&ep).unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..3 {
                let m = rep.recv().await.unwrap();
                rep.send(m).await.unwrap();
            }
        });
        for i in 0..3 {
            req.send(format!("async {i}").into_bytes()).await.unwrap();
            assert_eq!(text(&req.recv().await.unwrap()), format!("async {i}"));
        }
        server.await.unwrap();
    });
}

#[test]
fn poller_reports_the_ready_socket() {
    let ctx = Context::new().unwrap();
    let a = sock::<Pull>(&ctx);
    let b = sock::<Pull>(&ctx);
    a.bind("inproc://poll-a").unwrap();
    b.bind("inproc://poll-b").unwrap();
    let push_b = sock::<Push>(&ctx);
    push_b.connect("inproc://poll-b").unwrap();
    let mut poller = Poller::new();
    poller.add(&a, Interest::READABLE);
    let ib = poller.add(&b, Interest::READABLE);
    assert!(poller.poll(Some(Duration::from_millis(50))).is_empty());
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        push_b.send("wake").unwrap();
        push_b
    });
    let ready = poller.poll(Some(Duration::from_secs(5)));
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].index, ib);
    assert!(ready[0].readable);
    drop(sender.join().unwrap());
}

#[test]
fn reconnects_after_the_peer_comes_back() {
    let ctx = Context::new().unwrap();
    let ep = ipc();
    let push = sock::<Push>(&ctx);
    let events = push.monitor();
    push.connect(&ep).unwrap();
    let pull = sock::<Pull>(&ctx);
    pull.bind(&ep).unwrap();
    push.send("first").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("first"));
    drop(pull);
    wait_events(&events, 1, |e| {
        matches!(e, MonitorEvent::Disconnected { .. })
    });
    let pull = sock::<Pull>(&ctx);
    pull.bind(&ep).unwrap();
    push.send("second").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("second"));
}

#[test]
fn ipc_replaces_a_stale_socket_file_but_not_a_live_one() {
    let ctx = Context::new().unwrap();
    let ep = ipc();
    let path = ep.trim_start_matches("ipc://").to_owned();
    // A socket file left behind by a process that died.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(std::path::Path::new(&path).exists());
    let live = sock::<Pull>(&ctx);
    live.bind(&ep).unwrap();
    let other = sock::<Pull>(&ctx);
    assert!(matches!(other.bind(&ep), Err(Error::Bind { .. })));
    // A regular file is never removed.
    let file = format!("/tmp/zg-not-a-socket-{}", std::process::id());
    std::fs::File::create(&file)
        .unwrap()
        .write_all(b"data")
        .unwrap();
    assert!(matches!(
        other.bind(&format!("ipc://{file}")),
        Err(Error::Bind { .. })
    ));
    assert!(std::path::Path::new(&file).exists());
    std::fs::remove_file(&file).unwrap();
    drop(live);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !std::path::Path::new(&path).exists(),
        "socket file removed on close"
    );
}

#[test]
fn incompatible_peer_fails_the_handshake() {
    let ctx = Context::new().unwrap();
    let a = sock::<Push>(&ctx);
    let events = a.monitor();
    let ep = a.bind("tcp://127.0.0.1:0").unwrap();
    let b = sock::<Push>(&ctx);
    b.connect(&ep).unwrap();
    let failed = wait_events(&events, 1, |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    });
    let MonitorEvent::HandshakeFailed { category, .. } = &failed[0] else {
        unreachable!()
    };
    assert_eq!(*category, zeroguard::zmtp::ErrorCategory::Incompatible);
}

#[test]
fn max_connections_refuses_extra_peers() {
    let ctx = Context::new().unwrap();
    let mut o = opts();
    o.max_connections = 1;
    let pull = Socket::<Pull>::with_options(&ctx, o).unwrap();
    let events = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let first = sock::<Push>(&ctx);
    first.connect(&ep).unwrap();
    handshakes(&events, 1);
    let second = sock::<Push>(&ctx);
    second.connect(&ep).unwrap();
    let refused = wait_events(&events, 1, |e| {
        matches!(e, MonitorEvent::AcceptRefused { .. })
    });
    assert!(refused[0].to_string().contains("max connections"));
    first.send("ok").unwrap();
    assert_eq!(pull.recv().unwrap(), Message::from("ok"));
}

#[test]
fn cve_2020_15166_peer_in_handshake_takes_no_part_in_routing() {
    let ctx = Context::new().unwrap();
    let push = sock::<Push>(&ctx);
    let events = push.monitor();
    let ep = push.bind("tcp://127.0.0.1:0").unwrap();
    let addr = ep.trim_start_matches("tcp://").to_owned();
    // A peer that connects and sends half a greeting, then stalls.
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    stalled.write_all(&[0xFF, 0, 0, 0]).unwrap();
    let pull = sock::<Pull>(&ctx);
    pull.connect(&ep).unwrap();
    handshakes(&events, 1);
    for i in 0..100 {
        push.send(format!("{i}").into_bytes()).unwrap();
    }
    for i in 0..100 {
        assert_eq!(
            text(&pull.recv().unwrap()),
            format!("{i}"),
            "every message reached the real peer"
        );
    }
    drop(stalled);
}

#[test]
fn unbind_and_disconnect() {
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    let events = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    assert_eq!(pull.endpoints(), vec![ep.clone()]);
    pull.unbind(&ep).unwrap();
    wait_events(&events, 1, |e| matches!(e, MonitorEvent::Closed { .. }));
    assert!(std::net::TcpStream::connect(ep.trim_start_matches("tcp://")).is_err());
    assert!(matches!(pull.unbind(&ep), Err(Error::UnknownEndpoint(_))));
    let push = sock::<Push>(&ctx);
    push.connect("tcp://127.0.0.1:1").unwrap();
    push.disconnect("tcp://127.0.0.1:1").unwrap();
    assert!(push.endpoints().is_empty());
}

#[test]
fn terminate_waits_for_queued_messages() {
    let receiver_ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&receiver_ctx);
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let ctx = Context::new().unwrap();
    let push = sock::<Push>(&ctx);
    push.connect(&ep).unwrap();
    for i in 0..1000 {
        push.send(format!("{i}").into_bytes()).unwrap();
    }
    drop(push);
    ctx.terminate();
    for i in 0..1000 {
        assert_eq!(text(&pull.recv().unwrap()), format!("{i}"));
    }
}

#[test]
fn invalid_options_are_refused_with_reasons() {
    let ctx = Context::new().unwrap();
    for (o, what) in [
        (
            SocketOptions {
                sndhwm: 0,
                ..opts()
            },
            "high-water",
        ),
        (
            SocketOptions {
                routing_id: Some(bytes::Bytes::from_static(b"\x00x")),
                ..opts()
            },
            "zero byte",
        ),
        (
            SocketOptions {
                routing_id: Some(bytes::Bytes::new()),
                ..opts()
            },
            "1 to 255",
        ),
        (
            SocketOptions {
                handshake_timeout: Duration::ZERO,
                ..opts()
            },
            "handshake",
        ),
        (
            SocketOptions {
                reconnect_interval_max: Duration::from_millis(1),
                ..opts()
            },
            "reconnect",
        ),
        (
            SocketOptions {
                spin: Duration::from_millis(11),
                ..opts()
            },
            "spin",
        ),
    ] {
        let err = Socket::<Dealer>::with_options(&ctx, o).unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    }
    let mut md = zeroguard::Metadata::new();
    md.insert("Not-X", "v").unwrap();
    let err = Socket::<Dealer>::with_options(
        &ctx,
        SocketOptions {
            metadata: md,
            ..opts()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("X-"));
}

#[test]
fn plaintext_on_a_network_address_is_refused_unless_opted_in() {
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    let err = pull.bind("tcp://*:0").unwrap_err();
    assert!(err.to_string().contains("allow_plaintext"), "{err}");
    assert!(pull.connect("tcp://192.0.2.1:5555").is_err());
    assert!(pull.bind("tcp://127.0.0.1:0").is_ok());
    assert!(pull.bind(&ipc()).is_ok());
    let open = Socket::<Pull>::with_options(
        &ctx,
        SocketOptions {
            allow_plaintext: true,
            ..opts()
        },
    )
    .unwrap();
    assert!(open.bind("tcp://0.0.0.0:0").is_ok());
}

#[test]
fn inproc_messages_sent_before_close_are_delivered() {
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    pull.bind("inproc://close-after-send").unwrap();
    for round in 0..50 {
        let push = sock::<Push>(&ctx);
        push.connect("inproc://close-after-send").unwrap();
        push.send(format!("last words {round}").into_bytes())
            .unwrap();
        drop(push);
        assert_eq!(text(&pull.recv().unwrap()), format!("last words {round}"));
    }
}

#[test]
fn rate_limit_slows_a_peer_without_losing_messages() {
    // With the default queue the engine decodes every message; with a
    // small one the receiving thread decodes most of them itself, and
    // must spend the same allowance.
    for rcvhwm in [SocketOptions::default().rcvhwm, 4] {
        let ctx = Context::new().unwrap();
        let mut o = opts();
        o.rcvhwm = rcvhwm;
        o.rate_limit = Some(zeroguard::RateLimit {
            messages_per_sec: 200,
            bytes_per_sec: 1 << 20,
        });
        let pull = Socket::<Pull>::with_options(&ctx, o).unwrap();
        let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
        let push = sock::<Push>(&ctx);
        push.connect(&ep).unwrap();
        push.send("warm-up").unwrap();
        pull.recv().unwrap();
        let start = Instant::now();
        for i in 0..200 {
            push.send(format!("{i}").into_bytes()).unwrap();
        }
        for i in 0..200 {
            assert_eq!(text(&pull.recv().unwrap()), format!("{i}"));
        }
        // 200 messages at 200/s, a burst of 20, and at most 64 overdrawn (the
        // clock is read once per batch): no less than (200 - 20 - 64) / 200 s.
        assert!(
            start.elapsed() >= Duration::from_millis(550),
            "receive queue of {rcvhwm}: {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn a_stream_through_a_small_receive_queue_arrives_whole_and_in_order() {
    // While the receive queue is full the receiving thread decodes the
    // connection's next small messages itself and leaves anything else
    // (several frames, a large body, a partial frame) to the I/O thread:
    // every message must still arrive once, whole and in order, whether
    // taken by blocking receives or after a poller said it was there.
    let ctx = Context::new().unwrap();
    let pull = Socket::<Pull>::with_options(
        &ctx,
        SocketOptions {
            rcvhwm: 8,
            ..opts()
        },
    )
    .unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = sock::<Push>(&ctx);
    push.connect(&ep).unwrap();
    let total = 30_000u32;
    let shape = |i: u32| -> Vec<Vec<u8>> {
        let tag = i.to_be_bytes().to_vec();
        match i % 97 {
            0 => vec![tag, b"second frame".to_vec()],
            1 => vec![[tag, vec![7; 20_000]].concat()],
            n => vec![[tag, vec![n.to_le_bytes()[0]; n as usize]].concat()],
        }
    };
    let sender = std::thread::spawn(move || {
        for i in 0..total {
            let mut m = Message::new();
            for f in shape(i) {
                m.push_back(f);
            }
            push.send(m).unwrap();
        }
        push
    });
    // The queue fills and the I/O thread stops for room.
    std::thread::sleep(Duration::from_millis(200));
    let mut poller = Poller::new();
    poller.add(&pull, Interest::READABLE);
    for i in 0..total {
        if i % 3 == 0 {
            let ready = poller.poll(Some(Duration::from_secs(5)));
            assert!(ready.first().is_some_and(|r| r.readable), "message {i}");
            let m = pull.try_recv().unwrap().expect("ready to read");
            assert_eq!(m.frames(), &shape(i)[..], "message {i}");
        } else {
            let m = pull.recv().unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(m.frames(), &shape(i)[..], "message {i}");
        }
    }
    assert!(pull.try_recv().unwrap().is_none());
    drop(sender.join().unwrap());
}

#[test]
fn a_peer_that_leaves_mid_stream_is_read_to_its_last_message() {
    // The receiving thread reads the stream itself while the peer keeps
    // sending, and so may be the one to meet its end: every message must
    // still arrive, and the connection then close as it would have.
    let ctx = Context::new().unwrap();
    let pull = Socket::<Pull>::with_options(
        &ctx,
        SocketOptions {
            rcvhwm: 4,
            ..opts()
        },
    )
    .unwrap();
    let monitor = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = sock::<Push>(&ctx);
    push.connect(&ep).unwrap();
    let total = 50_000u32;
    let sender = std::thread::spawn(move || {
        for i in 0..total {
            push.send(i.to_be_bytes().repeat(1 + i as usize % 5))
                .unwrap();
        }
        // Closed with everything still queued: the rest goes out, then the
        // end of the stream.
        drop(push);
    });
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..total {
        let m = pull.recv().unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(
            m.frames()[0],
            i.to_be_bytes().repeat(1 + i as usize % 5),
            "message {i}"
        );
    }
    sender.join().unwrap();
    // At once, not at the connection's next timer (seconds away): the
    // receiving thread, having taken the last message, has left the
    // stream to the I/O thread.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match monitor.recv(Some(left)) {
            Some(MonitorEvent::Disconnected { .. }) => break,
            Some(_) => {}
            None => panic!("the peer's end went unseen for 2 s"),
        }
    }
    assert!(pull.try_recv().unwrap().is_none());
}

#[test]
fn several_peers_through_small_receive_queues_keep_each_ones_order() {
    // Each connection's queue is refilled by whichever thread empties it,
    // while the socket takes one message from each peer in turn: a ROUTER
    // with queues of 4 must still get every peer's stream whole and in
    // order, each message under its own peer's identity.
    let ctx = Context::new().unwrap();
    let router = Socket::<Router>::with_options(
        &ctx,
        SocketOptions {
            rcvhwm: 4,
            ..opts()
        },
    )
    .unwrap();
    let ep = router.bind("tcp://127.0.0.1:0").unwrap();
    let per_peer = 5_000u32;
    let senders: Vec<_> = (0..3u8)
        .map(|p| {
            let dealer = Socket::<Dealer>::with_options(
                &ctx,
                SocketOptions {
                    routing_id: Some(vec![b'p', p].into()),
                    ..opts()
                },
            )
            .unwrap();
            dealer.connect(&ep).unwrap();
            std::thread::spawn(move || {
                for i in 0..per_peer {
                    dealer.send(i.to_be_bytes().to_vec()).unwrap();
                }
                dealer
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut next = [0u32; 3];
    for _ in 0..3 * per_peer {
        let m = router.recv().unwrap();
        let frames = m.frames();
        assert_eq!(frames.len(), 2);
        let peer = usize::from(frames[0][1]);
        let n = u32::from_be_bytes(<[u8; 4]>::try_from(&frames[1][..]).unwrap());
        assert_eq!(n, next[peer], "peer {peer}");
        next[peer] += 1;
    }
    assert_eq!(next, [per_peer; 3]);
    for s in senders {
        drop(s.join().unwrap());
    }
}

#[test]
fn rate_limit_has_a_finite_default_that_leaves_fast_links_alone() {
    let limit = SocketOptions::default()
        .rate_limit
        .expect("a finite default");
    assert!(limit.messages_per_sec > 0 && limit.bytes_per_sec > 0);
    // A default meant as a backstop must not throttle a healthy peer: one
    // connection on a 100 Gbit/s link moves 12.5 GB/s, and one over
    // loopback 14 M small messages a second on a 2-core machine.
    assert!(limit.bytes_per_sec >= 12_500_000_000, "{limit:?}");
    assert!(limit.messages_per_sec >= 20_000_000, "{limit:?}");
}

#[test]
fn xpub_manual_mode_applies_only_what_the_application_chooses() {
    let ctx = Context::new().unwrap();
    let mut o = opts();
    o.xpub_manual = true;
    let xpub = Socket::<XPub>::with_options(&ctx, o).unwrap();
    xpub.bind("inproc://manual").unwrap();
    assert!(matches!(
        xpub.manual_subscribe("x"),
        Err(Error::InvalidState(_))
    ));
    let sub = sock::<Sub>(&ctx);
    sub.connect("inproc://manual").unwrap();
    sub.subscribe("apple").unwrap();
    assert_eq!(xpub.recv().unwrap(), Message::from(b"\x01apple".to_vec()));
    xpub.send("apple pie").unwrap();
    assert!(
        sub.try_recv().unwrap().is_none(),
        "not applied until the application says so"
    );
    xpub.manual_subscribe("apple").unwrap();
    xpub.send("apple tart").unwrap();
    assert_eq!(text(&sub.recv().unwrap()), "apple tart");
}

#[test]
fn tcp_over_ipv6_and_host_names() {
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    let v6 = pull.bind("tcp://[::1]:0").unwrap();
    assert!(v6.starts_with("tcp://[::1]:"), "{v6}");
    let v4 = pull.bind("tcp://127.0.0.1:0").unwrap();
    let port = v4.rsplit(':').next().unwrap();
    let a = sock::<Push>(&ctx);
    a.connect(&v6).unwrap();
    a.send("over ipv6").unwrap();
    assert_eq!(text(&pull.recv().unwrap()), "over ipv6");
    let b = sock::<Push>(&ctx);
    b.connect(&format!("tcp://localhost:{port}")).unwrap();
    b.send("by name").unwrap();
    assert_eq!(text(&pull.recv().unwrap()), "by name");
}

// ------------------------------------------------------------- security

use zeroguard::{AuthContext, AuthDecision, Credentials, CurveKeyPair, Security, Zap};

/// A ZAP handler thread answering each request with `answer(request frames)`.
fn zap_handler(
    ctx: &Context,
    requests: usize,
    answer: impl Fn(&Message) -> Vec<Vec<u8>> + Send + 'static,
) -> std::thread::JoinHandle<Vec<Message>> {
    let handler = sock::<Rep>(ctx);
    handler.bind(zeroguard::zap::ZAP_ENDPOINT).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..requests {
            let Ok(request) = handler.recv() else { break };
            handler
                .send(Message::from_frames(answer(&request)))
                .unwrap();
            seen.push(request);
        }
        seen
    })
}

fn zap_reply(request: &Message, status: &str, user: &str) -> Vec<Vec<u8>> {
    vec![
        b"1.0".to_vec(),
        request.frames()[1].to_vec(),
        status.into(),
        b"text".to_vec(),
        user.into(),
        vec![],
    ]
}

fn curve_server_socket(
    ctx: &Context,
    keys: &CurveKeyPair,
    auth: impl zeroguard::Authenticator + 'static,
) -> (Socket<Pull>, Monitor, String) {
    let mut o = opts();
    o.security = Security::curve_server(keys.clone(), auth);
    let pull = Socket::<Pull>::with_options(ctx, o).unwrap();
    let monitor = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    (pull, monitor, ep)
}

fn curve_push(
    ctx: &Context,
    keys: CurveKeyPair,
    server: &CurveKeyPair,
    ep: &str,
) -> (Socket<Push>, Monitor) {
    let mut o = opts();
    o.security = Security::curve_client(keys, *server.public());
    o.send_timeout = Some(Duration::from_millis(300));
    let push = Socket::<Push>::with_options(ctx, o).unwrap();
    let monitor = push.monitor();
    push.connect(ep).unwrap();
    (push, monitor)
}

fn handshake_failure(monitor: &Monitor) -> zeroguard::zmtp::ErrorCategory {
    match &wait_events(monitor, 1, |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    })[0]
    {
        MonitorEvent::HandshakeFailed { category, .. } => *category,
        _ => unreachable!(),
    }
}

#[test]
fn zap_handler_admits_and_refuses_curve_clients() {
    let ctx = Context::new().unwrap();
    let server = CurveKeyPair::generate();
    let alice = CurveKeyPair::generate();
    let alice_key = alice.public().to_vec();
    let handler = zap_handler(&ctx, 2, move |req| {
        let f = req.frames();
        assert_eq!(&f[0][..], b"1.0");
        assert_eq!(&f[2][..], b"global");
        assert_eq!(&f[3][..], b"127.0.0.1");
        assert_eq!(&f[5][..], b"CURVE");
        if f[6][..] == alice_key[..] {
            zap_reply(req, "200", "alice")
        } else {
            zap_reply(req, "400", "")
        }
    });
    let (pull, server_events, ep) = curve_server_socket(&ctx, &server, Zap::new(&ctx, "global"));
    let (alice_push, _) = curve_push(&ctx, alice, &server, &ep);
    alice_push.send("from alice").unwrap();
    let m = pull.recv().unwrap();
    assert_eq!(text(&m), "from alice");
    assert_eq!(m.property("User-Id").map(|b| &b[..]), Some(&b"alice"[..]));
    let (mallory, mallory_events) = curve_push(&ctx, CurveKeyPair::generate(), &server, &ep);
    assert_eq!(
        handshake_failure(&mallory_events),
        zeroguard::zmtp::ErrorCategory::Authentication
    );
    assert!(matches!(mallory.send("x"), Err(Error::WouldBlock)));
    let _ = server_events;
    assert_eq!(handler.join().unwrap().len(), 2);
}

#[test]
fn zap_malformed_replies_are_refusals() {
    type Reply = fn(&Message) -> Vec<Vec<u8>>;
    let cases: [(&str, Reply); 4] = [
        ("too few frames", |r| zap_reply(r, "200", "u")[..5].to_vec()),
        ("bad version", |r| {
            let mut v = zap_reply(r, "200", "u");
            v[0] = b"9.9".to_vec();
            v
        }),
        ("other request id", |r| {
            let mut v = zap_reply(r, "200", "u");
            v[1] = b"not-yours".to_vec();
            v
        }),
        ("unknown status", |r| zap_reply(r, "299", "u")),
    ];
    for (what, answer) in cases {
        let ctx = Context::new().unwrap();
        let server = CurveKeyPair::generate();
        let handler = zap_handler(&ctx, 1, answer);
        let (pull, server_events, ep) = curve_server_socket(&ctx, &server, Zap::new(&ctx, ""));
        let (_push, client_events) = curve_push(&ctx, CurveKeyPair::generate(), &server, &ep);
        assert_eq!(
            handshake_failure(&server_events),
            zeroguard::zmtp::ErrorCategory::Authentication,
            "{what}"
        );
        assert_eq!(
            handshake_failure(&client_events),
            zeroguard::zmtp::ErrorCategory::Authentication,
            "{what}"
        );
        assert!(pull.try_recv().unwrap().is_none(), "{what}");
        handler.join().unwrap();
    }
}

#[test]
fn zap_without_a_handler_fails_closed() {
    let ctx = Context::new().unwrap();
    let server = CurveKeyPair::generate();
    let (_pull, server_events, ep) = curve_server_socket(&ctx, &server, Zap::new(&ctx, ""));
    let (_push, _) = curve_push(&ctx, CurveKeyPair::generate(), &server, &ep);
    let failed = wait_events(&server_events, 1, |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    });
    assert!(
        failed[0].to_string().contains("no ZAP handler"),
        "{}",
        failed[0]
    );
}

#[test]
fn curve_wrong_server_key_gets_nothing_through() {
    let ctx = Context::new().unwrap();
    let server = CurveKeyPair::generate();
    let (pull, server_events, ep) =
        curve_server_socket(&ctx, &server, |_: &AuthContext| AuthDecision::accept());
    let impostor_view = CurveKeyPair::generate();
    let (push, client_events) = curve_push(&ctx, CurveKeyPair::generate(), &impostor_view, &ep);
    assert_eq!(
        handshake_failure(&server_events),
        zeroguard::zmtp::ErrorCategory::Authentication
    );
    assert_eq!(
        handshake_failure(&client_events),
        zeroguard::zmtp::ErrorCategory::Authentication
    );
    assert!(matches!(push.send("secret"), Err(Error::WouldBlock)));
    assert!(pull.try_recv().unwrap().is_none());
}

#[test]
fn curve_may_use_network_addresses_without_opt_in() {
    let ctx = Context::new().unwrap();
    let mut o = opts();
    o.security = Security::curve_server_allow_any(CurveKeyPair::generate());
    let pull = Socket::<Pull>::with_options(&ctx, o).unwrap();
    // Encrypted, so no plaintext opt-in is needed (bound, nothing is sent).
    assert!(pull.bind("tcp://0.0.0.0:0").is_ok());
}

#[test]
fn messages_carry_user_id_and_connection_metadata() {
    let ctx = Context::new().unwrap();
    let mut o = opts();
    o.security = Security::plain_server(|peer: &AuthContext| match &peer.credentials {
        Credentials::Plain(h) if &h.password[..] == b"pw" => {
            let mut md = zeroguard::Metadata::new();
            md.insert("X-Role", "operator").unwrap();
            AuthDecision::Accept {
                user_id: h.username.clone(),
                metadata: md,
            }
        }
        _ => AuthDecision::refuse("no"),
    });
    let pull = Socket::<Pull>::with_options(&ctx, o).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let mut o = opts();
    o.security = Security::plain_client("carol", "pw");
    let push = Socket::<Push>::with_options(&ctx, o).unwrap();
    push.connect(&ep).unwrap();
    push.send("hello").unwrap();
    let m = pull.recv().unwrap();
    let prop = |name: &str| {
        m.property(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(prop("User-Id").as_deref(), Some("carol"));
    assert_eq!(prop("x-role").as_deref(), Some("operator"));
    assert_eq!(prop("Socket-Type").as_deref(), Some("PUSH"));
    assert_eq!(prop("Peer-Address").as_deref(), Some("127.0.0.1"));
}

#[test]
fn messages_fair_queued_from_two_peers_each_carry_their_own_peers_properties() {
    // A message dropped leaves its hold on its connection's properties for
    // the next one received on the thread: it must go only to a message of
    // the same connection, whatever the order the peers' messages come in.
    let ctx = Context::new().unwrap();
    let mut o = opts();
    o.security = Security::plain_server(|peer: &AuthContext| match &peer.credentials {
        Credentials::Plain(h) if &h.password[..] == b"pw" => AuthDecision::Accept {
            user_id: h.username.clone(),
            metadata: zeroguard::Metadata::new(),
        },
        _ => AuthDecision::refuse("no"),
    });
    let pull = Socket::<Pull>::with_options(&ctx, o).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let pushers: Vec<Socket<Push>> = ["ann", "bob"]
        .into_iter()
        .map(|user| {
            let mut o = opts();
            o.security = Security::plain_client(user, "pw");
            let push = Socket::<Push>::with_options(&ctx, o).unwrap();
            push.connect(&ep).unwrap();
            push
        })
        .collect();
    // Both attached before either sends, so their messages interleave.
    for (push, user) in pushers.iter().zip(["ann", "bob"]) {
        push.send(user).unwrap();
    }
    for _ in 0..2 {
        let m = pull.recv().unwrap();
        assert_eq!(
            m.property("User-Id"),
            m.first().map(|f| f.to_bytes()).as_ref()
        );
    }
    // Bob sends two messages for every three of Ann's.
    let mut sent = [0, 0];
    for i in 0..400 {
        for (n, (push, user)) in pushers.iter().zip(["ann", "bob"]).enumerate() {
            if n == 0 || i % 3 != 2 {
                push.send(user).unwrap();
                sent[n] += 1;
            }
        }
    }
    let (mut from_ann, mut from_bob) = (0, 0);
    let mut kept = Vec::new();
    for i in 0..sent[0] + sent[1] {
        let m = pull.recv().unwrap();
        let user = m.first().map(|f| f.to_bytes()).unwrap();
        assert_eq!(m.property("User-Id"), Some(&user), "message {i}");
        if &user[..] == b"ann" {
            from_ann += 1;
        } else {
            from_bob += 1;
        }
        // Some kept a while, some dropped at once.
        if i % 5 == 0 {
            kept.push(m);
        }
        if kept.len() == 4 {
            kept.clear();
        }
    }
    assert_eq!([from_ann, from_bob], sent);
    assert!(kept.iter().all(|m| m.property("User-Id").is_some()));
}

#[test]
fn every_receiving_kind_hands_over_the_connection_metadata() {
    // The properties are attached as the application takes a message, on
    // each kind's own receive path: check them all, not only PULL's.
    let ctx = Context::new().unwrap();
    let socket_type = |m: &Message| {
        m.property("Socket-Type")
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let peer_address = |m: &Message| m.property("Peer-Address").map(|v| v.to_vec());

    let rep = sock::<Rep>(&ctx);
    let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
    let req = sock::<Req>(&ctx);
    req.connect(&ep).unwrap();
    req.send("ping").unwrap();
    let request = rep.recv().unwrap();
    assert_eq!(socket_type(&request).as_deref(), Some("REQ"));
    rep.send("pong").unwrap();
    let reply = req.recv().unwrap();
    assert_eq!(socket_type(&reply).as_deref(), Some("REP"));
    assert_eq!(peer_address(&reply).as_deref(), Some(&b"127.0.0.1"[..]));

    let router = sock::<Router>(&ctx);
    let ep = router.bind("tcp://127.0.0.1:0").unwrap();
    let dealer = sock::<Dealer>(&ctx);
    dealer.connect(&ep).unwrap();
    dealer.send("hi").unwrap();
    let m = router.recv().unwrap();
    assert_eq!(socket_type(&m).as_deref(), Some("DEALER"));
    let mut answer = Message::new();
    answer.push_back(m.frames()[0].clone());
    answer.push_back(&b"back"[..]);
    router.send(answer).unwrap();
    let m = dealer.recv().unwrap();
    assert_eq!(socket_type(&m).as_deref(), Some("ROUTER"));

    let publisher = sock::<Pub>(&ctx);
    let ep = publisher.bind("tcp://127.0.0.1:0").unwrap();
    let sub = sock::<Sub>(&ctx);
    sub.subscribe("").unwrap();
    sub.connect(&ep).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let m = loop {
        publisher.send("news").unwrap();
        if let Ok(Some(m)) = sub.try_recv() {
            break m;
        }
        assert!(Instant::now() < deadline, "the subscription never arrived");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(socket_type(&m).as_deref(), Some("PUB"));

    // inproc peers have no connection properties to give.
    let pull = sock::<Pull>(&ctx);
    pull.bind("inproc://metadata-kinds").unwrap();
    let push = sock::<Push>(&ctx);
    push.connect("inproc://metadata-kinds").unwrap();
    push.send("local").unwrap();
    assert!(pull.recv().unwrap().metadata().is_none());
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Context>();
    assert_send_sync::<Socket<Push>>();
    assert_send_sync::<Socket<Router>>();
    assert_send_sync::<AsyncSocket<Sub>>();
    assert_send_sync::<zeroguard::DynSocket>();
    assert_send_sync::<Monitor>();
    assert_send_sync::<Poller>();
    assert_send_sync::<Message>();
    assert_send_sync::<Security>();
}

#[test]
fn a_fast_stream_is_delivered_whole_with_default_queues() {
    // Regression: the engine once stopped decoding when its own estimate of
    // queue room ran out while the application had already drained part of
    // the batch; the queue never became full, so nothing woke it again and
    // the rest of the stream sat undecoded in its buffer.
    for _ in 0..3 {
        let receiver_ctx = Context::new().unwrap();
        let pull = sock::<Pull>(&receiver_ctx);
        let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
        let sender_ctx = Context::new().unwrap();
        let sender = std::thread::spawn(move || {
            let push = sock::<Push>(&sender_ctx);
            push.connect(&ep).unwrap();
            for _ in 0..10_000 {
                push.send(Message::from(vec![0u8; 16])).unwrap();
            }
            drop(push);
            sender_ctx.terminate();
        });
        for _ in 0..10_000 {
            assert_eq!(pull.recv().unwrap().frames()[0].len(), 16);
        }
        sender.join().unwrap();
    }
}

#[test]
fn a_queue_longer_than_one_write_batch_is_sent_whole() {
    // Regression: the engine writes at most one batch (128 KiB) of the
    // queue at a time; it once went to sleep with more still queued, and
    // nothing woke it, since the queue never went from empty to non-empty.
    let ctx = Context::new().unwrap();
    let pull = sock::<Pull>(&ctx);
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = sock::<Push>(&ctx);
    push.connect(&ep).unwrap();
    let total = 3_000;
    let sender = std::thread::spawn(move || {
        for i in 0..total {
            let mut body = vec![0u8; 4096];
            body[..4].copy_from_slice(&(i as u32).to_be_bytes());
            push.send(body).unwrap();
        }
        push
    });
    for i in 0..total {
        let m = pull.recv().unwrap();
        assert_eq!(m.frames()[0][..4], (i as u32).to_be_bytes());
    }
    drop(sender.join().unwrap());
}

#[test]
fn heartbeats_do_not_close_a_peer_held_back_by_a_full_queue() {
    // The receiver stops reading while its queue is full; the sender's
    // bytes (PONGs included) wait in the kernel. That silence is ours, not
    // the peer's: the connection must survive and deliver everything.
    let ctx = Context::new().unwrap();
    let pull = Socket::<Pull>::with_options(
        &ctx,
        SocketOptions {
            rcvhwm: 10,
            heartbeat: zeroguard::HeartbeatConfig {
                interval: Some(Duration::from_millis(50)),
                timeout: Duration::from_millis(200),
                ttl: Duration::ZERO,
            },
            ..opts()
        },
    )
    .unwrap();
    let monitor = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = Socket::<Push>::with_options(
        &ctx,
        SocketOptions {
            send_timeout: Some(Duration::from_secs(10)),
            ..opts()
        },
    )
    .unwrap();
    push.connect(&ep).unwrap();
    let total = 20_000usize;
    let sender = std::thread::spawn(move || {
        for i in 0..total {
            push.send(vec![(i % 251).to_le_bytes()[0]; 512]).unwrap();
        }
        push
    });
    // Hold the receiver back well past the heartbeat timeout.
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..total {
        let m = pull.recv().unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(m.frames()[0][0], (i % 251).to_le_bytes()[0]);
    }
    let _push = sender.join().unwrap();
    while let Some(e) = monitor.try_recv() {
        assert!(
            !matches!(e, MonitorEvent::Disconnected { .. }),
            "connection dropped while held back: {e:?}"
        );
    }
}

#[test]
fn streaming_kinds_refuse_empty_messages_and_report_a_closed_socket() {
    let ctx = Context::new().unwrap();
    let push = sock::<Push>(&ctx);
    let pull = sock::<Pull>(&ctx);
    let pair = sock::<Pair>(&ctx);
    assert!(matches!(
        push.try_send(Message::new()),
        Err(Error::InvalidMessage(_))
    ));
    assert!(matches!(
        pair.try_send(Message::new()),
        Err(Error::InvalidMessage(_))
    ));
    assert!(matches!(pull.try_recv(), Ok(None)));
    assert!(matches!(pair.try_recv(), Ok(None)));
    push.close();
    pull.close();
    pair.close();
    assert!(matches!(push.try_send("late"), Err(Error::Closed)));
    assert!(matches!(pair.try_send("late"), Err(Error::Closed)));
    assert!(matches!(pull.try_recv(), Err(Error::Closed)));
    assert!(matches!(pair.try_recv(), Err(Error::Closed)));
}
