//! Pipeline: a ventilator pushes tasks to two workers, round-robin; the
//! workers push results to a sink, which fair-queues them.
//!
//! Run: `cargo run -p zeroguard --example push_pull`

// A worker thread that panicked is a bug this example should show loudly.
#![allow(clippy::expect_used)]

use zeroguard::{Context, Pull, Push, Socket};

fn main() -> Result<(), zeroguard::Error> {
    let ctx = Context::new()?;
    let ventilator = Socket::<Push>::new(&ctx)?;
    // Watch events from the start, so no handshake goes unseen.
    let monitor = ventilator.monitor();
    let tasks = ventilator.bind("tcp://127.0.0.1:0")?;
    let sink = Socket::<Pull>::new(&ctx)?;
    let results = sink.bind("tcp://127.0.0.1:0")?;

    let workers: Vec<_> = (0..2)
        .map(|id| {
            let (ctx, tasks, results) = (ctx.clone(), tasks.clone(), results.clone());
            std::thread::spawn(move || -> Result<(), zeroguard::Error> {
                let input = Socket::<Pull>::new(&ctx)?;
                input.connect(&tasks)?;
                let output = Socket::<Push>::new(&ctx)?;
                output.connect(&results)?;
                for _ in 0..5 {
                    let task = input.recv()?;
                    let n: u64 = String::from_utf8_lossy(&task.frames()[0])
                        .parse()
                        .unwrap_or(0);
                    output.send(format!("worker {id}: {n} squared is {}", n * n).into_bytes())?;
                }
                Ok(())
            })
        })
        .collect();

    // Wait until both workers are connected, so the tasks are shared out.
    let mut connected = 0;
    while connected < 2 {
        if let Some(zeroguard::MonitorEvent::HandshakeSucceeded { .. }) = monitor.recv(None) {
            connected += 1;
        }
    }
    for n in 0..10u64 {
        ventilator.send(n.to_string().into_bytes())?;
    }
    for _ in 0..10 {
        println!("{}", String::from_utf8_lossy(&sink.recv()?.frames()[0]));
    }
    for w in workers {
        w.join().expect("worker thread")?;
    }
    Ok(())
}
