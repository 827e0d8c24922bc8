//! The maintenance thread: writes checkpoints handed over by the writer, and in between merges
//! the segments of finished days and enforces retention. None of it blocks ingest.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Database;
use super::checkpoint::{self, Pending};
use super::engine::{compact, keys, retention};
use crate::pipeline::now_ms;

/// How often compaction and retention run when no checkpoint arrives.
const TICK: Duration = Duration::from_secs(30);
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3_600);
/// Wait before retrying a checkpoint that failed.
const RETRY: Duration = Duration::from_secs(5);

/// Work for the maintenance thread.
#[derive(Debug)]
pub enum Job {
    /// Write this checkpoint.
    Checkpoint(Pending),
}

/// Starts the maintenance thread. It ends when every sender is dropped, after finishing the
/// checkpoint in hand.
pub fn spawn(db: Arc<Database>, threads: usize) -> std::io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("citytel-maint".into())
        .spawn(move || run(&db, &rx, threads))?;
    Ok((tx, handle))
}

fn run(db: &Database, rx: &Receiver<Job>, threads: usize) {
    let mut last_retention: Option<Instant> = None;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Job::Checkpoint(pending)) => write_checkpoint(db, pending, threads),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        compact_finished_days(db);
        if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            enforce_retention(db);
            last_retention = Some(Instant::now());
        }
    }
}

fn write_checkpoint(db: &Database, mut pending: Pending, threads: usize) {
    loop {
        match checkpoint::finish_ref(db, &mut pending, threads) {
            Ok(stats) => {
                tracing::debug!(?stats, "checkpoint written");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "checkpoint failed; the WAL still holds the data, retrying");
                std::thread::sleep(RETRY);
            }
        }
    }
}

/// Merges the segments of days that ended more than the compaction delay ago.
fn compact_finished_days(db: &Database) {
    let (store, config, days) = {
        let mut state = db.write();
        let delay =
            i64::try_from(state.engine.config().compaction_delay.as_millis()).unwrap_or(i64::MAX);
        let horizon = now_ms().saturating_sub(delay);
        let (ready, later): (Vec<_>, Vec<_>) = state
            .dirty_days
            .iter()
            .partition(|(_, day)| day + keys::DAY_MS <= horizon);
        state.dirty_days = later;
        (
            state.engine.store().clone(),
            state.engine.config().clone(),
            ready,
        )
    };
    if days.is_empty() {
        return;
    }
    match compact::compact(&store, &config, &days, 1, false) {
        Ok(stats) => tracing::debug!(?stats, "compacted"),
        Err(e) => {
            tracing::error!(error = %e, "compaction failed; will retry");
            db.write().dirty_days.extend(days);
        }
    }
}

fn enforce_retention(db: &Database) {
    let (store, config, series) = {
        let state = db.read();
        (
            state.engine.store().clone(),
            state.engine.config().clone(),
            state.engine.catalog().len() as u32,
        )
    };
    match retention::enforce(&store, &config, now_ms(), series) {
        Ok(stats) if stats != retention::RetentionStats::default() => {
            tracing::info!(?stats, "retention applied");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "retention failed; will retry"),
    }
}
