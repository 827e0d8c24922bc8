//! The ground truth of a run: what every device did, by its own account, and what citytel
//! acknowledged (or, for a Last Will, was sent by the broker). Tests compute the figures citytel
//! must report from it, independently of citytel.
//!
//! A [`Recorder`] is fed as the run goes and turns the device states it is told about into
//! periods; [`ScenarioReport`] is what comes out, as JSON or text ([`super::text`]). It lists
//! every reading a device took, with its values and its fate (acknowledged when, lost when, or
//! still buffered at the end), so tests can work out what rules on values and on lost readings
//! must do without asking citytel.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// What a device was, by its own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceCondition {
    /// Powered and able to reach citytel (connected, or its gateway connected, or, for a sleepy
    /// device, asleep between two sessions it ended cleanly).
    Up,
    /// Not powered (power cut, shutdown, rebooting), or its firmware hangs.
    Down,
    /// Powered but cut off: its own link is down, its connection was lost, or its gateway is
    /// down or cut off.
    Unreachable,
}

/// A maximal interval in one condition, `[start, end)`, true time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// The condition.
    pub condition: DeviceCondition,
    /// Start, ms since the epoch.
    pub start_unix_ms: i64,
    /// End, ms since the epoch.
    pub end_unix_ms: i64,
    /// What started it, e.g. "boot", "power-off", "shutdown", "reboot", "hang", "watchdog",
    /// "link-down", "gateway-unreachable", "connection-lost", "reconnected", "asleep".
    pub cause: String,
}

/// One message citytel received about the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Delivered {
    /// A birth.
    Birth {
        /// The reporting interval it announced.
        reporting_interval_ms: u32,
        /// The heartbeat interval it announced.
        heartbeat_interval_ms: Option<u32>,
        /// Whether it said it connects intermittently (not stated when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intermittent: Option<bool>,
    },
    /// A telemetry batch.
    Readings {
        /// First sequence number (batches are contiguous).
        first_seq: u64,
        /// Last sequence number.
        last_seq: u64,
        /// Readings in it taken before it was sent (backfill).
        backfilled: u64,
    },
    /// A heartbeat.
    Heartbeat {
        /// The last sequence number it reported.
        last_seq: Option<u64>,
    },
    /// A death the device (or its gateway for it) sent; `reason` is the wire name, e.g.
    /// "shutdown", "reboot", "connection_lost".
    Death {
        /// Why.
        reason: String,
    },
    /// The device's connection dropped: the broker publishes its Last Will.
    LastWill,
    /// A sleepy device ended its session: an MQTT DISCONNECT without a death, which citytel's
    /// device endpoint sees (through a broker nothing reaches citytel). Other clean disconnects
    /// (after a death, and of the connections still open when a run ends) are not listed: they
    /// change nothing.
    Disconnect,
}

/// A message citytel received, when (true time) and for which boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// When citytel received it, ms since the epoch.
    pub at_unix_ms: i64,
    /// The boot it belongs to.
    pub boot_id: u64,
    /// What it was.
    #[serde(flatten)]
    pub what: Delivered,
}

/// One boot of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootTruth {
    /// Its boot id.
    pub boot_id: u64,
    /// When it started, ms since the epoch.
    pub started_unix_ms: i64,
    /// Readings taken (sequence numbers 1 to this).
    pub readings_produced: u64,
    /// Readings citytel acknowledged.
    pub readings_delivered: u64,
}

/// One reading a device took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadingTruth {
    /// The boot it was taken in.
    pub boot_id: u64,
    /// Its sequence number in that boot.
    pub seq: u64,
    /// When it was taken, true time, ms since the epoch.
    pub taken_unix_ms: i64,
    /// Its timestamp, by the device's clock.
    pub time_unix_ms: i64,
    /// One value per metric, in [`DeviceTruth::metric_names`] order.
    pub values: Vec<f64>,
    /// When citytel first acknowledged it (true time), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_unix_ms: Option<i64>,
    /// When it was lost (dropped from a full buffer, or with power), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_unix_ms: Option<i64>,
}

