//! What the state feeds the engine, in the order the writer applies it:
//!
//! - [`Alerts::on_transition`]: a device changed state (at its deadline-derived instant). State
//!   rules follow it; absence rules stop while the device is down and count from its recovery.
//! - [`Alerts::on_readings`]: a telemetry batch was stored. Threshold rules compare the newest
//!   value of each metric whose latest value the batch moved (backfilled readings never do);
//!   absence rules note the metric as received; completeness rules count the readings (once
//!   per device and interval, see `counts`).
//! - [`Alerts::advance`]: time reached `now` (every WAL entry's time, and the writer's ticks).
//! - [`Alerts::restarted`]: citytel started again after being down.
//!
//! Every input first handles the engine's deadlines that fall strictly before its instant, so
//! deadlines and inputs interleave in time order however often the writer ticks. An input at
//! the very instant of a deadline comes first (a device heard exactly at an alert's deadline
//! keeps it from firing).

use std::sync::Arc;

use citytel_availability::{Cause, DeviceState, Transition};

use super::episode::Key;
use super::queue::{self, Class, Due};
use super::rule::Condition;
use super::world::{DeviceRef, World};
use super::{Absent, Alerts, Recovery};

/// What the engine needs of a stored telemetry batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchFacts<'a> {
    /// The batch's metric names.
    pub metrics: &'a [String],
    /// Per metric (same order): the new latest value, when the batch moved the latest value
    /// (needed only for the metrics of threshold rules, see [`Alerts::reads_value`]).
    pub latest: &'a [Option<f64>],
    /// Readings stored (not duplicates).
    pub stored: u64,
    /// Readings the sequence numbers say were produced that were not counted before: the
    /// span of a new boot's stored readings, or how far the boot's highest sequence number rose.
    pub produced: u64,
}

fn up(state: DeviceState) -> bool {
    matches!(state, DeviceState::Online | DeviceState::Late)
}

fn down(state: DeviceState) -> bool {
    matches!(state, DeviceState::Offline | DeviceState::Unreachable)
}

impl Alerts {
    /// Handles every deadline strictly before `now`, then moves the engine's time to `now`.
    pub fn advance(&mut self, now: i64, world: &dyn World) {
        self.advance_before(now, world);
        self.now_ms = self.now_ms.max(now);
        self.expire_silences();
    }

    fn handle_due(&mut self, due: Due, world: &dyn World) {
        let Due {
            at,
            class,
            slot,
            target,
        } = due;
        match (class, target) {
            (Class::Evaluate, _) => {
                if self.next_eval.get(&slot) == Some(&at) {
                    self.evaluate(slot, at, world);
                    if let Some(interval) =
                        self.rules.get(slot).and_then(|r| r.condition.interval_ms())
                    {
                        self.next_eval.insert(slot, at + interval);
                        self.queue.push(at + interval, Class::Evaluate, slot, None);
                    }
                }
            }
            (Class::Absence, Some(target)) => self.absence_due(slot, &target.id, at, world),
            (Class::Alert, Some(target)) => self.alert_due(&Key { slot, target }, at, world),
            (Class::Unmute, Some(target)) => self.unmute_due(&Key { slot, target }, at, world),
            (_, None) => {}
        }
    }

    /// `device` changed state by `t`.
    pub fn on_transition(&mut self, device: DeviceRef<'_>, t: &Transition, world: &dyn World) {
        self.advance_before(t.at_ms, world);
        let index = self.devices.index_of(device.id);
        let rec = &mut self.devices.at_mut(index).recovery;
        let recovered = rec.down && up(t.to);
        if down(t.to) {
            rec.down = true;
        } else if up(t.to) {
            rec.down = false;
        }
        if recovered {
            rec.recovered_ms = Some(t.at_ms);
        }
        // citytel's own restart tells nothing about the device: firing alerts carry on, and
        // pending ones are dropped by `restarted`.
        if t.cause == Cause::IngesterRestart || !self.has_rules() {
            return;
        }
        let target = queue::device(device.id);
        for i in 0..self.rules.state_slots().len() {
            let slot = self.rules.state_slots()[i];
            let Some(rule) = self.rules.get(slot).cloned() else {
                continue;
            };
            let Condition::State { states } = &rule.condition else {
                continue;
            };
            if !rule
                .selector
                .selects(device.id, device.kind, device.site, device.district)
            {
                continue;
            }
            let key = Key {
                slot,
                target: target.clone(),
            };
            self.set_condition(&key, states.contains(&t.to), t.at_ms, None, world);
        }
        if down(t.to) || recovered {
            self.absence_device_changed(index, t.at_ms, world);
        }
    }

