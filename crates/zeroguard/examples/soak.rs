//! A soak for leak checkers (not a pattern example): many connect,
//! handshake, message, close cycles with NULL and CURVE, subscribers with
//! 16 KiB of metadata coming and going on a publisher (CVE-2021-20237: a
//! publisher must not keep what departed subscribers announced), and
//! hostile connections that send garbage, against sockets that stay up.
//!
//! `cargo run --release -p zeroguard --example soak -- CYCLES [--rss-limit-mb N]`
//! prints resident memory after a warm-up and at the end, and fails if it
//! grew by more than the limit (default 8 MiB). `scripts/leak-check.sh`
//! also runs it under valgrind, which must report no definite leak.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use zeroguard::{
    Context, CurveKeyPair, Message, Metadata, MonitorEvent, Pub, Pull, Push, Security, Socket,
    SocketOptions, Sub,
};

mod support;
use support::rss_kib;

fn options(security: Security) -> SocketOptions {
    SocketOptions {
        security,
        recv_timeout: Some(Duration::from_secs(10)),
        send_timeout: Some(Duration::from_secs(10)),
        linger: Duration::from_secs(1),
        ..SocketOptions::default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let cycles: usize = args.get(1).map(|c| c.parse()).transpose()?.unwrap_or(2000);
    let limit_mb: u64 = match args.iter().position(|a| a == "--rss-limit-mb") {
        Some(i) => args
            .get(i + 1)
            .ok_or("--rss-limit-mb needs a value")?
            .parse()?,
        None => 8,
    };

    let ctx = Context::new()?;
    let null_sink = Socket::<Pull>::with_options(&ctx, options(Security::Null))?;
    let null_ep = null_sink.bind("tcp://127.0.0.1:0")?;
    let server_keys = CurveKeyPair::generate();
    let curve_sink = Socket::<Pull>::with_options(
        &ctx,
        options(Security::curve_server_allow_any(server_keys.clone())),
    )?;
    let curve_ep = curve_sink.bind("tcp://127.0.0.1:0")?;

    let publisher = Socket::<Pub>::with_options(&ctx, options(Security::Null))?;
    let pub_ep = publisher.bind("tcp://127.0.0.1:0")?;
    let mut big = Metadata::new();
    big.insert("X-Padding", vec![b'p'; 16 * 1024])?;

    let cycle = |i: usize| -> Result<(), Box<dyn std::error::Error>> {
        // A well-behaved NULL peer.
        let push = Socket::<Push>::with_options(&ctx, options(Security::Null))?;
        push.connect(&null_ep)?;
        push.send(Message::from(vec![i.to_le_bytes()[0]; 100]))?;
        null_sink.recv()?;
        push.close();
        // A well-behaved CURVE peer.
        let push = Socket::<Push>::with_options(
            &ctx,
            options(Security::curve_client(
                CurveKeyPair::generate(),
                *server_keys.public(),
            )),
        )?;
        push.connect(&curve_ep)?;
        push.send(Message::from_frames([vec![1u8; 10], vec![2u8; 5000]]))?;
        curve_sink.recv()?;
        push.close();
        // A subscriber announcing 16 KiB of metadata, attached, then gone.
        let sub = Socket::<Sub>::with_options(
            &ctx,
            SocketOptions {
                metadata: big.clone(),
                ..options(Security::Null)
            },
        )?;
        let events = sub.monitor();
        sub.subscribe("")?;
        sub.connect(&pub_ep)?;
        loop {
            match events.recv(Some(Duration::from_secs(10))) {
                Some(MonitorEvent::HandshakeSucceeded { .. }) => break,
                Some(_) => {}
                None => return Err("subscriber handshake did not complete".into()),
            }
        }
        sub.close();
        // A hostile peer: half a greeting then garbage, then gone.
        let mut raw = TcpStream::connect(null_ep.trim_start_matches("tcp://"))?;
        let _ = raw.write_all(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 1, 0xde, 0xad]);
        drop(raw);
        Ok(())
    };

    let warm_up = (cycles / 10).max(10);
    for i in 0..warm_up {
        cycle(i)?;
    }
    std::thread::sleep(Duration::from_millis(200));
    let baseline = rss_kib();
    for i in warm_up..cycles {
        cycle(i)?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let end = rss_kib();
    println!("cycles: {cycles} (each: NULL session, CURVE session, subscriber with 16 KiB metadata, hostile connection)");
    if let (Some(b), Some(e)) = (baseline, end) {
        let grown = e.saturating_sub(b);
        println!("resident memory: {b} KiB after warm-up, {e} KiB at the end, +{grown} KiB");
        if grown > limit_mb * 1024 {
            return Err(format!(
                "resident memory grew by {grown} KiB, above the {limit_mb} MiB limit"
            )
            .into());
        }
    }
    drop((null_sink, curve_sink, publisher));
    ctx.terminate();
    Ok(())
}