/// Everything one device did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceTruth {
    /// Device id.
    pub device_id: String,
    /// Kind, as in topics.
    pub kind: String,
    /// Site.
    pub site: String,
    /// The gateway it reports through.
    pub gateway_id: Option<String>,
    /// Reporting interval, ms.
    pub reporting_interval_ms: u32,
    /// Heartbeat interval, ms.
    pub heartbeat_interval_ms: Option<u32>,
    /// Connects only to report, and sleeps between its sessions (up all the same).
    #[serde(default)]
    pub sleepy: bool,
    /// Its clock minus true time at the end, ms.
    pub clock_skew_ms: i64,
    /// Its conditions over time, in order, covering its start to the end of the run.
    pub periods: Vec<Period>,
    /// Its boots, in order.
    pub boots: Vec<BootTruth>,
    /// What citytel received about it, in order.
    pub deliveries: Vec<Delivery>,
    /// The names of the metrics its readings carry, in order.
    #[serde(default)]
    pub metric_names: Vec<String>,
    /// Every reading it took, in the order taken.
    #[serde(default)]
    pub readings: Vec<ReadingTruth>,
    /// Readings taken.
    pub readings_produced: u64,
    /// Readings citytel acknowledged (each once).
    pub readings_delivered: u64,
    /// Readings lost: dropped from a full buffer or lost with power.
    pub readings_lost: u64,
    /// Readings delivered later than taken (backfilled).
    pub readings_backfilled: u64,
}

impl DeviceTruth {
    /// Time in `condition` within the run, ms.
    pub fn time_in(&self, condition: DeviceCondition) -> i64 {
        self.periods
            .iter()
            .filter(|p| p.condition == condition)
            .map(|p| p.end_unix_ms - p.start_unix_ms)
            .sum()
    }

    /// The reading `seq` of boot `boot_id`, if it took one.
    pub fn reading(&self, boot_id: u64, seq: u64) -> Option<&ReadingTruth> {
        self.readings
            .iter()
            .find(|r| r.boot_id == boot_id && r.seq == seq)
    }

    /// The index of `metric` in its readings' values.
    pub fn metric_index(&self, metric: &str) -> Option<usize> {
        self.metric_names.iter().position(|m| m == metric)
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub scenario: String,
    /// When the run started (true time), ms since the epoch.
    pub start_unix_ms: i64,
    /// When it ended.
    pub end_unix_ms: i64,
    /// Every device, in scenario order.
    pub devices: Vec<DeviceTruth>,
}

impl ScenarioReport {
    /// The device `id`.
    pub fn device(&self, id: &str) -> Option<&DeviceTruth> {
        self.devices.iter().find(|d| d.device_id == id)
    }
}

/// Builds a [`ScenarioReport`] as a run goes.
#[derive(Debug)]
pub struct Recorder {
    report: ScenarioReport,
    /// Per device: the open period's condition, start and cause.
    open: Vec<Option<(DeviceCondition, i64, String)>>,
    /// (device, boot id) -> index of the boot's first reading in the device's readings (a
    /// boot's sequence numbers run from 1 without gaps).
    boot_readings: HashMap<(usize, u64), usize>,
}

impl Recorder {
    /// A recorder for `devices` (filled in by the caller), starting at `start_unix_ms`.
    pub fn new(scenario: &str, start_unix_ms: i64, devices: Vec<DeviceTruth>) -> Self {
        let open = vec![None; devices.len()];
        Recorder {
            report: ScenarioReport {
                scenario: scenario.to_string(),
                start_unix_ms,
                end_unix_ms: start_unix_ms,
                devices,
            },
            open,
            boot_readings: HashMap::new(),
        }
    }

    /// Device `d` is in `condition` from `at_ms` (a no-op if it already is).
    pub fn condition(&mut self, d: usize, condition: DeviceCondition, at_ms: i64, cause: &str) {
        match &self.open[d] {
            Some((current, ..)) if *current == condition => return,
            _ => {}
        }
        if let Some((c, start, why)) = self.open[d].take() {
            self.close(d, c, start, at_ms, why);
        }
        self.open[d] = Some((condition, at_ms, cause.to_string()));
    }

