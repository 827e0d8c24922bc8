//! Alerts as the API shows them ([`AlertView`]), and the labels and annotations of an alert,
//! built from its rule, its target and what the state knows of that target.

use std::sync::Arc;

use super::episode::{Ack, Episode, Target};
use super::labels::{self, Labels};
use super::outbox::AlertInfo;
use super::rule::{Condition, Rule, Severity, TargetKind};
use super::template::{Template, Var};
use super::world::World;

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Firing (listed first).
    Firing,
    /// Its condition holds, its `for` has not passed.
    Pending,
    /// Over.
    Resolved,
}

impl Phase {
    /// Stable name, as in the API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Firing => "firing",
            Phase::Pending => "pending",
            Phase::Resolved => "resolved",
        }
    }
}

/// An alert as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    /// Its id.
    pub id: u64,
    /// Its rule.
    pub rule: Arc<str>,
    /// Its severity.
    pub severity: Severity,
    /// Pending, firing or resolved.
    pub phase: Phase,
    /// What it is about.
    pub target: Target,
    /// The device's kind, for a device.
    pub kind: Option<String>,
    /// The site, for a device or a site.
    pub site: Option<String>,
    /// The district, where known.
    pub district: Option<String>,
    /// Its labels.
    pub labels: Labels,
    /// Its annotations.
    pub annotations: Labels,
    /// Its fingerprint.
    pub fingerprint: u64,
    /// When its condition started holding.
    pub active_since_ms: i64,
    /// When it fired.
    pub fired_at_ms: Option<i64>,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
    /// The value behind it.
    pub value: Option<f64>,
    /// Whether a firing notification went out for it.
    pub notified: bool,
    /// Until when a maintenance window suppresses it, if one does now.
    pub suppressed_until_ms: Option<i64>,
    /// The silences that cover it now.
    pub silenced_by: Vec<u64>,
    /// Its acknowledgement.
    pub ack: Option<Ack>,
}

/// What a rule's labels and templates need to know of a target.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetFacts {
    pub(crate) device: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) site: Option<String>,
    pub(crate) district: Option<String>,
    pub(crate) state: Option<&'static str>,
}

impl TargetFacts {
    /// What the state knows of `target`.
    pub(crate) fn of(target: &Target, world: &dyn World) -> TargetFacts {
        match target.kind {
            TargetKind::Device => match world.device(&target.id) {
                Some(d) => TargetFacts {
                    device: Some(d.id.to_string()),
                    kind: Some(d.kind.to_string()),
                    site: Some(d.site.to_string()),
                    district: d.district.map(str::to_string),
                    state: Some(world.state(&target.id).as_str()),
                },
                None => TargetFacts {
                    device: Some(target.id.to_string()),
                    ..TargetFacts::default()
                },
            },
            TargetKind::Site => TargetFacts {
                site: Some(target.id.to_string()),
                district: world.district(&target.id).map(str::to_string),
                ..TargetFacts::default()
            },
            TargetKind::District => TargetFacts {
                district: Some(target.id.to_string()),
                ..TargetFacts::default()
            },
        }
    }
}

/// The labels of `rule`'s alert about a target with `facts`.
pub(crate) fn labels_of(rule: &Rule, facts: &TargetFacts) -> Labels {
    let mut out = rule.labels.clone();
    out.insert("alertname".into(), rule.name.to_string());
    out.insert("severity".into(), rule.severity.as_str().into());
    let pairs = [
        ("device", &facts.device),
        ("kind", &facts.kind),
        ("site", &facts.site),
        ("district", &facts.district),
    ];
    for (name, value) in pairs {
        if let Some(v) = value {
            out.insert(name.into(), v.clone());
        }
    }
    out
}

/// The annotations of `rule`'s alert, rendered.
pub(crate) fn annotations_of(
    rule: &Rule,
    target: &Target,
    facts: &TargetFacts,
    labels: &Labels,
    value: Option<f64>,
) -> Labels {
    let lookup = |var: &Var| -> Option<String> {
        match var {
            Var::Label(name) => labels.get(name).cloned(),
            Var::Named(name) => match *name {
                "device" => facts.device.clone(),
                "kind" => facts.kind.clone(),
                "site" => facts.site.clone(),
                "district" => facts.district.clone(),
                "target" => Some(target.id.to_string()),
                "rule" => Some(rule.name.to_string()),
                "severity" => Some(rule.severity.as_str().into()),
                "state" => facts.state.map(str::to_string),
                "metric" => rule.condition.metric().map(|m| m.to_string()),
                "value" => value.map(format_value),
                "threshold" => match &rule.condition {
                    Condition::Threshold { value, .. } => Some(format_value(*value)),
                    Condition::Availability { target_percent, .. }
                    | Condition::Completeness { target_percent, .. } => {
                        Some(format_value(*target_percent))
                    }
                    _ => None,
                },
                _ => None,
            },
        }
    };
    let a = &rule.annotations;
    let named: [(&str, &Template); 3] = [
        ("summary", &a.summary),
        ("description", &a.description),
        ("runbook_url", &a.runbook_url),
    ];
    named
        .into_iter()
        .chain(a.extra.iter().map(|(k, v)| (k.as_str(), v)))
        .filter(|(_, t)| !t.is_empty())
        .map(|(k, t)| (k.to_string(), t.render(lookup)))
        .collect()
}

/// A value as templates show it: integers without a fraction, others with up to 4 decimals.
pub(crate) fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The identity and text of an alert of `rule` about `target`, as it fires now.
pub(crate) fn info_of(
    rule: &Rule,
    target: &Target,
    episode: &Episode,
    world: &dyn World,
) -> AlertInfo {
    let facts = TargetFacts::of(target, world);
    let labels = labels_of(rule, &facts);
    let annotations = annotations_of(rule, target, &facts, &labels, episode.value);
    AlertInfo {
        id: episode.id,
        rule: rule.name.clone(),
        severity: rule.severity,
        fingerprint: labels::fingerprint(&labels),
        labels,
        annotations,
        starts_at_ms: episode.fired_at.unwrap_or(episode.active_since),
    }
}
