//! Snapshot layout 4: layout 3's snapshot ([`SnapshotV3`], unchanged), followed by the alert
//! engine's state ([`AlertsV4`]): the rules in force as TOML, the engine's time and counters,
//! open alerts, device recoveries, absence clocks, completeness buckets, silences, the
//! notifications not yet confirmed by every receiver, and the recently resolved alerts. Enums
//! are stored as their stable codes; rules are referred to by name. Snapshots of layouts 1 to 3
//! still decode, with no rules and no alerts.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::PersistError;
use super::v3::SnapshotV3;
use crate::alerts::episode::{Ack, Episode, Target};
use crate::alerts::outbox::{AlertInfo, Notification, Status};
use crate::alerts::rule::{Severity, TargetKind};
use crate::alerts::silence::{MatchOp, Matcher, Silence};
use crate::alerts::snapshot::{AlertsSnapshot, OpenAlert};
use crate::alerts::{Recovery, ResolvedAlert};
use crate::state::snapshot::Snapshot;

/// The checkpoint snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SnapshotV4 {
    /// Everything layout 3 holds.
    base: SnapshotV3,
    /// The alert engine.
    alerts: AlertsV4,
}

/// Completeness buckets of a device under a rule: (rule, device, [(bucket, stored, produced)]).
type BucketsV4 = (String, String, Vec<(i64, u32, u32)>);

#[derive(Debug, Serialize, Deserialize)]
struct AlertsV4 {
    rules_source: String,
    now_ms: i64,
    next_id: u64,
    next_silence: u64,
    next_seq: u64,
    open: Vec<OpenV4>,
    /// (device, down, recovered at).
    recovery: Vec<(String, bool, Option<i64>)>,
    /// (rule, device, last receive time of the metric).
    absence: Vec<(String, String, i64)>,
    /// (rule, device, [(bucket, stored, produced)]).
    buckets: Vec<BucketsV4>,
    silences: Vec<SilenceV4>,
    outbox: Vec<NotificationV4>,
    resolved: Vec<ResolvedV4>,
}

