//! The fleet: drives one [`DeviceMachine`] per device from what the ingest path hears,
//! keeps the resulting history, and answers the availability questions.
//!
//! It is the thin driver around the pure state machines in [`citytel_availability`]: it turns
//! births, heartbeats, readings, deaths and the device endpoint's connections opening and closing
//! into events stamped with their receive time, applies
//! silence timeouts in deadline order across the whole fleet ([`deadlines`]), tells the children
//! of a gateway when it goes offline or comes back, feeds clock-offset estimators, and queues
//! every change for persistence and for live watchers. Because timeouts are applied in deadline
//! order before each event, replaying the WAL after a restart rebuilds exactly the history that
//! was built live.
//!
//! - [`deadlines`]: the fleet-wide deadline queue.
//! - [`snapshot`]: the fleet's part of the checkpoint snapshot and the history record keys.
//! - [`report`]: availability, outages and completeness answers.

pub mod deadlines;
pub mod report;
pub mod snapshot;

pub use snapshot::FleetSnapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use citytel_proto::v1::{DeathReason, Status, status};
use tokio::sync::broadcast;

use crate::hash::Map;
use citytel_availability::{
    Change, ClockEstimator, ClockOffset, DeviceMachine, DeviceState, Districts, Event, Policy,
    Reboot, Transition,
};
use deadlines::Deadlines;

/// Changes buffered for live watchers before slow ones start missing some.
const WATCH_BUFFER: usize = 4096;

/// A change of one device, as sent to watchers.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceChange {
    /// The device.
    pub device: Arc<str>,
    /// What changed.
    pub change: Change,
}

/// Every device's state machine, history and estimators.
#[derive(Debug)]
pub struct Fleet {
    policy: Policy,
    machines: Map<Arc<str>, (Arc<str>, DeviceMachine)>,
    children: Map<Arc<str>, BTreeSet<Arc<str>>>,
    history: Map<Arc<str>, Vec<Transition>>,
    reboots: Map<Arc<str>, Vec<Reboot>>,
    clocks: Map<Arc<str>, ClockEstimator>,
    last_produced: Map<Arc<str>, BTreeMap<u64, u64>>,
    deadlines: Deadlines,
    last_event_ms: i64,
    unflushed: Vec<DeviceChange>,
    districts: Arc<Districts>,
    watchers: broadcast::Sender<DeviceChange>,
}

impl Fleet {
    /// A fleet with `policy`, placing sites in `districts`.
    pub fn new(policy: Policy, districts: Arc<Districts>) -> Self {
        Fleet {
            policy,
            machines: Map::default(),
            children: Map::default(),
            history: Map::default(),
            reboots: Map::default(),
            clocks: Map::default(),
            last_produced: Map::default(),
            deadlines: Deadlines::default(),
            last_event_ms: i64::MIN,
            unflushed: Vec::new(),
            districts,
            watchers: broadcast::channel(WATCH_BUFFER).0,
        }
    }

    /// A receiver of every change from now on.
    pub fn watch(&self) -> broadcast::Receiver<DeviceChange> {
        self.watchers.subscribe()
    }

    /// Notes that `device` reports through `gateway`.
    pub fn link(&mut self, device: &Arc<str>, gateway: &Arc<str>) {
        self.children
            .entry(gateway.clone())
            .or_default()
            .insert(device.clone());
    }

    /// A status message from `device` of `kind`, received at `now_ms`.
    pub fn on_status(&mut self, device: &Arc<str>, kind: &Arc<str>, status: &Status, now_ms: i64) {
        if status.time_unix_ms != 0 {
            self.clocks
                .entry(device.clone())
                .or_default()
                .observe(status.time_unix_ms, now_ms);
        }
        let event = match &status.kind {
            Some(status::Kind::Birth(b)) => Event::Birth {
                boot_id: status.boot_id,
                reporting_interval_ms: b.reporting_interval_ms,
                heartbeat_interval_ms: b.heartbeat_interval_ms,
                intermittent: b.intermittent,
            },
            Some(status::Kind::Heartbeat(h)) => {
                if let Some(last) = h.last_seq {
                    let slot = self
                        .last_produced
                        .entry(device.clone())
                        .or_default()
                        .entry(status.boot_id)
                        .or_default();
                    *slot = (*slot).max(last);
                }
                Event::Heartbeat {
                    boot_id: status.boot_id,
                }
            }
            // New attribute values are a sign of life, like a heartbeat.
            Some(status::Kind::Attributes(_)) => Event::Heartbeat {
                boot_id: status.boot_id,
            },
            Some(status::Kind::Death(d)) => {
                let reason = DeathReason::try_from(d.reason).unwrap_or(DeathReason::Unspecified);
                Event::Death {
                    boot_id: status.boot_id,
                    reason,
                    via_will: reason == DeathReason::ConnectionLost,
                    // Stamped with its own time (a Sparkplug DDEATH), clamped by the machine.
                    at_ms: (d.at_status_time && status.time_unix_ms != 0)
                        .then_some(status.time_unix_ms),
                }
            }
            None => return,
        };
        self.handle(device, kind, &event, now_ms);
    }