    /// Ends a period; an empty one is dropped, and one that continues the previous period (after
    /// an empty one in between) extends it.
    fn close(&mut self, d: usize, condition: DeviceCondition, start: i64, end: i64, cause: String) {
        if end <= start {
            return;
        }
        let periods = &mut self.report.devices[d].periods;
        match periods.last_mut() {
            Some(last) if last.condition == condition && last.end_unix_ms == start => {
                last.end_unix_ms = end;
            }
            _ => periods.push(Period {
                condition,
                start_unix_ms: start,
                end_unix_ms: end,
                cause,
            }),
        }
    }

    /// Device `d` booted.
    pub fn boot(&mut self, d: usize, boot_id: u64, at_ms: i64) {
        self.report.devices[d].boots.push(BootTruth {
            boot_id,
            started_unix_ms: at_ms,
            readings_produced: 0,
            readings_delivered: 0,
        });
    }

    /// Device `d` took `reading` in its current boot (the next sequence number of it).
    pub fn took(&mut self, d: usize, reading: ReadingTruth) {
        let device = &mut self.report.devices[d];
        device.readings_produced += 1;
        if let Some(boot) = device.boots.last_mut() {
            boot.readings_produced += 1;
        }
        if reading.seq == 1 {
            self.boot_readings
                .insert((d, reading.boot_id), device.readings.len());
        }
        device.readings.push(reading);
    }

    /// The reading `seq` of device `d`'s boot `boot_id`.
    fn reading_mut(&mut self, d: usize, boot_id: u64, seq: u64) -> Option<&mut ReadingTruth> {
        let first = *self.boot_readings.get(&(d, boot_id))?;
        let i = first.checked_add(usize::try_from(seq.checked_sub(1)?).ok()?)?;
        self.report.devices[d]
            .readings
            .get_mut(i)
            .filter(|r| r.boot_id == boot_id && r.seq == seq)
    }

    /// Device `d` lost the readings `seqs` of boot `boot_id` at `at_ms`.
    pub fn lost(&mut self, d: usize, boot_id: u64, seqs: &[u64], at_ms: i64) {
        self.report.devices[d].readings_lost += seqs.len() as u64;
        for &seq in seqs {
            if let Some(r) = self.reading_mut(d, boot_id, seq) {
                r.lost_unix_ms = Some(at_ms);
            }
        }
    }

    /// Device `d` sets its clock skew.
    pub fn skew(&mut self, d: usize, skew_ms: i64) {
        self.report.devices[d].clock_skew_ms = skew_ms;
    }

    /// citytel received `what` about device `d` at `at_ms`; `new_readings` of a batch had not
    /// been acknowledged before.
    pub fn delivered(
        &mut self,
        d: usize,
        at_ms: i64,
        boot_id: u64,
        what: Delivered,
        new_readings: u64,
    ) {
        if let Delivered::Readings {
            first_seq,
            last_seq,
            ..
        } = &what
        {
            for seq in *first_seq..=*last_seq {
                if let Some(r) = self.reading_mut(d, boot_id, seq) {
                    r.delivered_unix_ms.get_or_insert(at_ms);
                }
            }
        }
        let device = &mut self.report.devices[d];
        if let Delivered::Readings { backfilled, .. } = &what {
            device.readings_delivered += new_readings;
            device.readings_backfilled += backfilled;
            if let Some(boot) = device.boots.iter_mut().rev().find(|b| b.boot_id == boot_id) {
                boot.readings_delivered += new_readings;
            }
        }
        device.deliveries.push(Delivery {
            at_unix_ms: at_ms,
            boot_id,
            what,
        });
    }

    /// Closes every open period at `end_ms` and returns the report.
    pub fn finish(mut self, end_ms: i64) -> ScenarioReport {
        for d in 0..self.open.len() {
            if let Some((c, start, cause)) = self.open[d].take() {
                self.close(d, c, start, end_ms, cause);
            }
        }
        self.report.end_unix_ms = end_ms;
        self.report
    }
}
