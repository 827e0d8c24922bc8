//! Checkpoints: moving the head into the engine's store and retiring the WAL that covered it.
//!
//! [`begin`] runs where the WAL is owned (the writer, or an import) right after a commit: it
//! rolls the WAL to a fresh segment, then, under the state lock, freezes the engine's head and
//! takes the [`Snapshot`](super::snapshot::Snapshot) naming that segment. [`finish`] can run on
//! another thread without the lock: it writes the frozen head's segments, the new series, the
//! new dead letters and, last, the snapshot, each as an fsynced table; then it releases the
//! frozen head and deletes the WAL segments the snapshot covers. A crash anywhere in between
//! leaves the old snapshot with the WAL after it: the replay writes the same data again, which
//! deduplication and "the last write of a timestamp wins" make harmless.

use std::path::PathBuf;
use std::time::Instant;

use super::engine::{EngineError, FrozenHead, flush};
use super::wal::{self, Wal};
use super::{Database, StoreError, snapshot};
use crate::tracker::persist;

/// A checkpoint that has been started and not yet written.
#[derive(Debug)]
pub struct Pending {
    frozen: FrozenHead,
    snapshot: Vec<u8>,
    dead_letters: Vec<super::deadletter::Record>,
    history: Vec<super::deadletter::Record>,
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
pub fn begin(db: &Database, wal: &mut Wal) -> Result<Option<Pending>, StoreError> {
    let wal_segment = wal.roll_now()?;
    let mut state = db.write();
    let Some(frozen) = state.engine.freeze() else {
        return Ok(None);
    };
    let mut history = Vec::new();
    for change in state.tracker.take_unflushed() {
        let key = persist::history_key(&change.device, state.history_seq);
        history.push((key, persist::encode_change(&change.change)));
        state.history_seq += 1;
    }
    let snapshot = state.snapshot(wal_segment).encode()?;
    let dead_letters = state.dead_letters.take_unflushed()?;
    Ok(Some(Pending {
        frozen,
        snapshot,
        dead_letters,
        history,
        wal_dir: wal.dir().to_path_buf(),
        wal_segment,
    }))
}

/// Writes a started checkpoint and retires the WAL it covers.
pub fn finish(
    db: &Database,
    mut pending: Pending,
    threads: usize,
) -> Result<CheckpointStats, StoreError> {
    finish_ref(db, &mut pending, threads)
}

/// Like [`finish`], leaving the checkpoint in place so a failed write can be retried.
pub fn finish_ref(
    db: &Database,
    pending: &mut Pending,
    threads: usize,
) -> Result<CheckpointStats, StoreError> {
    let started = Instant::now();
    let (store, config) = {
        let state = db.read();
        (state.engine.store().clone(), state.engine.config().clone())
    };
    let flushed = flush::flush(&store, &pending.frozen, &config, threads)?;
    let letters = pending
        .dead_letters
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    store.ingest_into(&store.dead_letters, letters)?;
    let history = pending
        .history
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    store.ingest_into(&store.history, history)?;
    // The snapshot goes last: it is what makes the checkpoint count.
    store.ingest_into(
        &store.meta,
        vec![(snapshot::KEY.to_vec(), Some(pending.snapshot.clone()))],
    )?;
    {
        let mut state = db.write();
        state.engine.release_frozen(pending.frozen.series_count);
        state
            .engine
            .recycle(std::mem::take(&mut pending.frozen.head));
        state.dirty_days.extend(flushed.multi_segment_days);
        state.dirty_days.sort_unstable();
        state.dirty_days.dedup();
    }
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
) -> Result<Option<CheckpointStats>, StoreError> {
    match begin(db, wal)? {
        Some(pending) => finish(db, pending, threads).map(Some),
        None => Ok(None),
    }
}

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> Self {
        StoreError::Engine(EngineError::Store(e))
    }
}