/// A target: kind code (1 device, 2 site, 3 district) and id.
#[derive(Debug, Serialize, Deserialize)]
struct TargetV4 {
    kind: u8,
    id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct InfoV4 {
    id: u64,
    rule: String,
    severity: u8,
    labels: Vec<(String, String)>,
    fingerprint: u64,
    annotations: Vec<(String, String)>,
    starts_at_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct OpenV4 {
    rule: String,
    target: TargetV4,
    id: u64,
    active_since: i64,
    fired_at: Option<i64>,
    clearing_since: Option<i64>,
    value: Option<f64>,
    notified: Option<u64>,
    /// (by, at).
    ack: Option<(String, i64)>,
    info: Option<InfoV4>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SilenceV4 {
    id: u64,
    /// (label, operator code, value).
    matchers: Vec<(String, u8, String)>,
    starts_ms: i64,
    ends_ms: i64,
    created_by: String,
    comment: String,
    created_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct NotificationV4 {
    seq: u64,
    /// 1 firing, 2 resolved.
    status: u8,
    at_ms: i64,
    alert: InfoV4,
}

#[derive(Debug, Serialize, Deserialize)]
struct ResolvedV4 {
    info: InfoV4,
    target: TargetV4,
    kind: Option<String>,
    site: Option<String>,
    district: Option<String>,
    active_since_ms: i64,
    fired_at_ms: i64,
    resolved_at_ms: i64,
    value: Option<f64>,
    notified: bool,
    ack: Option<(String, i64)>,
}

fn target(t: &Target) -> TargetV4 {
    TargetV4 {
        kind: t.kind.code(),
        id: t.id.to_string(),
    }
}

fn target_domain(t: TargetV4) -> Result<Target, PersistError> {
    Ok(Target {
        kind: TargetKind::from_code(t.kind).ok_or(PersistError::Invalid("alert target"))?,
        id: t.id.into(),
    })
}

fn info(i: &AlertInfo) -> InfoV4 {
    InfoV4 {
        id: i.id,
        rule: i.rule.to_string(),
        severity: i.severity.code(),
        labels: i
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        fingerprint: i.fingerprint,
        annotations: i
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        starts_at_ms: i.starts_at_ms,
    }
}

fn info_domain(i: InfoV4) -> Result<AlertInfo, PersistError> {
    Ok(AlertInfo {
        id: i.id,
        rule: i.rule.into(),
        severity: Severity::from_code(i.severity).ok_or(PersistError::Invalid("severity"))?,
        labels: i.labels.into_iter().collect(),
        fingerprint: i.fingerprint,
        annotations: i.annotations.into_iter().collect(),
        starts_at_ms: i.starts_at_ms,
    })
}

fn ack(a: &Option<Ack>) -> Option<(String, i64)> {
    a.as_ref().map(|a| (a.by.clone(), a.at_ms))
}

fn ack_domain(a: Option<(String, i64)>) -> Option<Ack> {
    a.map(|(by, at_ms)| Ack { by, at_ms })
}

impl From<&AlertsSnapshot> for AlertsV4 {
    fn from(s: &AlertsSnapshot) -> Self {
        AlertsV4 {
            rules_source: s.rules_source.clone(),
            now_ms: s.now_ms,
            next_id: s.next_id,
            next_silence: s.next_silence,
            next_seq: s.next_seq,
            open: s
                .open
                .iter()
                .map(|o| OpenV4 {
                    rule: o.rule.to_string(),
                    target: target(&o.target),
                    id: o.episode.id,
                    active_since: o.episode.active_since,
                    fired_at: o.episode.fired_at,
                    clearing_since: o.episode.clearing_since,
                    value: o.episode.value,
                    notified: o.episode.notified,
                    ack: ack(&o.episode.ack),
                    info: o.info.as_deref().map(info),
                })
                .collect(),
            recovery: s
                .recovery
                .iter()
                .map(|(d, r)| (d.to_string(), r.down, r.recovered_ms))
                .collect(),
            absence: s
                .absence
                .iter()
                .map(|(r, d, at)| (r.to_string(), d.to_string(), *at))
                .collect(),
            buckets: s
                .buckets
                .iter()
                .map(|(r, d, b)| (r.to_string(), d.to_string(), b.clone()))
                .collect(),
            silences: s
                .silences
                .iter()
                .map(|s| SilenceV4 {
                    id: s.id,
                    matchers: s
                        .matchers
                        .iter()
                        .map(|m| (m.name.clone(), m.op.code(), m.value.clone()))
                        .collect(),
                    starts_ms: s.starts_ms,
                    ends_ms: s.ends_ms,
                    created_by: s.created_by.clone(),
                    comment: s.comment.clone(),
                    created_ms: s.created_ms,
                })
                .collect(),
            outbox: s
                .outbox
                .iter()
                .map(|n| NotificationV4 {
                    seq: n.seq,
                    status: n.status.code(),
                    at_ms: n.at_ms,
                    alert: info(&n.alert),
                })
                .collect(),
            resolved: s
                .resolved
                .iter()
                .map(|r| ResolvedV4 {
                    info: info(&r.info),
                    target: target(&r.target),
                    kind: r.kind.clone(),
                    site: r.site.clone(),
                    district: r.district.clone(),
                    active_since_ms: r.active_since_ms,
                    fired_at_ms: r.fired_at_ms,
                    resolved_at_ms: r.resolved_at_ms,
                    value: r.value,
                    notified: r.notified,
                    ack: ack(&r.ack),
                })
                .collect(),
        }
    }
}

impl AlertsV4 {
    fn into_domain(self) -> Result<AlertsSnapshot, PersistError> {
        let open = self
            .open
            .into_iter()
            .map(|o| {
                Ok(OpenAlert {
                    rule: o.rule.into(),
                    target: target_domain(o.target)?,
                    episode: Episode {
                        id: o.id,
                        active_since: o.active_since,
                        fired_at: o.fired_at,
                        clearing_since: o.clearing_since,
                        value: o.value,
                        notified: o.notified,
                        ack: ack_domain(o.ack),
                    },
                    info: o.info.map(info_domain).transpose()?.map(Arc::new),
                })
            })
            .collect::<Result<_, PersistError>>()?;
        let silences = self
            .silences
            .into_iter()
            .map(|s| {
                let matchers = s
                    .matchers
                    .into_iter()
                    .map(|(name, op, value)| {
                        let op = MatchOp::from_code(op)
                            .ok_or(PersistError::Invalid("matcher operator"))?;
                        Matcher::new(&name, op, &value)
                            .map_err(|_| PersistError::Invalid("silence matcher"))
                    })
                    .collect::<Result<_, PersistError>>()?;
                Ok(Silence {
                    id: s.id,
                    matchers,
                    starts_ms: s.starts_ms,
                    ends_ms: s.ends_ms,
                    created_by: s.created_by,
                    comment: s.comment,
                    created_ms: s.created_ms,
                })
            })
            .collect::<Result<_, PersistError>>()?;
        let outbox = self
            .outbox
            .into_iter()
            .map(|n| {
                Ok(Notification {
                    seq: n.seq,
                    status: Status::from_code(n.status)
                        .ok_or(PersistError::Invalid("notification status"))?,
                    at_ms: n.at_ms,
                    alert: Arc::new(info_domain(n.alert)?),
                })
            })
            .collect::<Result<_, PersistError>>()?;
        let resolved = self
            .resolved
            .into_iter()
            .map(|r| {
                Ok(ResolvedAlert {
                    info: Arc::new(info_domain(r.info)?),
                    target: target_domain(r.target)?,
                    kind: r.kind,
                    site: r.site,
                    district: r.district,
                    active_since_ms: r.active_since_ms,
                    fired_at_ms: r.fired_at_ms,
                    resolved_at_ms: r.resolved_at_ms,
                    value: r.value,
                    notified: r.notified,
                    ack: ack_domain(r.ack),
                })
            })
            .collect::<Result<_, PersistError>>()?;
        Ok(AlertsSnapshot {
            rules_source: self.rules_source,
            now_ms: self.now_ms,
            next_id: self.next_id,
            next_silence: self.next_silence,
            next_seq: self.next_seq,
            open,
            recovery: self
                .recovery
                .into_iter()
                .map(|(d, down, recovered_ms)| (Arc::from(d), Recovery { down, recovered_ms }))
                .collect(),
            absence: self
                .absence
                .into_iter()
                .map(|(r, d, at)| (Arc::from(r), Arc::from(d), at))
                .collect(),
            buckets: self
                .buckets
                .into_iter()
                .map(|(r, d, b)| (Arc::from(r), Arc::from(d), b))
                .collect(),
            silences,
            outbox,
            resolved,
        })
    }
}

impl From<&Snapshot> for SnapshotV4 {
    fn from(s: &Snapshot) -> Self {
        SnapshotV4 {
            base: SnapshotV3::from(s),
            alerts: AlertsV4::from(&s.alerts),
        }
    }
}

impl SnapshotV4 {
    pub(super) fn into_domain(self) -> Result<Snapshot, PersistError> {
        let mut snapshot = self.base.into_domain()?;
        snapshot.alerts = self.alerts.into_domain()?;
        Ok(snapshot)
    }
}
