//! Transports: how a socket binds and connects.
//!
//! `tcp` and `ipc` share one accept loop, which enforces the connection
//! limits before a single byte is read, and one reconnecting connector with
//! back-off. `inproc` joins two sockets' pipes directly: no task, no I/O,
//! no copy.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::endpoint::Endpoint;
use crate::engine::{self, Counted, EngineParams, Stream};
use crate::error::Result;
use crate::monitor::MonitorEvent;
use crate::socket::SocketCore;

pub(crate) mod inproc;
pub(crate) mod ipc;
pub(crate) mod tcp;

/// A listening socket of either stream transport.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, ipc::SocketFile),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<(Stream, String, Option<IpAddr>)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok((Stream::Tcp(s), addr.to_string(), Some(addr.ip())))
            }
            Listener::Unix(l, file) => {
                let (s, _) = l.accept().await?;
                Ok((Stream::Unix(s), file.path.display().to_string(), None))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, file) = self {
            file.remove();
        }
    }
}

/// Binds `endpoint`; returns the resolved endpoint (with the real port).
pub(crate) fn bind(core: &Arc<SocketCore>, endpoint: Endpoint, given: &str) -> Result<String> {
    match endpoint {
        Endpoint::Tcp { .. } => tcp::bind(core, &endpoint, given),
        Endpoint::Ipc(path) => ipc::bind(core, &path, given),
        Endpoint::Inproc(name) => inproc::bind(core, &name, given),
    }
}

/// Connects to `endpoint` (in the background, reconnecting as needed).
pub(crate) fn connect(core: &Arc<SocketCore>, endpoint: Endpoint, given: &str) -> Result<()> {
    match endpoint {
        Endpoint::Tcp { .. } | Endpoint::Ipc(_) => {
            let stop = core.add_endpoint(given, &endpoint.to_string(), None, None);
            let core2 = core.clone();
            core.ctx.spawn(connect_loop(core2, endpoint, stop));
            Ok(())
        }
        Endpoint::Inproc(name) => inproc::connect(core, &name, given),
    }
}

/// Starts the accept loop of a bound listener.
pub(crate) fn start_listener(
    core: &Arc<SocketCore>,
    listener: Listener,
    given: &str,
    resolved: String,
) {
    let file = match &listener {
        Listener::Unix(_, file) => Some(file.clone()),
        Listener::Tcp(_) => None,
    };
    let stop = core.add_endpoint(given, &resolved, None, file);
    core.emit(MonitorEvent::Listening {
        endpoint: resolved.clone(),
    });
    core.ctx
        .spawn(accept_loop(core.clone(), listener, resolved, stop));
}

async fn accept_loop(
    core: Arc<SocketCore>,
    listener: Listener,
    endpoint: String,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        let (stream, peer, address) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // Out of descriptors and the like: pause rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (max_connections, max_handshakes, per_address_connections, per_address_handshakes) =
            core.with_options(|o| {
                (
                    o.max_connections,
                    o.max_handshakes,
                    o.max_connections_per_address,
                    o.max_handshakes_per_address,
                )
            });
        let from_address = address
            .map(|ip| {
                core.per_address
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&ip)
                    .copied()
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let refusal = if core.connections.load(Ordering::Acquire) >= max_connections {
            Some("max connections reached")
        } else if core.handshakes.load(Ordering::Acquire) >= max_handshakes {
            Some("max handshakes in progress reached")
        } else if from_address.connections >= per_address_connections {
            Some("max connections from this address reached")
        } else if from_address.handshakes >= per_address_handshakes {
            Some("max handshakes in progress from this address reached")
        } else {
            None
        };
        if let Some(reason) = refusal {
            drop(stream);
            core.emit(MonitorEvent::AcceptRefused {
                endpoint: endpoint.clone(),
                reason: reason.to_owned(),
            });
            continue;
        }
        core.emit(MonitorEvent::Accepted {
            endpoint: endpoint.clone(),
            peer,
        });
        let params = EngineParams {
            counted: Counted::new(&core, address),
            core: core.clone(),
            endpoint: endpoint.clone(),
            peer_address: address,
            stop: stop.clone(),
        };
        core.ctx.spawn(async move {
            engine::run(stream, params).await;
        });
    }
    // The event tells that the endpoint is closed: a peer connecting once it
    // is out must be refused, so the socket (and an ipc file) goes first.
    drop(listener);
    core.emit(MonitorEvent::Closed { endpoint });
}

async fn connect_loop(core: Arc<SocketCore>, endpoint: Endpoint, mut stop: watch::Receiver<bool>) {
    let name = endpoint.to_string();
    let options = core.options();
    let mut delay = options.reconnect_interval;
    loop {
        if *stop.borrow() {
            return;
        }
        let attempt = async {
            match &endpoint {
                Endpoint::Tcp { .. } => tcp::connect_stream(&endpoint).await,
                Endpoint::Ipc(path) => ipc::connect_stream(path).await,
                Endpoint::Inproc(_) => Err(std::io::Error::other("inproc has no stream")),
            }
        };
        let connected = tokio::select! {
            r = tokio::time::timeout(options.connect_timeout, attempt) => r.ok().and_then(|r| r.ok()),
            _ = stop.changed() => return,
        };
        if let Some((stream, address)) = connected {
            core.emit(MonitorEvent::Connected {
                endpoint: name.clone(),
            });
            let params = EngineParams {
                counted: Counted::new(&core, address),
                core: core.clone(),
                endpoint: name.clone(),
                peer_address: address,
                stop: stop.clone(),
            };
            let outcome = engine::run(stream, params).await;
            if outcome.handshake_done {
                delay = options.reconnect_interval;
            }
        }
        if *stop.borrow() || core.is_closed() {
            return;
        }
        core.emit(MonitorEvent::ConnectRetried {
            endpoint: name.clone(),
            retry_in: delay,
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
        delay = (delay * 2).min(options.reconnect_interval_max);
    }
}
