//! The state built by applying WAL entries: registry, deduplication, series, dead letters and the
//! fleet tracker. Applying is deterministic, so the same entries in the same order always build
//! the same state, live or on replay.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use citytel_proto::topic;
use citytel_proto::v1::{TelemetryBatch, status};

use super::deadletter::{DeadLetter, DeadLetters};
use super::dedup::Dedup;
use super::engine::Engine;
use super::entry::{Connection, Entry};
use super::registry::{DeviceRecord, Registry, intern};
use super::series::Point;
use super::snapshot::Snapshot;
use crate::decode::{self, Decoded, RejectReason, Rejection};
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
            Entry::Connection {
                received_at_ms,
                change,
                topic,
            } => {
                self.apply_connection(topic, change, received_at_ms);
                Applied::default()
            }
        }
    }

    /// A device's connection to the device endpoint opened or closed: registers the device when
    /// it opens and tells the tracker.
    fn apply_connection(&mut self, topic: &str, change: Connection, received_at_ms: i64) {
        let Ok(parsed) = topic::parse(topic) else {
            return;
        };
        let (id, kind) = match (change, self.registry.get(parsed.device_id)) {
            (Connection::Opened, _) | (_, None) => {
                let device = self.registry.observe(&parsed, received_at_ms);
                (device.device_id.clone(), device.kind.clone())
            }
            (_, Some(device)) => (device.device_id.clone(), device.kind.clone()),
        };
        match change {
            Connection::Opened => self.tracker.connection_opened(&id, &kind, received_at_ms),
            Connection::Closed | Connection::Lost => {
                let clean = change == Connection::Closed;
                self.tracker
                    .connection_closed(&id, &kind, clean, received_at_ms);
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

    /// Checks the series cardinality limit for a message about to be committed. A telemetry
    /// batch that would bring the number of series (device, metric pairs) over `max_series` is
    /// refused with [`RejectReason::TooManySeries`]; batches that only write to known series always
    /// pass. `pending` collects the series admitted earlier in the same commit group (not yet
    /// applied); an accepted batch adds its new series to it.
    pub fn admit_series(
        &self,
        decoded: &Decoded,
        max_series: u64,
        pending: &mut HashSet<(String, String)>,
    ) -> Result<(), Rejection> {
        let Decoded::Telemetry(batch) = decoded else {
            return Ok(());
        };
        let catalog = self.engine.catalog();
        let device = batch.device_id.as_str();
        let new: Vec<&str> = batch
            .metric_names
            .iter()
            .map(String::as_str)
            .filter(|metric| {
                catalog.get(device, metric).is_none()
                    && !pending.contains(&(device.to_string(), (*metric).to_string()))
            })
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let total = (catalog.len() + pending.len() + new.len()) as u64;
        if total > max_series {
            return Err(Rejection::new(
                RejectReason::TooManySeries,
                format!(
                    "{} new series for device {device:?} would exceed the limit of {max_series} series",
                    new.len()
                ),
            ));
        }
        pending.extend(
            new.into_iter()
                .map(|metric| (device.to_string(), metric.to_string())),
        );
        Ok(())
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

#[cfg(test)]
mod tests {
    use citytel_proto::v1::Reading;
    use prost::Message as _;

    use super::*;
    use crate::store::Database;

    fn telemetry(device: &str, metrics: &[&str]) -> (String, Vec<u8>, Decoded) {
        let batch = TelemetryBatch {
            device_id: device.into(),
            boot_id: 1,
            metric_names: metrics.iter().map(|m| (*m).to_string()).collect(),
            readings: vec![Reading {
                seq: 1,
                time_unix_ms: 1_000,
                values: vec![1.0; metrics.len()],
            }],
            gateway_id: None,
        };
        let topic = format!("citytel/v1/s/cabinet/{device}/telemetry");
        (topic, batch.encode_to_vec(), Decoded::Telemetry(batch))
    }

    #[test]
    fn the_series_limit_refuses_only_batches_adding_series_beyond_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::config::load_str(None, &[])
            .unwrap()
            .validate()
            .unwrap()
            .store_options(crate::clock::Clock::System);
        let (db, _wal, _) = Database::open(dir.path(), &options).unwrap();
        let mut state = db.write();
        let too_many = |r: Result<(), Rejection>| r.unwrap_err().reason;

        // Limit 3: a device with 2 metrics is admitted and stored.
        let mut pending = HashSet::new();
        let (topic, payload, first) = telemetry("cab-1", &["t", "h"]);
        assert!(state.admit_series(&first, 3, &mut pending).is_ok());
        let entry = Entry::Message {
            received_at_ms: 1_000,
            topic: &topic,
            payload: &payload,
        };
        state.apply(&entry, Some(&first));
        assert_eq!(state.engine.catalog().len(), 2);

        // A second device with 2 new metrics would make 4 series.
        let mut pending = HashSet::new();
        let (_, _, second) = telemetry("cab-2", &["t", "h"]);
        assert_eq!(
            too_many(state.admit_series(&second, 3, &mut pending)),
            RejectReason::TooManySeries
        );
        assert!(pending.is_empty());
        // Known series always pass; one new series still fits and is then taken, also for the
        // rest of the same commit group.
        assert!(state.admit_series(&first, 3, &mut pending).is_ok());
        let (_, _, one) = telemetry("cab-2", &["t"]);
        assert!(state.admit_series(&one, 3, &mut pending).is_ok());
        assert!(state.admit_series(&one, 3, &mut pending).is_ok());
        let (_, _, another) = telemetry("cab-3", &["t"]);
        assert_eq!(
            too_many(state.admit_series(&another, 3, &mut pending)),
            RejectReason::TooManySeries
        );
    }
}
