//! Alerts, silences and rules as the wire shows them, and the filters and matchers of requests.

use citytel_proto::v1;

use crate::alerts::labels;
use crate::alerts::rule::{Condition, Rule, Severity};
use crate::alerts::silence::{MatchOp, Silence};
use crate::alerts::view::{AlertView, Phase};
use crate::alerts::{EventKind, view::format_value};

/// A severity on the wire.
pub(crate) fn severity_to_wire(s: Severity) -> v1::AlertSeverity {
    match s {
        Severity::Critical => v1::AlertSeverity::Critical,
        Severity::Major => v1::AlertSeverity::Major,
        Severity::Minor => v1::AlertSeverity::Minor,
        Severity::Warning => v1::AlertSeverity::Warning,
    }
}

/// A phase on the wire.
pub(crate) fn phase_to_wire(p: Phase) -> v1::AlertState {
    match p {
        Phase::Pending => v1::AlertState::Pending,
        Phase::Firing => v1::AlertState::Firing,
        Phase::Resolved => v1::AlertState::Resolved,
    }
}

/// An event kind on the wire.
pub(crate) fn event_kind_to_wire(k: EventKind) -> v1::AlertEventKind {
    match k {
        EventKind::Pending => v1::AlertEventKind::Pending,
        EventKind::Firing => v1::AlertEventKind::Firing,
        EventKind::Resolved => v1::AlertEventKind::Resolved,
        EventKind::Cancelled => v1::AlertEventKind::Cancelled,
        EventKind::Acknowledged => v1::AlertEventKind::Acknowledged,
    }
}

/// An alert on the wire.
pub(crate) fn alert_to_wire(a: &AlertView) -> v1::Alert {
    v1::Alert {
        id: a.id,
        rule: a.rule.to_string(),
        severity: severity_to_wire(a.severity).into(),
        state: phase_to_wire(a.phase).into(),
        target_kind: a.target.kind.as_str().to_string(),
        target: a.target.id.to_string(),
        kind: a.kind.clone().unwrap_or_default(),
        site: a.site.clone().unwrap_or_default(),
        district: a.district.clone().unwrap_or_default(),
        labels: a.labels.clone().into_iter().collect(),
        annotations: a.annotations.clone().into_iter().collect(),
        fingerprint: labels::hex(a.fingerprint),
        pending_since_unix_ms: a.active_since_ms,
        firing_since_unix_ms: a.fired_at_ms.unwrap_or(0),
        resolved_unix_ms: a.resolved_at_ms.unwrap_or(0),
        value: a.value,
        notified: a.notified,
        suppressed_until_unix_ms: a.suppressed_until_ms.unwrap_or(0),
        silenced_by: a.silenced_by.clone(),
        ack: a.ack.as_ref().map(|ack| v1::Acknowledgement {
            by: ack.by.clone(),
            at_unix_ms: ack.at_ms,
        }),
    }
}

/// A matcher operator from the wire.
pub(crate) fn op_from_wire(op: i32) -> Option<MatchOp> {
    match v1::MatchOperator::try_from(op).ok()? {
        v1::MatchOperator::Equal => Some(MatchOp::Equal),
        v1::MatchOperator::NotEqual => Some(MatchOp::NotEqual),
        v1::MatchOperator::Regex => Some(MatchOp::Regex),
        v1::MatchOperator::NotRegex => Some(MatchOp::NotRegex),
    }
}

fn op_to_wire(op: MatchOp) -> v1::MatchOperator {
    match op {
        MatchOp::Equal => v1::MatchOperator::Equal,
        MatchOp::NotEqual => v1::MatchOperator::NotEqual,
        MatchOp::Regex => v1::MatchOperator::Regex,
        MatchOp::NotRegex => v1::MatchOperator::NotRegex,
    }
}

/// A silence on the wire; `now_ms` decides whether it is in force.
pub(crate) fn silence_to_wire(s: &Silence, now_ms: i64) -> v1::Silence {
    v1::Silence {
        id: s.id,
        matchers: s
            .matchers
            .iter()
            .map(|m| v1::Matcher {
                name: m.name.clone(),
                value: m.value.clone(),
                op: op_to_wire(m.op).into(),
            })
            .collect(),
        starts_unix_ms: s.starts_ms,
        ends_unix_ms: s.ends_ms,
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
        created_unix_ms: s.created_ms,
        active: s.active(now_ms),
    }
}

/// A rule's condition, for people.
fn condition_text(rule: &Rule) -> String {
    let window = |ms: i64| {
        humantime::format_duration(std::time::Duration::from_millis(ms.max(0).unsigned_abs()))
            .to_string()
    };
    match &rule.condition {
        Condition::State { states } => {
            let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
            format!("device {}", names.join(" or "))
        }
        Condition::Threshold {
            metric,
            op,
            value,
            clear,
        } => match clear {
            Some(c) => format!(
                "{metric} {} {}, clear {}",
                op.as_str(),
                format_value(*value),
                format_value(*c)
            ),
            None => format!("{metric} {} {}", op.as_str(), format_value(*value)),
        },
        Condition::Absence { metric, after_ms } => {
            format!("{metric} not received for {}", window(*after_ms))
        }
        Condition::Availability {
            target_percent,
            window_ms,
            ..
        } => format!(
            "availability below {} % over {}",
            format_value(*target_percent),
            window(*window_ms)
        ),
        Condition::Completeness {
            target_percent,
            window_ms,
            ..
        } => format!(
            "completeness below {} % over {}",
            format_value(*target_percent),
            window(*window_ms)
        ),
    }
}

/// A rule on the wire.
pub(crate) fn rule_to_wire(rule: &Rule) -> v1::AlertRule {
    v1::AlertRule {
        name: rule.name.to_string(),
        kind: rule.condition.kind_name().to_string(),
        severity: severity_to_wire(rule.severity).into(),
        for_ms: rule.for_ms,
        keep_firing_for_ms: rule.keep_firing_for_ms,
        per: rule.per.as_str().to_string(),
        condition: condition_text(rule),
    }
}

/// Whether `a` passes `filter`.
pub(crate) fn passes(filter: &v1::AlertFilter, a: &AlertView) -> bool {
    let state = phase_to_wire(a.phase) as i32;
    let severity = severity_to_wire(a.severity) as i32;
    let device =
        (a.target.kind == crate::alerts::rule::TargetKind::Device).then_some(&*a.target.id);
    (filter.states.is_empty() || filter.states.contains(&state))
        && (filter.severities.is_empty() || filter.severities.contains(&severity))
        && (filter.rule.is_empty() || filter.rule == *a.rule)
        && (filter.device_id.is_empty() || device == Some(filter.device_id.as_str()))
        && (filter.site.is_empty() || a.site.as_deref() == Some(filter.site.as_str()))
}
