//! The application state: everything built by applying WAL entries in order (the device
//! registry, reading deduplication, the time-series engine, dead letters, the fleet's state
//! machines and history, maintenance windows), with methods instead of public fields.
//!
//! Only the writer (and start-up replay) changes it, through [`State::apply`]; checkpoints and
//! housekeeping take and return what they persist through their own methods. Applying is
//! deterministic, so the same entries in the same order always build the same state, live or on
//! replay. Readers get read-only views of the components and copies of what they need.
//!
//! - [`registry`]: the devices and what they said about themselves.
//! - [`attributes`]: the devices' latest descriptive text values.
//! - [`dedup`]: (device, boot, seq) seen, so nothing is stored twice.
//! - [`dead_letters`]: rejected messages with their reasons.
//! - [`fleet`]: one availability machine per device, the history and the answers built on it.
//! - [`maintenance`]: maintenance windows, indexed by device and site.
//! - [`summary`]: device counts per kind, site, district and state, kept as the state changes.
//! - [`command`]: the state changes requested through the API; `change`: applying them.
//! - `admit`: the cardinality limits (series, devices) the writer checks before a commit.
//! - [`alerting`]: what applying feeds the alert engine ([`crate::alerts`]), and alert commands.
//! - [`snapshot`] and [`persist`]: what a checkpoint writes, in versioned layouts; `restore`:
//!   reading it back at start-up.

pub mod access;
mod admit;
pub(crate) mod alerting;
pub mod attributes;
mod change;
pub mod command;
pub mod dead_letters;
pub mod dedup;
pub mod fleet;
mod import;
pub mod maintenance;
pub mod persist;
pub mod registry;
mod restore;
pub mod snapshot;
pub mod summary;

use std::sync::Arc;

use bytes::Bytes;
use citytel_availability::{
    ClockOffset, Completeness, DeviceState, Districts, Location, Span, Transition,
};
use citytel_proto::topic;
use citytel_proto::v1::{TelemetryBatch, status};
use citytel_storage::engine::read::Capture;
use citytel_storage::engine::store::{ChunkStore, Table};
use citytel_storage::engine::{Engine, EngineConfig, FrozenHead};
use citytel_storage::series::{LatestPoint, Point};

use crate::decode::{self, Decoded};
use crate::journal::{Connection, Entry};
use access::Access;
use access::audit::AuditLog;
use attributes::{Attributes, DeviceAttributes};
use command::{Outcome, Refusal};
use dead_letters::{DeadLetter, DeadLetterLimits, DeadLetters};
use dedup::Dedup;
use fleet::report::DeviceInputs;
use fleet::{DeviceChange, Fleet};
use maintenance::Windows;
use registry::{DeviceRecord, Registry};
use snapshot::Snapshot;

/// The tables the state keeps in the engine's database, besides the engine's own.
pub const TABLES: [&str; 4] = [META, HISTORY, DEAD_LETTERS, AUDIT];
/// Snapshot (and, before format 2, maintenance windows).
pub const META: &str = "meta";
/// Device state history.
pub const HISTORY: &str = "history";
/// Dead letters.
pub const DEAD_LETTERS: &str = "dead_letters";
/// The audit log.
pub const AUDIT: &str = "audit";

/// Stored readings buffered for live watchers before slow ones start missing some.
const READINGS_BUFFER: usize = 1024;

/// What applying one entry did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Readings stored.
    pub readings_stored: u64,
    /// Readings dropped as duplicates.
    pub readings_duplicate: u64,
    /// What a command did, for a command entry.
    pub outcome: Option<Outcome>,
}

/// A stored point for live watchers: (metric, device time, value).
pub type LivePoint = (Arc<str>, i64, f64);

/// Readings of one device as they are stored, for live watchers.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveReadings {
    /// The device.
    pub device: Arc<str>,
    /// Its kind (what watchers' scopes are checked against).
    pub kind: Arc<str>,
    /// Its site.
    pub site: Arc<str>,
    /// Its district, if it is in one.
    pub district: Option<Arc<str>>,
    /// Every stored point.
    pub points: Vec<LivePoint>,
}

