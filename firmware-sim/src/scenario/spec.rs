//! The scenario file format (TOML), exactly as written: what [`super::validate`] checks and turns
//! into a [`super::Scenario`].
//!
//! ```toml
//! name = "power-cut"
//! description = "A power cut takes the cabinets of one street offline for ten minutes."
//! duration = "30m"          # how long the scenario runs
//! interval = "10s"          # default reporting interval of every device
//! seed = 7                  # optional: metric values and boot ids
//!
//! [[devices]]
//! id = "cab-hs-01"
//! kind = "cabinet"          # cabinet, small_cell, sensor or gateway
//! site = "high-street"
//! # optional: interval, heartbeat, clock_skew ("-90s", "+2m"), buffer (readings kept while
//! # offline, default 0), gateway (id of the gateway it reports through), start (boot time),
//! # sleepy (true: connects only to report, then disconnects cleanly and sleeps)
//!
//! [[events]]
//! at = "10m"
//! action = "power-off"      # see `Action`
//! devices = ["cab-hs-01"]   # or site = "high-street" (every device of that site but children)
//! # optional: every = "2m", times = 3 (repeat), downtime (reboot, hang), skew (set-clock-skew),
//! # metric and value (set-metric: metric = "temperature_c", value = 68.0; reset-metric: metric)
//! ```
//!
//! Durations are humantime strings ("500ms", "10s", "5m"); times are offsets from the start of
//! the run. Unknown keys are errors.

use serde::{Deserialize, Serialize};

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Short name, e.g. "power-cut".
    pub name: String,
    /// What the scenario shows, one or two sentences.
    #[serde(default)]
    pub description: String,
    /// How long the scenario runs, e.g. "30m".
    pub duration: String,
    /// Default reporting interval of every device, e.g. "10s".
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Seed of metric values and boot ids.
    #[serde(default)]
    pub seed: u64,
    /// The devices.
    #[serde(default)]
    pub devices: Vec<DeviceEntry>,
    /// The scripted events.
    #[serde(default)]
    pub events: Vec<EventEntry>,
}

fn default_interval() -> String {
    "10s".into()
}

/// One `[[devices]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// Device id, `[A-Za-z0-9._-]`, unique.
    pub id: String,
    /// `cabinet`, `small_cell`, `sensor` or `gateway`.
    pub kind: String,
    /// Site, `[A-Za-z0-9._-]`.
    pub site: String,
    /// Reporting interval; the scenario's `interval` when absent.
    #[serde(default)]
    pub interval: Option<String>,
    /// Heartbeat interval, announced in the birth; no heartbeats when absent.
    #[serde(default)]
    pub heartbeat: Option<String>,
    /// How far the device's clock is off, signed: "-90s", "+2m".
    #[serde(default)]
    pub clock_skew: Option<String>,
    /// Readings kept while they cannot be delivered, resent on reconnect (oldest dropped first).
    #[serde(default)]
    pub buffer: usize,
    /// The gateway this device reports through (which must be listed, of kind gateway).
    #[serde(default)]
    pub gateway: Option<String>,
    /// When the device first boots; the start of the run when absent.
    #[serde(default)]
    pub start: Option<String>,
    /// Connects only to report, as a battery sensor does: whenever a reading or heartbeat is
    /// due it wakes, connects, sends its birth (saying it connects intermittently) and what it
    /// has, disconnects cleanly without a death and sleeps until the next one. Not for a
    /// gateway with children, nor for a device behind a gateway.
    #[serde(default)]
    pub sleepy: bool,
}

/// One `[[events]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventEntry {
    /// When, as an offset from the start.
    pub at: String,
    /// What happens.
    pub action: Action,
    /// The devices it happens to.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Or: every device of this site that has no gateway.
    #[serde(default)]
    pub site: Option<String>,
    /// Repeat every this long (with `times`).
    #[serde(default)]
    pub every: Option<String>,
    /// How many times in all (with `every`); 1 when absent.
    #[serde(default)]
    pub times: Option<u32>,
    /// For `reboot`: how long the device is down before it boots again ("0s" when absent); for
    /// `hang`: how long until its watchdog resets it (never when absent).
    #[serde(default)]
    pub downtime: Option<String>,
    /// For `set-clock-skew`: the new skew, signed.
    #[serde(default)]
    pub skew: Option<String>,
    /// For `set-metric` and `reset-metric`: the metric, a name of the device kind's catalogue.
    #[serde(default)]
    pub metric: Option<String>,
    /// For `set-metric`: the value the device reports for `metric`.
    #[serde(default)]
    pub value: Option<f64>,
}

/// What a scripted event does to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Power lost: the connection drops without a goodbye (the broker publishes the Last Will;
    /// for a gateway child, its gateway reports the loss), unsent readings are lost.
    PowerOff,
    /// Power back: the device boots with a new boot id, connects and sends its birth.
    PowerOn,
    /// Orderly shutdown: a death (reason shutdown), then a clean disconnect.
    Shutdown,
    /// A death (reason reboot) and a clean disconnect, `downtime` down, then a new boot.
    Reboot,
    /// The radio link drops (Last Will); the device stays powered and buffers readings.
    LinkDown,
    /// The radio link is back: reconnect, birth (same boot), backfill of the buffered readings.
    LinkUp,
    /// The device's clock moves to `skew` off true time.
    SetClockSkew,
    /// The firmware hangs: no readings, nothing sent, but its connection stays open (so no Last
    /// Will). With a `downtime`, a watchdog resets it that long after: it boots with a new boot id
    /// and reconnects, taking over its old connection.
    Hang,
    /// A fault the readings show (cooling failed, a runaway process, a stuck sensor): from now
    /// on the device reports `value` for `metric` instead of what its model says, across
    /// reboots, until a `reset-metric`.
    SetMetric,
    /// The fault is gone: the device reports its model's values for `metric` again.
    ResetMetric,
}

impl Action {
    /// The name used in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::PowerOff => "power-off",
            Action::PowerOn => "power-on",
            Action::Shutdown => "shutdown",
            Action::Reboot => "reboot",
            Action::LinkDown => "link-down",
            Action::LinkUp => "link-up",
            Action::SetClockSkew => "set-clock-skew",
            Action::Hang => "hang",
            Action::SetMetric => "set-metric",
            Action::ResetMetric => "reset-metric",
        }
    }
}
