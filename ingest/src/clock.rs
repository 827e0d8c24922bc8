//! Where "now" comes from. The service reads the system clock; tests that script time run the
//! service on a paused tokio runtime and use [`Clock::tokio`], so receive times, timeouts and
//! availability follow the paused clock exactly.

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
        /// The tokio instant that corresponds to `anchor_ms`.
        anchor: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that follows tokio's time from now on, starting at `anchor_ms`.
    pub fn tokio(anchor_ms: i64) -> Self {
        Clock::Tokio {
            anchor_ms,
            anchor: tokio::time::Instant::now(),
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
