//! The layouts of record format 2: persistence types of their own, converted from and to the
//! domain types, so a change to a domain type never changes what is on disk by accident. Enums
//! are stored as their stable one-byte codes; a new field needs a new version, and new variants
//! are only ever appended. History records, dead letters and commands are still written in these
//! layouts; the snapshot is written in layout 4 ([`super::v4`]), which embeds this one's.

use std::sync::Arc;

use citytel_availability::{
    Cause, Change, ClockEstimator, DeviceState, Reboot, SeqSet, Span, Transition, machine,
};
use serde::{Deserialize, Serialize};

use super::PersistError;
use crate::alerts::silence::MatchOp;
use crate::decode::RejectReason;
use crate::state::access::audit::AuditRecord;
use crate::state::access::{ApiKey, KeyId, Organisation, Role, Scope};
use crate::state::command::{Actor, Command, Submitted};
use crate::state::dead_letters::DeadLetter;
use crate::state::fleet::FleetSnapshot;
use crate::state::maintenance::{MaintenanceWindow, Target};
use crate::state::registry::DeviceRecord;
use crate::state::snapshot::Snapshot;

/// A device's remembered boots: (boot id, inclusive ranges of sequence numbers seen).
type BootsV2 = Vec<(u64, Vec<(u64, u64)>)>;

/// The checkpoint snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SnapshotV2 {
    wal_segment: u64,
    devices: Vec<DeviceV2>,
    dedup: Vec<(String, BootsV2)>,
    latest: Vec<(u32, i64, f64)>,
    dead_letter_counts: Vec<(u8, u64)>,
    dirty_days: Vec<(u32, i64)>,
    dead_letter_seq: u64,
    fleet: FleetV2,
    maintenance: Vec<MaintenanceWindowV2>,
    orgs: Vec<OrganisationV2>,
    keys: Vec<ApiKeyV2>,
    audit_seq: u64,
}

/// An organisation.
#[derive(Debug, Serialize, Deserialize)]
struct OrganisationV2 {
    id: String,
    name: String,
    licence: String,
    created_ms: i64,
}

/// A key's scope.
#[derive(Debug, Serialize, Deserialize)]
struct ScopeV2 {
    districts: Vec<String>,
    sites: Vec<String>,
    kinds: Vec<String>,
    devices: Vec<String>,
    metrics: Option<Vec<String>>,
}

/// An API key: its hash, never its secret.
#[derive(Debug, Serialize, Deserialize)]
struct ApiKeyV2 {
    id: String,
    org: String,
    role: u8,
    scope: ScopeV2,
    name: String,
    hash: [u8; 32],
    created_ms: i64,
    expires_ms: Option<i64>,
    revoked_ms: Option<i64>,
}

/// An audit record.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AuditRecordV2 {
    seq: u64,
    at_ms: i64,
    org: String,
    key: String,
    method: String,
    target: String,
    result: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct DeviceV2 {
    device_id: String,
    kind: String,
    site: String,
    first_seen_ms: i64,
    last_seen_ms: i64,
    firmware_version: Option<String>,
    boot_id: Option<u64>,
    gateway_id: Option<String>,
    reporting_interval_ms: Option<u32>,
    readings_total: u64,
    metrics: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FleetV2 {
    machines: Vec<(String, String, MachineV2)>,
    clocks: Vec<(String, ClockV2)>,
    last_produced: Vec<(String, Vec<(u64, u64)>)>,
    children: Vec<(String, Vec<String>)>,
    last_event_ms: i64,
    next_history_seq: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct MachineV2 {
    state: u8,
    since_ms: Option<i64>,
    boot_id: Option<u64>,
    previous_boots: Vec<u64>,
    announced_interval_ms: Option<i64>,
    silent_since_ms: Option<i64>,
    gateway_offline: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct ClockV2 {
    bucket_ms: i64,
    max_buckets: u64,
    /// (index, smallest offset, samples), oldest first.
    buckets: Vec<(i64, i64, u64)>,
}

/// A maintenance window: exactly one of `device` and `site` is set.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MaintenanceWindowV2 {
    id: u64,
    device: Option<String>,
    site: Option<String>,
    start_ms: i64,
    end_ms: i64,
    reason: String,
}

/// A history record. Variants are append-only.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum ChangeV2 {
    /// A state transition.
    Transition {
        at_ms: i64,
        from: u8,
        to: u8,
        cause: u8,
        boot_id: Option<u64>,
    },
    /// A reboot.
    Reboot {
        at_ms: i64,
        old_boot_id: u64,
        new_boot_id: u64,
    },
}

/// A dead letter.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct DeadLetterV2 {
    received_at_ms: i64,
    reason: u8,
    topic: String,
    detail: String,
    payload: Vec<u8>,
}

