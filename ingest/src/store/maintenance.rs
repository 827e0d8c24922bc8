//! The maintenance thread: writes checkpoints handed over by the writer, and in between merges
//! the segments of finished days and enforces retention (of series data and of dead letters).
//! None of it blocks ingest.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Database;
use super::checkpoint::{self, Pending};
use super::deadletter;
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

/// Starts the maintenance thread, keeping dead letters for `dead_letter_retention` (forever if
/// `None`). It ends when every sender is dropped, after finishing the checkpoint in hand.
pub fn spawn(
    db: Arc<Database>,
    threads: usize,
    dead_letter_retention: Option<Duration>,
) -> std::io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("citytel-maint".into())
        .spawn(move || run(&db, &rx, threads, dead_letter_retention))?;
    Ok((tx, handle))
}

fn run(db: &Database, rx: &Receiver<Job>, threads: usize, dead_letter_retention: Option<Duration>) {
    let mut last_retention: Option<Instant> = None;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Job::Checkpoint(pending)) => write_checkpoint(db, pending, threads),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        compact_finished_days(db);
        if let Some(keep) = dead_letter_retention {
            expire_dead_letters(db, now_ms(), keep);
        }
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

/// Deletes the dead letters received more than `keep` before `now_ms`, from memory and from the
/// store. Returns how many persisted dead letters were deleted.
pub fn expire_dead_letters(db: &Database, now_ms: i64, keep: Duration) -> usize {
    let cutoff = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
    let store = {
        let mut state = db.write();
        state.dead_letters.expire(cutoff);
        state.engine.store().clone()
    };
    let result = deadletter::expired_keys(&store.dead_letters, cutoff).and_then(|keys| {
        let n = keys.len();
        store.ingest_into(
            &store.dead_letters,
            keys.into_iter().map(|k| (k, None)).collect(),
        )?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RejectReason;
    use crate::store::entry::Entry;

    #[test]
    fn dead_letters_past_their_retention_are_deleted_from_memory_and_store() {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::config::load_str(None, &[])
            .unwrap()
            .validate()
            .unwrap()
            .store_options(crate::clock::Clock::System);
        let (db, _wal, _) = Database::open(dir.path(), &options).unwrap();
        let store = {
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
            let records = state.dead_letters.take_unflushed().unwrap();
            let store = state.engine.store().clone();
            store
                .ingest_into(
                    &store.dead_letters,
                    records.into_iter().map(|(k, v)| (k, Some(v))).collect(),
                )
                .unwrap();
            store
        };

        // Kept for 5 s, at 10 s: the two from before 5 s go.
        assert_eq!(expire_dead_letters(&db, 10_000, Duration::from_secs(5)), 2);
        let state = db.read();
        let left: Vec<i64> = state
            .dead_letters
            .recent()
            .map(|l| l.received_at_ms)
            .collect();
        assert_eq!(left, [9_000]);
        assert_eq!(state.dead_letters.counts()[&RejectReason::Malformed], 3);
        drop(state);
        assert_eq!(store.dead_letters.iter().count(), 1);
        assert_eq!(expire_dead_letters(&db, 10_000, Duration::from_secs(5)), 0);
    }
}
