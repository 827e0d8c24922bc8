//! Where "now" comes from. The service reads the system clock; tests that script time either run
//! the service on a paused tokio runtime with [`Clock::tokio`], or move a [`Clock::manual`] clock
//! themselves.
//!
//! Why a manual clock: a paused tokio runtime advances to its next timer whenever it is idle,
//! and it is idle while it waits for real socket I/O or for the WAL writer thread (which runs on
//! its own OS thread and waits on the runtime's timers). Time then jumps by amounts that depend
//! on scheduling, so receive times over real MQTT connections are not reproducible. A manual
//! clock only moves when the test moves it, while sockets, keep-alives and the writer's idle ticks
//! run on real time; receive times, silence timeouts and availability then follow the script
//! exactly.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// Tokio's clock (which tests can pause and advance), anchored at a wall-clock time.
    Tokio {
        /// Milliseconds since the epoch at `anchor`.
        anchor_ms: i64,
        /// The tokio instant that corresponds to `anchor`.
        anchor: tokio::time::Instant,
    },
    /// A clock that stands still until its owner sets it (see [`Clock::manual`]). The value is
    /// shared by every copy of the clock.
    Manual(&'static AtomicI64),
}

impl Clock {
    /// A clock that follows tokio's time from now on, starting at `anchor_ms`.
    pub fn tokio(anchor_ms: i64) -> Self {
        Clock::Tokio {
            anchor_ms,
            anchor: tokio::time::Instant::now(),
        }
    }

    /// A manual clock reading `start_ms` until [`set_ms`](Self::set_ms) moves it. Meant for
    /// tests: each one allocates (and never frees) one 8-byte cell, which keeps the clock `Copy`.
    pub fn manual(start_ms: i64) -> Self {
        Clock::Manual(Box::leak(Box::new(AtomicI64::new(start_ms))))
    }

    /// Sets a manual clock to `ms`; returns false (and changes nothing) for any other clock.
    pub fn set_ms(&self, ms: i64) -> bool {
        match self {
            Clock::Manual(now) => {
                now.store(ms, Ordering::SeqCst);
                true
            }
            Clock::System | Clock::Tokio { .. } => false,
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Tokio { anchor_ms, anchor } => {
                let elapsed = tokio::time::Instant::now().saturating_duration_since(*anchor);
                anchor_ms.saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            }
            Clock::Manual(now) => now.load(Ordering::SeqCst),
        }
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_set_and_copies_share_it() {
        let clock = Clock::manual(1_000);
        let copy = clock;
        assert_eq!(clock.now_ms(), 1_000);
        assert!(copy.set_ms(61_000));
        assert_eq!(clock.now_ms(), 61_000);
        assert_eq!(copy.now_ms(), 61_000);
    }

    #[test]
    fn only_a_manual_clock_can_be_set() {
        assert!(!Clock::System.set_ms(5));
        assert!(Clock::System.now_ms() > 5);
    }
}
