//! The `[alerts]` section: rules (`[[alerts.rule]]`), receivers (`[[alerts.alertmanager]]`,
//! `[[alerts.webhook]]`) and delivery settings, and their validation into runtime types, with
//! errors that name the rule and the key.
//!
//! A rule's kind decides which keys it takes:
//!
//! | kind | keys |
//! | --- | --- |
//! | `state` | `states` (of `offline`, `late`, `unreachable`) |
//! | `threshold` | `metric`, `op` (`>`, `>=`, `<`, `<=`, `==`, `!=`), `value`, optional `clear` |
//! | `absence` | `metric`, `after` |
//! | `availability`, `completeness` | `target` (percent), `window`, `interval`, `per` (`device`, `site`, `district`) |
//!
//! and every kind takes `name`, `severity`, `devices` (`kinds`, `sites`, `districts`, `ids`),
//! `for`, `keep_firing_for`, `labels` and `annotations` (`summary`, `description`,
//! `runbook_url`, any other name). The rules are also what goes into the WAL when they change
//! ([`rules_source`]): the TOML of the rule list, parsed again when applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use citytel_availability::DeviceState;
use serde::{Deserialize, Serialize};

use super::labels::RESERVED;
use super::rule::{Annotations, Condition, Op, Rule, Selector, Severity, TargetKind};
use super::template::Template;

/// Most rules.
pub const MAX_RULES: usize = 10_000;
/// Most counting buckets per window (window / interval) of a completeness rule.
pub const MAX_BUCKETS: i64 = 1440;

/// `[alerts]`: alert rules and where notifications go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// How often firing alerts are sent to each Alertmanager again (Alertmanager resolves an
    /// alert it stops hearing about after four times this).
    #[serde(with = "humantime_serde")]
    pub resend_interval: Duration,
    /// Base URL of citytel's dashboard, for links in notifications (`generatorURL`,
    /// `externalURL`); empty: no links.
    pub external_url: String,
    /// First wait before a failed notification is retried; doubles up to `retry_max`.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest wait between retries.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Time for one notification request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Notifications kept for receivers that have not confirmed them; beyond, the oldest are
    /// dropped (and counted).
    pub outbox_limit: usize,
    /// At shutdown, how long notifications not yet confirmed may keep being sent.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Alertmanager instances (`[[alerts.alertmanager]]`), sent every alert through their v2 API.
    pub alertmanager: Vec<ReceiverConfig>,
    /// Webhook receivers (`[[alerts.webhook]]`), sent Alertmanager's webhook payload (version 4).
    pub webhook: Vec<ReceiverConfig>,
    /// The rules (`[[alerts.rule]]`).
    pub rule: Vec<RuleConfig>,
}

/// A receiver: a name (its cursor's directory and metric label) and a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Unique among receivers: 1 to 64 characters of `[a-z0-9_-]`.
    pub name: String,
    /// For an Alertmanager, its base URL (`/api/v2/alerts` is appended); for a webhook, the
    /// URL posted to.
    pub url: String,
}

/// Which devices a rule looks at (`devices = { ... }`); empty lists do not restrict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesConfig {
    /// Device kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Sites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
    /// Districts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub districts: Vec<String>,
    /// Device ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
}

/// One `[[alerts.rule]]` as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name, the `alertname` label.
    pub name: String,
    /// `state`, `threshold`, `absence`, `availability` or `completeness`.
    pub kind: String,
    /// `critical`, `major`, `minor` or `warning`.
    pub severity: String,
    /// The devices it looks at.
    #[serde(default, skip_serializing_if = "is_default")]
    pub devices: DevicesConfig,
    /// How long the condition must hold before the alert fires (default 0s).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// How long it keeps firing after the condition stopped holding (default 0s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<String>,
    /// state: the states that fire it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<Vec<String>>,
    /// threshold, absence: the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// threshold: the comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// threshold: the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// threshold: the value past which a firing alert clears (hysteresis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// absence: how long the metric may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// availability, completeness: the target, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// availability, completeness: the rolling window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// availability, completeness: how often it is evaluated (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// availability, completeness: `device` (default), `site` or `district`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<String>,
    /// Extra labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations (templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A rule or receiver that does not validate: which one, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}.{key}: {message}")]
pub struct AlertConfigError {
    /// Where: `alerts.rule[2] "cabinet-offline"`, `alerts.webhook[0] "oncall"` or `alerts`.
    pub place: String,
    /// The key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A receiver's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiverKind {
    /// Alertmanager's v2 API.
    Alertmanager,
    /// A webhook taking Alertmanager's webhook payload.
    Webhook,
}

