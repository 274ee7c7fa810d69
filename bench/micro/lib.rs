//! Helpers for the microbenchmarks in `benches/`: a pair of protocol
//! connections driven to the end of their handshake in memory.
#![forbid(unsafe_code)]

use std::time::Instant;

use bytes::BytesMut;
use zeroguard_zmtp::{
    AuthDecision, Config, Connection, Event, MechanismConfig, Message, SocketType,
};

/// Two connected protocol cores (a sender and a receiver), handshake done.
pub struct Pair {
    /// The sending side.
    pub tx: Connection,
    /// The receiving side.
    pub rx: Connection,
}

fn drain(c: &mut Connection) -> bool {
    let mut moved = false;
    while let Ok(Some(event)) = c.poll_event() {
        moved = true;
        if let Event::Authenticate(_) = event {
            let _ = c.complete_auth(AuthDecision::accept());
        }
    }
    moved
}

impl Pair {
    /// A PUSH→PULL pair over NULL, or over CURVE when `curve` is set.
    pub fn new(curve: bool) -> Pair {
        let now = Instant::now();
        let (client, server) = if curve {
            let server_keys = zeroguard_zmtp::CurveKeyPair::generate();
            (
                MechanismConfig::CurveClient {
                    keys: zeroguard_zmtp::CurveKeyPair::generate(),
                    server_key: *server_keys.public(),
                },
                MechanismConfig::CurveServer { keys: server_keys },
            )
        } else {
            (
                MechanismConfig::Null {
                    authenticate: false,
                },
                MechanismConfig::Null {
                    authenticate: false,
                },
            )
        };
        let mut tx = Connection::new(Config::new(SocketType::Push, client), now)
            .unwrap_or_else(|e| panic!("client config: {e}"));
        let mut rx = Connection::new(Config::new(SocketType::Pull, server), now)
            .unwrap_or_else(|e| panic!("server config: {e}"));
        for _ in 0..32 {
            let mut wire = BytesMut::new();
            let mut moved = tx.poll_transmit(&mut wire) > 0;
            rx.handle_input(now, &wire);
            wire.clear();
            moved |= rx.poll_transmit(&mut wire) > 0;
            tx.handle_input(now, &wire);
            moved |= drain(&mut tx) | drain(&mut rx);
            if !moved {
                break;
            }
        }
        assert!(tx.is_ready() && rx.is_ready(), "handshake did not complete");
        Pair { tx, rx }
    }
}

/// What `tx` puts on the wire for `count` copies of `msg` (fresh each
/// time: CURVE nonces must increase).
pub fn wire(tx: &mut Connection, msg: &Message, count: usize) -> BytesMut {
    let mut w = BytesMut::new();
    for _ in 0..count {
        let _ = tx.send(msg, &mut w);
    }
    w
}
