//! The state built by applying WAL entries: registry, deduplication, series, dead letters and the
//! fleet tracker. Applying is deterministic, so the same entries in the same order always build
//! the same state, live or on replay.

use std::sync::Arc;

use bytes::Bytes;
use citytel_proto::topic;
use citytel_proto::v1::{TelemetryBatch, status};

use super::deadletter::{DeadLetter, DeadLetters};
use super::dedup::Dedup;
use super::engine::Engine;
use super::entry::Entry;
use super::registry::{DeviceRecord, Registry, intern};
use super::series::Point;
use super::snapshot::Snapshot;
use crate::decode::{self, Decoded, RejectReason};
use crate::tracker::Tracker;

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
    /// Device states and availability.
    pub tracker: Tracker,
    /// Sequence number of the next persisted history record.
    pub history_seq: u64,
    /// Readings stored, for live watchers (only sent while someone watches).
    pub readings: tokio::sync::broadcast::Sender<Arc<LiveReadings>>,
}

/// A stored point for live watchers: (metric, device time, value).
pub type LivePoint = (Arc<str>, i64, f64);

/// Readings of one device as they are stored, for live watchers.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveReadings {
    /// The device.
    pub device: Arc<str>,
    /// Every stored point.
    pub points: Vec<LivePoint>,
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
        let (id, kind) = (device.device_id.clone(), device.kind.clone());
        let gateway = match decoded {
            Decoded::Telemetry(b) => b.gateway_id.as_deref(),
            Decoded::Status(s) => s.gateway_id.as_deref(),
        };
        if let Some(gw) = gateway {
            let gw: Arc<str> = gw.into();
            device.gateway_id = Some(gw.clone());
            self.tracker.link(&id, &gw);
        }
        match decoded {
            Decoded::Telemetry(batch) => {
                device.boot_id = Some(batch.boot_id);
                let watched = self.readings.receiver_count() > 0;
                let (applied, live) =
                    apply_readings(device, &mut self.dedup, &mut self.engine, batch, watched);
                if let Some(newest) = batch.readings.iter().map(|r| r.time_unix_ms).max() {
                    self.tracker
                        .on_readings(&id, &kind, batch.boot_id, newest, received_at_ms);
                }
                if let Some(points) = live.filter(|p| !p.is_empty()) {
                    let _ = self
                        .readings
                        .send(Arc::new(LiveReadings { device: id, points }));
                }
                applied
            }
            Decoded::Status(status) => {
                if let Some(status::Kind::Birth(birth)) = &status.kind {
                    device.boot_id = Some(status.boot_id);
                    device.firmware_version = Some(birth.firmware_version.clone());
                    device.reporting_interval_ms = Some(birth.reporting_interval_ms);
                }
                self.tracker.on_status(&id, &kind, status, received_at_ms);
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
            tracker: self.tracker.snapshot(self.history_seq),
        }
    }

    /// Restores a snapshot into a fresh state.
    pub(super) fn restore(&mut self, snapshot: Snapshot) {
        self.history_seq = snapshot.tracker.next_history_seq;
        self.tracker.restore(snapshot.tracker);
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

/// Stores a batch's new readings; with `watched`, also returns the stored points for watchers.
fn apply_readings(
    device: &mut DeviceRecord,
    dedup: &mut Dedup,
    engine: &mut Engine,
    batch: &TelemetryBatch,
    watched: bool,
) -> (Applied, Option<Vec<LivePoint>>) {
    let names: Vec<Arc<str>> = batch
        .metric_names
        .iter()
        .map(|n| intern(&mut device.metrics, n))
        .collect();
    let ids: Vec<u32> = names
        .iter()
        .map(|name| engine.series_id(&device.device_id, name))
        .collect();
    let mut live = watched.then(Vec::new);
    let mut applied = Applied::default();
    for reading in &batch.readings {
        if !dedup.insert(&device.device_id, batch.boot_id, reading.seq) {
            applied.readings_duplicate += 1;
            continue;
        }
        for ((&id, &value), name) in ids.iter().zip(&reading.values).zip(&names) {
            engine.write(
                id,
                Point {
                    time_ms: reading.time_unix_ms,
                    value,
                },
            );
            if let Some(points) = &mut live {
                points.push((name.clone(), reading.time_unix_ms, value));
            }
        }
        applied.readings_stored += 1;
    }
    device.readings_total += applied.readings_stored;
    (applied, live)
}
