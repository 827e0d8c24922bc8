//! Bulk loading: imported points go straight into the engine's head (no WAL: an import is
//! re-runnable, and the last write of a timestamp wins, so running it twice stores the same data),
//! with a checkpoint whenever the head fills up, and everything compacted at the end.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;

use citytel_proto::topic::{Channel, DeviceTopic};

use super::checkpoint;
use super::engine::{EngineError, compact, keys};
use super::registry::intern;
use super::series::Point;
use super::wal::Wal;
use super::{Database, StoreError};
use crate::import::{ImportError, ImportSink, PointBatch};

/// Writes imported batches into a database.
pub struct BulkLoader<'a> {
    db: Arc<Database>,
    wal: &'a mut Wal,
    threads: usize,
    now_ms: i64,
    /// The checkpoint being written in the background while the next head fills.
    writing: Option<JoinHandle<Result<(), StoreError>>>,
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

    fn wait_for_checkpoint(&mut self) -> Result<(), StoreError> {
        match self.writing.take() {
            Some(handle) => handle.join().unwrap_or_else(|_| {
                Err(StoreError::Engine(EngineError::Snapshot(
                    "checkpoint thread panicked".into(),
                )))
            }),
            None => Ok(()),
        }
    }

    /// Starts a checkpoint of the full head and writes it on another thread, so parsing goes on
    /// (at most two heads are in memory).
    fn checkpoint_in_background(&mut self) -> Result<(), StoreError> {
        self.wait_for_checkpoint()?;
        if let Some(pending) = checkpoint::begin(&self.db, self.wal)? {
            let db = self.db.clone();
            let threads = self.threads;
            self.writing = Some(
                std::thread::Builder::new()
                    .name("citytel-import-checkpoint".into())
                    .spawn(move || checkpoint::finish(&db, pending, threads).map(|_| ()))
                    .map_err(|e| StoreError::Engine(EngineError::Snapshot(e.to_string())))?,
            );
            self.checkpoints += 1;
        }
        Ok(())
    }

    /// Checkpoints what is left, then rewrites every day the import touched as one segment at
    /// the engine's full compression level (imports flush at a fast level).
    pub fn finish(mut self) -> Result<(), StoreError> {
        self.wait_for_checkpoint()?;
        checkpoint::run(&self.db, self.wal, self.threads)?;
        let (store, config, mut days) = {
            let mut state = self.db.write();
            let days = std::mem::take(&mut state.dirty_days);
            (
                state.engine.store().clone(),
                state.engine.config().clone(),
                days,
            )
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
        let full = {
            let mut guard = self.db.write();
            let state = &mut *guard;
            // Batch-local device and metric indices to series ids.
            let mut ids: Vec<Option<u32>> = vec![None; batch.devices.len() * batch.metrics.len()];
            let mut devices = Vec::with_capacity(batch.devices.len());
            for key in &batch.devices {
                let topic = DeviceTopic {
                    site: &key.site,
                    kind: &key.kind,
                    device_id: &key.device_id,
                    channel: Channel::Telemetry,
                };
                let record = state.registry.observe(&topic, self.now_ms);
                devices.push(record.device_id.clone());
            }
            let mut readings = vec![0u64; batch.devices.len()];
            let mut last: Option<(u32, i64)> = None;
            let mut slot_day = vec![i64::MIN; ids.len()];
            for p in &batch.points {
                let slot = p.device as usize * batch.metrics.len() + p.metric as usize;
                let id = match ids[slot] {
                    Some(id) => id,
                    None => {
                        let device: &Arc<str> = &devices[p.device as usize];
                        let record = state.registry.get_mut(device).ok_or_else(|| {
                            ImportError::sink(std::io::Error::other("device vanished"))
                        })?;
                        let metric = intern(&mut record.metrics, &batch.metrics[p.metric as usize]);
                        let id = state.engine.series_id(device, &metric);
                        ids[slot] = Some(id);
                        id
                    }
                };
                let day = keys::day_of(p.time_ms);
                if slot_day[slot] != day {
                    slot_day[slot] = day;
                    self.touched.insert((id, day));
                }
                if last != Some((p.device, p.time_ms)) {
                    readings[p.device as usize] += 1;
                    last = Some((p.device, p.time_ms));
                }
                state.engine.write(
                    id,
                    Point {
                        time_ms: p.time_ms,
                        value: p.value,
                    },
                );
            }
            for (device, n) in devices.iter().zip(readings) {
                if let Some(record) = state.registry.get_mut(device) {
                    record.readings_total += n;
                }
            }
            state.engine.needs_flush()
        };
        if full {
            self.checkpoint_in_background().map_err(ImportError::sink)?;
        }
        Ok(())
    }
}
