//! `zeroguard perf`: libzmq's four perf tools, same arguments, same output
//! lines, so either side of a pair can be zeroguard or libzmq.
//!
//! `--curve` uses fixed test keys (the same secrets as the project's libzmq
//! benchmark peer), with the server admitting any client: a benchmark
//! setting, never a deployment one.

use std::time::Instant;

use bytes::Bytes;
use zeroguard::{
    Context, CurveKeyPair, Message, Pull, Push, Rep, Req, Security, Socket, SocketOptions,
};

use crate::args::{PerfArgs, PerfTool};
use crate::Failure;

/// Test secret of the benchmark server (Z85).
pub(crate) const BENCH_SERVER_SECRET: &str = "ch-%0GFib@UNhvDj2UV{0l)6AWGKgu8X#a8uZu+H";
/// Test secret of the benchmark client (Z85).
pub(crate) const BENCH_CLIENT_SECRET: &str = "kuDi$r^.{iQVG3Jpw-{N/E+mQMI)bdB8>)hgfe{=";

fn keys(secret: &str) -> Result<CurveKeyPair, Failure> {
    let raw = zeroguard::zmtp::z85::decode_key(secret).map_err(Failure::config)?;
    Ok(CurveKeyPair::from_secret(raw))
}

fn options(curve: bool, server: bool) -> Result<SocketOptions, Failure> {
    let security = match (curve, server) {
        (false, _) => Security::Null,
        (true, true) => Security::curve_server_allow_any(keys(BENCH_SERVER_SECRET)?),
        (true, false) => Security::curve_client(
            keys(BENCH_CLIENT_SECRET)?,
            *keys(BENCH_SERVER_SECRET)?.public(),
        ),
    };
    Ok(SocketOptions {
        security,
        // Benchmarks may bind any address they are given, as libzmq's tools do.
        allow_plaintext: true,
        linger: std::time::Duration::from_secs(60),
        ..SocketOptions::default()
    })
}

pub(crate) fn run(a: PerfArgs) -> Result<(), Failure> {
    let fail = Failure::runtime;
    let ctx = Context::new().map_err(fail)?;
    let (size, count) = (a.size, a.count);
    if count == 0 {
        return Err(Failure::config(
            "the message or roundtrip count must be at least 1",
        ));
    }
    match a.tool {
        PerfTool::LocalThr => {
            let pull = Socket::<Pull>::with_options(&ctx, options(a.curve, true)?).map_err(fail)?;
            pull.bind(&a.endpoint).map_err(Failure::config)?;
            let first = pull.recv().map_err(fail)?;
            check_size(&first, size)?;
            let start = Instant::now();
            for _ in 1..count {
                let m = pull.recv().map_err(fail)?;
                check_size(&m, size)?;
            }
            let elapsed = start.elapsed().as_secs_f64().max(1e-9);
            // libzmq's formula: all messages over the time from the first to the last.
            let throughput = count as f64 / elapsed;
            let megabits = throughput * size as f64 * 8.0 / 1e6;
            println!("message size: {size} [B]");
            println!("message count: {count}");
            println!("mean throughput: {throughput:.0} [msg/s]");
            println!("mean throughput: {megabits:.3} [Mb/s]");
        }
        PerfTool::RemoteThr => {
            let push =
                Socket::<Push>::with_options(&ctx, options(a.curve, false)?).map_err(fail)?;
            push.connect(&a.endpoint).map_err(Failure::config)?;
            for _ in 0..count {
                // A fresh message per send, its body set in place as the
                // libzmq peer does (`zmq_msg_init_size`, then `memset`):
                // `build` hands over the body zeroed, which is all the
                // benchmark needs. Small ones share blocks, as libzmq keeps
                // them inline.
                push.send(Message::build(size, |_| {})).map_err(fail)?;
            }
            drop(push);
            ctx.terminate();
        }
        PerfTool::LocalLat => {
            let rep = Socket::<Rep>::with_options(&ctx, options(a.curve, true)?).map_err(fail)?;
            rep.bind(&a.endpoint).map_err(Failure::config)?;
            for _ in 0..count {
                let m = rep.recv().map_err(fail)?;
                check_size(&m, size)?;
                rep.send(m).map_err(fail)?;
            }
            drop(rep);
            ctx.terminate();
        }
        PerfTool::RemoteLat => {
            let req = Socket::<Req>::with_options(&ctx, options(a.curve, false)?).map_err(fail)?;
            req.connect(&a.endpoint).map_err(Failure::config)?;
            let payload = Bytes::from(vec![0u8; size]);
            let start = Instant::now();
            for _ in 0..count {
                req.send(Message::from(payload.clone())).map_err(fail)?;
                let m = req.recv().map_err(fail)?;
                check_size(&m, size)?;
            }
            let elapsed = start.elapsed().as_secs_f64();
            println!("message size: {size} [B]");
            println!("roundtrip count: {count}");
            println!(
                "average latency: {:.3} [us]",
                elapsed * 1e6 / (2.0 * count as f64)
            );
        }
    }
    Ok(())
}

fn check_size(m: &Message, size: usize) -> Result<(), Failure> {
    if m.len() != 1 || m.frames()[0].len() != size {
        return Err(Failure::runtime(format!(
            "message of the wrong size: expected one frame of {size} bytes"
        )));
    }
    Ok(())
}
