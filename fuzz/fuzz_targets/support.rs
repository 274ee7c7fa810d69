//! Shared driver for the connection targets.
use std::time::{Duration, Instant};

use bytes::BytesMut;
use zeroguard_zmtp::{AuthDecision, Config, Connection, Event, MechanismConfig, Message, SocketType};

pub fn drive(socket_type: SocketType, mechanism: MechanismConfig, selector: u8, stream: &[u8]) {
    let t0 = Instant::now();
    let mut config = Config::new(socket_type, mechanism);
    config.limits.max_message_size = 1 << 16;
    config.limits.max_frames = 64;
    config.heartbeat.interval = Some(Duration::from_millis(100));
    let mut conn = Connection::new(config, t0).expect("valid config");
    let step = usize::from(selector >> 2) % 48 + 1;
    let mut sent = 0usize;
    let mut out = BytesMut::new();
    let mut failure = None;
    let mut accept = selector & 0x80 == 0;
    let runs = selector & 0x01 != 0;
    for (i, chunk) in stream.chunks(step).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 7);
        conn.handle_input(now, chunk);
        loop {
            if runs {
                // Runs of messages, as the engine takes them, mixed with events.
                let mut got = Vec::new();
                conn.poll_messages(usize::from(selector & 0x7c) + 1, 1 << 16, |m| got.push(m));
                for m in &got {
                    assert!(m.len() == 1 && m.payload_len() <= 1 << 16);
                }
                let _ = conn.send_all(&got, &mut out, &mut Vec::new());
            }
            match conn.poll_event() {
                Ok(Some(Event::Authenticate(_))) => {
                    let d = if accept { AuthDecision::accept() } else { AuthDecision::refuse("no") };
                    accept = !accept;
                    conn.complete_auth(d).expect("a request was pending");
                }
                Ok(Some(Event::Message(m))) => {
                    assert!(!m.is_empty() && m.payload_len() <= 1 << 16 && m.len() <= 64);
                    let _ = conn.send(&m, &mut out);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    assert!(e.is_peer_fault(), "{e}");
                    failure = Some(e);
                    break;
                }
            }
        }
        let _ = conn.handle_timeout(now);
        sent += conn.poll_transmit(&mut out);
        if let Some(e) = &failure {
            assert_eq!(conn.poll_event().err().as_ref(), Some(e), "errors are sticky");
            assert_eq!(conn.send(&Message::from("x"), &mut out).err().as_ref(), Some(e));
            break;
        }
    }
    // Greeting, our handshake commands, one ERROR, PINGs, and PONGs no larger
    // than the PINGs that asked for them.
    assert!(sent <= 64 + 1024 + stream.len() * 2, "output {sent} for input {}", stream.len());
}
