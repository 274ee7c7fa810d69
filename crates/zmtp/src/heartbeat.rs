//! Heartbeat timers (RFC 37 PING/PONG), with time passed in, never read.
//!
//! Three deadlines, with libzmq's meaning: the next PING we send; how long
//! after a PING we wait for any traffic before declaring the peer dead; and
//! the TTL the peer asked for in its own PING, after which we give it up if
//! it has sent nothing since. Any input clears the last two.

use std::time::{Duration, Instant};

/// Heartbeat settings of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// How often to send PING once the handshake is done; `None` disables heartbeats.
    pub interval: Option<Duration>,
    /// How long to wait for any traffic after a PING before closing.
    pub timeout: Duration,
    /// TTL announced to the peer in our PINGs (rounded down to deciseconds, at most 6553.5 s);
    /// zero asks the peer for nothing.
    pub ttl: Duration,
}

impl Default for HeartbeatConfig {
    /// PING every 10 s, give up after 30 s of silence, no TTL asked of the peer.
    fn default() -> HeartbeatConfig {
        HeartbeatConfig {
            interval: Some(Duration::from_secs(10)),
            timeout: Duration::from_secs(30),
            ttl: Duration::ZERO,
        }
    }
}

/// What the connection must do after a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeartbeatAction {
    None,
    SendPing,
    Expired(Duration),
}

#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    config: HeartbeatConfig,
    next_ping: Option<Instant>,
    ping_deadline: Option<Instant>,
    ttl_deadline: Option<(Instant, Duration)>,
}

impl Heartbeat {
    pub(crate) fn new(config: HeartbeatConfig) -> Heartbeat {
        Heartbeat {
            config,
            next_ping: None,
            ping_deadline: None,
            ttl_deadline: None,
        }
    }

    /// Starts sending PINGs (once the handshake is done, with a 3.1 peer).
    pub(crate) fn start(&mut self, now: Instant) {
        self.next_ping = self
            .config
            .interval
            .filter(|i| !i.is_zero())
            .and_then(|i| now.checked_add(i));
    }

    pub(crate) fn config(&self) -> &HeartbeatConfig {
        &self.config
    }

    /// Bytes arrived: the peer is alive.
    pub(crate) fn on_input(&mut self) {
        self.ping_deadline = None;
        self.ttl_deadline = None;
    }

    /// The peer sent a PING announcing `ttl`.
    pub(crate) fn on_ping(&mut self, now: Instant, ttl: Duration) {
        if !ttl.is_zero() && self.ttl_deadline.is_none() {
            self.ttl_deadline = now.checked_add(ttl).map(|d| (d, ttl));
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.next_ping,
            self.ping_deadline,
            self.ttl_deadline.map(|(d, _)| d),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> HeartbeatAction {
        if self.ping_deadline.is_some_and(|d| d <= now) {
            return HeartbeatAction::Expired(self.config.timeout);
        }
        if let Some((deadline, ttl)) = self.ttl_deadline {
            if deadline <= now {
                return HeartbeatAction::Expired(ttl);
            }
        }
        match (self.next_ping, self.config.interval) {
            (Some(due), Some(interval)) if due <= now => {
                self.next_ping = now.checked_add(interval);
                if self.ping_deadline.is_none() && !self.config.timeout.is_zero() {
                    self.ping_deadline = now.checked_add(self.config.timeout);
                }
                HeartbeatAction::SendPing
            }
            _ => HeartbeatAction::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HeartbeatConfig {
        HeartbeatConfig {
            interval: Some(Duration::from_secs(1)),
            timeout: Duration::from_secs(3),
            ttl: Duration::ZERO,
        }
    }

    #[test]
    fn pings_then_expires_without_input() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(config());
        assert_eq!(hb.poll_timeout(), None);
        hb.start(t0);
        assert_eq!(hb.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            hb.on_timeout(t0 + Duration::from_secs(1)),
            HeartbeatAction::SendPing
        );
        assert_eq!(
            hb.on_timeout(t0 + Duration::from_secs(2)),
            HeartbeatAction::SendPing
        );
        assert_eq!(
            hb.on_timeout(t0 + Duration::from_secs(3)),
            HeartbeatAction::SendPing
        );
        assert_eq!(
            hb.on_timeout(t0 + Duration::from_secs(4)),
            HeartbeatAction::Expired(Duration::from_secs(3))
        );
    }

    #[test]
    fn input_keeps_the_peer_alive() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(config());
        hb.start(t0);
        for s in 1..10 {
            assert_eq!(
                hb.on_timeout(t0 + Duration::from_secs(s)),
                HeartbeatAction::SendPing
            );
            hb.on_input();
        }
    }

    #[test]
    fn peer_ttl_expires() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(HeartbeatConfig {
            interval: None,
            ..config()
        });
        hb.start(t0);
        hb.on_ping(t0, Duration::from_secs(5));
        assert_eq!(hb.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(
            hb.on_timeout(t0 + Duration::from_secs(5)),
            HeartbeatAction::Expired(Duration::from_secs(5))
        );
    }
}
