//! TCP: IPv4, IPv6 and host names; `*` and port 0 only for bind.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpStream;

use super::{start_listener, Listener};
use crate::endpoint::{Endpoint, Host};
use crate::engine::Stream;
use crate::error::{Error, Result};
use crate::socket::SocketCore;

fn resolve_blocking(host: &Host, port: u16) -> std::io::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    match host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, port)),
        Host::Any => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
        Host::Name(name) => (name.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{name} has no address"),
                )
            }),
    }
}

pub(crate) fn bind(core: &Arc<SocketCore>, endpoint: &Endpoint, given: &str) -> Result<String> {
    let Endpoint::Tcp { host, port } = endpoint else {
        return Err(Error::InvalidEndpoint {
            endpoint: given.to_owned(),
            reason: "not a tcp endpoint".into(),
        });
    };
    let bind_err = |source| Error::Bind {
        endpoint: given.to_owned(),
        source,
    };
    let addr = resolve_blocking(host, *port).map_err(bind_err)?;
    let std_listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let local = std_listener.local_addr().map_err(bind_err)?;
    let _guard = core.ctx.enter();
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?;
    let resolved = match local.ip() {
        IpAddr::V6(ip) => format!("tcp://[{ip}]:{}", local.port()),
        IpAddr::V4(ip) => format!("tcp://{ip}:{}", local.port()),
    };
    start_listener(core, Listener::Tcp(listener), given, resolved.clone());
    Ok(resolved)
}

pub(crate) async fn connect_stream(
    endpoint: &Endpoint,
) -> std::io::Result<(Stream, Option<IpAddr>)> {
    let Endpoint::Tcp { host, port } = endpoint else {
        return Err(std::io::Error::other("not a tcp endpoint"));
    };
    let stream = match host {
        Host::Ip(ip) => TcpStream::connect(SocketAddr::new(*ip, *port)).await?,
        Host::Name(name) => TcpStream::connect((name.as_str(), *port)).await?,
        Host::Any => return Err(std::io::Error::other("cannot connect to *")),
    };
    stream.set_nodelay(true)?;
    let address = stream.peer_addr().ok().map(|a| a.ip());
    Ok((Stream::Tcp(stream), address))
}
