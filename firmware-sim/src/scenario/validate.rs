//! Checking a [`ScenarioFile`] and turning it into a runnable [`Scenario`]: durations parsed,
//! device references resolved, repeated events expanded and sorted. Every error names the entry
//! and the key it is about.

use std::collections::HashMap;
use std::time::Duration;

use citytel_proto::catalog;
use citytel_proto::kind::Kind;
use citytel_proto::topic::is_valid_id;

use super::spec::{Action, DeviceEntry, EventEntry, ScenarioFile};

/// Longest scenario accepted.
const MAX_DURATION_MS: i64 = 7 * 24 * 3_600_000;
/// Most scripted events after expanding repeats.
const MAX_EVENTS: usize = 100_000;

/// Why a scenario file cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The TOML does not parse or does not have the expected shape.
    #[error("scenario {origin}: {message}")]
    Parse {
        /// Where the text came from (a path or a built-in name).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A value is missing, out of range or inconsistent.
    #[error("scenario {name:?}: {key}: {message}")]
    Invalid {
        /// The scenario's name.
        name: String,
        /// The key, e.g. `events[2].devices`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// No built-in scenario has this name.
    #[error("no built-in scenario {0:?} (see `firmware-sim scenario --list`)")]
    UnknownBuiltin(String),
}

/// A device of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDef {
    /// Device id.
    pub id: String,
    /// Kind.
    pub kind: Kind,
    /// Site.
    pub site: String,
    /// Reporting interval, ms.
    pub interval_ms: u32,
    /// Heartbeat interval, ms, if it sends heartbeats.
    pub heartbeat_ms: Option<u32>,
    /// Clock skew at the start, ms (device clock minus true time).
    pub clock_skew_ms: i64,
    /// Readings kept while undeliverable.
    pub buffer: usize,
    /// Index of the gateway it reports through.
    pub gateway: Option<usize>,
    /// Indices of the devices that report through it.
    pub children: Vec<usize>,
    /// First boot, ms from the start.
    pub start_ms: i64,
    /// Connects only to report, then disconnects cleanly and sleeps.
    pub sleepy: bool,
}

impl DeviceDef {
    /// The interval citytel expects to hear from the device at: its heartbeat interval if it
    /// sends heartbeats, else its reporting interval (what its birth announces).
    pub fn expected_interval_ms(&self) -> u32 {
        self.heartbeat_ms.unwrap_or(self.interval_ms)
    }
}

/// One scripted event for one device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduledEvent {
    /// When, ms from the start.
    pub at_ms: i64,
    /// The device (index into [`Scenario::devices`]).
    pub device: usize,
    /// What happens.
    pub action: Action,
    /// For a reboot: ms down before the new boot; for a hang: ms until the watchdog resets it
    /// (0: never).
    pub downtime_ms: i64,
    /// For set-clock-skew: the new skew, ms.
    pub skew_ms: i64,
    /// For set-metric and reset-metric: the metric's index in the device kind's catalogue
    /// ([`citytel_proto::catalog::metric_names`]).
    pub metric: Option<usize>,
    /// For set-metric: the value the device reports for the metric.
    pub value: f64,
}

/// A checked scenario, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Length, ms.
    pub duration_ms: i64,
    /// Seed of metric values and boot ids.
    pub seed: u64,
    /// Devices, in file order.
    pub devices: Vec<DeviceDef>,
    /// Events sorted by time, file order within a time.
    pub events: Vec<ScheduledEvent>,
}

