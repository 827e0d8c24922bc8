//! How long a device may stay silent: the [`Policy`] that turns an expected reporting interval
//! into the late and offline thresholds of the state machine.
//!
//! A device's expected interval is, in order of preference: the heartbeat interval of its latest
//! birth, the reporting interval of that birth, the default for its kind, the global default.
//! Silence is measured from the last time the device was heard (or from citytel's restart, or from
//! its gateway's return). After `interval × late_grace` of silence an Online device is Late; after
//! `interval × offline_grace` it is Offline.
//!
//! A device connects intermittently (it connects only to report, and a clean disconnect without a
//! death does not take it offline) when its latest birth says so, else when its kind is one of
//! `intermittent_kinds`.

use std::collections::{BTreeMap, BTreeSet};

use citytel_proto::topic::is_valid_id;

/// A policy value that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A grace factor is not a finite number of at least 1.
    #[error("{name} must be a finite number >= 1, got {value}")]
    Grace {
        /// The field.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The offline threshold comes before the late threshold.
    #[error("offline_grace ({offline}) must be >= late_grace ({late})")]
    OfflineBeforeLate {
        /// `late_grace`.
        late: f64,
        /// `offline_grace`.
        offline: f64,
    },
    /// An intermittent kind is not a valid `{kind}` topic segment.
    #[error("intermittent kind {0:?} is not 1 to 128 characters of [A-Za-z0-9._-]")]
    Kind(String),
    /// An interval is not positive.
    #[error("expected interval for {scope} must be positive, got {value_ms} ms")]
    Interval {
        /// `"default"` or the kind.
        scope: String,
        /// The value.
        value_ms: i64,
    },
}

/// The timing rules of the availability state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// An Online device becomes Late after `expected interval × late_grace` without being heard.
    /// Default 1.5: one missed heartbeat plus half an interval of jitter.
    pub late_grace: f64,
    /// A silent device becomes Offline after `expected interval × offline_grace` without being
    /// heard. Default 3.0: three missed heartbeats. Must be at least `late_grace`.
    pub offline_grace: f64,
    /// Expected interval, in milliseconds, of a device whose birth did not state one and whose kind
    /// has no entry in `kind_intervals_ms`. Default 60 s.
    pub default_interval_ms: i64,
    /// Expected interval per device kind (the `{kind}` topic segment), in milliseconds, for devices
    /// whose birth did not state one. Defaults: cabinet, small_cell and gateway 60 s, sensor 300 s
    /// (battery sensors report sparingly).
    pub kind_intervals_ms: BTreeMap<String, i64>,
    /// Device kinds (the `{kind}` topic segment) that connect intermittently unless their birth
    /// says otherwise: battery devices that wake, connect, publish, disconnect cleanly and sleep
    /// until their next reporting interval. A clean disconnect without a death leaves such a
    /// device in its state until its silence deadlines pass. Default: none.
    pub intermittent_kinds: BTreeSet<String>,
}

impl Default for Policy {
    fn default() -> Self {
        let kinds = [
            ("cabinet", 60_000),
            ("small_cell", 60_000),
            ("gateway", 60_000),
            ("sensor", 300_000),
        ];
        Policy {
            late_grace: 1.5,
            offline_grace: 3.0,
            default_interval_ms: 60_000,
            kind_intervals_ms: kinds.map(|(k, ms)| (k.to_owned(), ms)).into(),
            intermittent_kinds: BTreeSet::new(),
        }
    }
}

impl Policy {
    /// Checks that the policy can drive a state machine.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (name, value) in [
            ("late_grace", self.late_grace),
            ("offline_grace", self.offline_grace),
        ] {
            if !value.is_finite() || value < 1.0 {
                return Err(PolicyError::Grace { name, value });
            }
        }
        if self.offline_grace < self.late_grace {
            return Err(PolicyError::OfflineBeforeLate {
                late: self.late_grace,
                offline: self.offline_grace,
            });
        }
        if let Some(kind) = self.intermittent_kinds.iter().find(|k| !is_valid_id(k)) {
            return Err(PolicyError::Kind(kind.clone()));
        }
        let defaults = std::iter::once(("default", self.default_interval_ms));
        let kinds = self
            .kind_intervals_ms
            .iter()
            .map(|(kind, ms)| (kind.as_str(), *ms));
        match defaults.chain(kinds).find(|(_, ms)| *ms <= 0) {
            Some((scope, value_ms)) => Err(PolicyError::Interval {
                scope: scope.to_owned(),
                value_ms,
            }),
            None => Ok(()),
        }
    }

    /// The expected interval of a device of `kind` that has not stated its own, in milliseconds.
    pub fn interval_for_kind(&self, kind: &str) -> i64 {
        self.kind_intervals_ms
            .get(kind)
            .copied()
            .unwrap_or(self.default_interval_ms)
    }

    /// The thresholds for a device of `kind`, as a state machine keeps them.
    pub fn timing(&self, kind: &str) -> Timing {
        Timing {
            late_grace: self.late_grace,
            offline_grace: self.offline_grace,
            fallback_interval_ms: self.interval_for_kind(kind),
            intermittent: self.intermittent_kinds.contains(kind),
        }
    }
}

/// The part of a [`Policy`] one device's state machine needs, small enough to copy into each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// See [`Policy::late_grace`].
    pub late_grace: f64,
    /// See [`Policy::offline_grace`].
    pub offline_grace: f64,
    /// The expected interval when the device's birth did not state one, in milliseconds.
    pub fallback_interval_ms: i64,
    /// Whether the device connects intermittently when its birth does not say (its kind is one
    /// of [`Policy::intermittent_kinds`]).
    pub intermittent: bool,
}

impl Timing {
    /// The silence, in milliseconds, after which a device with `interval_ms` is Late.
    pub fn late_after_ms(&self, interval_ms: i64) -> i64 {
        scale(interval_ms, self.late_grace)
    }

    /// The silence, in milliseconds, after which a device with `interval_ms` is Offline.
    pub fn offline_after_ms(&self, interval_ms: i64) -> i64 {
        scale(interval_ms, self.offline_grace)
    }
}

/// `ms × factor`, rounded to the nearest millisecond.
fn scale(ms: i64, factor: f64) -> i64 {
    // `as` saturates on overflow and maps NaN to 0; `Policy::validate` rules both out.
    (ms as f64 * factor).round() as i64
}
