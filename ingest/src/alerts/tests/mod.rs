//! Tests of the alert engine, driven through a small world of plain data ([`Lab`]): devices
//! with their transitions, maintenance windows, and the engine fed as the state would feed it.

mod config;
mod counts;
mod kinds;
mod lifecycle;
mod mutes;
mod periodic;
mod snapshot;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

use citytel_availability::{
    Cause, DeviceState, Maintenance, Span, StateTimes, Transition, availability,
};

use super::config::{RuleConfig, parse_rules, rules_source};
use super::outbox::{Notification, Status};
use super::world::{DeviceRef, World};
use super::{Alerts, BatchFacts};

/// Minute.
pub(super) const M: i64 = 60_000;
/// A start time on a whole hour.
pub(super) const T0: i64 = 1_700_002_800_000;

/// One device of the lab.
#[derive(Debug, Clone)]
pub(super) struct Device {
    pub(super) id: Arc<str>,
    pub(super) kind: Arc<str>,
    pub(super) site: Arc<str>,
    pub(super) transitions: Vec<Transition>,
}

/// The world the engine reads, and the engine, fed as the state feeds it.
pub(super) struct Lab {
    pub(super) devices: BTreeMap<Arc<str>, Device>,
    pub(super) districts: BTreeMap<String, String>,
    pub(super) maintenance: Vec<(Option<String>, Option<String>, Span)>,
    pub(super) alerts: Alerts,
    /// How many times the engine read a device's state times.
    pub(super) times_read: Cell<u64>,
}

struct View<'a> {
    devices: &'a BTreeMap<Arc<str>, Device>,
    districts: &'a BTreeMap<String, String>,
    maintenance: &'a [(Option<String>, Option<String>, Span)],
    times_read: &'a Cell<u64>,
}

impl World for View<'_> {
    fn state(&self, device: &str) -> DeviceState {
        self.devices
            .get(device)
            .and_then(|d| d.transitions.last())
            .map_or(DeviceState::Unknown, |t| t.to)
    }

    fn state_at(&self, device: &str, at_ms: i64) -> DeviceState {
        self.devices
            .get(device)
            .and_then(|d| d.transitions.iter().rev().find(|t| t.at_ms <= at_ms))
            .map_or(DeviceState::Unknown, |t| t.to)
    }

    fn since(&self, device: &str) -> Option<i64> {
        Some(self.devices.get(device)?.transitions.last()?.at_ms)
    }

    fn times(&self, device: &str, window: Span) -> StateTimes {
        self.times_read.set(self.times_read.get() + 1);
        let Some(d) = self.devices.get(device) else {
            return StateTimes::default();
        };
        let m = Maintenance::new(
            self.maintenance
                .iter()
                .filter(|(dev, site, _)| {
                    dev.as_deref() == Some(device) || site.as_deref() == Some(&*d.site)
                })
                .map(|(_, _, s)| *s),
        );
        availability(&d.transitions, &m, window).summary.times
    }

    fn devices(&self, f: &mut dyn FnMut(DeviceRef<'_>)) {
        for d in self.devices.values() {
            f(DeviceRef {
                id: &d.id,
                kind: &d.kind,
                site: &d.site,
                district: self.districts.get(&*d.site).map(String::as_str),
            });
        }
    }

    fn device(&self, id: &str) -> Option<DeviceRef<'_>> {
        let d = self.devices.get(id)?;
        Some(DeviceRef {
            id: &d.id,
            kind: &d.kind,
            site: &d.site,
            district: self.districts.get(&*d.site).map(String::as_str),
        })
    }

    fn district(&self, site: &str) -> Option<&str> {
        self.districts.get(site).map(String::as_str)
    }

    fn maintenance_until(&self, device: Option<&str>, site: Option<&str>, at: i64) -> Option<i64> {
        let site = match device {
            Some(d) => self.devices.get(d).map(|d| d.site.to_string()),
            None => site.map(str::to_string),
        };
        let m = Maintenance::new(
            self.maintenance
                .iter()
                .filter(|(dev, s, _)| {
                    (device.is_some() && dev.as_deref() == device) || (s.is_some() && *s == site)
                })
                .map(|(_, _, s)| *s),
        );
        m.spans()
            .iter()
            .find(|s| s.start_ms <= at && at < s.end_ms)
            .map(|s| s.end_ms)
    }
}

impl Lab {
    /// A lab with `rules` (TOML `[[rule]]` tables) in force from `T0`, and no devices.
    pub(super) fn new(rules: &str) -> Lab {
        let mut lab = Lab {
            devices: BTreeMap::new(),
            districts: BTreeMap::new(),
            maintenance: Vec::new(),
            alerts: Alerts::default(),
            times_read: Cell::new(0),
        };
        lab.set_rules(rules, T0);
        lab
    }

