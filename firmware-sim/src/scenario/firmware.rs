//! One simulated device's firmware, with no I/O and no clock: power, boots and boot ids,
//! sequence numbers, the reading schedule, the buffer of readings not yet delivered, and the
//! messages it composes. The [`super::runner`] decides when things happen and moves the bytes.

use std::collections::VecDeque;

use citytel_proto::topic::{self, Channel};
use citytel_proto::v1::{
    Birth, Death, DeathReason, Heartbeat, Reading, Status, TelemetryBatch, status,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::validate::DeviceDef;
use crate::model::DeviceModel;
use crate::profile;
use crate::seed::{Purpose, device_rng};

/// Most readings in one telemetry message (backfills are split).
pub const MAX_BATCH: usize = 500;

/// The firmware state of one device.
#[derive(Debug)]
pub struct Firmware {
    /// Its index in the scenario.
    pub index: usize,
    /// What the scenario says about the device.
    pub def: DeviceDef,
    /// Powered and running.
    pub powered: bool,
    /// Its firmware hangs: it takes no readings and sends nothing.
    pub hung: bool,
    /// Its radio link is up (always, for a gateway child: its link is its gateway's).
    pub link_up: bool,
    /// Its birth went out on the current connection (a child's: on its gateway's connection).
    pub announced: bool,
    /// The current boot.
    pub boot_id: u64,
    /// When the current boot started, true time (ms since the epoch).
    pub booted_at_ms: i64,
    /// Sequence number of the next reading.
    pub next_seq: u64,
    /// Readings taken and not yet acknowledged, oldest first (all of the current boot).
    pub outbox: VecDeque<Reading>,
    /// When the next reading is due (true time), while powered.
    pub next_reading_ms: i64,
    /// When the next heartbeat is due (true time), while powered and sending heartbeats.
    pub next_heartbeat_ms: Option<i64>,
    /// A heartbeat is due and not sent yet.
    pub heartbeat_due: bool,
    /// A sleepy device between two sessions: it ended its last one cleanly and sleeps until
    /// something is due (never set for a device that stays connected).
    pub asleep: bool,
    /// Its clock minus true time, ms.
    pub skew_ms: i64,
    /// Per metric (the kind's catalogue order): the value a scripted fault makes it report
    /// instead of its model's, if any. Faults outlast reboots.
    pub overrides: Vec<Option<f64>>,
    model: DeviceModel,
    boot_ids: ChaCha8Rng,
}

impl Firmware {
    /// The firmware of `def`, device `index` of its scenario, unpowered. Boot ids come from `seed` mixed with `boot_epoch` (so
    /// runs started at different times never share one).
    pub fn new(index: usize, def: DeviceDef, seed: u64, boot_epoch: i64) -> Self {
        let model = DeviceModel::new(def.kind, seed, &def.id);
        let overrides = vec![None; model.metric_names().len()];
        let boot_ids = device_rng(
            seed ^ boot_epoch.cast_unsigned(),
            &def.id,
            Purpose::Identity,
        );
        Firmware {
            index,
            skew_ms: def.clock_skew_ms,
            def,
            powered: false,
            hung: false,
            link_up: true,
            announced: false,
            boot_id: 0,
            booted_at_ms: 0,
            next_seq: 1,
            outbox: VecDeque::new(),
            next_reading_ms: i64::MAX,
            next_heartbeat_ms: None,
            heartbeat_due: false,
            asleep: false,
            overrides,
            model,
            boot_ids,
        }
    }

    /// Boots at true time `now_ms`: a new boot id, sequence numbers from 1, the first reading due
    /// at once.
    pub fn boot(&mut self, now_ms: i64) {
        self.boot_id = loop {
            let id = self.boot_ids.random::<u64>();
            if id != 0 && id != self.boot_id {
                break id;
            }
        };
        self.powered = true;
        self.hung = false;
        self.announced = false;
        self.booted_at_ms = now_ms;
        self.next_seq = 1;
        self.outbox.clear();
        self.next_reading_ms = now_ms;
        self.next_heartbeat_ms = self.def.heartbeat_ms.map(|hb| now_ms + i64::from(hb));
        self.heartbeat_due = false;
        self.asleep = false;
    }

    /// Loses power: everything in RAM is gone. Returns the sequence numbers of the buffered
    /// readings lost with it, oldest first.
    pub fn power_off(&mut self) -> Vec<u64> {
        self.powered = false;
        self.hung = false;
        self.announced = false;
        self.heartbeat_due = false;
        self.asleep = false;
        self.next_heartbeat_ms = None;
        self.next_reading_ms = i64::MAX;
        self.outbox.drain(..).map(|r| r.seq).collect()
    }

    /// The next instant (true time) something periodic is due, while powered and not hung.
    pub fn next_due_ms(&self) -> Option<i64> {
        if !self.powered || self.hung {
            return None;
        }
        Some(match self.next_heartbeat_ms {
            Some(hb) => hb.min(self.next_reading_ms),
            None => self.next_reading_ms,
        })
    }

    /// Takes whatever is due at `now_ms`: a reading into the outbox (its values the model's,
    /// but for the metrics a scripted fault overrides), a heartbeat flag. Returns the number of
    /// readings taken (the newest of the outbox).
    pub fn take_due(&mut self, now_ms: i64) -> u64 {
        if !self.powered || self.hung {
            return 0;
        }
        let mut taken = 0;
        while self.next_reading_ms <= now_ms {
            let device_ms = self.device_ms(self.next_reading_ms);
            let mut values = self.model.sample(device_ms);
            for (v, o) in values.iter_mut().zip(&self.overrides) {
                if let Some(o) = o {
                    *v = *o;
                }
            }
            self.outbox.push_back(Reading {
                seq: self.next_seq,
                time_unix_ms: device_ms,
                values,
            });
            self.next_seq += 1;
            self.next_reading_ms += i64::from(self.def.interval_ms);
            taken += 1;
        }
        if let (Some(due), Some(hb)) = (self.next_heartbeat_ms, self.def.heartbeat_ms)
            && due <= now_ms
        {
            self.heartbeat_due = true;
            let mut next = due;
            while next <= now_ms {
                next += i64::from(hb);
            }
            self.next_heartbeat_ms = Some(next);
        }
        taken
    }

    /// Drops the oldest buffered readings beyond the buffer size. Returns their sequence
    /// numbers, oldest first.
    pub fn trim_buffer(&mut self) -> Vec<u64> {
        let excess = self.outbox.len().saturating_sub(self.def.buffer);
        self.outbox.drain(..excess).map(|r| r.seq).collect()
    }

    /// The true time (ms since the epoch) at which a reading stamped `device_ms` by the
    /// device's current clock was taken.
    pub fn true_ms(&self, device_ms: i64) -> i64 {
        device_ms.saturating_sub(self.skew_ms)
    }

    /// The sequence number of the last reading of this boot, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.next_seq.checked_sub(1).filter(|s| *s > 0)
    }

    /// Whether it has something to send: readings taken or a heartbeat due (a sleepy device
    /// wakes for nothing else).
    pub fn has_news(&self) -> bool {
        !self.outbox.is_empty() || self.heartbeat_due
    }

    /// What its birth says about connecting intermittently: `Some(true)` for a sleepy device,
    /// nothing otherwise (as firmware that predates the field).
    pub fn intermittent(&self) -> Option<bool> {
        self.def.sleepy.then_some(true)
    }

    /// The device's clock at true time `true_ms`.
    pub fn device_ms(&self, true_ms: i64) -> i64 {
        true_ms.saturating_add(self.skew_ms)
    }

    /// The topic of its `channel` messages.
    pub fn topic(&self, channel: Channel) -> String {
        topic::build(
            &self.def.site,
            self.def.kind.as_str(),
            &self.def.id,
            channel,
        )
    }

    /// Its birth at true time `now_ms`, listing `children` for a gateway.
    pub fn birth(&self, now_ms: i64, gateway: Option<&str>, children: Vec<String>) -> Status {
        self.status(
            self.device_ms(now_ms),
            gateway,
            status::Kind::Birth(Birth {
                firmware_version: profile::firmware_version(self.def.kind).to_string(),
                reporting_interval_ms: self.def.interval_ms,
                heartbeat_interval_ms: self.def.heartbeat_ms,
                children,
                intermittent: self.intermittent(),
                location: None,
            }),
        )
    }

    /// A heartbeat at true time `now_ms`.
    pub fn heartbeat(&self, now_ms: i64, gateway: Option<&str>) -> Status {
        let uptime_ms = now_ms.saturating_sub(self.booted_at_ms).max(0);
        self.status(
            self.device_ms(now_ms),
            gateway,
            status::Kind::Heartbeat(Heartbeat {
                last_seq: self.last_seq(),
                uptime_s: Some(uptime_ms.cast_unsigned() / 1000),
            }),
        )
    }

    /// A death at true time `now_ms` (time 0 for a Last Will, composed at connect time).
    pub fn death(&self, now_ms: Option<i64>, reason: DeathReason, gateway: Option<&str>) -> Status {
        self.status(
            now_ms.map_or(0, |t| self.device_ms(t)),
            gateway,
            status::Kind::Death(Death {
                reason: reason as i32,
                at_status_time: false,
            }),
        )
    }

    /// The outbox as telemetry batches of at most [`MAX_BATCH`] readings.
    pub fn batches(&self, gateway: Option<&str>) -> Vec<TelemetryBatch> {
        let names: Vec<String> = self
            .model
            .metric_names()
            .iter()
            .map(|n| (*n).to_string())
            .collect();
        let readings: Vec<Reading> = self.outbox.iter().cloned().collect();
        readings
            .chunks(MAX_BATCH)
            .map(|chunk| TelemetryBatch {
                device_id: self.def.id.clone(),
                boot_id: self.boot_id,
                metric_names: names.clone(),
                readings: chunk.to_vec(),
                gateway_id: gateway.map(str::to_string),
            })
            .collect()
    }

    fn status(&self, time_unix_ms: i64, gateway: Option<&str>, kind: status::Kind) -> Status {
        Status {
            device_id: self.def.id.clone(),
            boot_id: self.boot_id,
            time_unix_ms,
            gateway_id: gateway.map(str::to_string),
            kind: Some(kind),
        }
    }
}
