//! Forwarding between two sockets, like `zmq_proxy`: frontend to backend
//! and back, for every direction the two socket types support.

use std::sync::Arc;

use zeroguard_zmtp::SocketType;

use crate::error::{Error, Result};
use crate::poller::{Interest, Poller};
use crate::socket::api::{core_of, Kind, Socket};
use crate::socket::routing::SendOutcome;
use crate::socket::SocketCore;
use crate::wait::block_on;

fn receives(t: SocketType) -> bool {
    !matches!(t, SocketType::Pub | SocketType::Push)
}

fn sends(t: SocketType) -> bool {
    !matches!(t, SocketType::Sub | SocketType::Pull)
}

/// Forwards messages until either socket is closed. Messages wait for room
/// (back-pressure) rather than being dropped, except where the receiving
/// socket type drops by design (PUB).
pub fn proxy<F: Kind, B: Kind>(frontend: &Socket<F>, backend: &Socket<B>) -> Result<()> {
    proxy_cores(core_of(frontend).clone(), core_of(backend).clone())
}

pub(crate) fn proxy_cores(front: Arc<SocketCore>, back: Arc<SocketCore>) -> Result<()> {
    let forward = receives(front.kind) && sends(back.kind);
    let backward = receives(back.kind) && sends(front.kind);
    if !forward && !backward {
        return Err(Error::InvalidState(
            "these two socket types cannot forward in either direction",
        ));
    }
    let mut poller = Poller::new();
    poller.add_core(
        front.clone(),
        if forward {
            Interest::READABLE
        } else {
            Interest {
                readable: false,
                writable: false,
            }
        },
    );
    poller.add_core(
        back.clone(),
        if backward {
            Interest::READABLE
        } else {
            Interest {
                readable: false,
                writable: false,
            }
        },
    );
    loop {
        if front.is_closed() || back.is_closed() {
            return Ok(());
        }
        let ready = poller.poll(Some(std::time::Duration::from_millis(500)));
        for r in ready {
            let (from, to) = if r.index == 0 {
                (&front, &back)
            } else {
                (&back, &front)
            };
            // Move what is waiting, a bounded batch at a time so both directions progress.
            for _ in 0..256 {
                let msg = match from.try_recv() {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(Error::Closed) => return Ok(()),
                    Err(e) => return Err(e),
                };
                // Either socket closing ends the proxy normally, whichever call notices it.
                match to.try_send(msg) {
                    Ok(SendOutcome::Done) => {}
                    Ok(SendOutcome::WouldBlock(m)) => match block_on(to.send_async(m), None) {
                        Some(Ok(())) => {}
                        Some(Err(Error::Closed)) | None => return Ok(()),
                        Some(Err(e)) => return Err(e),
                    },
                    Err(Error::Closed) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
