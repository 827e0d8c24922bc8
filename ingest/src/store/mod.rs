//! Storage: the WAL that makes messages durable, and the state built from it.
//!
//! - [`wal`]: segmented, CRC-checked, group-committed log; the only thing that makes a message
//!   durable on arrival. The pipeline's writer owns it.
//! - [`entry`]: what a WAL record holds (an accepted message or a dead letter).
//! - [`State`]: what applying entries builds: the device [`registry`], reading [`dedup`]lication,
//!   the time-series [`engine`] and the [`deadletter`] store.
//! - [`Database`]: the shared, lock-protected state that the writer applies to and queries read.
//! - [`bulk`]: loading imported files straight into the engine.
//! - [`checkpoint`]: freezing the state, writing it to the engine's store with a [`snapshot`], and
//!   deleting the WAL it covers.
//! - [`series`]: the read and write traits every series backend implements; [`head`] is the
//!   plain in-memory backend the engine is checked against.
//!
//! Applying is deterministic, so a restart (snapshot, then the WAL after it) rebuilds exactly the
//! state that was acknowledged before a restart or crash.

pub mod bulk;
pub mod checkpoint;
pub mod deadletter;
pub mod dedup;
pub mod engine;
pub mod entry;
pub mod head;
pub mod maintenance;
pub mod registry;
pub mod seqset;
pub mod series;
pub mod snapshot;
pub mod wal;

#[cfg(test)]
mod conformance;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use citytel_proto::topic;
use citytel_proto::v1::{TelemetryBatch, status};
use parking_lot::RwLock;

use crate::decode::{self, Decoded, RejectReason};
use deadletter::{DeadLetter, DeadLetters};
use dedup::Dedup;
use engine::{Engine, EngineConfig, EngineError};
use entry::Entry;
use registry::{Registry, intern};
use series::Point;
use snapshot::Snapshot;
use wal::{ReplayStats, Wal, WalError, WalOptions};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The WAL failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The time-series engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Another process holds the data directory.
    #[error("data directory {0} is in use by another citytel process")]
    Locked(PathBuf),
    /// The data directory cannot be created or locked.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What applying one entry did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Readings stored.
    pub readings_stored: u64,
    /// Readings dropped as duplicates.
    pub readings_duplicate: u64,
}

/// Everything built from the WAL (and restored from snapshots).
#[derive(Debug)]
pub struct State {
    /// Known devices.
    pub registry: Registry,
    /// Seen (device, boot, seq).
    pub dedup: Dedup,
    /// Series data.
    pub engine: Engine,
    /// Rejected messages.
    pub dead_letters: DeadLetters,
    /// Series-days awaiting compaction.
    pub dirty_days: Vec<(u32, i64)>,
}

impl State {
    /// Applies one WAL entry. `decoded` is the already-decoded message of a
    /// [`Entry::Message`] (the live path); `None` decodes it from the entry (replay).
    pub fn apply(&mut self, entry: &Entry<'_>, decoded: Option<&Decoded>) -> Applied {
        match *entry {
            Entry::Message {
                received_at_ms,
                topic,
                payload,
            } => {
                let owned;
                let decoded = match decoded {
                    Some(d) => d,
                    None => match decode::decode_trusted(topic, payload) {
                        Ok(d) => {
                            owned = d;
                            &owned
                        }
                        Err(rejection) => {
                            // Only possible if the record was written by a different build.
                            tracing::warn!(%topic, %rejection, "wal entry no longer decodes; skipped");
                            return Applied::default();
                        }
                    },
                };
                self.apply_message(topic, received_at_ms, decoded)
            }
            Entry::DeadLetter {
                received_at_ms,
                reason,
                topic,
                detail,
                payload,
            } => {
                self.dead_letters.push(DeadLetter {
                    received_at_ms,
                    reason,
                    topic: topic.to_string(),
                    detail: detail.to_string(),
                    payload: Bytes::copy_from_slice(payload),
                });
                Applied::default()
            }
        }
    }

    fn apply_message(&mut self, topic: &str, received_at_ms: i64, decoded: &Decoded) -> Applied {
        let Ok(parsed) = topic::parse(topic) else {
            return Applied::default();
        };
        let device = self.registry.observe(&parsed, received_at_ms);
        match decoded {
            Decoded::Telemetry(batch) => {
                if let Some(gw) = &batch.gateway_id {
                    device.gateway_id = Some(gw.as_str().into());
                }
                device.boot_id = Some(batch.boot_id);
                apply_readings(device, &mut self.dedup, &mut self.engine, batch)
            }
            Decoded::Status(status) => {
                if let Some(gw) = &status.gateway_id {
                    device.gateway_id = Some(gw.as_str().into());
                }
                if let Some(status::Kind::Birth(birth)) = &status.kind {
                    device.boot_id = Some(status.boot_id);
                    device.firmware_version = Some(birth.firmware_version.clone());
                    device.reporting_interval_ms = Some(birth.reporting_interval_ms);
                }
                Applied::default()
            }
        }
    }

