//! Opening a data directory: lock it, open the engine with the state's tables, restore the last
//! snapshot, the history and the recent dead letters, replay the WAL after the snapshot, and mark
//! citytel's own restart in every device's history.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use citytel_storage::engine::Engine;
use citytel_storage::wal::Wal;
use parking_lot::RwLock;

use super::{Database, DbError, OpenReport, StoreOptions};
use crate::journal::Entry;
use crate::state::fleet::snapshot::history_device;
use crate::state::snapshot::{KEY, LEGACY_MAINTENANCE_KEY};
use crate::state::{self, State, persist};
use crate::telemetry::metrics as m;

/// Counts and reports records that did not decode (never skipped silently).
fn undecodable(report: &mut OpenReport, kind: &'static str, count: u64, example: Option<String>) {
    if count == 0 {
        return;
    }
    metrics::counter!(m::RECORDS_UNDECODABLE_TOTAL, "record" => kind).increment(count);
    tracing::warn!(
        record = kind,
        count,
        example = example.unwrap_or_default(),
        "persisted records do not decode and were left out"
    );
    report.undecodable.push((kind, count));
}

/// Milliseconds each phase of opening took, for the log.
#[derive(Debug, Default)]
struct Phases {
    /// Time up to the end of the previous phase.
    done: u64,
    engine: u64,
    snapshot: u64,
    history: u64,
    replay: u64,
    restart: u64,
}

impl Phases {
    /// The milliseconds since the previous phase ended.
    fn lap(&mut self, started: Instant) -> u64 {
        let now = started.elapsed().as_millis() as u64;
        std::mem::replace(&mut self.done, now).abs_diff(now)
    }
}

/// How citytel's own restart is marked once the WAL is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkStart {
    /// In memory only (the command line's reads and offline changes).
    InMemory,
    /// As a WAL entry, committed, then applied (the service: its replay marks it in its place).
    Recorded,
}

pub(super) fn open(
    data_dir: &Path,
    options: &StoreOptions,
    mark: MarkStart,
) -> Result<(Arc<Database>, Wal, OpenReport), DbError> {
    let dir_err = |source| DbError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(dir_err)?;
    let lock = File::create(data_dir.join("LOCK")).map_err(dir_err)?;
    if lock.try_lock().is_err() {
        return Err(DbError::Locked(data_dir.to_path_buf()));
    }
    let started = Instant::now();
    let mut phases = Phases::default();
    let engine = Engine::open(
        &data_dir.join("tsdb"),
        options.engine.clone(),
        &state::TABLES,
    )?;
    phases.engine = phases.lap(started);
    let mut state = State::new(engine, &options.state);
    let mut report = OpenReport::default();
    let meta = state.table(state::META);
    let snapshot = match meta.get(KEY)? {
        Some(bytes) => Some(persist::decode_snapshot(&bytes)?),
        None => None,
    };
    let from_segment = snapshot.as_ref().map_or(0, |s| s.wal_segment);
    let legacy = snapshot.as_ref().is_none_or(|s| s.maintenance.is_none());
    if let Some(snapshot) = snapshot {
        state.restore(snapshot);
    }
    if legacy && let Some(bytes) = meta.get(LEGACY_MAINTENANCE_KEY)? {
        match persist::decode_legacy_maintenance(&bytes) {
            Ok(windows) => state.restore_legacy_maintenance(windows),
            Err(e) => undecodable(&mut report, "maintenance", 1, Some(e.to_string())),
        }
    }
    let errors = state.load_dead_letters(&state.table(state::DEAD_LETTERS))?;
    let first = errors.first().map(ToString::to_string);
    undecodable(&mut report, "dead_letter", errors.len() as u64, first);
    let errors = state.load_audit(&state.table(state::AUDIT))?;
    let first = errors.first().map(ToString::to_string);
    undecodable(&mut report, "audit", errors.len() as u64, first);
    phases.snapshot = phases.lap(started);

    let (mut bad, mut example) = (0u64, None);
    for item in state.table(state::HISTORY).iter() {
        let (key, value) = item?;
        let decoded = history_device(&key)
            .ok_or(persist::PersistError::Invalid("history key"))
            .and_then(|device| Ok((device, persist::decode_change(&value)?)));
        match decoded {
            Ok((device, change)) => state.restore_history(device, change),
            Err(e) => {
                bad += 1;
                example.get_or_insert_with(|| e.to_string());
            }
        }
    }
    undecodable(&mut report, "history", bad, example);
    phases.history = phases.lap(started);

    let (mut bad, mut example) = (0u64, None);
    let (mut wal, replay) = Wal::open(
        &data_dir.join("wal"),
        options.wal,
        from_segment,
        |_, record| match Entry::decode(record) {
            Ok(entry) => {
                state.apply(&entry, None);
            }
            Err(e) => {
                bad += 1;
                example.get_or_insert_with(|| e.to_string());
            }
        },
    )?;
    undecodable(&mut report, "wal_entry", bad, example);
    report.replay = replay;
    phases.replay = phases.lap(started);
    // What happened while citytel was down is unknown, not down.
    let now = options.clock.now_ms();
    match mark {
        MarkStart::InMemory => state.started(now),
        MarkStart::Recorded => {
            let entry = Entry::Started { at_ms: now };
            wal.append_with(|buf| entry.encode(buf))?;
            wal.commit()?;
            state.apply(&entry, None);
        }
    }
    phases.restart = phases.lap(started);
    tracing::info!(
        engine_ms = phases.engine,
        snapshot_ms = phases.snapshot,
        history_ms = phases.history,
        replay_ms = phases.replay,
        restart_ms = phases.restart,
        "data directory loaded"
    );
    let db = Arc::new(Database {
        state: RwLock::new(state),
        data_dir: data_dir.to_path_buf(),
        _lock: lock,
    });
    Ok((db, wal, report))
}