    /// Puts `rules` in force at `at`.
    pub(super) fn set_rules(&mut self, rules: &str, at: i64) {
        let (configs, parsed): (Vec<RuleConfig>, _) = parse_rules(rules).expect("valid rules");
        let view = View {
            devices: &self.devices,
            districts: &self.districts,
            maintenance: &self.maintenance,
            times_read: &self.times_read,
        };
        self.alerts
            .set_rules(parsed, rules_source(&configs), at, &view);
    }

    /// Adds a device (Unknown).
    pub(super) fn device(&mut self, id: &str, kind: &str, site: &str) {
        self.devices.insert(
            id.into(),
            Device {
                id: id.into(),
                kind: kind.into(),
                site: site.into(),
                transitions: Vec::new(),
            },
        );
    }

    /// `device` changes to `to` at `at` with `cause`.
    pub(super) fn change(&mut self, device: &str, to: DeviceState, at: i64, cause: Cause) {
        let d = self.devices.get_mut(device).expect("known device");
        let from = d.transitions.last().map_or(DeviceState::Unknown, |t| t.to);
        if from == to {
            return;
        }
        let t = Transition {
            at_ms: at,
            from,
            to,
            cause,
            boot_id: None,
        };
        d.transitions.push(t);
        let view = View {
            devices: &self.devices,
            districts: &self.districts,
            maintenance: &self.maintenance,
            times_read: &self.times_read,
        };
        let d = &self.devices[device];
        let r = DeviceRef {
            id: &d.id,
            kind: &d.kind,
            site: &d.site,
            district: self.districts.get(&*d.site).map(String::as_str),
        };
        self.alerts.on_transition(r, &t, &view);
    }

    /// `device` is heard (Online).
    pub(super) fn online(&mut self, device: &str, at: i64) {
        self.change(device, DeviceState::Online, at, Cause::Reading);
    }

    /// `device` goes offline (silent).
    pub(super) fn offline(&mut self, device: &str, at: i64) {
        self.change(device, DeviceState::Offline, at, Cause::Silent);
    }

    /// A batch of `device` at `at`: each metric moved to its value; `stored` and `produced`
    /// readings for completeness.
    pub(super) fn readings(
        &mut self,
        device: &str,
        at: i64,
        values: &[(&str, f64)],
        stored: u64,
        produced: u64,
    ) {
        let metrics: Vec<String> = values.iter().map(|(m, _)| m.to_string()).collect();
        let latest: Vec<Option<f64>> = values.iter().map(|(_, v)| Some(*v)).collect();
        let view = View {
            devices: &self.devices,
            districts: &self.districts,
            maintenance: &self.maintenance,
            times_read: &self.times_read,
        };
        let d = &self.devices[device];
        let r = DeviceRef {
            id: &d.id,
            kind: &d.kind,
            site: &d.site,
            district: self.districts.get(&*d.site).map(String::as_str),
        };
        self.alerts.on_readings(
            r,
            at,
            BatchFacts {
                metrics: &metrics,
                latest: &latest,
                stored,
                produced,
            },
            &view,
        );
    }

    /// Time reaches `now`.
    pub(super) fn advance(&mut self, now: i64) {
        let view = View {
            devices: &self.devices,
            districts: &self.districts,
            maintenance: &self.maintenance,
            times_read: &self.times_read,
        };
        self.alerts.advance(now, &view);
    }

    /// citytel restarts at `now` after being down since `stopped`: every device is Unknown
    /// from then.
    pub(super) fn restart(&mut self, stopped: i64, now: i64) {
        let ids: Vec<String> = self.devices.keys().map(|d| d.to_string()).collect();
        for id in ids {
            let since = self.devices[&*id]
                .transitions
                .last()
                .map_or(stopped, |t| t.at_ms);
            self.change(
                &id,
                DeviceState::Unknown,
                stopped.max(since),
                Cause::IngesterRestart,
            );
        }
        let view = View {
            devices: &self.devices,
            districts: &self.districts,
            maintenance: &self.maintenance,
            times_read: &self.times_read,
        };
        self.alerts.restarted(now, &view);
    }

    /// Every notification so far, as (status, alertname, target label, at, startsAt).
    pub(super) fn sent(&self) -> Vec<(Status, String, String, i64, i64)> {
        self.alerts
            .outbox()
            .from(0, usize::MAX)
            .iter()
            .map(|n: &Arc<Notification>| {
                let l = &n.alert.labels;
                let target = l
                    .get("device")
                    .or_else(|| l.get("site"))
                    .or_else(|| l.get("district"))
                    .cloned()
                    .unwrap_or_default();
                (
                    n.status,
                    l["alertname"].clone(),
                    target,
                    n.at_ms - T0,
                    n.alert.starts_at_ms - T0,
                )
            })
            .collect()
    }
}

/// Shorthand for an expected notification: (status, rule, target, minutes from T0 of the
/// transition, minutes from T0 of startsAt).
pub(super) fn n(
    status: Status,
    rule: &str,
    target: &str,
    at_min: f64,
    starts_min: f64,
) -> (Status, String, String, i64, i64) {
    (
        status,
        rule.to_string(),
        target.to_string(),
        (at_min * M as f64) as i64,
        (starts_min * M as f64) as i64,
    )
}
