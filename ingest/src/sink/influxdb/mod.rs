//! The InfluxDB v2 sink: sends every stored reading to `/api/v2/write` of InfluxDB 2.x/3.x, or of
//! anything that accepts the same requests (VictoriaMetrics, InfluxDB 1.8+ with its v2 API).
//!
//! - [`config`]: the `[sink.influxdb]` section.
//! - [`client`]: one gzip-compressed request through the `influxdb2` crate, and the classification
//!   of its failures.
//! - `run`: the task: read the WAL from the cursor, batch, deliver (retry, hold or split), confirm,
//!   and watch the backlog.
//!
//! [`start`] creates the sink's WAL hold before the writer can checkpoint, so nothing the sink
//! has not had confirmed is deleted; a disabled sink's hold is dropped with [`release`].

pub mod client;
pub mod config;
mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{BacklogPolicy, InfluxDbConfig};

use super::cursor::{self, CursorError};
use super::stats::SinkStats;
use super::{BacklogGate, DeadLetterFn};
use citytel_storage::wal::{self, WalError, hold, tail};

/// The sink's name: its WAL hold, state directory and metric label.
pub const NAME: &str = "influxdb";

/// Why the sink cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Reading the WAL or setting the hold failed.
    #[error("influxdb sink: {0}")]
    Wal(#[from] WalError),
    /// The cursor cannot be read or written.
    #[error("influxdb sink: {0}")]
    Cursor(#[from] CursorError),
    /// The token file cannot be read.
    #[error("influxdb sink: cannot read the token file: {0}")]
    Token(std::io::Error),
    /// The HTTP client cannot be built.
    #[error("influxdb sink: {0}")]
    Client(String),
    /// A blocking step panicked.
    #[error("influxdb sink: a blocking step failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What the sink starts from.
pub struct Options {
    /// The `[sink.influxdb]` section (enabled).
    pub config: InfluxDbConfig,
    /// citytel's data directory (the WAL is in `wal/`, the sink's state in `sinks/influxdb/`).
    pub data_dir: PathBuf,
    /// Where points the server refuses go.
    pub dead_letters: DeadLetterFn,
}

/// A running sink.
pub struct Handle {
    gate: Arc<BacklogGate>,
    stats: Arc<SinkStats>,
    health: watch::Receiver<bool>,
    drain: CancellationToken,
    stop: CancellationToken,
    shutdown_timeout: Duration,
    task: JoinHandle<Result<(), SinkError>>,
}

impl Handle {
    /// The gate the writer waits at while the backlog is over its limit.
    pub fn gate(&self) -> Arc<BacklogGate> {
        self.gate.clone()
    }

    /// The sink's counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Whether the sink can deliver (false while held, e.g. on 401/403).
    pub fn health(&self) -> watch::Receiver<bool> {
        self.health.clone()
    }

    /// Lets the sink send what the WAL holds for up to its shutdown timeout, then stops it. What
    /// is left is sent after the next start.
    pub async fn shutdown(self) -> Result<(), SinkError> {
        self.gate.release();
        self.drain.cancel();
        let mut task = self.task;
        let result = match tokio::time::timeout(self.shutdown_timeout, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                tracing::warn!(
                    backlog_bytes = self
                        .stats
                        .backlog_bytes
                        .load(std::sync::atomic::Ordering::Relaxed),
                    "influxdb sink not caught up at shutdown; the rest is sent after the next start"
                );
                self.stop.cancel();
                task.await
            }
        };
        result?
    }

    /// Stops the sink at once (the cursor keeps what was confirmed).
    pub async fn stop(self) -> Result<(), SinkError> {
        self.gate.release();
        self.stop.cancel();
        self.task.await?
    }
}

/// Starts the sink: loads its cursor (or starts at the oldest WAL segment), sets its WAL hold,
/// builds the client and spawns the task. Must run before the writer starts checkpointing.
pub fn start(options: Options) -> Result<Handle, SinkError> {
    let Options {
        config,
        data_dir,
        dead_letters,
    } = options;
    let wal_dir = data_dir.join("wal");
    let state_dir = state_dir(&data_dir);
    std::fs::create_dir_all(&wal_dir).map_err(|source| {
        SinkError::Wal(WalError::Io {
            op: "create dir",
            path: wal_dir.clone(),
            source,
        })
    })?;
    let from = match cursor::load(&state_dir)? {
        Some(position) => within_wal(&wal_dir, position),
        None => tail::oldest(&wal_dir)?,
    };
    hold::set(&wal_dir, NAME, from.segment)?;
    let token = config.token().map_err(SinkError::Token)?;
    let client = client::Client::new(&config, &token).map_err(SinkError::Client)?;
    let stats = Arc::new(SinkStats::new(NAME));
    stats.set_healthy(true);
    stats.set_backpressure(false);
    let gate = Arc::new(BacklogGate::new());
    let (health_tx, health) = watch::channel(true);
    let drain = CancellationToken::new();
    let stop = CancellationToken::new();
    tracing::info!(
        url = %config.url,
        org = %config.org,
        bucket = %config.bucket,
        segment = from.segment,
        offset = from.offset,
        "influxdb sink starting"
    );
    let shutdown_timeout = config.shutdown_timeout;
    let sink = run::Sink::new(run::Parts {
        config,
        client,
        wal_dir,
        state_dir,
        from,
        stats: stats.clone(),
        gate: gate.clone(),
        dead_letters,
        health: health_tx,
    });
    let task = tokio::spawn(sink.run(drain.clone(), stop.clone()));
    Ok(Handle {
        gate,
        stats,
        health,
        drain,
        stop,
        shutdown_timeout,
        task,
    })
}

/// `position`, or the start of its segment if the segment is now shorter (a power loss took
/// records the sink had already sent; the rest of the segment is sent again, which the server
/// overwrites with the same values).
fn within_wal(wal_dir: &Path, position: wal::Position) -> wal::Position {
    let len = std::fs::metadata(wal::segment_path(wal_dir, position.segment)).map(|m| m.len());
    match len {
        Ok(len) if len < position.offset => {
            tracing::warn!(
                segment = position.segment,
                "influxdb sink cursor is past the end of its wal segment; resending the segment"
            );
            wal::Position {
                segment: position.segment,
                offset: wal::SEGMENT_HEADER_LEN,
            }
        }
        _ => position,
    }
}

/// The sink's state directory inside citytel's data directory.
pub fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sinks").join(NAME)
}

/// Drops the WAL hold of a disabled sink (its cursor stays); returns whether there was one.
pub fn release(data_dir: &Path) -> Result<bool, WalError> {
    wal::hold::release(&data_dir.join("wal"), NAME)
}

#[cfg(test)]
mod tests;
