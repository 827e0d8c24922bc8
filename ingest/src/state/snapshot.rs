//! The checkpoint snapshot: everything in memory that the WAL alone would have to rebuild
//! (registry, deduplication state, latest values, dead-letter counts, days awaiting compaction,
//! the fleet's machines and estimators, maintenance windows set over the API, the alert
//! engine's rules, alerts, silences and notifications not yet confirmed, the devices'
//! attributes), written by a
//! checkpoint after the flushed segments, series, dead letters and history (each its own fsynced
//! table), so a snapshot never refers to data that is not yet on disk.
//!
//! It is stored under `meta` key [`KEY`] through [`super::persist`]. `wal_segment` is the first
//! WAL segment the snapshot does not cover: on start, older segments are deleted and the rest
//! replayed on top of the snapshot.

use std::sync::Arc;

use super::access::{ApiKey, Organisation};
use super::dedup::Boots;
use super::fleet::FleetSnapshot;
use super::maintenance::MaintenanceWindow;
use super::registry::DeviceRecord;

/// Key of the snapshot in the `meta` table.
pub const KEY: &[u8] = b"state";
/// Key under which a version 1 data directory kept the maintenance windows set over the API.
pub const LEGACY_MAINTENANCE_KEY: &[u8] = b"maintenance";

/// The persisted in-memory state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// First WAL segment not covered.
    pub wal_segment: u64,
    /// Every device.
    pub devices: Vec<DeviceRecord>,
    /// Seen sequence numbers per device and boot.
    pub dedup: Vec<(Arc<str>, Boots)>,
    /// Latest point per series: (series id, time, value).
    pub latest: Vec<(u32, i64, f64)>,
    /// Dead letters per reason code since the data directory was created.
    pub dead_letter_counts: Vec<(u8, u64)>,
    /// Series-days with more than one segment.
    pub dirty_days: Vec<(u32, i64)>,
    /// Dead letters written so far (the sequence of the next one).
    pub dead_letter_seq: u64,
    /// The fleet's machines and estimators.
    pub fleet: FleetSnapshot,
    /// Maintenance windows set over the API; `None` in a version 1 snapshot, which kept them
    /// under [`LEGACY_MAINTENANCE_KEY`].
    pub maintenance: Option<Vec<MaintenanceWindow>>,
    /// Organisations.
    pub orgs: Vec<Organisation>,
    /// API keys (hashes only).
    pub keys: Vec<ApiKey>,
    /// Sequence of the next audit record.
    pub audit_seq: u64,
    /// The alert engine's state (empty before snapshot layout 4).
    pub alerts: crate::alerts::snapshot::AlertsSnapshot,
    /// The devices' attributes, by device id (empty before snapshot layout 6).
    pub attributes: Vec<(Arc<str>, super::attributes::DeviceAttributes)>,
}
