//! Delivery of alert notifications to Alertmanager instances and webhooks.
//!
//! Every receiver is a task of its own ([`receiver`]) with a durable cursor ([`cursor`]) into
//! the state's outbox: it reads the notifications after its cursor, sends them, and moves the
//! cursor only once the receiver confirmed them. What every receiver confirmed is reported to
//! the outbox ([`Progress`]), which forgets it at the next checkpoint; the rest is in the
//! checkpoint snapshot or rebuilt by the WAL replay with the same sequence numbers, so a restart
//! resends nothing confirmed and loses nothing unconfirmed.
//!
//! - [`cursor`]: the cursor file.
//! - [`payload`]: Alertmanager's v2 API body and webhook payload (version 4).
//! - [`client`]: one request and the meaning of its answer.
//! - [`receiver`]: the task.

pub mod client;
pub mod cursor;
pub mod payload;
pub mod receiver;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alerts::config::{AlertsConfig, Receiver};
use crate::alerts::outbox::Confirmed;
use crate::clock::Clock;
use crate::db::Database;

/// Why delivery cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A cursor cannot be read or written.
    #[error(transparent)]
    Cursor(#[from] cursor::CursorError),
    /// The HTTP client cannot be built.
    #[error("alert notifications: {0}")]
    Client(String),
    /// A blocking step panicked.
    #[error("alert notifications: a blocking step failed")]
    Panicked,
}

/// Each receiver's cursor, and the least of them reported to the outbox.
#[derive(Debug)]
pub struct Progress {
    cursors: Vec<AtomicU64>,
    confirmed: Arc<Confirmed>,
}

impl Progress {
    fn new(cursors: &[u64], confirmed: Arc<Confirmed>) -> Progress {
        let progress = Progress {
            cursors: cursors.iter().map(|c| AtomicU64::new(*c)).collect(),
            confirmed,
        };
        progress.report();
        progress
    }

    /// Receiver `index` confirmed everything before `next`.
    pub fn set(&self, index: usize, next: u64) {
        if let Some(c) = self.cursors.get(index) {
            c.store(next, Ordering::SeqCst);
        }
        self.report();
    }

    /// Receiver `index`'s cursor.
    pub fn get(&self, index: usize) -> Option<u64> {
        self.cursors.get(index).map(|c| c.load(Ordering::SeqCst))
    }

    fn report(&self) {
        let least = self
            .cursors
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX);
        self.confirmed.set(least);
    }
}

/// What delivery starts from.
pub struct Options {
    /// The receivers.
    pub receivers: Vec<Receiver>,
    /// Delivery settings.
    pub config: AlertsConfig,
    /// citytel's data directory (cursors under `alerts/`).
    pub data_dir: PathBuf,
    /// The state, whose outbox is read.
    pub db: Arc<Database>,
    /// The service clock (validity of firing alerts sent to Alertmanager).
    pub clock: Clock,
}

/// Delivery running.
pub struct Handle {
    names: Vec<String>,
    progress: Arc<Progress>,
    drain: CancellationToken,
    stop: CancellationToken,
    shutdown_timeout: Duration,
    tasks: Vec<JoinHandle<Result<(), NotifyError>>>,
}

impl Handle {
    /// The cursor of the receiver called `name`: every notification before it is confirmed.
    pub fn confirmed(&self, name: &str) -> Option<u64> {
        let index = self.names.iter().position(|n| n == name)?;
        self.progress.get(index)
    }

    /// Lets the receivers send what they have not for up to the shutdown timeout, then stops
    /// them; what is left goes out after the next start.
    pub async fn shutdown(self) -> Result<(), NotifyError> {
        self.drain.cancel();
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let mut result = Ok(());
        for mut task in self.tasks {
            let joined = match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(joined) => joined,
                Err(_) => {
                    tracing::warn!(
                        "alert notifications not all confirmed at shutdown; the rest go out after the next start"
                    );
                    self.stop.cancel();
                    task.await
                }
            };
            match joined {
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(NotifyError::Panicked),
                Ok(Ok(())) => {}
            }
        }
        result
    }
}

/// Starts a task per receiver from its cursor. Without receivers, nothing is kept for them: the
/// outbox forgets every notification, and `None` is returned.
pub fn start(options: Options) -> Result<Option<Handle>, NotifyError> {
    let Options {
        receivers,
        config,
        data_dir,
        db,
        clock,
    } = options;
    let (confirmed, first, next, changed) = {
        let state = db.read();
        let outbox = state.alerts().outbox();
        (
            outbox.confirmed(),
            outbox.first_seq(),
            outbox.next_seq(),
            outbox.subscribe(),
        )
    };
    if receivers.is_empty() {
        confirmed.set(u64::MAX);
        return Ok(None);
    }
    let client = client::Client::new(config.request_timeout).map_err(NotifyError::Client)?;
    let mut cursors = Vec::new();
    for r in &receivers {
        let dir = cursor::dir(&data_dir, &r.name);
        let at = match cursor::load(&dir)? {
            Some(c) if c > next => {
                tracing::warn!(receiver = %r.name, cursor = c, next, "alert receiver cursor is ahead of the outbox; starting at its end");
                next
            }
            Some(c) => c,
            None => first,
        };
        cursors.push(at);
    }
    let progress = Arc::new(Progress::new(&cursors, confirmed));
    let drain = CancellationToken::new();
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for (index, (receiver, cursor)) in receivers.iter().zip(cursors).enumerate() {
        tracing::info!(receiver = %receiver.name, url = %receiver.url, kind = ?receiver.kind, cursor, "alert receiver starting");
        let task = receiver::Task {
            receiver: receiver.clone(),
            config: config.clone(),
            client: client.clone(),
            db: db.clone(),
            clock,
            dir: cursor::dir(&data_dir, &receiver.name),
            cursor,
            changed: changed.clone(),
            progress: progress.clone(),
            index,
        };
        tasks.push(tokio::spawn(task.run(drain.clone(), stop.clone())));
    }
    Ok(Some(Handle {
        names: receivers.into_iter().map(|r| r.name).collect(),
        progress,
        drain,
        stop,
        shutdown_timeout: config.shutdown_timeout,
        tasks,
    }))
}