/// A command in the WAL with who submitted it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SubmittedV2 {
    org: String,
    key: String,
    command: CommandV2,
}

/// A command. Variants are append-only.
#[derive(Debug, Serialize, Deserialize)]
enum CommandV2 {
    /// Add a maintenance window (its id is assigned when applied).
    SetMaintenance {
        device: Option<String>,
        site: Option<String>,
        start_ms: i64,
        end_ms: i64,
        reason: String,
    },
    /// Remove the maintenance window with this id.
    DeleteMaintenance { id: u64 },
    /// Add an organisation.
    CreateOrganisation(OrganisationV2),
    /// Add an API key.
    CreateKey(ApiKeyV2),
    /// Revoke an API key.
    RevokeKey { id: String },
    /// Acknowledge an open alert.
    AckAlert { id: u64, by: String },
    /// Add a silence: matchers as (label, operator code, value).
    CreateSilence {
        matchers: Vec<(String, u8, String)>,
        starts_ms: i64,
        ends_ms: i64,
        created_by: String,
        comment: String,
    },
    /// End a silence.
    ExpireSilence { id: u64 },
    /// Put alert rules in force (the `[[rule]]` tables, as TOML).
    SetAlertRules { source: String },
}

fn state(code: u8) -> Result<DeviceState, PersistError> {
    DeviceState::from_code(code).ok_or(PersistError::Invalid("device state"))
}

fn cause(code: u8) -> Result<Cause, PersistError> {
    Cause::from_code(code).ok_or(PersistError::Invalid("cause"))
}

fn target(device: Option<String>, site: Option<String>) -> Result<Target, PersistError> {
    match (device, site) {
        (Some(d), None) => Ok(Target::Device(d)),
        (None, Some(s)) => Ok(Target::Site(s)),
        _ => Err(PersistError::Invalid("maintenance target")),
    }
}

fn target_parts(target: &Target) -> (Option<String>, Option<String>) {
    match target {
        Target::Device(d) => (Some(d.clone()), None),
        Target::Site(s) => (None, Some(s.clone())),
    }
}

impl From<&DeviceRecord> for DeviceV2 {
    fn from(d: &DeviceRecord) -> Self {
        DeviceV2 {
            device_id: d.device_id.to_string(),
            kind: d.kind.to_string(),
            site: d.site.to_string(),
            first_seen_ms: d.first_seen_ms,
            last_seen_ms: d.last_seen_ms,
            firmware_version: d.firmware_version.clone(),
            boot_id: d.boot_id,
            gateway_id: d.gateway_id.as_deref().map(str::to_string),
            reporting_interval_ms: d.reporting_interval_ms,
            readings_total: d.readings_total,
            metrics: d.metrics.iter().map(|m| m.to_string()).collect(),
        }
    }
}

impl From<DeviceV2> for DeviceRecord {
    fn from(d: DeviceV2) -> Self {
        DeviceRecord {
            device_id: d.device_id.into(),
            kind: d.kind.into(),
            site: d.site.into(),
            first_seen_ms: d.first_seen_ms,
            last_seen_ms: d.last_seen_ms,
            firmware_version: d.firmware_version,
            boot_id: d.boot_id,
            gateway_id: d.gateway_id.map(Arc::from),
            reporting_interval_ms: d.reporting_interval_ms,
            readings_total: d.readings_total,
            metrics: d.metrics.into_iter().map(Arc::from).collect(),
            location: None,
            district: None,
        }
    }
}

impl From<&MaintenanceWindow> for MaintenanceWindowV2 {
    fn from(w: &MaintenanceWindow) -> Self {
        let (device, site) = target_parts(&w.target);
        MaintenanceWindowV2 {
            id: w.id,
            device,
            site,
            start_ms: w.span.start_ms,
            end_ms: w.span.end_ms,
            reason: w.reason.clone(),
        }
    }
}

impl MaintenanceWindowV2 {
    fn into_domain(self) -> Result<MaintenanceWindow, PersistError> {
        Ok(MaintenanceWindow {
            id: self.id,
            target: target(self.device, self.site)?,
            span: Span::new(self.start_ms, self.end_ms),
            reason: self.reason,
        })
    }
}

