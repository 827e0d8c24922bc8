//! A steady publishing rate (`--rate`): how many messages one connection may have published by a
//! given moment of the run.
//!
//! Each connection gets an equal share of the rate and may publish its `k`-th message (counted
//! from 0) once `offset + k / share` seconds of the run have passed, so it never gets ahead of
//! the schedule. The offsets take the connections in turn (connection `i` starts `i / rate`
//! seconds in), so the whole load is even from the start rather than one message per
//! connection at once. A connection that fell behind (its window was full) catches up as soon as
//! it can, so the average rate holds.

use std::time::Duration;

/// One connection's share of the rate, and what it has published so far.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pace {
    /// Messages per second for this connection.
    per_second: f64,
    /// When its first message is due, microseconds since the run started.
    offset_us: u64,
    /// Messages published so far.
    sent: u64,
}

impl Pace {
    /// Connection `index`'s share of `rate` messages per second split evenly over
    /// `connections`.
    pub(crate) fn share(rate: f64, connections: u32, index: u32) -> Self {
        Pace {
            per_second: rate / f64::from(connections.max(1)),
            offset_us: (f64::from(index) / rate * 1e6).round() as u64,
            sent: 0,
        }
    }

    /// How many more messages may go out at `now_us` (microseconds since the run started).
    pub(crate) fn allowed(&self, now_us: u64) -> u64 {
        let Some(since) = now_us.checked_sub(self.offset_us) else {
            return 0;
        };
        let due = (since as f64 / 1e6 * self.per_second).floor() as u64 + 1;
        due.saturating_sub(self.sent)
    }

    /// When the next message is due, in microseconds since the run started.
    pub(crate) fn next_due_us(&self) -> u64 {
        self.offset_us + (self.sent as f64 / self.per_second * 1e6).ceil() as u64
    }

    /// The time from `now_us` until the next message is due (zero if it is due already).
    pub(crate) fn wait_from(&self, now_us: u64) -> Duration {
        Duration::from_micros(self.next_due_us().saturating_sub(now_us))
    }

    /// Records `n` messages published.
    pub(crate) fn sent(&mut self, n: u64) {
        self.sent += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_shared_and_kept_from_the_start() {
        // 100 messages/s over 4 connections: 25/s each, one every 40 ms.
        let mut pace = Pace::share(100.0, 4, 0);
        assert_eq!(pace.allowed(0), 1);
        pace.sent(1);
        assert_eq!(pace.allowed(39_999), 0);
        assert_eq!(pace.next_due_us(), 40_000);
        assert_eq!(pace.wait_from(30_000), Duration::from_millis(10));
        assert_eq!(pace.allowed(40_000), 1);
        // After a second: 26 messages due in all (the first at 0 s, the 26th at 1 s).
        assert_eq!(pace.allowed(1_000_000), 25);
        pace.sent(25);
        assert_eq!(pace.allowed(1_000_000), 0);
        assert_eq!(pace.wait_from(2_000_000), Duration::ZERO);
    }

    #[test]
    fn a_connection_that_fell_behind_catches_up() {
        let pace = Pace::share(10.0, 1, 0);
        // Nothing sent for 3 s: 31 messages due at once.
        assert_eq!(pace.allowed(3_000_000), 31);
    }

    #[test]
    fn connections_take_turns() {
        // 100 messages/s over 4 connections: connection 2 starts 20 ms in, then every 40 ms.
        let mut pace = Pace::share(100.0, 4, 2);
        assert_eq!(pace.allowed(0), 0);
        assert_eq!(pace.next_due_us(), 20_000);
        assert_eq!(pace.wait_from(5_000), Duration::from_millis(15));
        assert_eq!(pace.allowed(20_000), 1);
        pace.sent(1);
        assert_eq!(pace.next_due_us(), 60_000);
        assert_eq!(pace.allowed(59_999), 0);
        // Over the first second, all four send 100 between them (25 each).
        let sent: u64 = (0..4)
            .map(|i| Pace::share(100.0, 4, i).allowed(999_999))
            .sum();
        assert_eq!(sent, 100);
    }
}
