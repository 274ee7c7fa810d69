//! Hot paths, one at a time: frame encode and decode, a message through the
//! protocol core (NULL and CURVE: encode/encrypt, decode/decrypt), ROUTER
//! routing by id among many peers, and what an application thread pays to
//! send and receive through a socket's queues.
#![forbid(unsafe_code)]

use std::time::Instant;

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use zeroguard_micro::{wire, Pair};
use zeroguard_zmtp::frame::{decode_frame, encode_frame, FrameLimits};
use zeroguard_zmtp::{Event, Message};

const SIZES: [usize; 4] = [16, 256, 4096, 65536];
/// Messages per iteration in the batch benchmarks.
const BATCH: usize = 256;

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for size in SIZES {
        let body = vec![7u8; size];
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(format!("encode/{size}"), |b| {
            let mut out = BytesMut::with_capacity(BATCH * (size + 9));
            b.iter(|| {
                out.clear();
                for _ in 0..BATCH {
                    encode_frame(&mut out, false, false, black_box(&body));
                }
            });
        });
        let mut wire = BytesMut::new();
        for _ in 0..BATCH {
            encode_frame(&mut wire, false, false, &body);
        }
        let limits = FrameLimits {
            max_message_frame: 1 << 30,
            max_command_frame: 1 << 16,
        };
        g.bench_function(format!("decode/{size}"), |b| {
            b.iter_batched(
                || wire.clone(),
                |mut buf| {
                    while let Ok(Some(f)) = decode_frame(&mut buf, &limits) {
                        black_box(f);
                    }
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

fn connection(c: &mut Criterion) {
    for curve in [false, true] {
        let name = if curve { "curve" } else { "null" };
        let mut g = c.benchmark_group(format!("connection_{name}"));
        for size in SIZES {
            let mut pair = Pair::new(curve);
            let msg = Message::from(vec![7u8; size]);
            g.throughput(Throughput::Elements(BATCH as u64));
            let mut out = BytesMut::new();
            let batch = vec![msg.clone(); BATCH];
            g.bench_function(format!("send/{size}"), |b| {
                b.iter(|| {
                    out.clear();
                    for m in &batch {
                        let _ = pair.tx.send(black_box(m), &mut out);
                    }
                });
            });
            // The same batch as the engine encodes it: in one call.
            let mut segments = Vec::new();
            g.bench_function(format!("send_all/{size}"), |b| {
                b.iter(|| {
                    out.clear();
                    segments.clear();
                    let _ = pair.tx.send_all(black_box(&batch), &mut out, &mut segments);
                });
            });
            // Receive what a fresh sender produces (nonces must increase,
            // so each iteration gets newly encoded input).
            let mut pair = Pair::new(curve);
            let now = Instant::now();
            g.bench_function(format!("receive/{size}"), |b| {
                b.iter_batched(
                    || wire(&mut pair.tx, &msg, BATCH),
                    |w| {
                        pair.rx.handle_input(now, &w);
                        let mut n = 0;
                        while let Ok(Some(Event::Message(m))) = pair.rx.poll_event() {
                            black_box(m);
                            n += 1;
                        }
                        assert_eq!(n, BATCH);
                    },
                    BatchSize::SmallInput,
                );
            });
            if curve {
                continue;
            }
            // The same input decoded as the engine does: runs of one-frame
            // messages in one call each, events only for the rest.
            let mut pair = Pair::new(curve);
            g.bench_function(format!("receive_runs/{size}"), |b| {
                b.iter_batched(
                    || wire(&mut pair.tx, &msg, BATCH),
                    |w| {
                        pair.rx.handle_input(now, &w);
                        let mut n = 0;
                        loop {
                            let (run, _) = pair.rx.poll_messages(64, usize::MAX, |m| {
                                black_box(m);
                            });
                            n += run;
                            match pair.rx.poll_event() {
                                Ok(Some(Event::Message(m))) => {
                                    black_box(m);
                                    n += 1;
                                }
                                Ok(None) if run > 0 => {}
                                _ => break,
                            }
                        }
                        assert_eq!(n, BATCH);
                    },
                    BatchSize::SmallInput,
                );
            });
        }
        g.finish();
    }
}

fn routing(c: &mut Criterion) {
    use zeroguard::{Context, Dealer, Router, Socket, SocketOptions};
    let mut g = c.benchmark_group("router");
    for peers in [10usize, 1000] {
        let ctx = Context::new().unwrap_or_else(|e| panic!("context: {e}"));
        let router = Socket::<Router>::with_options(
            &ctx,
            SocketOptions {
                sndhwm: 1 << 20,
                ..SocketOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("router: {e}"));
        router
            .bind("inproc://micro-router")
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let dealers: Vec<Socket<Dealer>> = (0..peers)
            .map(|i| {
                let d = Socket::<Dealer>::with_options(
                    &ctx,
                    SocketOptions {
                        routing_id: Some(format!("peer-{i}").into_bytes().into()),
                        rcvhwm: 1 << 20,
                        ..SocketOptions::default()
                    },
                )
                .unwrap_or_else(|e| panic!("dealer: {e}"));
                d.connect("inproc://micro-router")
                    .unwrap_or_else(|e| panic!("connect: {e}"));
                d
            })
            .collect();
        let last = format!("peer-{}", peers - 1).into_bytes();
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(format!("send_by_id/{peers}_peers"), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    let m = Message::from_frames([last.clone(), b"payload".to_vec()]);
                    let _ = router.send(m);
                }
                // Keep the peer's queue from filling: drain what was sent.
                let d = &dealers[peers - 1];
                while let Ok(Some(_)) = d.try_recv() {}
            });
        });
        drop(dealers);
        drop(router);
        ctx.terminate();
    }
    g.finish();
}

/// PUSH to PULL over inproc in one thread: a batch sent, then received,
/// message by message. Inproc, the PUSH's queue is the PULL's, so this is
/// the whole of what the two application threads of a TCP pair do per
/// message (routing, queueing, fair queueing), without the I/O threads.
fn socket_queues(c: &mut Criterion) {
    use zeroguard::{Context, Pull, Push, Socket};
    let mut g = c.benchmark_group("socket");
    let ctx = Context::new().unwrap_or_else(|e| panic!("context: {e}"));
    let pull = Socket::<Pull>::new(&ctx).unwrap_or_else(|e| panic!("pull: {e}"));
    pull.bind("inproc://micro-queues")
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let push = Socket::<Push>::new(&ctx).unwrap_or_else(|e| panic!("push: {e}"));
    push.connect("inproc://micro-queues")
        .unwrap_or_else(|e| panic!("connect: {e}"));
    for size in [16usize, 256] {
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(format!("send_recv/{size}"), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    push.send(Message::build(size, |_| {}))
                        .unwrap_or_else(|e| panic!("send: {e}"));
                }
                for _ in 0..BATCH {
                    let m = pull.recv().unwrap_or_else(|e| panic!("recv: {e}"));
                    black_box(m);
                }
            });
        });
    }
    drop(push);
    drop(pull);
    ctx.terminate();
    g.finish();
}

criterion_group!(benches, frames, connection, routing, socket_queues);
criterion_main!(benches);
