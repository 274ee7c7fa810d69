//! Asynchronous request/reply: DEALER clients with their own routing ids
//! talk to a ROUTER, which sees who sent each message and answers that peer.
//!
//! Run: `cargo run -p zeroguard --example router_dealer`

use zeroguard::{Context, Dealer, Message, Router, Socket, SocketOptions};

fn main() -> Result<(), zeroguard::Error> {
    let ctx = Context::new()?;
    let router = Socket::<Router>::new(&ctx)?;
    let endpoint = router.bind("ipc:///tmp/zeroguard-example-router.sock")?;

    let mut clients = Vec::new();
    for name in ["alice", "bob"] {
        let options = SocketOptions {
            routing_id: Some(name.into()),
            ..SocketOptions::default()
        };
        let dealer = Socket::<Dealer>::with_options(&ctx, options)?;
        dealer.connect(&endpoint)?;
        dealer.send(format!("hello from {name}").into_bytes())?;
        clients.push((name, dealer));
    }

    for _ in 0..2 {
        // Received messages start with the sender's routing id...
        let msg = router.recv()?;
        let (id, body) = (msg.frames()[0].clone(), msg.frames()[1].clone());
        println!(
            "router got {:?} from {}",
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&id)
        );
        // ...and sent messages start with the routing id of the recipient.
        router.send(Message::from_frames([id, "welcome".into()]))?;
    }
    for (name, dealer) in clients {
        let reply = dealer.recv()?;
        println!(
            "{name} got {:?}",
            String::from_utf8_lossy(&reply.frames()[0])
        );
    }
    Ok(())
}
