//! The housekeeping thread: writes checkpoints handed over by the writer, and in between merges
//! the segments of finished days and enforces retention (of series data, of dead letters and of
//! the device state history), by the service's clock. None of it blocks ingest.

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

/// How long the state's own records are kept (`None`: forever).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Dead letters, by receive time.
    pub dead_letters: Option<Duration>,
    /// Device state history (transitions and reboots), by when they happened.
    pub history: Option<Duration>,
    /// The audit log.
    pub audit: Option<Duration>,
}

/// Starts the housekeeping thread, keeping the state's records for `retention` by `clock`. It
/// ends when every sender is dropped, after finishing the checkpoint in hand.
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
        expire_dead_letters(db, clock.now_ms(), retention.dead_letters);
        if let Some(keep) = retention.audit {
            expire_audit(db, clock.now_ms(), keep);
        }
        if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            enforce_retention(db, clock.now_ms());
            if let Some(keep) = retention.history {
                prune_history(db, clock.now_ms(), keep);
            }
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

/// Deletes the device state history from before `keep` ago, from memory and from the `history`
/// table: every reboot and transition before the cutoff except each device's last transition
/// before it (see [`crate::state::fleet::Fleet::prune_history`]). Returns how many persisted
/// records were deleted.
pub fn prune_history(db: &Database, now_ms: i64, keep: Duration) -> usize {
    let cutoff = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
    let (store, table) = {
        let mut state = db.write();
        state.prune_history(cutoff);
        (state.store().clone(), state.table(state::HISTORY))
    };
    let result = pruned_history_keys(&table, cutoff).and_then(|keys| {
        let n = keys.len();
        store.write_table(&table, keys.into_iter().map(|k| (k, None)).collect())?;
        Ok(n)
    });
    match result {
        Ok(0) => 0,
        Ok(n) => {
            tracing::info!(deleted = n, "state history retention applied");
            n
        }
        Err(e) => {
            tracing::error!(error = %e, "state history retention failed; will retry");
            0
        }
    }
}

/// Keys of the persisted history records to delete for `cutoff_ms`. Keys sort by device, then
/// in the order the changes happened, so per device the last transition before the cutoff is
/// the last one seen before a later one (or another device) comes. Records that do not decode
/// are left for start-up to report.
fn pruned_history_keys(table: &Table, cutoff_ms: i64) -> Result<Vec<Vec<u8>>, EngineError> {
    use crate::state::fleet::snapshot::history_device;
    use citytel_availability::Change;
    let mut keys = Vec::new();
    let mut device: Option<String> = None;
    // The device's last transition before the cutoff seen so far: kept unless a later one is.
    let mut in_force: Option<Vec<u8>> = None;
    for item in table.iter() {
        let (key, value) = item?;
        let Some(owner) = history_device(&key) else {
            continue;
        };
        if device.as_deref() != Some(owner) {
            device = Some(owner.to_string());
            in_force = None;
        }
        match persist::decode_change(&value) {
            Ok(Change::Reboot(r)) if r.at_ms < cutoff_ms => keys.push(key.to_vec()),
            Ok(Change::Transition(t)) if t.at_ms < cutoff_ms => {
                keys.extend(in_force.replace(key.to_vec()));
            }
            _ => {}
        }
    }
    Ok(keys)
}

