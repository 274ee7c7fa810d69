//! Exclusive pair: two threads signalling each other over inproc, without I/O
//! or copies.
//!
//! Run: `cargo run -p zeroguard --example pair`

// A worker thread that panicked is a bug this example should show loudly.
#![allow(clippy::expect_used)]

use zeroguard::{Context, Pair, Socket};

fn main() -> Result<(), zeroguard::Error> {
    let ctx = Context::new()?;
    let main_side = Socket::<Pair>::new(&ctx)?;
    main_side.bind("inproc://step")?;

    let worker_ctx = ctx.clone();
    let worker = std::thread::spawn(move || -> Result<(), zeroguard::Error> {
        let worker_side = Socket::<Pair>::new(&worker_ctx)?;
        worker_side.connect("inproc://step")?;
        worker_side.send("worker ready")?;
        let go = worker_side.recv()?;
        assert_eq!(go.frames()[0], "go");
        worker_side.send("worker done")?;
        Ok(())
    });

    println!(
        "{}",
        String::from_utf8_lossy(&main_side.recv()?.frames()[0])
    );
    main_side.send("go")?;
    println!(
        "{}",
        String::from_utf8_lossy(&main_side.recv()?.frames()[0])
    );
    worker.join().expect("worker thread")?;
    Ok(())
}
