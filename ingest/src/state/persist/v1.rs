//! Layouts written by citytel before record format 2, frozen: the postcard encodings of the
//! domain types as they were then, with no tag. They are only ever decoded; nothing writes them.
//!
//! Enums were encoded by postcard as their variant index (a varint), in declaration order, which
//! is the order of their stable codes (code = index + 1); the fields holding them are read as
//! that index here.

use std::sync::Arc;

use citytel_availability::{
    Cause, Change, ClockEstimator, DeviceState, Reboot, SeqSet, Span, Transition, machine,
};

use super::super::fleet::FleetSnapshot;
use super::super::maintenance::{MaintenanceWindow, Target};
use super::super::registry::DeviceRecord;
use super::super::snapshot::Snapshot;
use super::PersistError;
use serde::Deserialize;

/// The checkpoint snapshot, version byte 1.
#[derive(Debug, Deserialize)]
pub(super) struct SnapshotV1 {
    pub wal_segment: u64,
    pub devices: Vec<DeviceV1>,
    pub dedup: Vec<(String, Vec<(u64, SeqSetV1)>)>,
    pub latest: Vec<(u32, i64, f64)>,
    pub dead_letter_counts: Vec<(u8, u64)>,
    pub dirty_days: Vec<(u32, i64)>,
    pub dead_letter_seq: u64,
    pub tracker: TrackerV1,
}

/// A registry record.
#[derive(Debug, Deserialize)]
pub(super) struct DeviceV1 {
    pub device_id: String,
    pub kind: String,
    pub site: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub firmware_version: Option<String>,
    pub boot_id: Option<u64>,
    pub gateway_id: Option<String>,
    pub reporting_interval_ms: Option<u32>,
    pub readings_total: u64,
    pub metrics: Vec<String>,
}

/// A set of sequence numbers.
#[derive(Debug, Deserialize)]
pub(super) struct SeqSetV1 {
    pub ranges: Vec<(u64, u64)>,
    #[allow(dead_code)]
    pub count: u64,
}

/// The fleet tracker's part of the snapshot.
#[derive(Debug, Deserialize)]
pub(super) struct TrackerV1 {
    pub machines: Vec<(String, String, MachineV1)>,
    pub clocks: Vec<(String, ClockV1)>,
    pub last_produced: Vec<(String, Vec<(u64, u64)>)>,
    pub children: Vec<(String, Vec<String>)>,
    pub last_event_ms: i64,
    pub next_history_seq: u64,
}

/// A device state machine.
#[derive(Debug, Deserialize)]
pub(super) struct MachineV1 {
    pub state: u32,
    pub since_ms: Option<i64>,
    pub boot_id: Option<u64>,
    pub previous_boots: Vec<u64>,
    pub announced_interval_ms: Option<i64>,
    pub silent_since_ms: Option<i64>,
    pub gateway_offline: bool,
}

/// A clock offset estimator.
#[derive(Debug, Deserialize)]
pub(super) struct ClockV1 {
    pub bucket_ms: i64,
    pub max_buckets: u64,
    pub buckets: Vec<BucketV1>,
}

/// One bucket of a clock offset estimator.
#[derive(Debug, Deserialize)]
pub(super) struct BucketV1 {
    pub index: i64,
    pub min_offset_ms: i64,
    pub samples: u64,
}

/// A history record: a state change or a reboot.
#[derive(Debug, Deserialize)]
pub(super) enum ChangeV1 {
    Transition(TransitionV1),
    Reboot(RebootV1),
}

/// A state transition.
#[derive(Debug, Deserialize)]
pub(super) struct TransitionV1 {
    pub at_ms: i64,
    pub from: u32,
    pub to: u32,
    pub cause: u32,
    pub boot_id: Option<u64>,
}

/// A reboot.
#[derive(Debug, Deserialize)]
pub(super) struct RebootV1 {
    pub at_ms: i64,
    pub old_boot_id: u64,
    pub new_boot_id: u64,
}

/// A dead letter.
#[derive(Debug, Deserialize)]
pub(super) struct DeadLetterV1 {
    pub received_at_ms: i64,
    pub reason: u8,
    pub topic: String,
    pub detail: String,
    pub payload: Vec<u8>,
}

/// The maintenance windows set over the API (`meta` key `maintenance`), a list.
#[derive(Debug, Deserialize)]
pub(super) struct MaintenanceWindowV1 {
    pub id: u64,
    pub target: TargetV1,
    pub span: SpanV1,
    pub reason: String,
}

/// What a maintenance window covers.
#[derive(Debug, Deserialize)]
pub(super) enum TargetV1 {
    Device(String),
    Site(String),
}

/// A time span.
#[derive(Debug, Deserialize)]
pub(super) struct SpanV1 {
    pub start_ms: i64,
    pub end_ms: i64,
}

