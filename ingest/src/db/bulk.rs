//! Bulk loading: imported points go straight into the engine's head (no WAL: an import is
//! re-runnable, and the last write of a timestamp wins, so running it twice stores the same data),
//! with a checkpoint whenever the head fills up, and everything compacted at the end.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;

use citytel_storage::engine::compact;
use citytel_storage::wal::Wal;

use super::checkpoint;
use super::{Database, DbError};
use crate::import::{ImportError, ImportSink, PointBatch};

/// Writes imported batches into a database.
pub struct BulkLoader<'a> {
    db: Arc<Database>,
    wal: &'a mut Wal,
    threads: usize,
    now_ms: i64,
    /// The checkpoint being written in the background while the next head fills.
    writing: Option<JoinHandle<Result<(), DbError>>>,
    /// Every (series, day) the import wrote.
    touched: HashSet<(u32, i64)>,
    /// Checkpoints made so far.
    pub checkpoints: u64,
}

impl<'a> BulkLoader<'a> {
    /// A loader into `db`, checkpointing through `wal`, stamping devices as seen at `now_ms`.
    pub fn new(db: Arc<Database>, wal: &'a mut Wal, threads: usize, now_ms: i64) -> Self {
        BulkLoader {
            db,
            wal,
            threads,
            now_ms,
            writing: None,
            touched: HashSet::new(),
            checkpoints: 0,
        }
    }

    fn wait_for_checkpoint(&mut self) -> Result<(), DbError> {
        match self.writing.take() {
            Some(handle) => handle
                .join()
                .unwrap_or(Err(DbError::Panicked("import checkpoint"))),
            None => Ok(()),
        }
    }

    /// Starts a checkpoint of the full head and writes it on another thread, so parsing goes on
    /// (at most two heads are in memory).
    fn checkpoint_in_background(&mut self) -> Result<(), DbError> {
        self.wait_for_checkpoint()?;
        if let Some(pending) = checkpoint::begin(&self.db, self.wal)? {
            let db = self.db.clone();
            let threads = self.threads;
            self.writing = Some(
                std::thread::Builder::new()
                    .name("citytel-import-checkpoint".into())
                    .spawn(move || checkpoint::finish(&db, pending, threads).map(|_| ()))
                    .map_err(|source| DbError::DataDir {
                        path: self.db.data_dir().to_path_buf(),
                        source,
                    })?,
            );
            self.checkpoints += 1;
        }
        Ok(())
    }

    /// Checkpoints what is left, then rewrites every day the import touched as one segment at
    /// the engine's full compression level (imports flush at a fast level).
    pub fn finish(mut self) -> Result<(), DbError> {
        self.wait_for_checkpoint()?;
        checkpoint::run(&self.db, self.wal, self.threads)?;
        let (store, config, mut days) = {
            let mut state = self.db.write();
            let days = state.take_finished_days(i64::MAX);
            (state.store().clone(), state.engine_config().clone(), days)
        };
        days.extend(self.touched.drain());
        days.sort_unstable();
        days.dedup();
        compact::compact(&store, &config, &days, self.threads, true)?;
        // Persist the now empty list of days awaiting compaction.
        checkpoint::run(&self.db, self.wal, self.threads)?;
        store.settle()?;
        Ok(())
    }
}

impl ImportSink for BulkLoader<'_> {
    fn write(&mut self, batch: &PointBatch) -> Result<(), ImportError> {
        let full = self
            .db
            .write()
            .write_imported(batch, self.now_ms, &mut self.touched)?;
        if full {
            self.checkpoint_in_background().map_err(ImportError::sink)?;
        }
        Ok(())
    }
}
