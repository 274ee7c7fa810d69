//! The one strict parser for endpoint strings: `tcp://`, `ipc://`, `inproc://`.
//!
//! Wildcards (`*` host, `*` or `0` port) are accepted only where binding;
//! host names are checked against RFC 1123; ipc paths against the 107-byte
//! limit of a Unix socket address. Every refusal says what to write instead.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::error::Error;

/// Longest ipc path: `sun_path` is 108 bytes including the terminating zero.
pub const MAX_IPC_PATH: usize = 107;
/// Longest inproc name.
pub const MAX_INPROC_NAME: usize = 256;

/// The host part of a TCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP address.
    Ip(IpAddr),
    /// A DNS name, resolved when connecting or binding.
    Name(String),
    /// `*`: every interface (bind only).
    Any,
}

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `tcp://host:port`.
    Tcp {
        /// Host.
        host: Host,
        /// Port; 0 means "any free port" (bind only).
        port: u16,
    },
    /// `ipc://path`: a Unix domain socket.
    Ipc(PathBuf),
    /// `inproc://name`: within one context, no I/O.
    Inproc(String),
}

/// Whether an endpoint is being bound or connected: wildcards are only for binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `bind`.
    Bind,
    /// `connect`.
    Connect,
}

fn invalid(endpoint: &str, reason: impl Into<String>) -> Error {
    Error::InvalidEndpoint {
        endpoint: endpoint.chars().take(300).collect(),
        reason: reason.into(),
    }
}