/// A validated receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// Its name.
    pub name: String,
    /// Its protocol.
    pub kind: ReceiverKind,
    /// Where requests go.
    pub url: String,
}

/// The validated section.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    /// The rules.
    pub rules: Vec<Arc<Rule>>,
    /// The rules as they go into the WAL ([`rules_source`]).
    pub rules_source: String,
    /// The receivers.
    pub receivers: Vec<Receiver>,
    /// The section itself, for the delivery settings.
    pub config: AlertsConfig,
}

/// The rules as a TOML document of `[[rule]]` tables: what a change of rules writes to the WAL
/// and the snapshot, and what [`parse_rules`] reads back. No rules: the empty string.
pub fn rules_source(rules: &[RuleConfig]) -> String {
    if rules.is_empty() {
        return String::new();
    }
    #[derive(Serialize)]
    struct File<'a> {
        rule: &'a [RuleConfig],
    }
    toml::to_string(&File { rule: rules }).unwrap_or_default()
}

/// Reads a document written by [`rules_source`] (or any TOML with `[[rule]]` tables, or an
/// `[alerts]` section with `[[alerts.rule]]` tables) and validates its rules.
pub fn parse_rules(source: &str) -> Result<(Vec<RuleConfig>, Vec<Arc<Rule>>), AlertConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        rule: Vec<RuleConfig>,
    }
    let file: File = toml::from_str(source).map_err(|e| AlertConfigError {
        place: "alerts".into(),
        key: "rule".into(),
        message: e.message().to_string(),
    })?;
    let rules = validate_rules(&file.rule)?;
    Ok((file.rule, rules))
}

impl AlertsConfig {
    /// Checks every rule and receiver and the delivery settings.
    pub fn validate(&self) -> Result<AlertSettings, AlertConfigError> {
        let section = |key: &str, message: &str| AlertConfigError {
            place: "alerts".into(),
            key: key.into(),
            message: message.into(),
        };
        if self.resend_interval < Duration::from_secs(1) {
            return Err(section("resend_interval", "must be at least 1s"));
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            return Err(section(
                "retry_max",
                "retry_initial must be above 0 and retry_max at least retry_initial",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(section("request_timeout", "must be above 0"));
        }
        if self.outbox_limit == 0 {
            return Err(section("outbox_limit", "must be at least 1"));
        }
        if !self.external_url.is_empty() && !is_http_url(&self.external_url) {
            return Err(section(
                "external_url",
                "must start with http:// or https://",
            ));
        }
        let receivers = self.receivers()?;
        Ok(AlertSettings {
            rules: validate_rules(&self.rule)?,
            rules_source: rules_source(&self.rule),
            receivers,
            config: self.clone(),
        })
    }

    fn receivers(&self) -> Result<Vec<Receiver>, AlertConfigError> {
        let mut names = BTreeSet::new();
        let mut out = Vec::new();
        let lists = [
            (
                "alertmanager",
                ReceiverKind::Alertmanager,
                &self.alertmanager,
            ),
            ("webhook", ReceiverKind::Webhook, &self.webhook),
        ];
        for (section, kind, list) in lists {
            for (i, r) in list.iter().enumerate() {
                let err = |key: &str, message: String| AlertConfigError {
                    place: format!("alerts.{section}[{i}] {:?}", r.name),
                    key: key.into(),
                    message,
                };
                let valid_name = !r.name.is_empty()
                    && r.name.len() <= 64
                    && r.name.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    });
                if !valid_name {
                    return Err(err(
                        "name",
                        "must be 1 to 64 characters of [a-z0-9_-]".into(),
                    ));
                }
                if !names.insert(r.name.clone()) {
                    return Err(err("name", "another receiver has this name".into()));
                }
                if !is_http_url(&r.url) {
                    return Err(err(
                        "url",
                        format!("{:?} must start with http:// or https://", r.url),
                    ));
                }
                out.push(Receiver {
                    name: r.name.clone(),
                    kind,
                    url: r.url.trim_end_matches('/').to_string(),
                });
            }
        }
        Ok(out)
    }
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

/// Validates a rule list: each rule, and that names are unique.
pub fn validate_rules(rules: &[RuleConfig]) -> Result<Vec<Arc<Rule>>, AlertConfigError> {
    if rules.len() > MAX_RULES {
        return Err(AlertConfigError {
            place: "alerts".into(),
            key: "rule".into(),
            message: format!("{} rules; at most {MAX_RULES}", rules.len()),
        });
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let checker = Checker {
            place: format!("alerts.rule[{i}] {:?}", r.name),
        };
        let rule = checker.rule(r)?;
        if !names.insert(rule.name.clone()) {
            return Err(checker.err("name", "another rule has this name"));
        }
        out.push(Arc::new(rule));
    }
    Ok(out)
}

/// Validates one rule, naming it in every error.
struct Checker {
    place: String,
}

impl Checker {
    fn err(&self, key: &str, message: impl Into<String>) -> AlertConfigError {
        AlertConfigError {
            place: self.place.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        key: &str,
        text: Option<&String>,
        default: i64,
    ) -> Result<i64, AlertConfigError> {
        let Some(text) = text else {
            return Ok(default);
        };
        let d = humantime::parse_duration(text)
            .map_err(|e| self.err(key, format!("{text:?} is not a duration: {e}")))?;
        i64::try_from(d.as_millis()).map_err(|_| self.err(key, "is too long"))
    }

    fn required<'a, T>(
        &self,
        key: &str,
        kind: &str,
        v: &'a Option<T>,
    ) -> Result<&'a T, AlertConfigError> {
        v.as_ref()
            .ok_or_else(|| self.err(key, format!("is required for kind {kind:?}")))
    }