    /// Readings from `device` of `kind` and boot `boot_id` arrived at `now_ms`; the newest was
    /// taken at `newest_device_ms` by the device's clock.
    pub fn on_readings(
        &mut self,
        device: &Arc<str>,
        kind: &Arc<str>,
        boot_id: u64,
        newest_device_ms: i64,
        now_ms: i64,
    ) {
        self.clocks
            .entry(device.clone())
            .or_default()
            .observe(newest_device_ms, now_ms);
        self.handle(device, kind, &Event::Reading { boot_id }, now_ms);
    }

    /// `device` of `kind` connected to the device endpoint at `now_ms`.
    pub fn connection_opened(&mut self, device: &Arc<str>, kind: &Arc<str>, now_ms: i64) {
        self.handle(device, kind, &Event::ConnectionOpened, now_ms);
    }

    /// The device endpoint connection of `device` of `kind` closed at `now_ms`: `clean` when the
    /// device sent a DISCONNECT, otherwise it dropped. A device already Offline (its death or
    /// Last Will came first) stays so without another transition.
    pub fn connection_closed(
        &mut self,
        device: &Arc<str>,
        kind: &Arc<str>,
        clean: bool,
        now_ms: i64,
    ) {
        self.handle(device, kind, &Event::ConnectionClosed { clean }, now_ms);
    }

    /// Applies every silence timeout that fell due at or before `now_ms`, fleet-wide, in order.
    pub fn advance(&mut self, now_ms: i64) {
        while let Some((at, device)) = self.deadlines.pop_due(now_ms) {
            let changes = match self.machines.get_mut(&device) {
                Some((_, machine)) => machine.handle(&Event::Tick, at),
                None => continue,
            };
            self.after(&device, changes);
        }
    }

    /// After a restart: every device's state is unknown from the last moment anything was
    /// known (citytel's own downtime is not the devices' fault) until it is heard again.
    pub fn ingester_started(&mut self, now_ms: i64) {
        let stopped_at = if self.last_event_ms == i64::MIN {
            now_ms
        } else {
            self.last_event_ms
        };
        self.advance(stopped_at);
        let devices: Vec<Arc<str>> = self.machines.keys().cloned().collect();
        for device in devices {
            let changes = match self.machines.get_mut(&device) {
                Some((_, m)) => m.handle(
                    &Event::IngesterStarted {
                        stopped_at_ms: stopped_at,
                    },
                    now_ms,
                ),
                None => continue,
            };
            self.after(&device, changes);
        }
        self.last_event_ms = self.last_event_ms.max(now_ms);
    }

    fn handle(&mut self, device: &Arc<str>, kind: &Arc<str>, event: &Event, now_ms: i64) {
        // A death stamped earlier than its arrival is applied before the silence thresholds
        // that passed since then (the next event or tick applies them, at their own instants).
        let until = match event {
            Event::Death {
                at_ms: Some(at), ..
            } => (*at).min(now_ms),
            _ => now_ms,
        };
        self.advance(until);
        self.last_event_ms = self.last_event_ms.max(now_ms);
        let policy = &self.policy;
        let (_, machine) = self
            .machines
            .entry(device.clone())
            .or_insert_with(|| (kind.clone(), DeviceMachine::new(policy, kind)));
        let changes = machine.handle(event, now_ms);
        self.after(device, changes);
    }

    /// Records changes, tells a gateway's children, and reschedules the device's deadline.
    fn after(&mut self, device: &Arc<str>, changes: Vec<Change>) {
        for change in changes {
            if let Change::Transition(t) = change {
                push_one(self.history.entry(device.clone()).or_default(), t);
                // A gateway is back whenever it becomes Online or Late from a state where it was
                // not up (Offline, or Unknown after citytel's own restart during its outage).
                let up = |s| matches!(s, DeviceState::Online | DeviceState::Late);
                let gateway_event = match (t.from, t.to) {
                    (_, DeviceState::Offline) => Some(Event::GatewayOffline),
                    (from, to) if up(to) && !up(from) => Some(Event::GatewayOnline),
                    _ => None,
                };
                if let Some(event) = gateway_event {
                    let children: Vec<Arc<str>> = self
                        .children
                        .get(device)
                        .map(|c| c.iter().cloned().collect())
                        .unwrap_or_default();
                    for child in children {
                        if let Some((_, m)) = self.machines.get_mut(&child) {
                            let child_changes = m.handle(&event, t.at_ms);
                            self.after(&child, child_changes);
                        }
                    }
                }
            }
            if let Change::Reboot(r) = change {
                self.reboots.entry(device.clone()).or_default().push(r);
            }
            let record = DeviceChange {
                device: device.clone(),
                change,
            };
            if self.watchers.receiver_count() > 0 {
                let _ = self.watchers.send(record.clone());
            }
            self.unflushed.push(record);
        }
        let deadline = self
            .machines
            .get(device)
            .and_then(|(_, m)| m.next_deadline());
        self.deadlines.set(device, deadline);
    }