fn is_valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Endpoint {
    /// Parses an endpoint for `direction`.
    pub fn parse(s: &str, direction: Direction) -> Result<Endpoint, Error> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(invalid(
                s,
                "missing scheme; write tcp://HOST:PORT, ipc://PATH or inproc://NAME",
            ));
        };
        match scheme {
            "tcp" => Self::parse_tcp(s, rest, direction),
            "ipc" => {
                if rest.is_empty() {
                    return Err(invalid(s, "ipc path is empty"));
                }
                if rest == "*" {
                    return Err(invalid(
                        s,
                        "ipc wildcard paths are not supported; name a path",
                    ));
                }
                if rest.len() > MAX_IPC_PATH {
                    return Err(invalid(
                        s,
                        format!(
                            "ipc path is {} bytes; the limit is {MAX_IPC_PATH}",
                            rest.len()
                        ),
                    ));
                }
                if rest.contains('\0') {
                    return Err(invalid(s, "ipc path contains a NUL byte"));
                }
                Ok(Endpoint::Ipc(PathBuf::from(rest)))
            }
            "inproc" => {
                if rest.is_empty() {
                    return Err(invalid(s, "inproc name is empty"));
                }
                if rest.len() > MAX_INPROC_NAME {
                    return Err(invalid(
                        s,
                        format!("inproc name is longer than {MAX_INPROC_NAME} bytes"),
                    ));
                }
                Ok(Endpoint::Inproc(rest.to_owned()))
            }
            "pgm" | "epgm" | "norm" | "udp" | "vmci" | "ws" | "wss" | "tipc" => Err(invalid(
                s,
                format!("transport {scheme} is not supported; use tcp, ipc or inproc"),
            )),
            _ => Err(invalid(
                s,
                format!("unknown transport {scheme:?}; use tcp, ipc or inproc"),
            )),
        }
    }

    fn parse_tcp(s: &str, rest: &str, direction: Direction) -> Result<Endpoint, Error> {
        if rest.contains(';') {
            return Err(invalid(s, "source addresses (SRC;DEST) are not supported"));
        }
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(invalid(s, "missing port; write tcp://HOST:PORT"));
        };
        let port = match port {
            "*" | "0" if direction == Direction::Bind => 0,
            "*" | "0" => return Err(invalid(s, "a connect needs a real port, not * or 0")),
            p if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    // However it is spelled ("00" too), port 0 is a wildcard.
                    Ok(0) if direction == Direction::Connect => {
                        return Err(invalid(s, "a connect needs a real port, not * or 0"))
                    }
                    Ok(port) => port,
                    Err(_) => return Err(invalid(s, "port must be 1 to 65535")),
                }
            }
            _ => {
                return Err(invalid(
                    s,
                    "port must be a number from 1 to 65535 (or * when binding)",
                ))
            }
        };
        let host = if host == "*" {
            if direction == Direction::Connect {
                return Err(invalid(
                    s,
                    "the * host is only for bind; name the host to connect to",
                ));
            }
            Host::Any
        } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let inner = inner.split('%').next().unwrap_or(inner);
            match inner.parse::<Ipv6Addr>() {
                Ok(ip) => Host::Ip(IpAddr::V6(ip)),
                Err(_) => return Err(invalid(s, "bracketed host is not an IPv6 address")),
            }
        } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
            Host::Ip(IpAddr::V4(ip))
        } else if host.contains(':') {
            return Err(invalid(
                s,
                "IPv6 addresses must be in brackets: tcp://[::1]:5555",
            ));
        } else if is_valid_hostname(host) {
            Host::Name(host.to_owned())
        } else {
            return Err(invalid(
                s,
                "host is neither an IP address nor a valid host name",
            ));
        };
        Ok(Endpoint::Tcp { host, port })
    }

    /// Whether this is a TCP endpoint whose host is a loopback address (or `localhost`).
    pub fn is_loopback(&self) -> bool {
        match self {
            Endpoint::Tcp { host, .. } => match host {
                Host::Ip(ip) => ip.is_loopback(),
                Host::Name(n) => n.eq_ignore_ascii_case("localhost"),
                Host::Any => false,
            },
            Endpoint::Ipc(_) | Endpoint::Inproc(_) => true,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => match host {
                Host::Ip(IpAddr::V6(ip)) => write!(f, "tcp://[{ip}]:{port}"),
                Host::Ip(IpAddr::V4(ip)) => write!(f, "tcp://{ip}:{port}"),
                Host::Name(n) => write!(f, "tcp://{n}:{port}"),
                Host::Any => write!(f, "tcp://*:{port}"),
            },
            Endpoint::Ipc(p) => write!(f, "ipc://{}", p.display()),
            Endpoint::Inproc(n) => write!(f, "inproc://{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(s: &str) -> Result<Endpoint, Error> {
        Endpoint::parse(s, Direction::Bind)
    }
    fn connect(s: &str) -> Result<Endpoint, Error> {
        Endpoint::parse(s, Direction::Connect)
    }

    #[test]
    fn accepts_the_usual_forms() {
        assert_eq!(
            connect("tcp://127.0.0.1:5555").unwrap().to_string(),
            "tcp://127.0.0.1:5555"
        );
        assert_eq!(
            connect("tcp://[::1]:80").unwrap().to_string(),
            "tcp://[::1]:80"
        );
        assert_eq!(
            connect("tcp://example-host.local:1").unwrap().to_string(),
            "tcp://example-host.local:1"
        );
        assert_eq!(
            bind("tcp://*:*").unwrap(),
            Endpoint::Tcp {
                host: Host::Any,
                port: 0
            }
        );
        assert_eq!(
            bind("tcp://127.0.0.1:0").unwrap().to_string(),
            "tcp://127.0.0.1:0"
        );
        assert_eq!(
            connect("ipc:///tmp/x.sock").unwrap(),
            Endpoint::Ipc("/tmp/x.sock".into())
        );
        assert_eq!(connect("inproc://a").unwrap(), Endpoint::Inproc("a".into()));
    }

    #[test]
    fn wildcards_only_for_bind() {
        assert!(connect("tcp://*:5555").is_err());
        assert!(connect("tcp://localhost:*").is_err());
        assert!(connect("tcp://localhost:0").is_err());
        // Found by the endpoint fuzz target: "00" is port 0 too.
        assert!(connect("tcp://localhost:00").is_err());
        assert_eq!(
            bind("tcp://127.0.0.1:00").unwrap().to_string(),
            "tcp://127.0.0.1:0"
        );
    }

    #[test]
    fn refuses_malformed_endpoints() {
        for bad in [
            "",
            "tcp:/x:1",
            "127.0.0.1:5555",
            "tcp://127.0.0.1",
            "tcp://127.0.0.1:",
            "tcp://:5555",
            "tcp://1.2.3.4:65536",
            "tcp://1.2.3.4:-1",
            "tcp://1.2.3.4:12a",
            "tcp://::1:5555",
            "tcp://[zz]:1",
            "tcp://bad_host:1",
            "tcp://-a:1",
            "tcp://a..b:1",
            "ipc://",
            "inproc://",
            "udp://1.2.3.4:1",
            "pgm://eth0;239.1.1.1:5555",
            "TCP://a:1",
            "tcp://eth0;1.2.3.4:1",
        ] {
            assert!(
                matches!(connect(bad), Err(Error::InvalidEndpoint { .. })),
                "{bad}"
            );
        }
        let long = format!("ipc:///{}", "a".repeat(MAX_IPC_PATH));
        assert!(connect(&long).is_err());
    }

    #[test]
    fn loopback_detection() {
        assert!(connect("tcp://127.0.0.1:1").unwrap().is_loopback());
        assert!(connect("tcp://[::1]:1").unwrap().is_loopback());
        assert!(connect("tcp://localhost:1").unwrap().is_loopback());
        assert!(!connect("tcp://10.0.0.1:1").unwrap().is_loopback());
        assert!(!bind("tcp://*:1").unwrap().is_loopback());
        assert!(connect("ipc:///tmp/a").unwrap().is_loopback());
    }
}
