//! Checkpoints: moving the head into the engine's store and retiring the WAL that covered it.
//!
//! [`begin`] runs where the WAL is owned (the writer, or an import) right after a commit: it
//! rolls the WAL to a fresh segment, then, under the state lock, freezes the engine's head and
//! takes the snapshot naming that segment ([`State::begin_checkpoint`]). [`finish`] can run on
//! another thread without the lock: it writes the frozen head's segments, the new series, the
//! new dead letters and, last, the snapshot, each as an fsynced table; then it releases the
//! frozen head and deletes the WAL segments the snapshot covers. A crash anywhere in between
//! leaves the old snapshot with the WAL after it: the replay writes the same data again, which
//! deduplication and "the last write of a timestamp wins" make harmless.

use std::path::PathBuf;
use std::time::Instant;

use citytel_storage::engine::flush;
use citytel_storage::wal::{self, Wal};

use super::{Database, DbError};
use crate::state::snapshot::{KEY, LEGACY_MAINTENANCE_KEY};
use crate::state::{self, CheckpointParts};

/// A checkpoint that has been started and not yet written.
#[derive(Debug)]
pub struct Pending {
    parts: CheckpointParts,
    wal_dir: PathBuf,
    wal_segment: u64,
}

/// What a checkpoint wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Segments written.
    pub segments: u64,
    /// Points moved from the head to segments.
    pub points: u64,
    /// Bytes of segments and rollups written.
    pub bytes: u64,
    /// WAL segments deleted.
    pub wal_segments_removed: usize,
    /// Time the write took, in milliseconds.
    pub elapsed_ms: u64,
}

/// Starts a checkpoint; `None` if one is still being written.
pub fn begin(db: &Database, wal: &mut Wal) -> Result<Option<Pending>, DbError> {
    let wal_segment = wal.roll_now()?;
    let Some(parts) = db.write().begin_checkpoint(wal_segment) else {
        return Ok(None);
    };
    Ok(Some(Pending {
        parts,
        wal_dir: wal.dir().to_path_buf(),
        wal_segment,
    }))
}

/// Writes a started checkpoint and retires the WAL it covers.
pub fn finish(
    db: &Database,
    mut pending: Pending,
    threads: usize,
) -> Result<CheckpointStats, DbError> {
    finish_ref(db, &mut pending, threads)
}

/// Like [`finish`], leaving the checkpoint in place so a failed write can be retried.
pub fn finish_ref(
    db: &Database,
    pending: &mut Pending,
    threads: usize,
) -> Result<CheckpointStats, DbError> {
    let started = Instant::now();
    let (store, config, tables) = {
        let state = db.read();
        let tables = [
            state::DEAD_LETTERS,
            state::HISTORY,
            state::AUDIT,
            state::META,
        ]
        .map(|t| state.table(t));
        (state.store().clone(), state.engine_config().clone(), tables)
    };
    let [dead_letters, history, audit, meta] = tables;
    let parts = &mut pending.parts;
    let flushed = flush::flush(&store, &parts.frozen, &config, threads)?;
    let written = |records: &[(Vec<u8>, Vec<u8>)]| {
        records
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect()
    };
    store.write_table(&dead_letters, written(&parts.dead_letters))?;
    store.write_table(&history, written(&parts.history))?;
    store.write_table(&audit, written(&parts.audit))?;
    // The snapshot goes last: it is what makes the checkpoint count.
    let mut snapshot = vec![(KEY.to_vec(), Some(parts.snapshot.clone()))];
    if parts.drop_legacy_maintenance {
        snapshot.push((LEGACY_MAINTENANCE_KEY.to_vec(), None));
    }
    store.write_table(&meta, snapshot)?;
    db.write()
        .end_checkpoint(&mut parts.frozen, flushed.multi_segment_days);
    let removed = wal::remove_before(&pending.wal_dir, pending.wal_segment)?;
    Ok(CheckpointStats {
        segments: flushed.segments,
        points: flushed.points,
        bytes: flushed.bytes,
        wal_segments_removed: removed,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Starts and finishes a checkpoint on the calling thread.
pub fn run(
    db: &Database,
    wal: &mut Wal,
    threads: usize,
) -> Result<Option<CheckpointStats>, DbError> {
    match begin(db, wal)? {
        Some(pending) => finish(db, pending, threads).map(Some),
        None => Ok(None),
    }
}
