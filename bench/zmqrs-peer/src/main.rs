//! The zmq.rs side of the benchmark: the four perf tools with the argument
//! order and output lines of `zeroguard perf` (zmq.rs has no CURVE).

use std::time::Instant;

use zeromq::{Socket, SocketRecv, SocketSend, ZmqMessage};

fn usage() -> ! {
    eprintln!("usage: zmqrs-peer local-thr|remote-thr|local-lat|remote-lat ENDPOINT SIZE COUNT");
    std::process::exit(1)
}

fn sized(m: &ZmqMessage, size: usize) {
    if m.len() != 1 || m.get(0).map_or(0, |f| f.len()) != size {
        eprintln!("zmqrs-peer: message of the wrong size");
        std::process::exit(2);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        usage();
    }
    let (tool, endpoint) = (args[1].as_str(), args[2].as_str());
    let size: usize = args[3].parse().unwrap_or_else(|_| usage());
    let count: u64 = args[4].parse().unwrap_or_else(|_| usage());
    let fail = |what: &str, e: zeromq::ZmqError| -> ! {
        eprintln!("zmqrs-peer: {what}: {e}");
        std::process::exit(2)
    };
    match tool {
        "local-thr" => {
            let mut s = zeromq::PullSocket::new();
            s.bind(endpoint).await.unwrap_or_else(|e| fail("bind", e));
            sized(&s.recv().await.unwrap_or_else(|e| fail("recv", e)), size);
            let start = Instant::now();
            for _ in 1..count {
                sized(&s.recv().await.unwrap_or_else(|e| fail("recv", e)), size);
            }
            let throughput = count as f64 / start.elapsed().as_secs_f64().max(1e-9);
            println!("message size: {size} [B]");
            println!("message count: {count}");
            println!("mean throughput: {} [msg/s]", throughput as u64);
            println!("mean throughput: {:.3} [Mb/s]", throughput * size as f64 * 8.0 / 1e6);
        }
        "remote-thr" => {
            let mut s = zeromq::PushSocket::new();
            s.connect(endpoint).await.unwrap_or_else(|e| fail("connect", e));
            for _ in 0..count {
                let m = ZmqMessage::from(bytes::Bytes::from(vec![0u8; size]));
                s.send(m).await.unwrap_or_else(|e| fail("send", e));
            }
            // zmq.rs has no linger: give the last writes time to leave.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        "local-lat" => {
            let mut s = zeromq::RepSocket::new();
            s.bind(endpoint).await.unwrap_or_else(|e| fail("bind", e));
            for _ in 0..count {
                let m = s.recv().await.unwrap_or_else(|e| fail("recv", e));
                sized(&m, size);
                s.send(m).await.unwrap_or_else(|e| fail("send", e));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        "remote-lat" => {
            let mut s = zeromq::ReqSocket::new();
            s.connect(endpoint).await.unwrap_or_else(|e| fail("connect", e));
            let payload = bytes::Bytes::from(vec![0u8; size]);
            let start = Instant::now();
            for _ in 0..count {
                s.send(ZmqMessage::from(payload.clone())).await.unwrap_or_else(|e| fail("send", e));
                sized(&s.recv().await.unwrap_or_else(|e| fail("recv", e)), size);
            }
            let elapsed = start.elapsed().as_secs_f64();
            println!("message size: {size} [B]");
            println!("roundtrip count: {count}");
            println!("average latency: {:.3} [us]", elapsed * 1e6 / (2.0 * count as f64));
        }
        _ => usage(),
    }
}