    /// The snapshot of everything but the series data, covering the WAL before `wal_segment`.
    pub fn snapshot(&self, wal_segment: u64) -> Snapshot {
        Snapshot {
            wal_segment,
            devices: self.registry.iter_after(None).cloned().collect(),
            dedup: self.dedup.export(),
            latest: self
                .engine
                .latest_values()
                .map(|(id, p)| (id, p.time_ms, p.value))
                .collect(),
            dead_letter_counts: self
                .dead_letters
                .counts()
                .iter()
                .map(|(r, n)| (r.code(), *n))
                .collect(),
            dirty_days: self.dirty_days.clone(),
            dead_letter_seq: self.dead_letters.next_seq(),
        }
    }

    fn restore(&mut self, snapshot: Snapshot) {
        for device in snapshot.devices {
            self.registry.restore(device);
        }
        for (device, boots) in snapshot.dedup {
            self.dedup.restore(device, boots);
        }
        for (id, time_ms, value) in snapshot.latest {
            self.engine.restore_latest(id, Point { time_ms, value });
        }
        let counts = snapshot
            .dead_letter_counts
            .into_iter()
            .filter_map(|(code, n)| Some((RejectReason::from_code(code)?, n)))
            .collect();
        self.dead_letters
            .restore_counts(counts, snapshot.dead_letter_seq);
        self.dirty_days = snapshot.dirty_days;
    }
}

fn apply_readings(
    device: &mut registry::DeviceRecord,
    dedup: &mut Dedup,
    engine: &mut Engine,
    batch: &TelemetryBatch,
) -> Applied {
    let ids: Vec<u32> = batch
        .metric_names
        .iter()
        .map(|n| {
            let name = intern(&mut device.metrics, n);
            engine.series_id(&device.device_id, &name)
        })
        .collect();
    let mut applied = Applied::default();
    for reading in &batch.readings {
        if !dedup.insert(&device.device_id, batch.boot_id, reading.seq) {
            applied.readings_duplicate += 1;
            continue;
        }
        for (&id, &value) in ids.iter().zip(&reading.values) {
            engine.write(
                id,
                Point {
                    time_ms: reading.time_unix_ms,
                    value,
                },
            );
        }
        applied.readings_stored += 1;
    }
    device.readings_total += applied.readings_stored;
    applied
}

/// Storage settings for [`Database::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// WAL settings.
    pub wal: WalOptions,
    /// Engine settings.
    pub engine: EngineConfig,
}

/// The shared state behind a lock: the writer applies, queries read.
#[derive(Debug)]
pub struct Database {
    state: RwLock<State>,
    data_dir: PathBuf,
    _lock: File,
}

impl Database {
    /// Opens the data directory: locks it, opens the engine, restores the last snapshot and
    /// replays the WAL after it. Returns the database, the WAL positioned for appending, and what
    /// the replay found.
    pub fn open(
        data_dir: &Path,
        options: &StoreOptions,
    ) -> Result<(Arc<Database>, Wal, ReplayStats), StoreError> {
        let dir_err = |source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(dir_err)?;
        let lock = File::create(data_dir.join("LOCK")).map_err(dir_err)?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(data_dir.to_path_buf()));
        }
        let engine = Engine::open(&data_dir.join("tsdb"), options.engine.clone())?;
        let mut state = State {
            registry: Registry::default(),
            dedup: Dedup::default(),
            dead_letters: DeadLetters::default(),
            dirty_days: Vec::new(),
            engine,
        };
        let snapshot = match state
            .engine
            .store()
            .meta
            .get(snapshot::KEY)
            .map_err(EngineError::from)?
        {
            Some(bytes) => Some(Snapshot::decode(&bytes)?),
            None => None,
        };
        let from_segment = snapshot.as_ref().map_or(0, |s| s.wal_segment);
        if let Some(snapshot) = snapshot {
            state.restore(snapshot);
        }
        state
            .dead_letters
            .load_recent(&state.engine.store().dead_letters)?;
        let mut undecodable = 0u64;
        let (wal, stats) = Wal::open(
            &data_dir.join("wal"),
            options.wal,
            from_segment,
            |_, record| match Entry::decode(record) {
                Ok(entry) => {
                    state.apply(&entry, None);
                }
                Err(_) => undecodable += 1,
            },
        )?;
        if undecodable > 0 {
            tracing::warn!(
                undecodable,
                "wal records with an unknown entry layout were skipped"
            );
        }
        let db = Arc::new(Database {
            state: RwLock::new(state),
            data_dir: data_dir.to_path_buf(),
            _lock: lock,
        });
        Ok((db, wal, stats))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Read access for queries.
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    /// Write access for the writer and checkpoints.
    pub fn write(&self) -> parking_lot::RwLockWriteGuard<'_, State> {
        self.state.write()
    }
}