impl From<&Organisation> for OrganisationV2 {
    fn from(o: &Organisation) -> Self {
        OrganisationV2 {
            id: o.id.clone(),
            name: o.name.clone(),
            licence: o.licence.clone(),
            created_ms: o.created_ms,
        }
    }
}

impl From<OrganisationV2> for Organisation {
    fn from(o: OrganisationV2) -> Self {
        Organisation {
            id: o.id,
            name: o.name,
            licence: o.licence,
            created_ms: o.created_ms,
        }
    }
}

impl From<&ApiKey> for ApiKeyV2 {
    fn from(k: &ApiKey) -> Self {
        ApiKeyV2 {
            id: k.id.as_str().to_string(),
            org: k.org.clone(),
            role: k.role.code(),
            scope: ScopeV2 {
                districts: k.scope.districts.clone(),
                sites: k.scope.sites.clone(),
                kinds: k.scope.kinds.clone(),
                devices: k.scope.devices.clone(),
                metrics: k.scope.metrics.clone(),
            },
            name: k.name.clone(),
            hash: k.hash,
            created_ms: k.created_ms,
            expires_ms: k.expires_ms,
            revoked_ms: k.revoked_ms,
        }
    }
}

impl ApiKeyV2 {
    fn into_domain(self) -> Result<ApiKey, PersistError> {
        Ok(ApiKey {
            id: KeyId::parse(&self.id).map_err(|_| PersistError::Invalid("key id"))?,
            org: self.org,
            role: Role::from_code(self.role).ok_or(PersistError::Invalid("role"))?,
            scope: Scope {
                districts: self.scope.districts,
                sites: self.scope.sites,
                kinds: self.scope.kinds,
                devices: self.scope.devices,
                metrics: self.scope.metrics,
            },
            name: self.name,
            hash: self.hash,
            created_ms: self.created_ms,
            expires_ms: self.expires_ms,
            revoked_ms: self.revoked_ms,
        })
    }
}

impl From<&AuditRecord> for AuditRecordV2 {
    fn from(r: &AuditRecord) -> Self {
        AuditRecordV2 {
            seq: r.seq,
            at_ms: r.at_ms,
            org: r.org.clone(),
            key: r.key.clone(),
            method: r.method.clone(),
            target: r.target.clone(),
            result: r.result.clone(),
        }
    }
}

impl From<AuditRecordV2> for AuditRecord {
    fn from(r: AuditRecordV2) -> Self {
        AuditRecord {
            seq: r.seq,
            at_ms: r.at_ms,
            org: r.org,
            key: r.key,
            method: r.method,
            target: r.target,
            result: r.result,
        }
    }
}

impl From<&Snapshot> for SnapshotV2 {
    fn from(s: &Snapshot) -> Self {
        let f = &s.fleet;
        SnapshotV2 {
            wal_segment: s.wal_segment,
            devices: s.devices.iter().map(DeviceV2::from).collect(),
            dedup: s
                .dedup
                .iter()
                .map(|(d, boots)| {
                    let boots = boots
                        .iter()
                        .map(|(b, seqs)| (*b, seqs.as_ranges().to_vec()))
                        .collect();
                    (d.to_string(), boots)
                })
                .collect(),
            latest: s.latest.clone(),
            dead_letter_counts: s.dead_letter_counts.clone(),
            dirty_days: s.dirty_days.clone(),
            dead_letter_seq: s.dead_letter_seq,
            fleet: FleetV2 {
                machines: f
                    .machines
                    .iter()
                    .map(|(d, k, m)| {
                        let m = MachineV2 {
                            state: m.state.code(),
                            since_ms: m.since_ms,
                            boot_id: m.boot_id,
                            previous_boots: m.previous_boots.clone(),
                            announced_interval_ms: m.announced_interval_ms,
                            silent_since_ms: m.silent_since_ms,
                            gateway_offline: m.gateway_offline,
                        };
                        (d.to_string(), k.to_string(), m)
                    })
                    .collect(),
                clocks: f
                    .clocks
                    .iter()
                    .map(|(d, c)| {
                        let (bucket_ms, max, buckets) = c.export();
                        let clock = ClockV2 {
                            bucket_ms,
                            max_buckets: max as u64,
                            buckets,
                        };
                        (d.to_string(), clock)
                    })
                    .collect(),
                last_produced: f
                    .last_produced
                    .iter()
                    .map(|(d, b)| (d.to_string(), b.clone()))
                    .collect(),
                children: f
                    .children
                    .iter()
                    .map(|(g, c)| (g.to_string(), c.iter().map(|c| c.to_string()).collect()))
                    .collect(),
                last_event_ms: f.last_event_ms,
                next_history_seq: f.next_history_seq,
            },
            maintenance: s
                .maintenance
                .iter()
                .flatten()
                .map(MaintenanceWindowV2::from)
                .collect(),
            orgs: s.orgs.iter().map(OrganisationV2::from).collect(),
            keys: s.keys.iter().map(ApiKeyV2::from).collect(),
            audit_seq: s.audit_seq,
        }
    }
}