    /// A telemetry batch of `device`, received at `at`, was stored.
    pub fn on_readings(
        &mut self,
        device: DeviceRef<'_>,
        at: i64,
        batch: BatchFacts<'_>,
        world: &dyn World,
    ) {
        self.advance_before(at, world);
        if !self.rules.reads_readings() || batch.stored == 0 {
            return;
        }
        let index = self.devices.index_of(device.id);
        let generation = self.rules.generation();
        let entry = self.devices.at_mut(index);
        if !entry
            .rules
            .as_ref()
            .is_some_and(|r| r.fresh(generation, device.kind, device.site, device.district))
        {
            entry.rules =
                Some(
                    self.rules
                        .device_rules(device.id, device.kind, device.site, device.district),
                );
        }
        // Completeness rules: counted once per interval, whichever rules select the device.
        if self.rules.counts_readings() {
            self.count_readings(index, at, batch.stored, batch.produced);
        }
        // What to do, worked out while the indexes are borrowed: (metric index, slot).
        let mut work = std::mem::take(&mut self.scratch);
        work.clear();
        if let Some(mask) = &self.devices.at(index).rules {
            for (m, metric) in batch.metrics.iter().enumerate() {
                work.extend(
                    self.rules
                        .reading_metric(metric)
                        .filter(|(i, _)| mask.has(*i))
                        .map(|(_, slot)| (m, slot)),
                );
            }
        }
        for &(m, slot) in &work {
            let Some(rule) = self.rules.get(slot) else {
                continue;
            };
            match rule.condition {
                Condition::Threshold {
                    op, value, clear, ..
                } => {
                    if let Some(v) = batch.latest.get(m).copied().flatten() {
                        // Once the alert is open (pending or firing), it holds until the
                        // value is past the clear value, where there is one.
                        let key = || Key {
                            slot,
                            target: queue::device(device.id),
                        };
                        let open = !self.episodes.is_empty() && self.episodes.contains_key(&key());
                        let holds = match (open, clear, op.direction()) {
                            (true, Some(c), Some(true)) => v >= c,
                            (true, Some(c), Some(false)) => v <= c,
                            _ => op.holds(v, value),
                        };
                        if holds || open {
                            self.set_condition(&key(), holds, at, Some(v), world);
                        }
                    }
                }
                Condition::Absence { .. } => self.absence_heard(slot, index, at, world),
                _ => {}
            }
        }
        self.scratch = work;
    }

    /// citytel started again at `now`: alerts that were pending are dropped (their condition
    /// spans citytel's downtime, which is unknown), firing ones carry on, and periodic rules
    /// resume at their next instant from now.
    pub fn restarted(&mut self, now: i64, world: &dyn World) {
        let mut pending: Vec<Key> = self
            .episodes
            .iter()
            .filter(|(_, e)| !e.firing())
            .map(|(k, _)| k.clone())
            .collect();
        pending.sort();
        for key in pending {
            self.set_condition(&key, false, now, None, world);
        }
        self.now_ms = self.now_ms.max(now);
        self.schedule_periodic(now);
        self.advance(now, world);
    }

    /// Handles the deadlines strictly before `at` (the time of an input), without moving the
    /// engine's time (an input may come from before it, e.g. a gateway's children).
    fn advance_before(&mut self, at: i64, world: &dyn World) {
        while let Some(due) = self.queue.pop_before(at) {
            self.handle_due(due, world);
        }
        self.eval_cache.clear();
    }

    /// (Re)schedules every periodic rule at its first instant at or after `from`.
    pub(super) fn schedule_periodic(&mut self, from: i64) {
        self.next_eval.clear();
        for i in 0..self.rules.periodic_slots().len() {
            let slot = self.rules.periodic_slots()[i];
            let Some(interval) = self.rules.get(slot).and_then(|r| r.condition.interval_ms())
            else {
                continue;
            };
            let at = from.div_euclid(interval) * interval
                + if from.rem_euclid(interval) == 0 {
                    0
                } else {
                    interval
                };
            self.next_eval.insert(slot, at);
            self.queue.push(at, Class::Evaluate, slot, None);
        }
    }

    // ---- absence -----------------------------------------------------------------------------