fn state(index: u32) -> Result<DeviceState, PersistError> {
    u8::try_from(index + 1)
        .ok()
        .and_then(DeviceState::from_code)
        .ok_or(PersistError::Invalid("device state"))
}

fn cause(index: u32) -> Result<Cause, PersistError> {
    u8::try_from(index + 1)
        .ok()
        .and_then(Cause::from_code)
        .ok_or(PersistError::Invalid("cause"))
}

impl DeviceV1 {
    fn into_domain(self) -> DeviceRecord {
        DeviceRecord {
            device_id: self.device_id.into(),
            kind: self.kind.into(),
            site: self.site.into(),
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
            firmware_version: self.firmware_version,
            boot_id: self.boot_id,
            gateway_id: self.gateway_id.map(Arc::from),
            reporting_interval_ms: self.reporting_interval_ms,
            readings_total: self.readings_total,
            metrics: self.metrics.into_iter().map(Arc::from).collect(),
            location: None,
            district: None,
        }
    }
}

impl SnapshotV1 {
    /// The snapshot in today's terms; its maintenance windows were kept apart (see
    /// [`MaintenanceWindowV1`]), so they are `None` here.
    pub(super) fn into_domain(self) -> Result<Snapshot, PersistError> {
        let t = self.tracker;
        let machines = t
            .machines
            .into_iter()
            .map(|(device, kind, m)| {
                Ok((
                    Arc::from(device),
                    Arc::from(kind),
                    machine::Snapshot {
                        state: state(m.state)?,
                        since_ms: m.since_ms,
                        boot_id: m.boot_id,
                        previous_boots: m.previous_boots,
                        announced_interval_ms: m.announced_interval_ms,
                        silent_since_ms: m.silent_since_ms,
                        gateway_offline: m.gateway_offline,
                        // Layouts 1 and 2 have no room for it: not stated.
                        announced_intermittent: None,
                    },
                ))
            })
            .collect::<Result<Vec<_>, PersistError>>()?;
        let dedup = self
            .dedup
            .into_iter()
            .map(|(device, boots)| {
                let boots = boots
                    .into_iter()
                    .map(|(boot, seqs)| {
                        SeqSet::from_ranges(seqs.ranges)
                            .map(|s| (boot, s))
                            .ok_or(PersistError::Invalid("sequence ranges"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((Arc::from(device), boots))
            })
            .collect::<Result<Vec<_>, PersistError>>()?;
        Ok(Snapshot {
            wal_segment: self.wal_segment,
            devices: self
                .devices
                .into_iter()
                .map(DeviceV1::into_domain)
                .collect(),
            dedup,
            latest: self.latest,
            dead_letter_counts: self.dead_letter_counts,
            dirty_days: self.dirty_days,
            dead_letter_seq: self.dead_letter_seq,
            fleet: FleetSnapshot {
                machines,
                clocks: t
                    .clocks
                    .into_iter()
                    .map(|(device, c)| {
                        let buckets = c
                            .buckets
                            .into_iter()
                            .map(|b| (b.index, b.min_offset_ms, b.samples))
                            .collect();
                        let max = usize::try_from(c.max_buckets).unwrap_or(usize::MAX);
                        (
                            Arc::from(device),
                            ClockEstimator::import(c.bucket_ms, max, buckets),
                        )
                    })
                    .collect(),
                last_produced: t
                    .last_produced
                    .into_iter()
                    .map(|(d, b)| (Arc::from(d), b))
                    .collect(),
                children: t
                    .children
                    .into_iter()
                    .map(|(g, c)| (Arc::from(g), c.into_iter().map(Arc::from).collect()))
                    .collect(),
                last_event_ms: t.last_event_ms,
                next_history_seq: t.next_history_seq,
            },
            maintenance: None,
            orgs: Vec::new(),
            keys: Vec::new(),
            audit_seq: 0,
            alerts: Default::default(),
            attributes: Vec::new(),
        })
    }
}

impl ChangeV1 {
    pub(super) fn into_domain(self) -> Result<Change, PersistError> {
        Ok(match self {
            ChangeV1::Transition(t) => Change::Transition(Transition {
                at_ms: t.at_ms,
                from: state(t.from)?,
                to: state(t.to)?,
                cause: cause(t.cause)?,
                boot_id: t.boot_id,
            }),
            ChangeV1::Reboot(r) => Change::Reboot(Reboot {
                at_ms: r.at_ms,
                old_boot_id: r.old_boot_id,
                new_boot_id: r.new_boot_id,
            }),
        })
    }
}

impl MaintenanceWindowV1 {
    pub(super) fn into_domain(self) -> MaintenanceWindow {
        MaintenanceWindow {
            id: self.id,
            target: match self.target {
                TargetV1::Device(d) => Target::Device(d),
                TargetV1::Site(s) => Target::Site(s),
            },
            span: Span::new(self.span.start_ms, self.span.end_ms),
            reason: self.reason,
        }
    }
}
