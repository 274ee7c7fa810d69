//! Request/reply: a REP service answering a REQ client over TCP loopback.
//!
//! Run: `cargo run -p zeroguard --example req_rep`

// A worker thread that panicked is a bug this example should show loudly.
#![allow(clippy::expect_used)]

use zeroguard::{Context, Rep, Req, Socket};

fn main() -> Result<(), zeroguard::Error> {
    let ctx = Context::new()?;

    let service = Socket::<Rep>::new(&ctx)?;
    // Port 0: the system picks a free port; bind returns the real endpoint.
    let endpoint = service.bind("tcp://127.0.0.1:0")?;
    let server = std::thread::spawn(move || -> Result<(), zeroguard::Error> {
        for _ in 0..3 {
            let request = service.recv()?;
            let mut reply = b"echo: ".to_vec();
            reply.extend_from_slice(&request.frames()[0]);
            service.send(reply)?;
        }
        Ok(())
    });

    let client = Socket::<Req>::new(&ctx)?;
    client.connect(&endpoint)?;
    for word in ["one", "two", "three"] {
        client.send(word)?;
        let reply = client.recv()?;
        println!("{}", String::from_utf8_lossy(&reply.frames()[0]));
        assert_eq!(reply.frames()[0], format!("echo: {word}"));
    }
    server.join().expect("server thread")?;
    Ok(())
}
