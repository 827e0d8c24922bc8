//! The housekeeping thread: writes checkpoints handed over by the writer, and in between merges
//! the segments of finished days and enforces retention (of series data and of dead letters),
//! by the service's clock. None of it blocks ingest.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use citytel_storage::engine::store::Table;
use citytel_storage::engine::{EngineError, compact, retention};

use super::Database;
use super::checkpoint::{self, Pending};
use crate::clock::Clock;
use crate::state::{self, persist};

/// How often compaction and retention run when no checkpoint arrives.
const TICK: Duration = Duration::from_secs(30);
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3_600);
/// Wait before retrying a checkpoint that failed.
const RETRY: Duration = Duration::from_secs(5);

/// Work for the housekeeping thread.
#[derive(Debug)]
pub enum Job {
    /// Write this checkpoint.
    Checkpoint(Pending),
}

/// How long the records that are not series data are kept (`None`: forever).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Dead letters (their counts per reason are kept forever).
    pub dead_letters: Option<Duration>,
    /// The audit log.
    pub audit: Option<Duration>,
}

/// Starts the housekeeping thread, applying `retention` by `clock`. It ends when every sender
/// is dropped, after finishing the checkpoint in hand.
pub fn spawn(
    db: Arc<Database>,
    threads: usize,
    retention: Retention,
    clock: Clock,
) -> std::io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("citytel-housekeeping".into())
        .spawn(move || run(&db, &rx, threads, retention, clock))?;
    Ok((tx, handle))
}

fn run(db: &Database, rx: &Receiver<Job>, threads: usize, retention: Retention, clock: Clock) {
    let mut last_retention: Option<Instant> = None;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Job::Checkpoint(pending)) => write_checkpoint(db, pending, threads),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        compact_finished_days(db, clock.now_ms());
        if let Some(keep) = retention.dead_letters {
            expire_dead_letters(db, clock.now_ms(), keep);
        }
        if let Some(keep) = retention.audit {
            expire_audit(db, clock.now_ms(), keep);
        }
        if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            enforce_retention(db, clock.now_ms());
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
fn compact_finished_days(db: &Database, now_ms: i64) {
    let (store, config, days) = {
        let mut state = db.write();
        let config = state.engine_config().clone();
        let delay = i64::try_from(config.compaction_delay.as_millis()).unwrap_or(i64::MAX);
        let days = state.take_finished_days(now_ms.saturating_sub(delay));
        (state.store().clone(), config, days)
    };
    if days.is_empty() {
        return;
    }
    match compact::compact(&store, &config, &days, 1, false) {
        Ok(stats) => tracing::debug!(?stats, "compacted"),
        Err(e) => {
            tracing::error!(error = %e, "compaction failed; will retry");
            db.write().return_days(days);
        }
    }
}

fn enforce_retention(db: &Database, now_ms: i64) {
    let (store, config, series) = {
        let state = db.read();
        (
            state.store().clone(),
            state.engine_config().clone(),
            state.series_count() as u32,
        )
    };
    match retention::enforce(&store, &config, now_ms, series) {
        Ok(stats) if stats != retention::RetentionStats::default() => {
            tracing::info!(?stats, "retention applied");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "retention failed; will retry"),
    }
}

/// Deletes the dead letters received more than `keep` before `now_ms`, from memory and from the
/// store. Returns how many persisted dead letters were deleted.
pub fn expire_dead_letters(db: &Database, now_ms: i64, keep: Duration) -> usize {
    let cutoff = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
    let (store, table) = {
        let mut state = db.write();
        state.expire_dead_letters(cutoff);
        (state.store().clone(), state.table(state::DEAD_LETTERS))
    };
    let result = expired_keys(&table, cutoff).and_then(|keys| {
        let n = keys.len();
        store.write_table(&table, keys.into_iter().map(|k| (k, None)).collect())?;
        Ok(n)
    });
    match result {
        Ok(0) => 0,
        Ok(n) => {
            tracing::info!(deleted = n, "dead-letter retention applied");
            n
        }
        Err(e) => {
            tracing::error!(error = %e, "dead-letter retention failed; will retry");
            0
        }
    }
}

/// Deletes the audit records older than `keep` before `now_ms`, from memory and from the store.
/// Returns how many persisted records were deleted.
pub fn expire_audit(db: &Database, now_ms: i64, keep: Duration) -> usize {
    let cutoff = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
    let (store, table) = {
        let mut state = db.write();
        state.expire_audit(cutoff);
        (state.store().clone(), state.table(state::AUDIT))
    };
    let mut keys = Vec::new();
    for item in table.iter() {
        let Ok((key, value)) = item else { break };
        // Keyed in order of submission; an undecodable record goes with the ones before it.
        if persist::decode_audit(&value).is_ok_and(|r| r.at_ms >= cutoff) {
            break;
        }
        keys.push(key.to_vec());
    }
    let n = keys.len();
    match store.write_table(&table, keys.into_iter().map(|k| (k, None)).collect()) {
        Ok(()) => n,
        Err(e) => {
            tracing::error!(error = %e, "audit retention failed; will retry");
            0
        }
    }
}

/// Keys of the persisted dead letters received before `cutoff_ms`, for deletion. Dead letters
/// are keyed in WAL order, which is receive order, so the scan stops at the first one to keep.
/// An undecodable record is expired with the ones before it.
fn expired_keys(table: &Table, cutoff_ms: i64) -> Result<Vec<Vec<u8>>, EngineError> {
    let mut keys = Vec::new();
    for item in table.iter() {
        let (key, value) = item?;
        if persist::decode_dead_letter(&value).is_ok_and(|l| l.received_at_ms >= cutoff_ms) {
            break;
        }
        keys.push(key.to_vec());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RejectReason;
    use crate::journal::Entry;

    #[test]
    fn dead_letters_past_their_retention_are_deleted_from_memory_and_store() {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::config::load_str(None, &[])
            .unwrap()
            .validate()
            .unwrap()
            .store_options(crate::clock::Clock::System);
        let (db, _wal, _) = Database::open(dir.path(), &options).unwrap();
        let table = {
            let mut state = db.write();
            for received_at_ms in [1_000, 2_000, 9_000] {
                state.apply(
                    &Entry::DeadLetter {
                        received_at_ms,
                        reason: RejectReason::Malformed,
                        topic: "t",
                        detail: "d",
                        payload: b"x",
                    },
                    None,
                );
            }
            // Persisted, as a checkpoint does.
            let parts = state.begin_checkpoint(0).unwrap();
            let table = state.table(state::DEAD_LETTERS);
            let records = parts.dead_letters.into_iter();
            let writes = records.map(|(k, v)| (k, Some(v))).collect();
            state.store().write_table(&table, writes).unwrap();
            table
        };

        // Kept for 5 s, at 10 s: the two from before 5 s go.
        assert_eq!(expire_dead_letters(&db, 10_000, Duration::from_secs(5)), 2);
        let state = db.read();
        let left: Vec<i64> = state
            .dead_letters()
            .recent()
            .map(|l| l.received_at_ms)
            .collect();
        assert_eq!(left, [9_000]);
        assert_eq!(state.dead_letters().counts()[&RejectReason::Malformed], 3);
        drop(state);
        assert_eq!(table.iter().count(), 1);
        assert_eq!(expire_dead_letters(&db, 10_000, Duration::from_secs(5)), 0);
    }
}
