//! Alert rules as the engine evaluates them: validated, with durations in milliseconds and
//! templates parsed. They are built from the configuration by [`super::config`]; nothing here
//! reads TOML.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use citytel_availability::DeviceState;

use super::template::Template;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Service is down for many; act now.
    Critical,
    /// Service is down for some, or will be soon.
    Major,
    /// Degraded, no outage.
    Minor,
    /// Worth a look.
    Warning,
}

impl Severity {
    /// Every severity, most urgent first (also their code order).
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::Major,
        Severity::Minor,
        Severity::Warning,
    ];

    /// Stable name, as in the configuration, labels and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Warning => "warning",
        }
    }

    /// The severity of a [`name`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Stable one-byte code in persisted records (never 0).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The severity of a [`code`](Self::code).
    pub fn from_code(code: u8) -> Option<Severity> {
        Severity::ALL
            .get(usize::from(code.checked_sub(1)?))
            .copied()
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison of a metric's value with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// Every operator.
    pub const ALL: [Op; 6] = [Op::Gt, Op::Ge, Op::Lt, Op::Le, Op::Eq, Op::Ne];

    /// The operator as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// The operator written `text`.
    pub fn parse(text: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.as_str() == text.trim())
    }

    /// Whether `value op threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }

    /// Whether the operator fires above the threshold (`>`, `>=`), below it (`<`, `<=`), or
    /// neither (`==`, `!=`, which take no clear value).
    pub fn direction(self) -> Option<bool> {
        match self {
            Op::Gt | Op::Ge => Some(true),
            Op::Lt | Op::Le => Some(false),
            Op::Eq | Op::Ne => None,
        }
    }
}

/// What an alert of a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// One device.
    Device,
    /// One site (its selected devices together).
    Site,
    /// One district (its selected devices together).
    District,
}

impl TargetKind {
    /// Stable name, as in the configuration (`per`) and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Device => "device",
            TargetKind::Site => "site",
            TargetKind::District => "district",
        }
    }

    /// The target kind of a [`name`](Self::as_str).
    pub fn from_name(name: &str) -> Option<TargetKind> {
        [TargetKind::Device, TargetKind::Site, TargetKind::District]
            .into_iter()
            .find(|t| t.as_str() == name)
    }

    /// Stable one-byte code in persisted records (never 0).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The target kind of a [`code`](Self::code).
    pub fn from_code(code: u8) -> Option<TargetKind> {
        [TargetKind::Device, TargetKind::Site, TargetKind::District]
            .into_iter()
            .find(|t| t.code() == code)
    }
}

/// Which devices a rule looks at: a device is selected when it matches every list that is not
/// empty (as a key's scope does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Device kinds.
    pub kinds: Vec<String>,
    /// Sites.
    pub sites: Vec<String>,
    /// Districts.
    pub districts: Vec<String>,
    /// Device ids.
    pub devices: Vec<String>,
}

fn allows(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

impl Selector {
    /// Whether a device of `kind` at `site` in `district` with id `id` is selected.
    pub fn selects(&self, id: &str, kind: &str, site: &str, district: Option<&str>) -> bool {
        allows(&self.devices, id)
            && allows(&self.kinds, kind)
            && allows(&self.sites, site)
            && (self.districts.is_empty() || district.is_some_and(|d| allows(&self.districts, d)))
    }
}

/// What must hold for an alert to be active.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The device is in one of `states` (offline, late, unreachable).
    State {
        /// The states.
        states: Vec<DeviceState>,
    },
    /// The newest value of `metric` compares with `value` by `op`. Once the alert is open
    /// (pending or firing), with `clear`, it holds until the value is past `clear` (below it for
    /// `>`/`>=`, above it for `<`/`<=`).
    Threshold {
        /// The metric.
        metric: Arc<str>,
        /// The comparison.
        op: Op,
        /// The threshold.
        value: f64,
        /// The clear value (hysteresis).
        clear: Option<f64>,
    },
    /// `metric` has not been received for `after_ms` while the device is otherwise up (online or
    /// late); counted from the last reading of the metric, or from the device's recovery if that
    /// is later.
    Absence {
        /// The metric.
        metric: Arc<str>,
        /// How long it may be missing.
        after_ms: i64,
    },
    /// Availability over the rolling `window_ms` is below `target_percent`, evaluated every
    /// `interval_ms` at instants aligned to it.
    Availability {
        /// The target, in percent.
        target_percent: f64,
        /// The window.
        window_ms: i64,
        /// How often it is evaluated.
        interval_ms: i64,
    },
    /// Completeness (readings received / readings the sequence numbers say were produced) over
    /// the rolling `window_ms` is below `target_percent`, evaluated every `interval_ms`.
    Completeness {
        /// The target, in percent.
        target_percent: f64,
        /// The window.
        window_ms: i64,
        /// How often it is evaluated (also the width of the counting buckets).
        interval_ms: i64,
    },
}

impl Condition {
    /// The rule kind's name, as in the configuration.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Condition::State { .. } => "state",
            Condition::Threshold { .. } => "threshold",
            Condition::Absence { .. } => "absence",
            Condition::Availability { .. } => "availability",
            Condition::Completeness { .. } => "completeness",
        }
    }

    /// The metric the condition reads, if any.
    pub fn metric(&self) -> Option<&Arc<str>> {
        match self {
            Condition::Threshold { metric, .. } | Condition::Absence { metric, .. } => Some(metric),
            _ => None,
        }
    }

    /// The evaluation interval of a periodic condition (availability, completeness).
    pub fn interval_ms(&self) -> Option<i64> {
        match self {
            Condition::Availability { interval_ms, .. }
            | Condition::Completeness { interval_ms, .. } => Some(*interval_ms),
            _ => None,
        }
    }
}

/// The annotations of a rule's alerts, as templates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations {
    /// One line.
    pub summary: Template,
    /// More detail.
    pub description: Template,
    /// Where the on-call engineer reads what to do.
    pub runbook_url: Template,
    /// Any other annotations, by name.
    pub extra: BTreeMap<String, Template>,
}

/// One validated alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name; the `alertname` label.
    pub name: Arc<str>,
    /// How urgent.
    pub severity: Severity,
    /// The devices it looks at.
    pub selector: Selector,
    /// What must hold.
    pub condition: Condition,
    /// What an alert is about: a device, or a site or district (availability and completeness).
    pub per: TargetKind,
    /// How long the condition must hold before the alert fires.
    pub for_ms: i64,
    /// How long a firing alert keeps firing after the condition stopped holding (against
    /// flapping); the condition holding again meanwhile continues the same alert.
    pub keep_firing_for_ms: i64,
    /// Extra labels of its alerts.
    pub labels: BTreeMap<String, String>,
    /// Annotations of its alerts.
    pub annotations: Annotations,
}

impl Rule {
    /// Whether `other` evaluates the same condition over the same devices: its alerts carry on
    /// when a reload changes only the severity, labels or annotations.
    pub fn same_condition(&self, other: &Rule) -> bool {
        self.name == other.name
            && self.selector == other.selector
            && self.condition == other.condition
            && self.per == other.per
            && self.for_ms == other.for_ms
            && self.keep_firing_for_ms == other.keep_firing_for_ms
    }
}
