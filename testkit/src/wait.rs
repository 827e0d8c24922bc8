//! Waiting for a condition: check it, and while it does not hold yet, pause a short interval and
//! check again, until a deadline; so a test waits exactly as long as the system needs and fails
//! with a message naming what it waited for when the system never gets there, instead of
//! sleeping a fixed time and hoping.
//!
//! ```no_run
//! # async fn stored() -> u64 { 0 }
//! # async fn example() -> Result<(), citytel_testkit::wait::TimedOut> {
//! use std::time::Duration;
//! use citytel_testkit::wait::Wait;
//!
//! let mut wait = Wait::new("citytel storing 100 readings", Duration::from_secs(30));
//! while stored().await < 100 {
//!     wait.retry().await?;
//! }
//! # Ok(()) }
//! ```
//!
//! The caller's loop does the checking, so it can keep what it saw for its failure message and
//! the future stays `Send`. [`Wait::retry_blocking`] does the same on a plain thread.

use std::time::{Duration, Instant};

/// The interval between checks unless [`Wait::every`] sets another.
pub const DEFAULT_EVERY: Duration = Duration::from_millis(10);

/// A condition did not hold within its time limit.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: not within {limit:?}")]
pub struct TimedOut {
    /// What was awaited.
    pub what: String,
    /// How long it was given.
    pub limit: Duration,
}

/// A wait for one condition: what it is (for the error), when it started, how long it may take,
/// and how often the condition is checked.
#[derive(Debug, Clone)]
pub struct Wait {
    what: String,
    limit: Duration,
    deadline: Instant,
    every: Duration,
}

impl Wait {
    /// Starts a wait of up to `limit` for `what` (e.g. "mosquitto listening on 40123"), checked
    /// every [`DEFAULT_EVERY`].
    pub fn new(what: impl Into<String>, limit: Duration) -> Wait {
        Wait {
            what: what.into(),
            limit,
            deadline: Instant::now() + limit,
            every: DEFAULT_EVERY,
        }
    }

    /// Checks every `every` instead.
    pub fn every(mut self, every: Duration) -> Wait {
        self.every = every;
        self
    }

    /// Whether the limit has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// The error of this wait, as [`retry`](Self::retry) returns it.
    pub fn timed_out(&self) -> TimedOut {
        TimedOut {
            what: self.what.clone(),
            limit: self.limit,
        }
    }

    /// Call when the condition does not hold yet: fails once the limit has passed, else pauses
    /// for the interval, after which the caller checks again.
    pub async fn retry(&mut self) -> Result<(), TimedOut> {
        if self.expired() {
            return Err(self.timed_out());
        }
        tokio::time::sleep(self.every).await;
        Ok(())
    }

    /// [`retry`](Self::retry) on the calling thread, for code that is not async (e.g. a drop).
    pub fn retry_blocking(&mut self) -> Result<(), TimedOut> {
        if self.expired() {
            return Err(self.timed_out());
        }
        std::thread::sleep(self.every);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_as_soon_as_the_condition_holds() -> Result<(), TimedOut> {
        let mut wait =
            Wait::new("three checks", Duration::from_secs(10)).every(Duration::from_millis(1));
        let mut checks = 0;
        loop {
            checks += 1;
            if checks == 3 {
                break;
            }
            wait.retry().await?;
        }
        assert!(!wait.expired());
        Ok(())
    }

    #[tokio::test]
    async fn fails_with_what_was_awaited_once_the_limit_has_passed() {
        let mut wait =
            Wait::new("the impossible", Duration::from_millis(20)).every(Duration::from_millis(1));
        let err = loop {
            if let Err(e) = wait.retry().await {
                break e.to_string();
            }
        };
        assert_eq!(err, "the impossible: not within 20ms");
    }

    #[test]
    fn a_blocking_wait_gives_up_after_its_limit() {
        let mut wait = Wait::new("nothing", Duration::from_millis(5));
        let started = Instant::now();
        while wait.retry_blocking().is_ok() {}
        assert!(started.elapsed() >= Duration::from_millis(5));
        assert!(wait.expired());
    }
}