impl SnapshotV2 {
    pub(super) fn into_domain(self) -> Result<Snapshot, PersistError> {
        let f = self.fleet;
        let machines = f
            .machines
            .into_iter()
            .map(|(d, k, m)| {
                Ok((
                    Arc::from(d),
                    Arc::from(k),
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
            .map(|(d, boots)| {
                let boots = boots
                    .into_iter()
                    .map(|(b, ranges)| {
                        SeqSet::from_ranges(ranges)
                            .map(|s| (b, s))
                            .ok_or(PersistError::Invalid("sequence ranges"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((Arc::from(d), boots))
            })
            .collect::<Result<Vec<_>, PersistError>>()?;
        let maintenance = self
            .maintenance
            .into_iter()
            .map(MaintenanceWindowV2::into_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot {
            wal_segment: self.wal_segment,
            devices: self.devices.into_iter().map(DeviceRecord::from).collect(),
            dedup,
            latest: self.latest,
            dead_letter_counts: self.dead_letter_counts,
            dirty_days: self.dirty_days,
            dead_letter_seq: self.dead_letter_seq,
            fleet: FleetSnapshot {
                machines,
                clocks: f
                    .clocks
                    .into_iter()
                    .map(|(d, c)| {
                        let max = usize::try_from(c.max_buckets).unwrap_or(usize::MAX);
                        let clock = ClockEstimator::import(c.bucket_ms, max, c.buckets);
                        (Arc::from(d), clock)
                    })
                    .collect(),
                last_produced: f
                    .last_produced
                    .into_iter()
                    .map(|(d, b)| (Arc::from(d), b))
                    .collect(),
                children: f
                    .children
                    .into_iter()
                    .map(|(g, c)| (Arc::from(g), c.into_iter().map(Arc::from).collect()))
                    .collect(),
                last_event_ms: f.last_event_ms,
                next_history_seq: f.next_history_seq,
            },
            maintenance: Some(maintenance),
            orgs: self.orgs.into_iter().map(Organisation::from).collect(),
            keys: self
                .keys
                .into_iter()
                .map(ApiKeyV2::into_domain)
                .collect::<Result<_, _>>()?,
            audit_seq: self.audit_seq,
            // Layouts 2 and 3 have no room for it: no rules, no alerts.
            alerts: Default::default(),
            attributes: Vec::new(),
        })
    }
}

impl From<&Change> for ChangeV2 {
    fn from(c: &Change) -> Self {
        match *c {
            Change::Transition(t) => ChangeV2::Transition {
                at_ms: t.at_ms,
                from: t.from.code(),
                to: t.to.code(),
                cause: t.cause.code(),
                boot_id: t.boot_id,
            },
            Change::Reboot(r) => ChangeV2::Reboot {
                at_ms: r.at_ms,
                old_boot_id: r.old_boot_id,
                new_boot_id: r.new_boot_id,
            },
        }
    }
}

impl ChangeV2 {
    pub(super) fn into_domain(self) -> Result<Change, PersistError> {
        Ok(match self {
            ChangeV2::Transition {
                at_ms,
                from,
                to,
                cause: c,
                boot_id,
            } => Change::Transition(Transition {
                at_ms,
                from: state(from)?,
                to: state(to)?,
                cause: cause(c)?,
                boot_id,
            }),
            ChangeV2::Reboot {
                at_ms,
                old_boot_id,
                new_boot_id,
            } => Change::Reboot(Reboot {
                at_ms,
                old_boot_id,
                new_boot_id,
            }),
        })
    }
}

impl From<&DeadLetter> for DeadLetterV2 {
    fn from(l: &DeadLetter) -> Self {
        DeadLetterV2 {
            received_at_ms: l.received_at_ms,
            reason: l.reason.code(),
            topic: l.topic.clone(),
            detail: l.detail.clone(),
            payload: l.payload.to_vec(),
        }
    }
}

/// A dead letter from its persisted fields (shared by both layouts).
pub(super) fn dead_letter(
    received_at_ms: i64,
    reason: u8,
    topic: String,
    detail: String,
    payload: Vec<u8>,
) -> Result<DeadLetter, PersistError> {
    Ok(DeadLetter {
        received_at_ms,
        reason: RejectReason::from_code(reason).ok_or(PersistError::Invalid("reject reason"))?,
        topic,
        detail,
        payload: payload.into(),
    })
}

impl DeadLetterV2 {
    pub(super) fn into_domain(self) -> Result<DeadLetter, PersistError> {
        dead_letter(
            self.received_at_ms,
            self.reason,
            self.topic,
            self.detail,
            self.payload,
        )
    }
}

impl From<&Submitted> for SubmittedV2 {
    fn from(s: &Submitted) -> Self {
        SubmittedV2 {
            org: s.actor.org.clone(),
            key: s.actor.key.clone(),
            command: CommandV2::from(&s.command),
        }
    }
}

impl SubmittedV2 {
    pub(super) fn into_domain(self) -> Result<Submitted, PersistError> {
        Ok(Submitted {
            actor: Actor {
                org: self.org,
                key: self.key,
            },
            command: self.command.into_domain()?,
        })
    }
}

impl From<&Command> for CommandV2 {
    fn from(c: &Command) -> Self {
        match c {
            Command::SetMaintenance {
                target,
                span,
                reason,
            } => {
                let (device, site) = target_parts(target);
                CommandV2::SetMaintenance {
                    device,
                    site,
                    start_ms: span.start_ms,
                    end_ms: span.end_ms,
                    reason: reason.clone(),
                }
            }
            Command::DeleteMaintenance { id } => CommandV2::DeleteMaintenance { id: *id },
            Command::CreateOrganisation(org) => {
                CommandV2::CreateOrganisation(OrganisationV2::from(org))
            }
            Command::CreateKey(key) => CommandV2::CreateKey(ApiKeyV2::from(key)),
            Command::RevokeKey { id } => CommandV2::RevokeKey {
                id: id.as_str().to_string(),
            },
            Command::AckAlert { id, by } => CommandV2::AckAlert {
                id: *id,
                by: by.clone(),
            },
            Command::CreateSilence {
                matchers,
                starts_ms,
                ends_ms,
                created_by,
                comment,
            } => CommandV2::CreateSilence {
                matchers: matchers
                    .iter()
                    .map(|(n, op, v)| (n.clone(), op.code(), v.clone()))
                    .collect(),
                starts_ms: *starts_ms,
                ends_ms: *ends_ms,
                created_by: created_by.clone(),
                comment: comment.clone(),
            },
            Command::ExpireSilence { id } => CommandV2::ExpireSilence { id: *id },
            Command::SetAlertRules { source } => CommandV2::SetAlertRules {
                source: source.clone(),
            },
        }
    }
}

impl CommandV2 {
    fn into_domain(self) -> Result<Command, PersistError> {
        Ok(match self {
            CommandV2::SetMaintenance {
                device,
                site,
                start_ms,
                end_ms,
                reason,
            } => Command::SetMaintenance {
                target: target(device, site)?,
                span: Span::new(start_ms, end_ms),
                reason,
            },
            CommandV2::DeleteMaintenance { id } => Command::DeleteMaintenance { id },
            CommandV2::CreateOrganisation(org) => Command::CreateOrganisation(org.into()),
            CommandV2::CreateKey(key) => Command::CreateKey(key.into_domain()?),
            CommandV2::RevokeKey { id } => Command::RevokeKey {
                id: KeyId::parse(&id).map_err(|_| PersistError::Invalid("key id"))?,
            },
            CommandV2::AckAlert { id, by } => Command::AckAlert { id, by },
            CommandV2::CreateSilence {
                matchers,
                starts_ms,
                ends_ms,
                created_by,
                comment,
            } => Command::CreateSilence {
                matchers: matchers
                    .into_iter()
                    .map(|(n, op, v)| {
                        let op = MatchOp::from_code(op)
                            .ok_or(PersistError::Invalid("matcher operator"))?;
                        Ok((n, op, v))
                    })
                    .collect::<Result<_, PersistError>>()?,
                starts_ms,
                ends_ms,
                created_by,
                comment,
            },
            CommandV2::ExpireSilence { id } => Command::ExpireSilence { id },
            CommandV2::SetAlertRules { source } => Command::SetAlertRules { source },
        })
    }
}