    /// The deadline of absence rule `slot` for a device recovered at `recovered_ms`: `after`
    /// past the later of the metric's last receive time and the device's recovery.
    pub(super) fn absence_deadline(
        &self,
        slot: u32,
        recovered_ms: Option<i64>,
        last_ms: i64,
    ) -> Option<i64> {
        let Condition::Absence { after_ms, .. } = self.rules.get(slot)?.condition else {
            return None;
        };
        let recovered = recovered_ms.unwrap_or(i64::MIN);
        Some(last_ms.max(recovered).saturating_add(after_ms))
    }

    /// Absence rule `slot`'s metric arrived from the device at index `device` at `at`.
    fn absence_heard(&mut self, slot: u32, device: u32, at: i64, world: &dyn World) {
        if !self.episodes.is_empty() {
            let key = Key {
                slot,
                target: queue::device(&self.devices.at(device).id),
            };
            if self.episodes.contains_key(&key) {
                self.set_condition(&key, false, at, None, world);
            }
        }
        let entry = self.devices.at_mut(device);
        let recovered_ms = entry.recovery.recovered_ms;
        let absent = entry.absence.get_or_insert_with(slot, || Absent {
            last_ms: at,
            scheduled: None,
        });
        absent.last_ms = absent.last_ms.max(at);
        if absent.scheduled.is_some() {
            // Re-armed lazily: when that deadline comes, it finds the later reading and
            // waits for the new deadline instead.
            return;
        }
        let last = absent.last_ms;
        if let Some(d) = self.absence_deadline(slot, recovered_ms, last) {
            let entry = self.devices.at_mut(device);
            if let Some(absent) = entry.absence.get_mut(slot) {
                absent.scheduled = Some(d);
            }
            let target = queue::device(&entry.id);
            self.queue.push(d, Class::Absence, slot, Some(target));
        }
    }

    /// An absence deadline `at` of rule `slot` for `device` passed.
    fn absence_due(&mut self, slot: u32, device: &Arc<str>, at: i64, world: &dyn World) {
        let Some(index) = self.devices.find(device) else {
            return;
        };
        let entry = self.devices.at(index);
        let Some(absent) = entry.absence.get(slot).copied() else {
            return;
        };
        if absent.scheduled != Some(at) {
            return;
        }
        let Some(deadline) =
            self.absence_deadline(slot, entry.recovery.recovered_ms, absent.last_ms)
        else {
            return;
        };
        let entry = self.devices.at_mut(index);
        if deadline > at {
            // Heard (or recovered) since: wait for the new deadline.
            entry.absence.insert(
                slot,
                Absent {
                    scheduled: Some(deadline),
                    ..absent
                },
            );
            self.queue
                .push(deadline, Class::Absence, slot, Some(queue::device(device)));
            return;
        }
        entry.absence.insert(
            slot,
            Absent {
                scheduled: None,
                ..absent
            },
        );
        // The device as it was at the deadline: transitions after it may already be applied.
        if up(world.state_at(device, at)) {
            let key = Key {
                slot,
                target: queue::device(device),
            };
            self.set_condition(&key, true, at, None, world);
        }
    }

    /// The device at index `device` went down or recovered at `at`: its absence alerts stop
    /// while it is down, and its absence clocks restart from its recovery.
    fn absence_device_changed(&mut self, device: u32, at: i64, world: &dyn World) {
        let entry = self.devices.at(device);
        let (is_down, recovered_ms) = (entry.recovery.down, entry.recovery.recovered_ms);
        let target = queue::device(&entry.id);
        for i in 0..self.rules.absence_slots().len() {
            let slot = self.rules.absence_slots()[i];
            let Some(absent) = self.devices.at(device).absence.get(slot).copied() else {
                continue;
            };
            let key = Key {
                slot,
                target: target.clone(),
            };
            if is_down {
                if self.episodes.contains_key(&key) {
                    self.set_condition(&key, false, at, None, world);
                }
                continue;
            }
            if absent.scheduled.is_none()
                && let Some(d) = self.absence_deadline(slot, recovered_ms, absent.last_ms)
            {
                if let Some(a) = self.devices.at_mut(device).absence.get_mut(slot) {
                    a.scheduled = Some(d);
                }
                self.queue
                    .push(d, Class::Absence, slot, Some(target.clone()));
            }
        }
    }

    /// Notes a device's recovery state (from a snapshot).
    pub(super) fn restore_recovery(&mut self, device: Arc<str>, recovery: Recovery) {
        let index = self.devices.index_of(&device);
        self.devices.at_mut(index).recovery = recovery;
    }
}
