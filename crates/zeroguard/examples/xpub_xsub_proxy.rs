//! A forwarding broker: publishers connect to an XSUB frontend, subscribers
//! to an XPUB backend, and `proxy` passes subscriptions up and messages down.
//!
//! Run: `cargo run -p zeroguard --example xpub_xsub_proxy`

// A worker thread that panicked is a bug this example should show loudly.
#![allow(clippy::expect_used)]

use std::time::Duration;

use zeroguard::{proxy, Context, Pub, Socket, Sub, XPub, XSub};

fn main() -> Result<(), zeroguard::Error> {
    let ctx = Context::new()?;
    let frontend = Socket::<XSub>::new(&ctx)?;
    let front = frontend.bind("tcp://127.0.0.1:0")?;
    let backend = Socket::<XPub>::new(&ctx)?;
    let back = backend.bind("tcp://127.0.0.1:0")?;
    let (f, b) = (frontend.clone(), backend.clone());
    let broker = std::thread::spawn(move || proxy(&f, &b));

    let publisher = Socket::<Pub>::new(&ctx)?;
    publisher.connect(&front)?;
    let subscriber = Socket::<Sub>::new(&ctx)?;
    subscriber.subscribe("prices")?;
    subscriber.connect(&back)?;

    let mut n = 0;
    let got = loop {
        n += 1;
        publisher.send(format!("prices {n}").into_bytes())?;
        publisher.send(format!("gossip {n}").into_bytes())?;
        std::thread::sleep(Duration::from_millis(10));
        if let Some(m) = subscriber.try_recv()? {
            break m;
        }
        assert!(n < 500, "nothing came through the broker within 5 s");
    };
    println!(
        "through the broker: {}",
        String::from_utf8_lossy(&got.frames()[0])
    );
    assert!(got.frames()[0].starts_with(b"prices"));

    // Closing the broker's sockets ends the proxy.
    frontend.close();
    backend.close();
    broker.join().expect("broker thread")?;
    Ok(())
}