/// A device as the API shows it: its registry entry with what the fleet knows of it.
#[derive(Debug, Clone)]
pub struct DeviceView<'a> {
    /// The registry entry.
    pub record: &'a DeviceRecord,
    /// Its current state.
    pub state: DeviceState,
    /// The transition into it (`None`: never changed).
    pub since: Option<Transition>,
    /// Its clock offset estimate.
    pub clock_offset: Option<ClockOffset>,
    /// Its completeness over the readings stored.
    pub completeness: Completeness,
    /// The district of its site.
    pub district: Option<&'a str>,
    /// Where it is: the location its birth stated, else the one provisioned for it.
    pub location: Option<citytel_availability::Location>,
    /// Its attributes, if it has any.
    pub attributes: Option<&'a DeviceAttributes>,
}

/// What a checkpoint takes from the state: the frozen head and the records to persist.
#[derive(Debug)]
pub struct CheckpointParts {
    /// The head to write as segments.
    pub frozen: FrozenHead,
    /// The encoded snapshot.
    pub snapshot: Vec<u8>,
    /// New dead letters, as (key, value).
    pub dead_letters: Vec<(Vec<u8>, Vec<u8>)>,
    /// New history records, as (key, value).
    pub history: Vec<(Vec<u8>, Vec<u8>)>,
    /// New audit records, as (key, value).
    pub audit: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether the `meta` record of a version 1 data directory's maintenance windows is to be
    /// deleted (the snapshot now holds them).
    pub drop_legacy_maintenance: bool,
}

/// Settings the state is built with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateOptions {
    /// Silence thresholds.
    pub policy: citytel_availability::Policy,
    /// Where devices are: the districts file's polygons, the site-to-district mapping, and the
    /// provisioning file's locations.
    pub districts: Arc<Districts>,
    /// Configured maintenance windows.
    pub maintenance: Vec<maintenance::MaintenanceWindow>,
    /// How much of the rejected messages is kept.
    pub dead_letters: DeadLetterLimits,
}

/// Everything built from the WAL (and restored from snapshots).
#[derive(Debug)]
pub struct State {
    registry: Registry,
    attributes: Attributes,
    dedup: Dedup,
    engine: Engine,
    dead_letters: DeadLetters,
    dead_letter_limits: DeadLetterLimits,
    /// Series-days awaiting compaction.
    dirty_days: Vec<(u32, i64)>,
    fleet: Fleet,
    maintenance: Windows,
    access: Access,
    audit: AuditLog,
    /// Whether the maintenance windows came from a version 1 data directory's `meta` record,
    /// which the next checkpoint deletes.
    legacy_maintenance: bool,
    /// Sequence number of the next persisted history record.
    history_seq: u64,
    readings: tokio::sync::broadcast::Sender<Arc<LiveReadings>>,
    /// The alert engine, fed from `apply` (see [`alerting`]).
    alerts: crate::alerts::Alerts,
    /// How many of the fleet's unflushed changes the alert engine has been fed.
    alerts_fed: usize,
    /// Device counts per cell and state, and the attention order (see [`summary`]).
    counts: summary::FleetCounts,
    /// How many of the fleet's unflushed changes the counts have been fed.
    counts_fed: usize,
}

impl State {
    /// A fresh state over `engine`.
    pub(crate) fn new(engine: Engine, options: &StateOptions) -> Self {
        State {
            registry: Registry::new(options.districts.clone()),
            attributes: Attributes::default(),
            dedup: Dedup::default(),
            engine,
            dead_letters: DeadLetters::new(dead_letters::DEFAULT_CAPACITY, options.dead_letters),
            dead_letter_limits: options.dead_letters,
            dirty_days: Vec::new(),
            fleet: Fleet::new(options.policy.clone(), options.districts.clone()),
            maintenance: Windows::new(options.maintenance.clone()),
            access: Access::default(),
            audit: AuditLog::default(),
            legacy_maintenance: false,
            history_seq: 0,
            readings: tokio::sync::broadcast::channel(READINGS_BUFFER).0,
            alerts: crate::alerts::Alerts::default(),
            alerts_fed: 0,
            counts: summary::FleetCounts::default(),
            counts_fed: 0,
        }
    }

    // ---- reads -------------------------------------------------------------------------------

    /// The device registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The fleet: states, history and availability.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// The sequence numbers stored per device and boot.
    pub fn dedup(&self) -> &Dedup {
        &self.dedup
    }

