//! Publish/subscribe: subscribers receive only the topics they asked for.
//!
//! Run: `cargo run -p zeroguard --example pub_sub`

use std::time::Duration;

use zeroguard::{Context, Pub, Socket, Sub};

fn main() -> Result<(), zeroguard::Error> {
    let ctx = Context::new()?;
    let publisher = Socket::<Pub>::new(&ctx)?;
    let endpoint = publisher.bind("tcp://127.0.0.1:0")?;

    let subscriber = Socket::<Sub>::new(&ctx)?;
    subscriber.subscribe("temperature")?;
    subscriber.connect(&endpoint)?;

    // A subscription travels to the publisher after the connection is made:
    // messages published before it arrives are not delivered (the "slow
    // joiner"). Publish until the subscriber hears something.
    let mut tick = 0;
    let first = loop {
        tick += 1;
        publisher.send(format!("humidity {tick}").into_bytes())?;
        publisher.send(format!("temperature {tick}").into_bytes())?;
        std::thread::sleep(Duration::from_millis(10));
        if let Some(m) = subscriber.try_recv()? {
            break m;
        }
        assert!(tick < 500, "no message within 5 s");
    };
    let text = String::from_utf8_lossy(&first.frames()[0]).into_owned();
    println!("subscriber got: {text}");
    assert!(text.starts_with("temperature"));
    Ok(())
}
