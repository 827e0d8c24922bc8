//! The phases of a load run, shared by every connection, and the live counters they feed.
//!
//! Time is kept in microseconds since the run started (all connections connected). Messages
//! published before the warm-up ends are not counted. With a duration, the measured window is
//! warm-up end to warm-up end + duration, and publishing stops at its end; with a message count
//! each connection publishes its share of counted messages after the warm-up and the window
//! lasts until the last of them is acknowledged. Either way the connections then drain.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// How long a run with only a message count may take at most, before the drain.
const NO_END: Duration = Duration::from_secs(365 * 24 * 3600);

/// When the phases of a run begin and end.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    start: Instant,
    start_unix_us: u64,
    warmup_end_us: u64,
    /// End of publishing, with `--duration`; `None` with `--messages`.
    end_us: Option<u64>,
    /// How long connections wait for their last PUBACKs.
    pub(crate) drain_timeout: Duration,
}

impl Schedule {
    /// A run starting now: `warmup`, then `duration` (or, with `None`, until each connection
    /// has published its quota).
    pub(crate) fn starting_now(
        warmup: Duration,
        duration: Option<Duration>,
        drain_timeout: Duration,
    ) -> Self {
        let start_unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Self::new(
            Instant::now(),
            start_unix_us,
            warmup,
            duration,
            drain_timeout,
        )
    }

    /// A run that started at `start` (wall clock `start_unix_us`).
    pub(crate) fn new(
        start: Instant,
        start_unix_us: u64,
        warmup: Duration,
        duration: Option<Duration>,
        drain_timeout: Duration,
    ) -> Self {
        let warmup_end_us = warmup.as_micros() as u64;
        Schedule {
            start,
            start_unix_us,
            warmup_end_us,
            end_us: duration.map(|d| warmup_end_us + d.as_micros() as u64),
            drain_timeout,
        }
    }

    /// Microseconds since the start.
    pub(crate) fn elapsed_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// The wall clock, in milliseconds since 1970, at `us` after the start.
    pub(crate) fn unix_ms_at(&self, us: u64) -> i64 {
        ((self.start_unix_us + us) / 1000) as i64
    }

    /// The wall clock, in microseconds since 1970, at `us` after the start.
    pub(crate) fn unix_us_at(&self, us: u64) -> u64 {
        self.start_unix_us + us
    }

    /// When the warm-up ends, in microseconds since the start.
    pub(crate) fn warmup_end_us(&self) -> u64 {
        self.warmup_end_us
    }

    /// When publishing ends, in microseconds since the start (with `--duration`).
    pub(crate) fn end_us(&self) -> Option<u64> {
        self.end_us
    }

    /// When publishing ends, for timers (far away with `--messages`).
    pub(crate) fn end_instant(&self) -> Instant {
        match self.end_us {
            Some(us) => self.start + Duration::from_micros(us),
            None => self.start + NO_END,
        }
    }

    /// Whether a message published at `us` counts.
    pub(crate) fn is_counted(&self, us: u64) -> bool {
        us >= self.warmup_end_us
    }

    /// Whether a PUBACK arriving at `us` falls inside the measured window.
    pub(crate) fn is_in_window(&self, us: u64) -> bool {
        us >= self.warmup_end_us && self.end_us.is_none_or(|end| us < end)
    }

    /// Whether publishing is over at `us` (with `--duration`).
    pub(crate) fn is_over(&self, us: u64) -> bool {
        self.end_us.is_some_and(|end| us >= end)
    }
}

/// Totals over every connection, updated as messages go out and PUBACKs come in.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// PUBLISHes queued.
    pub(crate) published: AtomicU64,
    /// PUBACKs matched.
    pub(crate) acked: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_run_counts_from_the_warm_up_to_the_end() {
        let s = Schedule::new(
            Instant::now(),
            1_000_000,
            Duration::from_secs(2),
            Some(Duration::from_secs(10)),
            Duration::from_secs(5),
        );
        assert!(!s.is_counted(1_999_999));
        assert!(s.is_counted(2_000_000));
        assert!(s.is_in_window(11_999_999));
        assert!(!s.is_in_window(12_000_000));
        assert!(!s.is_over(11_999_999));
        assert!(s.is_over(12_000_000));
        assert_eq!(s.unix_ms_at(2_500), 1_002);
        assert_eq!(s.end_us(), Some(12_000_000));
    }

    #[test]
    fn a_counted_run_never_ends_by_time() {
        let s = Schedule::new(
            Instant::now(),
            0,
            Duration::ZERO,
            None,
            Duration::from_secs(5),
        );
        assert!(s.is_counted(0));
        assert!(s.is_in_window(u64::MAX / 2));
        assert!(!s.is_over(u64::MAX / 2));
    }
}
