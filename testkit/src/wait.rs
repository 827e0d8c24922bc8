//! Waiting for a condition: poll it at a short interval until it holds or a deadline passes, so a
//! test waits exactly as long as the system needs and fails with a message when it never gets
//! there, instead of sleeping a fixed time and hoping.
//!
//! A [`Wait`] names what is awaited and how long it may take; [`Wait::until`] polls an async
//! condition, [`Wait::try_until`] one that can fail for good (e.g. the process it waits for has
//! exited), and the `_blocking` variants do the same on a plain thread.

use std::time::{Duration, Instant};

/// The interval between polls unless [`Wait::every`] sets another.
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

/// How to wait for one condition: what it is (for the error), how long it may take, and how
/// often it is checked.
#[derive(Debug, Clone)]
pub struct Wait {
    what: String,
    limit: Duration,
    every: Duration,
}

impl Wait {
    /// Waits up to `limit` for `what` (e.g. "mosquitto listening on 40123"), checking every
    /// [`DEFAULT_EVERY`].
    pub fn new(what: impl Into<String>, limit: Duration) -> Wait {
        Wait {
            what: what.into(),
            limit,
            every: DEFAULT_EVERY,
        }
    }

    /// Checks every `every` instead.
    pub fn every(mut self, every: Duration) -> Wait {
        self.every = every;
        self
    }

    /// The error for a wait that ran out of time.
    pub fn timed_out(&self) -> TimedOut {
        TimedOut {
            what: self.what.clone(),
            limit: self.limit,
        }
    }

    /// Polls `check` until it returns `Some` (which is returned) or the limit has passed.
    /// `check` runs at least once, and once more after the limit has passed.
    pub async fn until<T>(&self, mut check: impl AsyncFnMut() -> Option<T>) -> Result<T, TimedOut> {
        self.try_until(async || Ok::<_, TimedOut>(check().await))
            .await
    }

    /// Like [`until`](Self::until) for a check that can fail for good: its error ends the wait
    /// at once.
    pub async fn try_until<T, E: From<TimedOut>>(
        &self,
        mut check: impl AsyncFnMut() -> Result<Option<T>, E>,
    ) -> Result<T, E> {
        let deadline = Instant::now() + self.limit;
        loop {
            let expired = Instant::now() >= deadline;
            if let Some(value) = check().await? {
                return Ok(value);
            }
            if expired {
                return Err(self.timed_out().into());
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// [`until`](Self::until) on the calling thread, for code that is not async (e.g. a drop).
    pub fn until_blocking<T>(&self, mut check: impl FnMut() -> Option<T>) -> Result<T, TimedOut> {
        self.try_until_blocking(|| Ok::<_, TimedOut>(check()))
    }

    /// [`try_until`](Self::try_until) on the calling thread.
    pub fn try_until_blocking<T, E: From<TimedOut>>(
        &self,
        mut check: impl FnMut() -> Result<Option<T>, E>,
    ) -> Result<T, E> {
        let deadline = Instant::now() + self.limit;
        loop {
            let expired = Instant::now() >= deadline;
            if let Some(value) = check()? {
                return Ok(value);
            }
            if expired {
                return Err(self.timed_out().into());
            }
            std::thread::sleep(self.every);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_as_soon_as_the_condition_holds() {
        let mut polls = 0;
        let got = Wait::new("three polls", Duration::from_secs(10))
            .every(Duration::from_millis(1))
            .until(async || {
                polls += 1;
                (polls == 3).then_some("done")
            })
            .await;
        assert_eq!(got.ok(), Some("done"));
        assert_eq!(polls, 3);
    }

    #[tokio::test]
    async fn fails_with_what_was_awaited_once_the_limit_has_passed() {
        let err = Wait::new("the impossible", Duration::from_millis(20))
            .every(Duration::from_millis(1))
            .until(async || None::<()>)
            .await
            .err();
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("the impossible: not within 20ms"), "{err}");
    }

    #[derive(Debug, PartialEq)]
    enum Failure {
        Gone,
        TimedOut,
    }

    impl From<TimedOut> for Failure {
        fn from(_: TimedOut) -> Self {
            Failure::TimedOut
        }
    }

    #[test]
    fn an_error_of_the_check_ends_the_wait_at_once() {
        let mut polls = 0;
        let got = Wait::new("a child", Duration::from_secs(10)).try_until_blocking(|| {
            polls += 1;
            if polls == 2 {
                return Err(Failure::Gone);
            }
            Ok(None::<()>)
        });
        assert_eq!(got, Err(Failure::Gone));
        assert_eq!(polls, 2);
        let got = Wait::new("a child", Duration::ZERO).try_until_blocking(|| Ok(None::<()>));
        assert_eq!(got, Err(Failure::TimedOut));
    }
}