impl Scenario {
    /// Parses and checks TOML `text`; `origin` names it in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        Scenario::from_file(&file)
    }

    /// Checks a parsed file.
    pub fn from_file(file: &ScenarioFile) -> Result<Scenario, ScenarioError> {
        let check = Checker { name: &file.name };
        if file.name.trim().is_empty() {
            return Err(check.err("name", "must not be empty"));
        }
        let duration_ms = check.duration("duration", &file.duration)?;
        if duration_ms <= 0 || duration_ms > MAX_DURATION_MS {
            return Err(check.err("duration", "must be more than 0 and at most 7 days"));
        }
        let interval_ms = check.interval("interval", &file.interval)?;
        if file.devices.is_empty() {
            return Err(check.err("devices", "list at least one device"));
        }
        let mut devices = Vec::with_capacity(file.devices.len());
        let mut index = HashMap::new();
        for (i, entry) in file.devices.iter().enumerate() {
            let device = check.device(i, entry, interval_ms, duration_ms)?;
            if index.insert(entry.id.clone(), i).is_some() {
                return Err(check.err(format!("devices[{i}].id"), "appears twice"));
            }
            devices.push(device);
        }
        check.link_gateways(&file.devices, &mut devices, &index)?;
        let mut events = Vec::new();
        for (i, entry) in file.events.iter().enumerate() {
            check.event(i, entry, &devices, &index, duration_ms, &mut events)?;
            if events.len() > MAX_EVENTS {
                return Err(check.err("events", format!("more than {MAX_EVENTS} after repeats")));
            }
        }
        // Stable: file order within one instant.
        events.sort_by_key(|e| e.at_ms);
        Ok(Scenario {
            name: file.name.clone(),
            description: file.description.clone(),
            duration_ms,
            seed: file.seed,
            devices,
            events,
        })
    }

    /// The index of device `id`.
    pub fn device_index(&self, id: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.id == id)
    }
}

/// Builds errors and parses values for one scenario.
struct Checker<'a> {
    name: &'a str,
}

