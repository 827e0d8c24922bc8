//! The read pool: reads that can be large (many devices, long ranges, availability over many
//! windows) run on tokio's blocking threads, never on the async workers that move PUBACKs and
//! health checks, and never under the state lock (they copy what they need first).
//!
//! At most `limit` run at once; up to four times as many wait for a turn, and a request beyond
//! that is refused at once with RESOURCE_EXHAUSTED. Each request has a deadline (the configured
//! `grpc.request_timeout`, or the client's shorter `grpc-timeout`): a request still waiting or
//! computing when it passes is answered DEADLINE_EXCEEDED, and the computation stops at its next
//! check of the [`Deadline`].
//!
//! Debug option for tests: when the environment variable [`PAUSE_FILE_ENV`] names a file, a heavy
//! read stops at its first deadline check, after it has copied what it needs, while that file
//! exists (and creates `{file}.paused` while it waits), so a test can show that ingest goes on
//! meanwhile. Never set it in production.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::Status;

use super::error::ApiError;

/// Environment variable naming a file whose existence pauses heavy reads (a debug option for
/// tests; see the module documentation).
pub(crate) const PAUSE_FILE_ENV: &str = "CITYTEL_DEBUG_READ_PAUSE_FILE";

/// When a request must be answered.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    at: Instant,
    pause: Option<Arc<PathBuf>>,
}

impl Deadline {
    /// A deadline at `at`, without the debug pause.
    #[cfg(test)]
    fn at(at: Instant) -> Self {
        Deadline { at, pause: None }
    }

    /// When it passes.
    pub(crate) fn instant(&self) -> Instant {
        self.at
    }

    /// Whether it has passed.
    pub(crate) fn expired(&self) -> bool {
        if let Some(pause) = &self.pause {
            wait_while_paused(pause);
        }
        Instant::now() >= self.at
    }

    /// An error once it has passed, for computations to stop early.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        if self.expired() {
            return Err(ApiError::DeadlineExceeded);
        }
        Ok(())
    }
}

/// Blocks while the debug pause file exists (see [`PAUSE_FILE_ENV`]).
fn wait_while_paused(pause: &std::path::Path) {
    if !pause.exists() {
        return;
    }
    let marker = PathBuf::from(format!("{}.paused", pause.display()));
    let _ = std::fs::write(&marker, b"");
    tracing::warn!(path = %pause.display(), "heavy read paused by the debug pause file");
    while pause.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(&marker);
}

/// The bounded pool heavy reads run on.
#[derive(Debug, Clone)]
pub(crate) struct Reads {
    running: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    limit: usize,
    timeout: Duration,
    pause: Option<Arc<PathBuf>>,
}

impl Reads {
    /// A pool running at most `limit` reads at once (0: one per CPU), each within `timeout`.
    pub(crate) fn new(limit: usize, timeout: Duration) -> Self {
        let limit = match limit {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Reads {
            running: Arc::new(Semaphore::new(limit)),
            waiting: Arc::new(Semaphore::new(limit * 5)),
            limit,
            timeout,
            pause: std::env::var_os(PAUSE_FILE_ENV).map(|p| Arc::new(PathBuf::from(p))),
        }
    }

    /// The deadline of a request that arrived now, with the client's `grpc-timeout` if any.
    pub(crate) fn deadline<T>(&self, request: &tonic::Request<T>) -> Deadline {
        let client = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let timeout = client.map_or(self.timeout, |c| c.min(self.timeout));
        Deadline {
            at: Instant::now() + timeout,
            pause: self.pause.clone(),
        }
    }

    /// Runs `work` on a blocking thread once a turn is free, by `deadline`.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        deadline: Deadline,
        work: impl FnOnce(&Deadline) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, Status> {
        let Ok(_queued) = self.waiting.clone().try_acquire_owned() else {
            metrics::counter!(crate::telemetry::metrics::GRPC_READS_REFUSED_TOTAL).increment(1);
            return Err(Status::resource_exhausted(format!(
                "too many heavy reads in progress ({} running, more waiting); retry later",
                self.limit
            )));
        };
        let at = deadline.at;
        let turn = tokio::time::timeout_at(at, self.running.clone().acquire_owned());
        let permit = match turn.await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Status::unavailable("citytel is shutting down")),
            Err(_) => return Err(ApiError::DeadlineExceeded.into()),
        };
        let task = tokio::task::spawn_blocking(move || {
            // The turn is held until the work ends, even if the caller stopped waiting.
            let _permit = permit;
            work(&deadline)
        });
        match tokio::time::timeout_at(at, task).await {
            Ok(Ok(result)) => result.map_err(Status::from),
            Ok(Err(_)) => Err(Status::internal("the read failed")),
            Err(_) => Err(ApiError::DeadlineExceeded.into()),
        }
    }
}

/// A `grpc-timeout` header value: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_as_the_protocol_defines_them() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
    }

    #[tokio::test]
    async fn a_read_past_its_deadline_is_deadline_exceeded() {
        let reads = Reads::new(1, Duration::from_millis(50));
        let deadline = Deadline::at(Instant::now() + Duration::from_millis(50));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let slow = reads.run(deadline, move |_| {
            let _ = rx.recv();
            Ok(())
        });
        let status = slow.await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        drop(tx);
    }

    #[tokio::test]
    async fn reads_beyond_the_queue_are_refused_with_resource_exhausted() {
        let reads = Reads::new(1, Duration::from_secs(30));
        let (release, gate) = tokio::sync::watch::channel(false);
        let mut running = Vec::new();
        // Five are let in (one runs, four wait): the sixth is refused at once.
        for _ in 0..5 {
            let reads = reads.clone();
            let mut gate = gate.clone();
            let deadline = Deadline::at(Instant::now() + Duration::from_secs(30));
            running.push(tokio::spawn(async move {
                reads
                    .run(deadline, move |_| {
                        while !*gate.borrow_and_update() {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Ok(1)
                    })
                    .await
            }));
        }
        while reads.waiting.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let deadline = Deadline::at(Instant::now() + Duration::from_secs(30));
        let refused = reads.run(deadline, |_| Ok(0)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        release.send(true).unwrap();
        for r in running {
            assert_eq!(r.await.unwrap().unwrap(), 1);
        }
    }

    #[test]
    fn a_computation_sees_its_deadline() {
        let past = Deadline::at(Instant::now() - Duration::from_millis(1));
        assert!(past.expired());
        assert!(matches!(past.check(), Err(ApiError::DeadlineExceeded)));
    }
}