    fn rule(&self, r: &RuleConfig) -> Result<Rule, AlertConfigError> {
        let valid_name = !r.name.is_empty()
            && r.name.len() <= 128
            && r.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        if !valid_name {
            return Err(self.err("name", "must be 1 to 128 characters of [A-Za-z0-9_.:-]"));
        }
        let severity = Severity::from_name(&r.severity).ok_or_else(|| {
            self.err(
                "severity",
                format!("{:?} must be critical, major, minor or warning", r.severity),
            )
        })?;
        let (condition, allowed) = self.condition(r)?;
        self.only(r, allowed)?;
        let per = match &r.per {
            None => TargetKind::Device,
            Some(p) => TargetKind::from_name(p).ok_or_else(|| {
                self.err("per", format!("{p:?} must be device, site or district"))
            })?,
        };
        let for_ms = self.duration("for", r.for_.as_ref(), 0)?;
        let keep_firing_for_ms = self.duration("keep_firing_for", r.keep_firing_for.as_ref(), 0)?;
        for (name, value) in &r.labels {
            let valid = name
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
            if name.is_empty() || !valid {
                return Err(self.err(
                    "labels",
                    format!("{name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                ));
            }
            if RESERVED.contains(&name.as_str()) {
                return Err(self.err("labels", format!("{name:?} is set by citytel itself")));
            }
            if value.len() > 1024 {
                return Err(self.err(
                    "labels",
                    format!("the value of {name:?} is longer than 1024 bytes"),
                ));
            }
        }
        let mut annotations = Annotations::default();
        for (name, text) in &r.annotations {
            let template = Template::parse(text)
                .map_err(|e| self.err(&format!("annotations.{name}"), e.to_string()))?;
            match name.as_str() {
                "summary" => annotations.summary = template,
                "description" => annotations.description = template,
                "runbook_url" => annotations.runbook_url = template,
                _ => {
                    annotations.extra.insert(name.clone(), template);
                }
            }
        }
        let d = &r.devices;
        Ok(Rule {
            name: r.name.as_str().into(),
            severity,
            selector: Selector {
                kinds: d.kinds.clone(),
                sites: d.sites.clone(),
                districts: d.districts.clone(),
                devices: d.ids.clone(),
            },
            condition,
            per,
            for_ms,
            keep_firing_for_ms,
            labels: r.labels.clone(),
            annotations,
        })
    }

    /// The condition, and the kind-specific keys the kind allows.
    fn condition(
        &self,
        r: &RuleConfig,
    ) -> Result<(Condition, &'static [&'static str]), AlertConfigError> {
        let kind = r.kind.as_str();
        match kind {
            "state" => {
                let states = self.required("states", kind, &r.states)?;
                if states.is_empty() {
                    return Err(
                        self.err("states", "needs at least one of offline, late, unreachable")
                    );
                }
                let mut parsed = Vec::new();
                for s in states {
                    let state = match s.as_str() {
                        "offline" => DeviceState::Offline,
                        "late" => DeviceState::Late,
                        "unreachable" => DeviceState::Unreachable,
                        _ => {
                            return Err(self.err(
                                "states",
                                format!("{s:?} must be offline, late or unreachable"),
                            ));
                        }
                    };
                    if !parsed.contains(&state) {
                        parsed.push(state);
                    }
                }
                Ok((Condition::State { states: parsed }, &["states"]))
            }
            "threshold" => {
                let metric = self.metric(r, kind)?;
                let op_text = self.required("op", kind, &r.op)?;
                let op = Op::parse(op_text).ok_or_else(|| {
                    self.err(
                        "op",
                        format!("{op_text:?} must be one of >, >=, <, <=, ==, !="),
                    )
                })?;
                let value = *self.required("value", kind, &r.value)?;
                if !value.is_finite() {
                    return Err(self.err("value", "must be a finite number"));
                }
                if let Some(clear) = r.clear {
                    match op.direction() {
                        None => {
                            return Err(self.err("clear", "only >, >=, <, <= take a clear value"));
                        }
                        Some(above)
                            if !clear.is_finite()
                                || (above && clear > value)
                                || (!above && clear < value) =>
                        {
                            return Err(self.err("clear", format!(
                                "must lie on the side of value where the alert does not fire (value {value} {})",
                                op.as_str()
                            )));
                        }
                        Some(_) => {}
                    }
                }
                Ok((
                    Condition::Threshold {
                        metric,
                        op,
                        value,
                        clear: r.clear,
                    },
                    &["metric", "op", "value", "clear"],
                ))
            }
            "absence" => {
                let metric = self.metric(r, kind)?;
                self.required("after", kind, &r.after)?;
                let after_ms = self.duration("after", r.after.as_ref(), 0)?;
                if after_ms < 1000 {
                    return Err(self.err("after", "must be at least 1s"));
                }
                Ok((
                    Condition::Absence { metric, after_ms },
                    &["metric", "after"],
                ))
            }
            "availability" | "completeness" => {
                let target = *self.required("target", kind, &r.target)?;
                if !(target > 0.0 && target <= 100.0) {
                    return Err(self.err("target", "must be a percentage above 0 and at most 100"));
                }
                self.required("window", kind, &r.window)?;
                let window_ms = self.duration("window", r.window.as_ref(), 0)?;
                let interval_ms = self.duration("interval", r.interval.as_ref(), 60_000)?;
                if interval_ms < 1000 {
                    return Err(self.err("interval", "must be at least 1s"));
                }
                if window_ms < interval_ms || window_ms % interval_ms != 0 {
                    return Err(self.err("window", "must be a whole multiple of interval"));
                }
                if kind == "completeness" && window_ms / interval_ms > MAX_BUCKETS {
                    return Err(self.err(
                        "window",
                        format!("may span at most {MAX_BUCKETS} intervals"),
                    ));
                }
                let condition = if kind == "availability" {
                    Condition::Availability {
                        target_percent: target,
                        window_ms,
                        interval_ms,
                    }
                } else {
                    Condition::Completeness {
                        target_percent: target,
                        window_ms,
                        interval_ms,
                    }
                };
                Ok((condition, &["target", "window", "interval", "per"]))
            }
            other => Err(self.err(
                "kind",
                format!(
                    "{other:?} must be state, threshold, absence, availability or completeness"
                ),
            )),
        }
    }

    fn metric(&self, r: &RuleConfig, kind: &str) -> Result<Arc<str>, AlertConfigError> {
        let metric = self.required("metric", kind, &r.metric)?;
        if metric.is_empty() {
            return Err(self.err("metric", "must not be empty"));
        }
        Ok(metric.as_str().into())
    }

    /// Refuses kind-specific keys the rule's kind does not take.
    fn only(&self, r: &RuleConfig, allowed: &[&str]) -> Result<(), AlertConfigError> {
        let present = [
            ("states", r.states.is_some()),
            ("metric", r.metric.is_some()),
            ("op", r.op.is_some()),
            ("value", r.value.is_some()),
            ("clear", r.clear.is_some()),
            ("after", r.after.is_some()),
            ("target", r.target.is_some()),
            ("window", r.window.is_some()),
            ("interval", r.interval.is_some()),
            ("per", r.per.is_some()),
        ];
        for (key, set) in present {
            if set && !allowed.contains(&key) {
                return Err(self.err(key, format!("does not apply to kind {:?}", r.kind)));
            }
        }
        Ok(())
    }
}
