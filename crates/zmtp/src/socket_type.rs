//! Socket types as announced in the `Socket-Type` property, and which pairs may talk (RFC 23).

use std::fmt;

/// A ZeroMQ socket type, as carried in the `Socket-Type` metadata property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketType {
    /// Exclusive pair.
    Pair,
    /// Publisher.
    Pub,
    /// Subscriber.
    Sub,
    /// Publisher that sees subscriptions.
    XPub,
    /// Subscriber that sends subscriptions as messages.
    XSub,
    /// Pipeline sender.
    Push,
    /// Pipeline receiver.
    Pull,
    /// Strict request side.
    Req,
    /// Strict reply side.
    Rep,
    /// Asynchronous request side.
    Dealer,
    /// Asynchronous reply side, routing by peer identity.
    Router,
    /// Draft: thread-safe client.
    Client,
    /// Draft: thread-safe server.
    Server,
    /// Draft: group publisher.
    Radio,
    /// Draft: group subscriber.
    Dish,
    /// Draft: thread-safe pipeline sender.
    Scatter,
    /// Draft: thread-safe pipeline receiver.
    Gather,
    /// Draft: peer-to-peer.
    Peer,
    /// Draft: thread-safe pair.
    Channel,
}

impl SocketType {
    /// Every socket type, standard ones first.
    pub const ALL: [SocketType; 19] = [
        SocketType::Pair,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::XPub,
        SocketType::XSub,
        SocketType::Push,
        SocketType::Pull,
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Client,
        SocketType::Server,
        SocketType::Radio,
        SocketType::Dish,
        SocketType::Scatter,
        SocketType::Gather,
        SocketType::Peer,
        SocketType::Channel,
    ];

    /// Whether this is one of the eleven standard types (not a draft one).
    pub fn is_standard(self) -> bool {
        SocketType::ALL[..11].contains(&self)
    }

    /// The name sent on the wire, e.g. `"DEALER"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketType::Pair => "PAIR",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
            SocketType::Push => "PUSH",
            SocketType::Pull => "PULL",
            SocketType::Req => "REQ",
            SocketType::Rep => "REP",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
            SocketType::Client => "CLIENT",
            SocketType::Server => "SERVER",
            SocketType::Radio => "RADIO",
            SocketType::Dish => "DISH",
            SocketType::Scatter => "SCATTER",
            SocketType::Gather => "GATHER",
            SocketType::Peer => "PEER",
            SocketType::Channel => "CHANNEL",
        }
    }

    /// Parses a wire name. Matching is exact, as libzmq does.
    pub fn from_wire(name: &[u8]) -> Option<SocketType> {
        SocketType::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes() == name)
    }

    /// Whether a socket of this type may talk to a peer of type `peer`.
    pub fn is_compatible_with(self, peer: SocketType) -> bool {
        use SocketType::*;
        matches!(
            (self, peer),
            (Req, Rep | Router)
                | (Rep, Req | Dealer)
                | (Dealer, Rep | Dealer | Router)
                | (Router, Req | Dealer | Router)
                | (Pub | XPub, Sub | XSub)
                | (Sub | XSub, Pub | XPub)
                | (Push, Pull)
                | (Pull, Push)
                | (Pair, Pair)
                | (Client, Server)
                | (Server, Client)
                | (Radio, Dish)
                | (Dish, Radio)
                | (Scatter, Gather)
                | (Gather, Scatter)
                | (Peer, Peer)
                | (Channel, Channel)
        )
    }

    /// Whether this type announces its routing id in the `Identity` property (as libzmq does).
    pub fn sends_identity(self) -> bool {
        matches!(
            self,
            SocketType::Req | SocketType::Dealer | SocketType::Router
        )
    }

    /// Whether this type receives subscriptions from its peers.
    pub fn accepts_subscriptions(self) -> bool {
        matches!(self, SocketType::Pub | SocketType::XPub)
    }
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in SocketType::ALL {
            assert_eq!(SocketType::from_wire(t.as_str().as_bytes()), Some(t));
        }
        assert_eq!(SocketType::from_wire(b"dealer"), None);
        assert_eq!(SocketType::from_wire(b""), None);
    }

    #[test]
    fn compatibility_is_symmetric_and_matches_rfc23() {
        for a in SocketType::ALL {
            for b in SocketType::ALL {
                assert_eq!(a.is_compatible_with(b), b.is_compatible_with(a), "{a} {b}");
            }
        }
        assert!(SocketType::Req.is_compatible_with(SocketType::Router));
        assert!(!SocketType::Req.is_compatible_with(SocketType::Req));
        assert!(!SocketType::Pub.is_compatible_with(SocketType::Pull));
        assert!(SocketType::XSub.is_compatible_with(SocketType::Pub));
        assert!(SocketType::Router.is_standard() && !SocketType::Client.is_standard());
    }
}