    /// The current state of `device`, since when and why (`None`: never tracked).
    pub fn state(&self, device: &str) -> Option<(DeviceState, Option<Transition>)> {
        let (_, machine) = self.machines.get(device)?;
        let last = self.history.get(device).and_then(|h| h.last()).copied();
        Some((machine.state(), last))
    }

    /// The clock offset estimate of `device`.
    pub fn clock_offset(&self, device: &str) -> Option<ClockOffset> {
        self.clocks.get(device)?.estimate()
    }

    /// The availability rules: late and offline graces, intervals per kind.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The districts (polygons and the site-to-district mapping), shared (fixed at start-up).
    pub fn districts(&self) -> &Arc<Districts> {
        &self.districts
    }

    /// The district of `site` from the site-to-district mapping, if configured (a device's own
    /// district, which its location may decide, is [`DeviceRecord::district`](crate::state::registry::DeviceRecord::district)).
    pub fn district(&self, site: &str) -> Option<&str> {
        self.districts.site(site).map(|d| &**d)
    }

    /// The earliest silence deadline, if any (possibly one that no longer applies): a tick at or
    /// after it may change something.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.next_at()
    }

    /// Number of changes not yet persisted (the alert engine is fed those after this many).
    pub fn unflushed_len(&self) -> usize {
        self.unflushed.len()
    }

    /// The changes not yet persisted from position `from` on.
    pub fn unflushed_from(&self, from: usize) -> &[DeviceChange] {
        self.unflushed.get(from..).unwrap_or(&[])
    }

    /// Takes the changes not yet persisted.
    pub fn take_unflushed(&mut self) -> Vec<DeviceChange> {
        std::mem::take(&mut self.unflushed)
    }

    /// Restores persisted history (changes in order).
    pub fn restore_history(&mut self, device: Arc<str>, change: Change) {
        match change {
            Change::Transition(t) => push_one(self.history.entry(device).or_default(), t),
            Change::Reboot(r) => self.reboots.entry(device).or_default().push(r),
        }
    }

    /// Forgets the history before `cutoff_ms`: every reboot and every transition before it,
    /// except each device's last transition before it (the state it was in at the cutoff, so
    /// availability from the cutoff on stays exact). Returns how many records were dropped.
    pub fn prune_history(&mut self, cutoff_ms: i64) -> usize {
        let mut dropped = 0;
        for transitions in self.history.values_mut() {
            let before = transitions.partition_point(|t| t.at_ms < cutoff_ms);
            let drop = before.saturating_sub(1);
            if drop > 0 {
                transitions.drain(..drop);
                dropped += drop;
            }
        }
        for reboots in self.reboots.values_mut() {
            let before = reboots.len();
            reboots.retain(|r| r.at_ms >= cutoff_ms);
            dropped += before - reboots.len();
        }
        self.reboots.retain(|_, r| !r.is_empty());
        dropped
    }

    /// The state transitions of `device`, oldest first.
    pub fn transitions(&self, device: &str) -> &[Transition] {
        self.history.get(device).map_or(&[], Vec::as_slice)
    }

    /// The reboots of `device`, oldest first.
    pub fn reboots(&self, device: &str) -> &[Reboot] {
        self.reboots.get(device).map_or(&[], Vec::as_slice)
    }

    /// The highest sequence number a heartbeat of (device, boot) reported as produced.
    pub fn last_produced(&self, device: &str, boot: u64) -> Option<u64> {
        self.last_produced.get(device)?.get(&boot).copied()
    }
}

/// Appends `t`, reserving room for just it when `v` is new: most devices change state rarely,
/// and a first push would reserve room for four.
fn push_one(v: &mut Vec<Transition>, t: Transition) {
    if v.capacity() == 0 {
        v.reserve_exact(1);
    }
    v.push(t);
}

#[cfg(test)]
mod tests;
