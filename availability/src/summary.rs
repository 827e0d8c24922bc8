//! The figures of an availability report: time per state, availability %, MTTR and MTBF, and the
//! roll-up that combines devices into sites and sites into districts.
//!
//! Rules:
//! - Availability % = (Online + Late) / (Online + Late + Offline) × 100. Unknown (nobody was
//!   watching), Unreachable (the gateway was down, not the device) and maintenance time count
//!   neither for nor against the device; with no Online, Late or Offline time the figure is
//!   undefined (`None`).
//! - MTTR = total duration of the outages that ended in the window / their number.
//! - MTBF = available (Online + Late) time / number of outages that started in the window;
//!   undefined when none started.
//! - A roll-up adds up times and outage counts, so a site's availability weighs each device by
//!   its observed time (time-weighted), and rolling up sites gives exactly the roll-up of all their
//!   devices.

use super::state::DeviceState;

/// Time spent in each state within a window, outside maintenance, and the time in maintenance.
/// The fields add up to the window's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateTimes {
    /// Unknown, ms.
    pub unknown_ms: i64,
    /// Online, ms.
    pub online_ms: i64,
    /// Late, ms.
    pub late_ms: i64,
    /// Offline, ms.
    pub offline_ms: i64,
    /// Unreachable, ms.
    pub unreachable_ms: i64,
    /// In a maintenance window, whatever the state, ms.
    pub maintenance_ms: i64,
}

impl StateTimes {
    /// Time in `state`, outside maintenance.
    pub fn get(&self, state: DeviceState) -> i64 {
        match state {
            DeviceState::Unknown => self.unknown_ms,
            DeviceState::Online => self.online_ms,
            DeviceState::Late => self.late_ms,
            DeviceState::Offline => self.offline_ms,
            DeviceState::Unreachable => self.unreachable_ms,
        }
    }

    /// Adds `ms` to the time in `state`.
    pub fn add(&mut self, state: DeviceState, ms: i64) {
        let field = match state {
            DeviceState::Unknown => &mut self.unknown_ms,
            DeviceState::Online => &mut self.online_ms,
            DeviceState::Late => &mut self.late_ms,
            DeviceState::Offline => &mut self.offline_ms,
            DeviceState::Unreachable => &mut self.unreachable_ms,
        };
        *field += ms;
    }

    /// Online + Late: the numerator of availability.
    pub fn available_ms(&self) -> i64 {
        self.online_ms + self.late_ms
    }

    /// Online + Late + Offline: the denominator of availability.
    pub fn observed_ms(&self) -> i64 {
        self.available_ms() + self.offline_ms
    }

    /// Every field: the length of the window (times the number of devices in a roll-up).
    pub fn total_ms(&self) -> i64 {
        self.unknown_ms + self.observed_ms() + self.unreachable_ms + self.maintenance_ms
    }

    /// Adds `other` field by field.
    pub fn merge(&mut self, other: &StateTimes) {
        for state in DeviceState::ALL {
            self.add(*state, other.get(*state));
        }
        self.maintenance_ms += other.maintenance_ms;
    }
}

/// The availability figures of one device, or of several rolled up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// How many devices the figures cover.
    pub devices: u64,
    /// Time per state.
    pub times: StateTimes,
    /// Outages that started in the window.
    pub outages_started: u64,
    /// Outages that ended in the window.
    pub outages_ended: u64,
    /// Total duration of the outages that ended in the window, ms.
    pub repair_ms: i64,
}

impl Summary {
    /// Availability in percent, `None` when nothing was observed.
    pub fn availability_percent(&self) -> Option<f64> {
        let observed = self.times.observed_ms();
        (observed > 0).then(|| self.times.available_ms() as f64 * 100.0 / observed as f64)
    }

    /// Mean time to repair, ms (rounded down), `None` when no outage ended.
    pub fn mttr_ms(&self) -> Option<i64> {
        mean(self.repair_ms, self.outages_ended)
    }

    /// Mean time between failures, ms (rounded down), `None` when no outage started.
    pub fn mtbf_ms(&self) -> Option<i64> {
        mean(self.times.available_ms(), self.outages_started)
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Summary) {
        self.devices += other.devices;
        self.times.merge(&other.times);
        self.outages_started += other.outages_started;
        self.outages_ended += other.outages_ended;
        self.repair_ms += other.repair_ms;
    }
}

/// Combines the summaries of devices (into a site) or of sites (into a district).
pub fn roll_up<'a>(parts: impl IntoIterator<Item = &'a Summary>) -> Summary {
    parts.into_iter().fold(Summary::default(), |mut all, part| {
        all.merge(part);
        all
    })
}

/// `total / count`, `None` for no items.
fn mean(total: i64, count: u64) -> Option<i64> {
    let count = i64::try_from(count).ok().filter(|c| *c > 0)?;
    Some(total.div_euclid(count))
}
