//! Storage: the WAL that makes messages durable, and the state rebuilt from it.
//!
//! - [`wal`]: segmented, CRC-checked, group-committed log; the only thing that makes a message
//!   durable. The pipeline's writer owns it.
//! - [`entry`]: what a WAL record holds (an accepted message or a dead letter).
//! - [`State`]: what applying entries builds: the device [`registry`], reading [`dedup`]lication,
//!   the series store ([`head`], behind the [`series`] traits) and the [`deadletter`] store.
//! - [`Database`]: the shared, lock-protected state that the gRPC API reads.
//!
//! Applying is deterministic, so replaying the WAL on start rebuilds exactly the state that was
//! acknowledged before a restart or crash.

pub mod deadletter;
pub mod dedup;
pub mod entry;
pub mod head;
pub mod registry;
pub mod seqset;
pub mod series;
pub mod wal;

#[cfg(test)]
mod conformance;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use citytel_proto::topic;
use citytel_proto::v1::{TelemetryBatch, status};
use parking_lot::RwLock;

use crate::decode::{self, Decoded};
use deadletter::{DeadLetter, DeadLetters};
use dedup::Dedup;
use entry::Entry;
use head::Head;
use registry::{Registry, intern};
use series::{Point, SeriesWriter};
use wal::{ReplayStats, Wal, WalError, WalOptions};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The WAL failed.
    #[error(transparent)]
    Wal(#[from] WalError),
}

/// What applying one entry did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Readings stored.
    pub readings_stored: u64,
    /// Readings dropped as duplicates.
    pub readings_duplicate: u64,
}

/// Everything rebuilt from the WAL.
#[derive(Debug, Default)]
pub struct State {
    /// Known devices.
    pub registry: Registry,
    /// Seen (device, boot, seq).
    pub dedup: Dedup,
    /// Series data.
    pub head: Head,
    /// Rejected messages.
    pub dead_letters: DeadLetters,
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
                apply_readings(device, &mut self.dedup, &mut self.head, batch)
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
}

fn apply_readings(
    device: &mut registry::DeviceRecord,
    dedup: &mut Dedup,
    head: &mut impl SeriesWriter,
    batch: &TelemetryBatch,
) -> Applied {
    let names: Vec<Arc<str>> = batch
        .metric_names
        .iter()
        .map(|n| intern(&mut device.metrics, n))
        .collect();
    let mut applied = Applied::default();
    for reading in &batch.readings {
        if !dedup.insert(&device.device_id, batch.boot_id, reading.seq) {
            applied.readings_duplicate += 1;
            continue;
        }
        for (name, &value) in names.iter().zip(&reading.values) {
            head.write(
                &device.device_id,
                name,
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

/// The shared state behind a lock: the writer applies, queries read.
#[derive(Debug, Default)]
pub struct Database {
    state: RwLock<State>,
}

impl Database {
    /// Opens the WAL under `data_dir/wal`, replays it into a new database and returns both.
    pub fn open(
        data_dir: &Path,
        options: WalOptions,
    ) -> Result<(Arc<Database>, Wal, ReplayStats), StoreError> {
        let mut state = State::default();
        let mut undecodable = 0u64;
        let (wal, stats) = Wal::open(
            &data_dir.join("wal"),
            options,
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
        });
        Ok((db, wal, stats))
    }

    /// Read access for queries.
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    /// Write access for the pipeline's writer.
    pub fn write(&self) -> parking_lot::RwLockWriteGuard<'_, State> {
        self.state.write()
    }
}