    /// The devices' attributes.
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// The dead letters.
    pub fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }

    /// The maintenance windows.
    pub fn maintenance(&self) -> &Windows {
        &self.maintenance
    }

    /// Organisations and API keys.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The audit log's recent records.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// A device with what the fleet knows of it.
    pub fn device(&self, id: &str) -> Option<DeviceView<'_>> {
        self.registry.get(id).map(|r| self.view(r))
    }

    /// The view of a registry entry.
    pub fn view<'a>(&'a self, record: &'a DeviceRecord) -> DeviceView<'a> {
        let (state, since) = self
            .fleet
            .state(&record.device_id)
            .unwrap_or((DeviceState::Unknown, None));
        DeviceView {
            record,
            state,
            since,
            clock_offset: self.fleet.clock_offset(&record.device_id),
            completeness: self.fleet.completeness(&self.dedup, &record.device_id),
            district: record.district.as_deref(),
            location: self.registry.location(record),
            attributes: self.attributes.of(&record.device_id),
        }
    }

    /// The current state of a device (`Unknown` when never tracked).
    pub fn device_state(&self, id: &str) -> DeviceState {
        self.fleet
            .state(id)
            .map_or(DeviceState::Unknown, |(state, _)| state)
    }

    /// The latest point of every metric of `device`, sorted by metric name.
    pub fn latest(&self, device: &str) -> Vec<LatestPoint> {
        self.engine.latest(device)
    }

    /// Copies what reading `series` (device, metric) over `[start_ms, end_ms)` needs from the
    /// engine's heads; the read itself then runs without the lock.
    pub fn capture<'a>(
        &self,
        series: impl IntoIterator<Item = (&'a Arc<str>, &'a str)>,
        start_ms: i64,
        end_ms: i64,
    ) -> Capture {
        self.engine.capture(series, start_ms, end_ms)
    }

    /// Copies what the availability of `devices` over windows within `range` needs.
    pub fn availability_inputs<'a>(
        &self,
        devices: impl IntoIterator<Item = &'a Arc<str>>,
        range: Span,
    ) -> Vec<DeviceInputs> {
        devices
            .into_iter()
            .map(|d| {
                let site = self.registry.get(d).map_or("", |r| &*r.site);
                let maintenance = self.maintenance.for_device(d, site);
                self.fleet.capture(&self.dedup, d, maintenance, range)
            })
            .collect()
    }

    /// A receiver of every state change from now on.
    pub fn watch_changes(&self) -> tokio::sync::broadcast::Receiver<DeviceChange> {
        self.fleet.watch()
    }

    /// A receiver of every stored reading from now on.
    pub fn watch_readings(&self) -> tokio::sync::broadcast::Receiver<Arc<LiveReadings>> {
        self.readings.subscribe()
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.engine.catalog().len()
    }

    /// Points in the engine's active head.
    pub fn head_points(&self) -> u64 {
        self.engine.head_points()
    }

    /// The engine's store, shared with readers and housekeeping.
    pub fn store(&self) -> &Arc<ChunkStore> {
        self.engine.store()
    }

    /// The engine's settings.
    pub fn engine_config(&self) -> &EngineConfig {
        self.engine.config()
    }

    /// One of the state's own [`TABLES`].
    pub(crate) fn table(&self, name: &str) -> Table {
        self.engine
            .store()
            .table(name)
            .cloned()
            .unwrap_or_else(|| unreachable!("table {name} is opened with the engine"))
    }

    // ---- the writer ----------------------------------------------------------------------------

    /// Applies one WAL entry. `decoded` is the already-decoded message of a
    /// [`Entry::Message`] (the live path); `None` decodes it from the entry (replay). The alert
    /// engine then gets the transitions it caused and its time.
    pub(crate) fn apply(&mut self, entry: &Entry<'_>, decoded: Option<&Decoded>) -> Applied {
        let applied = self.apply_entry(entry, decoded);
        self.count_moves();
        self.count_transitions();
        self.alerts_after_entry(entry.time_ms());
        applied
    }

    fn apply_entry(&mut self, entry: &Entry<'_>, decoded: Option<&Decoded>) -> Applied {
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
                            metrics::counter!(
                                crate::telemetry::metrics::RECORDS_UNDECODABLE_TOTAL,
                                "record" => "wal_message"
                            )
                            .increment(1);
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
                // Copy no more than is kept: a rejected message may be large.
                let payload = &payload[..payload.len().min(self.dead_letter_limits.payload_bytes)];
                let detail = &detail
                    [..crate::journal::floor_char_boundary(detail, dead_letters::MAX_DETAIL_BYTES)];
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
            Entry::Command {
                received_at_ms,
                payload,
            } => {
                let outcome = match persist::decode_command(payload) {
                    Ok(submitted) => self.apply_command(submitted, received_at_ms),
                    Err(e) => {
                        metrics::counter!(
                            crate::telemetry::metrics::RECORDS_UNDECODABLE_TOTAL,
                            "record" => "wal_command"
                        )
                        .increment(1);
                        tracing::warn!(error = %e, "wal command does not decode; skipped");
                        Outcome::Refused(Refusal::Undecodable(e.to_string()))
                    }
                };
                Applied {
                    outcome: Some(outcome),
                    ..Applied::default()
                }
            }
            Entry::Tick { at_ms } => {
                self.apply_tick(at_ms);
                Applied::default()
            }
            Entry::Started { at_ms } => {
                self.apply_started(at_ms);
                Applied::default()
            }
        }
    }

    /// A device's connection to the device endpoint opened or closed: registers the device when
    /// it opens and tells the fleet.
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
        self.count_moves();
        match change {
            Connection::Opened => self.fleet.connection_opened(&id, &kind, received_at_ms),
            Connection::Closed | Connection::Lost => {
                let clean = change == Connection::Closed;
                self.fleet
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
            self.fleet.link(&id, &gw);
        }
        match decoded {
            Decoded::Telemetry(batch) => {
                device.boot_id = Some(batch.boot_id);
                let watched = self.readings.receiver_count() > 0;
                let probe = self.alert_probe(&id, batch);
                let names = self.registry.metric_names(&id, &batch.metric_names);
                let Some(device) = self.registry.get_mut(&id) else {
                    return Applied::default();
                };
                let (applied, live) = apply_readings(
                    device,
                    &names,
                    &mut self.dedup,
                    &mut self.engine,
                    batch,
                    watched,
                );
                let site = device.site.clone();
                let district = device.district.clone();
                self.count_moves();
                if let Some(newest) = batch.readings.iter().map(|r| r.time_unix_ms).max() {
                    self.fleet
                        .on_readings(&id, &kind, batch.boot_id, newest, received_at_ms);
                }
                if let Some(probe) = probe {
                    let device = crate::alerts::world::DeviceRef {
                        id: &id,
                        kind: &kind,
                        site: &site,
                        district: district.as_deref(),
                    };
                    self.alert_readings(
                        device,
                        batch,
                        probe,
                        applied.readings_stored,
                        received_at_ms,
                    );
                }
                if let Some(points) = live.filter(|p| !p.is_empty()) {
                    let _ = self.readings.send(Arc::new(LiveReadings {
                        device: id,
                        kind,
                        site,
                        district,
                        points,
                    }));
                }
                applied
            }
            Decoded::Status(status) => {
                if let Some(status::Kind::Birth(birth)) = &status.kind {
                    device.boot_id = Some(status.boot_id);
                    device.firmware_version = Some(birth.firmware_version.clone());
                    device.reporting_interval_ms = Some(birth.reporting_interval_ms);
                    // Checked when decoded; a birth without one keeps the location known.
                    if let Some(l) = &birth.location
                        && let Ok(location) = Location::new(l.latitude, l.longitude)
                    {
                        self.registry.set_location(&id, location);
                    }
                }
                if let Some(status::Kind::Attributes(a)) = &status.kind {
                    let time_ms = match status.time_unix_ms {
                        0 => received_at_ms,
                        t => t,
                    };
                    self.attributes.apply(&id, &a.attributes, time_ms);
                }
                self.count_moves();
                self.fleet.on_status(&id, &kind, status, received_at_ms);
                Applied::default()
            }
        }
    }

    /// Applies the silence timeouts that fell due at or before `now_ms` (devices turning late
    /// or offline).
    pub(crate) fn advance(&mut self, now_ms: i64) {
        self.fleet.advance(now_ms);
        self.count_transitions();
    }

    /// After a restart at `now_ms`: citytel's own downtime is unknown, not down (to the fleet
    /// and the alert engine); not recorded in the WAL (see [`Entry::Started`] for that).
    pub(crate) fn started(&mut self, now_ms: i64) {
        self.apply_started(now_ms);
        self.count_transitions();
    }

    // ---- checkpoints and housekeeping ----------------------------------------------------------

    /// Whether the head is due for a flush, and whether one is running.
    pub(crate) fn flush_status(&self) -> (bool, bool) {
        (self.engine.needs_flush(), self.engine.is_flushing())
    }

    /// Starts a checkpoint covering the WAL before `wal_segment`: freezes the head and takes the
    /// snapshot and the records not yet persisted. `None` while a previous one is being written.
    pub(crate) fn begin_checkpoint(&mut self, wal_segment: u64) -> Option<CheckpointParts> {
        let frozen = self.engine.freeze()?;
        let mut history = Vec::new();
        self.feed_alerts();
        self.alerts_fed = 0;
        self.count_transitions();
        self.counts_fed = 0;
        for change in self.fleet.take_unflushed() {
            let key = fleet::snapshot::history_key(&change.device, self.history_seq);
            history.push((key, persist::encode_change(&change.change)));
            self.history_seq += 1;
        }
        let snapshot = persist::encode_snapshot(&self.snapshot(wal_segment));
        let drop_legacy_maintenance = std::mem::take(&mut self.legacy_maintenance);
        let dead_letters = self
            .dead_letters
            .take_unflushed()
            .into_iter()
            .map(|(seq, l)| (seq.to_be_bytes().to_vec(), persist::encode_dead_letter(&l)))
            .collect();
        let audit = self
            .audit
            .take_unflushed()
            .iter()
            .map(|r| (r.seq.to_be_bytes().to_vec(), persist::encode_audit(r)))
            .collect();
        Some(CheckpointParts {
            frozen,
            snapshot,
            dead_letters,
            history,
            audit,
            drop_legacy_maintenance,
        })
    }

    /// Ends a checkpoint once its head is durable: releases the frozen head (its memory is
    /// reused) and notes the series-days that now have more than one segment.
    pub(crate) fn end_checkpoint(
        &mut self,
        frozen: &mut FrozenHead,
        multi_segment_days: Vec<(u32, i64)>,
    ) {
        self.engine.release_frozen(frozen.series_count);
        self.engine.recycle(std::mem::take(&mut frozen.head));
        self.dirty_days.extend(multi_segment_days);
        self.dirty_days.sort_unstable();
        self.dirty_days.dedup();
    }

    /// Takes the series-days that ended at or before `horizon_ms`, to compact.
    pub(crate) fn take_finished_days(&mut self, horizon_ms: i64) -> Vec<(u32, i64)> {
        let day = citytel_storage::engine::keys::DAY_MS;
        let (ready, later): (Vec<_>, Vec<_>) = self
            .dirty_days
            .iter()
            .partition(|(_, d)| d.saturating_add(day) <= horizon_ms);
        self.dirty_days = later;
        ready
    }

    /// Gives back days whose compaction failed, to retry.
    pub(crate) fn return_days(&mut self, days: Vec<(u32, i64)>) {
        self.dirty_days.extend(days);
    }

    /// Forgets the state history before `cutoff_ms` in memory (see [`Fleet::prune_history`]);
    /// the housekeeping thread deletes the same records from the `history` table.
    pub(crate) fn prune_history(&mut self, cutoff_ms: i64) -> usize {
        self.fleet.prune_history(cutoff_ms)
    }

    /// Drops the audit records before `cutoff_ms` from memory.
    pub(crate) fn expire_audit(&mut self, cutoff_ms: i64) {
        self.audit.expire(cutoff_ms);
    }

    /// Drops the dead letters received before `cutoff_ms` from memory; returns the sequence
    /// number of the oldest one kept (persisted ones before it can go).
    pub(crate) fn expire_dead_letters(&mut self, cutoff_ms: i64) -> u64 {
        self.dead_letters.expire(cutoff_ms);
        self.dead_letters.oldest_kept_seq()
    }

    /// The snapshot of everything but the series data, covering the WAL before `wal_segment`.
    fn snapshot(&self, wal_segment: u64) -> Snapshot {
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
            fleet: self.fleet.snapshot(self.history_seq),
            maintenance: Some(self.maintenance.api_windows()),
            orgs: self.access.orgs().cloned().collect(),
            keys: self.access.keys().cloned().collect(),
            audit_seq: self.audit.next_seq(),
            alerts: self.alerts.snapshot(),
            attributes: self.attributes.export(),
        }
    }
}

/// Stores a batch's new readings (its metrics named by the registry's shared `names`); with
/// `watched`, also returns the stored points for watchers.
fn apply_readings(
    device: &mut DeviceRecord,
    names: &[Arc<str>],
    dedup: &mut Dedup,
    engine: &mut Engine,
    batch: &TelemetryBatch,
    watched: bool,
) -> (Applied, Option<Vec<LivePoint>>) {
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
        for ((&id, &value), name) in ids.iter().zip(&reading.values).zip(names) {
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
mod location_tests;
#[cfg(test)]
mod tests;