impl Checker<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            name: self.name.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// A non-negative humantime duration, in ms.
    fn duration(&self, key: &str, text: &str) -> Result<i64, ScenarioError> {
        let d = humantime::parse_duration(text.trim()).map_err(|e| {
            self.err(
                key,
                format!("{text:?} is not a duration ({e}); e.g. \"10s\""),
            )
        })?;
        Ok(ms(d))
    }

    /// A signed duration ("-90s", "+2m", "0s"), in ms.
    fn signed(&self, key: &str, text: &str) -> Result<i64, ScenarioError> {
        let t = text.trim();
        let (sign, rest) = match t.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, t.strip_prefix('+').unwrap_or(t)),
        };
        Ok(sign * self.duration(key, rest)?)
    }

    /// A positive interval that fits a birth's 32-bit field.
    fn interval(&self, key: &str, text: &str) -> Result<u32, ScenarioError> {
        let ms = self.duration(key, text)?;
        match u32::try_from(ms) {
            Ok(v) if v > 0 => Ok(v),
            _ => Err(self.err(
                key,
                format!("{text:?} must be more than 0 and under 49 days"),
            )),
        }
    }

    fn device(
        &self,
        i: usize,
        e: &DeviceEntry,
        default_interval: u32,
        duration_ms: i64,
    ) -> Result<DeviceDef, ScenarioError> {
        let key = |k: &str| format!("devices[{i}].{k}");
        if !is_valid_id(&e.id) {
            return Err(self.err(
                key("id"),
                format!("{:?} is not 1 to 128 characters of [A-Za-z0-9._-]", e.id),
            ));
        }
        if !is_valid_id(&e.site) {
            return Err(self.err(
                key("site"),
                format!("{:?} is not 1 to 128 characters of [A-Za-z0-9._-]", e.site),
            ));
        }
        let kind = e.kind.parse::<Kind>().map_err(|_| {
            self.err(
                key("kind"),
                format!(
                    "{:?} is not one of cabinet, small_cell, sensor, gateway",
                    e.kind
                ),
            )
        })?;
        let interval_ms = match &e.interval {
            Some(t) => self.interval(&key("interval"), t)?,
            None => default_interval,
        };
        let heartbeat_ms = e
            .heartbeat
            .as_deref()
            .map(|t| self.interval(&key("heartbeat"), t))
            .transpose()?;
        let clock_skew_ms = match &e.clock_skew {
            Some(t) => self.signed(&key("clock_skew"), t)?,
            None => 0,
        };
        let start_ms = match &e.start {
            Some(t) => self.duration(&key("start"), t)?,
            None => 0,
        };
        if start_ms >= duration_ms {
            return Err(self.err(key("start"), "must be before the end of the scenario"));
        }
        Ok(DeviceDef {
            id: e.id.clone(),
            kind,
            site: e.site.clone(),
            interval_ms,
            heartbeat_ms,
            clock_skew_ms,
            buffer: e.buffer,
            gateway: None,
            children: Vec::new(),
            start_ms,
            sleepy: e.sleepy,
        })
    }

    fn link_gateways(
        &self,
        entries: &[DeviceEntry],
        devices: &mut [DeviceDef],
        index: &HashMap<String, usize>,
    ) -> Result<(), ScenarioError> {
        for (i, entry) in entries.iter().enumerate() {
            let Some(gw_id) = &entry.gateway else {
                continue;
            };
            let key = format!("devices[{i}].gateway");
            let &gw = index
                .get(gw_id)
                .ok_or_else(|| self.err(&key, format!("unknown device {gw_id:?}")))?;
            if devices[gw].kind != Kind::Gateway {
                return Err(self.err(
                    &key,
                    format!("{gw_id:?} is a {}, not a gateway", devices[gw].kind),
                ));
            }
            if gw == i {
                return Err(self.err(&key, "a gateway cannot report through itself"));
            }
            if entries[gw].gateway.is_some() {
                return Err(self.err(&key, format!("{gw_id:?} itself reports through a gateway")));
            }
            if devices[i].site != devices[gw].site {
                return Err(self.err(&key, format!("{gw_id:?} is at another site")));
            }
            devices[i].gateway = Some(gw);
            devices[gw].children.push(i);
        }
        for (i, device) in devices.iter().enumerate() {
            let role = match (device.gateway.is_some(), device.children.is_empty()) {
                (true, _) => "reports through a gateway, which is always connected",
                (false, false) => "is a gateway with children, which must stay connected",
                (false, true) => continue,
            };
            if device.sleepy {
                return Err(self.err(format!("devices[{i}].sleepy"), format!("it {role}")));
            }
        }
        Ok(())
    }

    fn event(
        &self,
        i: usize,
        e: &EventEntry,
        devices: &[DeviceDef],
        index: &HashMap<String, usize>,
        duration_ms: i64,
        out: &mut Vec<ScheduledEvent>,
    ) -> Result<(), ScenarioError> {
        let key = |k: &str| format!("events[{i}].{k}");
        let at_ms = self.duration(&key("at"), &e.at)?;
        if at_ms >= duration_ms {
            return Err(self.err(key("at"), "must be before the end of the scenario"));
        }
        let targets: Vec<usize> = match (&e.site, e.devices.is_empty()) {
            (Some(_), false) => {
                return Err(self.err(key("site"), "give either devices or site, not both"));
            }
            (None, true) => {
                return Err(self.err(key("devices"), "name at least one device (or a site)"));
            }
            (None, false) => {
                e.devices
                    .iter()
                    .map(|id| {
                        index.get(id).copied().ok_or_else(|| {
                            self.err(key("devices"), format!("unknown device {id:?}"))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            (Some(site), true) => {
                let at_site: Vec<usize> = (0..devices.len())
                    .filter(|&d| devices[d].site == *site && devices[d].gateway.is_none())
                    .collect();
                if at_site.is_empty() {
                    return Err(self.err(key("site"), format!("no device at site {site:?}")));
                }
                at_site
            }
        };
        if matches!(e.action, Action::LinkDown | Action::LinkUp)
            && let Some(&child) = targets.iter().find(|&&d| devices[d].gateway.is_some())
        {
            return Err(self.err(
                key("action"),
                format!(
                    "{} has no link of its own: it reports through its gateway",
                    devices[child].id
                ),
            ));
        }
        let downtime_ms = match (&e.downtime, e.action) {
            (Some(t), Action::Reboot | Action::Hang) => self.duration(&key("downtime"), t)?,
            (None, _) => 0,
            (Some(_), _) => {
                return Err(self.err(key("downtime"), "only a reboot or a hang has a downtime"));
            }
        };
        let skew_ms = match (&e.skew, e.action) {
            (Some(t), Action::SetClockSkew) => self.signed(&key("skew"), t)?,
            (None, Action::SetClockSkew) => {
                return Err(self.err(
                    key("skew"),
                    "set-clock-skew needs the new skew, e.g. \"-90s\"",
                ));
            }
            (None, _) => 0,
            (Some(_), _) => return Err(self.err(key("skew"), "only set-clock-skew has a skew")),
        };
        let value = match (e.value, e.action) {
            (Some(v), Action::SetMetric) if v.is_finite() => v,
            (Some(v), Action::SetMetric) => {
                return Err(self.err(key("value"), format!("{v} is not a finite number")));
            }
            (None, Action::SetMetric) => {
                return Err(self.err(
                    key("value"),
                    "set-metric needs the value the device reports, e.g. 68.0",
                ));
            }
            (None, _) => 0.0,
            (Some(_), _) => return Err(self.err(key("value"), "only set-metric has a value")),
        };
        let metric = match (&e.metric, e.action) {
            (Some(name), Action::SetMetric | Action::ResetMetric) => Some(name.as_str()),
            (None, Action::SetMetric | Action::ResetMetric) => {
                return Err(self.err(
                    key("metric"),
                    format!(
                        "{} needs a metric, e.g. \"temperature_c\"",
                        e.action.as_str()
                    ),
                ));
            }
            (None, _) => None,
            (Some(_), _) => {
                return Err(self.err(
                    key("metric"),
                    "only set-metric and reset-metric have a metric",
                ));
            }
        };
        // The metric's index, per target (devices of different kinds list it elsewhere).
        let mut metrics = Vec::with_capacity(targets.len());
        for &d in &targets {
            let index = match metric {
                None => None,
                Some(name) => {
                    let names = catalog::metric_names(devices[d].kind);
                    let Some(i) = names.iter().position(|n| *n == name) else {
                        return Err(self.err(
                            key("metric"),
                            format!(
                                "{} is a {}, whose metrics are {}: not {name:?}",
                                devices[d].id,
                                devices[d].kind,
                                names.join(", ")
                            ),
                        ));
                    };
                    Some(i)
                }
            };
            metrics.push(index);
        }
        let (every_ms, times) = match (&e.every, e.times) {
            (None, None) => (0, 1),
            (Some(t), Some(n)) if n >= 1 => {
                let every = self.duration(&key("every"), t)?;
                if every <= 0 {
                    return Err(self.err(key("every"), "must be more than 0"));
                }
                (every, n)
            }
            (Some(_), Some(_)) => return Err(self.err(key("times"), "must be at least 1")),
            (Some(_), None) => return Err(self.err(key("times"), "give times together with every")),
            (None, Some(_)) => return Err(self.err(key("every"), "give every together with times")),
        };
        for n in 0..i64::from(times) {
            let at = at_ms + n * every_ms;
            if at >= duration_ms {
                return Err(self.err(
                    key("times"),
                    format!("repeat {} falls after the end of the scenario", n + 1),
                ));
            }
            out.extend(
                targets
                    .iter()
                    .zip(&metrics)
                    .map(|(&device, &metric)| ScheduledEvent {
                        at_ms: at,
                        device,
                        action: e.action,
                        downtime_ms,
                        skew_ms,
                        metric,
                        value,
                    }),
            );
        }
        Ok(())
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
