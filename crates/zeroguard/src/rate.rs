//! Per-peer rate limiting: a token bucket per connection.
//!
//! When a peer has used its allowance the engine stops decoding and reading
//! its connection until the bucket refills: TCP then pushes back on the
//! sender. Nothing is dropped; the peer is only slowed down. The bucket may
//! go into debt by one message, so a message larger than a second's worth
//! of bytes still gets through, followed by a longer pause.

use std::time::{Duration, Instant};

/// A per-peer allowance of messages and bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages per second a peer may send us.
    pub messages_per_sec: u64,
    /// Payload bytes per second a peer may send us.
    pub bytes_per_sec: u64,
}

/// How much of a second's allowance may arrive in one burst.
const BURST: f64 = 0.1;

#[derive(Debug)]
pub(crate) struct Bucket {
    limit: RateLimit,
    messages: f64,
    bytes: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Bucket {
        let mut b = Bucket {
            limit,
            messages: 0.0,
            bytes: 0.0,
            last: now,
        };
        b.messages = b.message_cap();
        b.bytes = b.byte_cap();
        b
    }

    fn message_cap(&self) -> f64 {
        (self.limit.messages_per_sec as f64 * BURST).max(1.0)
    }

    fn byte_cap(&self) -> f64 {
        (self.limit.bytes_per_sec as f64 * BURST).max(1.0)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.messages =
            (self.messages + elapsed * self.limit.messages_per_sec as f64).min(self.message_cap());
        self.bytes = (self.bytes + elapsed * self.limit.bytes_per_sec as f64).min(self.byte_cap());
    }

    /// Accounts for delivered messages and their payload bytes.
    pub(crate) fn consume(&mut self, messages: usize, bytes: usize) {
        self.messages -= messages as f64;
        self.bytes -= bytes as f64;
    }

    /// When the peer may be read again, if it is over its allowance now.
    pub(crate) fn paused_until(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        let wait_messages = if self.messages < 0.0 {
            -self.messages / self.limit.messages_per_sec.max(1) as f64
        } else {
            0.0
        };
        let wait_bytes = if self.bytes < 0.0 {
            -self.bytes / self.limit.bytes_per_sec.max(1) as f64
        } else {
            0.0
        };
        let wait = wait_messages.max(wait_bytes);
        (wait > 0.0).then(|| now + Duration::from_secs_f64(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_when_over_and_resumes_after_refill() {
        let t0 = Instant::now();
        let mut b = Bucket::new(
            RateLimit {
                messages_per_sec: 100,
                bytes_per_sec: 1_000_000,
            },
            t0,
        );
        // Burst: a tenth of a second's worth.
        for _ in 0..10 {
            assert_eq!(b.paused_until(t0), None);
            b.consume(1, 10);
        }
        b.consume(1, 10);
        let until = b.paused_until(t0).expect("over the allowance");
        assert_eq!(until, t0 + Duration::from_millis(10));
        assert_eq!(b.paused_until(t0 + Duration::from_millis(20)), None);
    }

    #[test]
    fn one_large_message_goes_into_debt() {
        let t0 = Instant::now();
        let mut b = Bucket::new(
            RateLimit {
                messages_per_sec: 1000,
                bytes_per_sec: 1000,
            },
            t0,
        );
        assert_eq!(b.paused_until(t0), None);
        b.consume(1, 1100);
        // 100 bytes of capacity, 1100 spent: one second of debt.
        assert_eq!(b.paused_until(t0), Some(t0 + Duration::from_secs(1)));
    }
}