/// Deletes the dead letters received more than `keep` before `now_ms` (none by age when `keep`
/// is `None`), from memory and from the store, and the persisted ones the store evicted to stay
/// within its budget. Returns how many persisted dead letters were deleted.
pub fn expire_dead_letters(db: &Database, now_ms: i64, keep: Option<Duration>) -> usize {
    let cutoff = match keep {
        Some(keep) => now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX)),
        None => i64::MIN,
    };
    let (store, table, oldest_kept) = {
        let mut state = db.write();
        let oldest_kept = state.expire_dead_letters(cutoff);
        (
            state.store().clone(),
            state.table(state::DEAD_LETTERS),
            oldest_kept,
        )
    };
    let result = expired_keys(&table, cutoff, oldest_kept).and_then(|keys| {
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

/// Keys of the persisted dead letters received before `cutoff_ms` or numbered before
/// `oldest_kept` (evicted from the store), for deletion. Dead letters are keyed by sequence
/// number in WAL order, which is receive order, so the scan stops at the first one to keep. An
/// undecodable record is expired with the ones before it.
fn expired_keys(
    table: &Table,
    cutoff_ms: i64,
    oldest_kept: u64,
) -> Result<Vec<Vec<u8>>, EngineError> {
    let mut keys = Vec::new();
    for item in table.iter() {
        let (key, value) = item?;
        let evicted =
            <[u8; 8]>::try_from(&key[..]).is_ok_and(|k| u64::from_be_bytes(k) < oldest_kept);
        if !evicted
            && persist::decode_dead_letter(&value).is_ok_and(|l| l.received_at_ms >= cutoff_ms)
        {
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

    fn open(dir: &std::path::Path, overrides: &[&str]) -> Arc<Database> {
        let overrides: Vec<String> = overrides.iter().map(|s| (*s).to_string()).collect();
        let options = crate::config::load_str(None, &overrides)
            .unwrap()
            .validate()
            .unwrap()
            .store_options(crate::clock::Clock::System);
        Database::open(dir, &options).unwrap().0
    }

    /// Writes what a checkpoint would persist of the history and the dead letters.
    fn persist(db: &Database) {
        let mut state = db.write();
        let parts = state.begin_checkpoint(0).unwrap();
        for (name, records) in [
            (state::DEAD_LETTERS, parts.dead_letters),
            (state::HISTORY, parts.history),
        ] {
            let table = state.table(name);
            let writes = records.into_iter().map(|(k, v)| (k, Some(v))).collect();
            state.store().write_table(&table, writes).unwrap();
        }
        let mut frozen = parts.frozen;
        state.end_checkpoint(&mut frozen, Vec::new());
    }

    #[test]
    fn history_before_its_retention_is_pruned_but_the_state_in_force_is_kept() {
        use crate::journal::Connection;
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), &[]);
        let topic = |d: &str| format!("citytel/v1/s/cabinet/{d}/status");
        {
            let mut state = db.write();
            // cab-1 opens and closes its connection at 1 s and 2 s, then opens again at 9 s;
            // cab-2 opens at 1 s only.
            for (at, device, change) in [
                (1_000, "cab-1", Connection::Opened),
                (1_000, "cab-2", Connection::Opened),
                (2_000, "cab-1", Connection::Lost),
                (9_000, "cab-1", Connection::Opened),
            ] {
                let topic = topic(device);
                let entry = Entry::Connection {
                    received_at_ms: at,
                    change,
                    topic: &topic,
                };
                state.apply(&entry, None);
            }
        }
        persist(&db);
        let states = |db: &Database, device: &str| -> Vec<(i64, String)> {
            let state = db.read();
            state
                .fleet()
                .transitions(device)
                .iter()
                .map(|t| (t.at_ms, t.to.as_str().to_string()))
                .collect()
        };
        let before_1 = states(&db, "cab-1");
        assert!(before_1.len() >= 3, "{before_1:?}");
        let before_2 = states(&db, "cab-2");

        // Keep 5 s at 10 s: cab-1 keeps its last change before 5 s and the one at 9 s; cab-2
        // keeps its only one, the state it is still in.
        let deleted = prune_history(&db, 10_000, Duration::from_secs(5));
        assert_eq!(deleted, before_1.len() - 2);
        let after_1 = states(&db, "cab-1");
        assert_eq!(after_1, before_1[before_1.len() - 2..]);
        assert_eq!(states(&db, "cab-2"), before_2);
        assert_eq!(prune_history(&db, 10_000, Duration::from_secs(5)), 0);

        // The table holds exactly what memory holds: a restart rebuilds the same history.
        drop(db);
        let db = open(dir.path(), &[]);
        let reopened = states(&db, "cab-1");
        assert_eq!(&reopened[..2], &after_1[..]);
    }

    #[test]
    fn dead_letters_evicted_for_the_byte_budget_are_deleted_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(
            dir.path(),
            &[
                "storage.dead_letter_payload_bytes=1000",
                "storage.dead_letter_bytes=5200",
            ],
        );
        let payload = vec![1u8; 1 << 20];
        let detail = "x".repeat(100_000);
        let push = |from: i64, to: i64| {
            let mut state = db.write();
            for received_at_ms in from..to {
                state.apply(
                    &Entry::DeadLetter {
                        received_at_ms,
                        reason: RejectReason::Oversize,
                        topic: "t",
                        detail: &detail,
                        payload: &payload,
                    },
                    None,
                );
            }
        };
        push(0, 3);
        persist(&db);
        push(3, 20);
        persist(&db);
        let kept: Vec<i64> = db
            .read()
            .dead_letters()
            .recent()
            .map(|l| l.received_at_ms)
            .collect();
        // Each costs its capped payload (1000), capped detail (1024), topic and overhead.
        assert_eq!(kept, [18, 19], "two of about 2.1 KB fit in 5200 bytes");
        assert!(
            db.read()
                .dead_letters()
                .recent()
                .all(|l| l.payload.len() == 1000)
        );
        expire_dead_letters(&db, 100, None);
        let table = db.read().table(state::DEAD_LETTERS);
        assert_eq!(table.iter().count(), 2, "the evicted ones left the store");

        drop((table, db));
        let db = open(dir.path(), &[]);
        let reloaded: Vec<i64> = db
            .read()
            .dead_letters()
            .recent()
            .map(|l| l.received_at_ms)
            .collect();
        assert_eq!(reloaded, kept);
    }

    #[test]
    fn dead_letters_past_their_retention_are_deleted_from_memory_and_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), &[]);
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
        let keep = Some(Duration::from_secs(5));
        assert_eq!(expire_dead_letters(&db, 10_000, keep), 2);
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
        assert_eq!(expire_dead_letters(&db, 10_000, keep), 0);
    }
}
