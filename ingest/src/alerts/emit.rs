//! How an alert's condition changes become alerts going pending, firing and resolving, and
//! notifications: [`Alerts::set_condition`] is the one place every rule kind goes through.
//!
//! A firing alert is notified at once unless it is muted: its device (or site) is in a
//! maintenance window, or a silence in force matches its labels. A muted alert is checked again
//! when the earliest of those ends, and notified then if it still fires (its `startsAt` stays
//! the instant it fired). Only an alert whose firing was notified is notified when it resolves.

use std::sync::Arc;

use super::episode::{Episode, Key, Step, Target};
use super::outbox::Status;
use super::queue::Class;
use super::rule::TargetKind;
use super::view::{self, AlertView, TargetFacts};
use super::world::World;
use super::{AlertEvent, Alerts, EventKind, RESOLVED_KEPT, ResolvedAlert};

impl Alerts {
    /// The condition of `key`'s rule holds (or not) for its target since `at`, with `value`
    /// behind it.
    pub(super) fn set_condition(
        &mut self,
        key: &Key,
        holds: bool,
        at: i64,
        value: Option<f64>,
        world: &dyn World,
    ) {
        if !holds && !self.episodes.contains_key(key) {
            // Nothing open, nothing holding: the common case of periodic rules over many
            // targets.
            return;
        }
        let Some(rule) = self.rules.get(key.slot) else {
            return;
        };
        let (for_ms, kff) = (rule.for_ms, rule.keep_firing_for_ms);
        match (self.episodes.get_mut(key), holds) {
            (None, false) => {}
            (None, true) => {
                let id = self.next_id;
                self.next_id += 1;
                let (episode, step) = Episode::start(id, at, for_ms, value);
                let deadline = episode.deadline(for_ms, kff);
                self.episodes.insert(key.clone(), episode);
                self.by_id.insert(id, key.clone());
                if let Some(d) = deadline {
                    self.queue
                        .push(d, Class::Alert, key.slot, Some(key.target.clone()));
                }
                match step {
                    Step::Fired(at) => self.fired(key, at, world),
                    _ => self.event(key, EventKind::Pending, world),
                }
            }
            (Some(e), true) => {
                let before = e.deadline(for_ms, kff);
                e.holds(at);
                if value.is_some() {
                    e.value = value;
                }
                let after = e.deadline(for_ms, kff);
                if after != before
                    && let Some(d) = after
                {
                    self.queue
                        .push(d, Class::Alert, key.slot, Some(key.target.clone()));
                }
            }
            (Some(e), false) => {
                let step = e.stops(at, kff);
                let deadline = e.deadline(for_ms, kff);
                match step {
                    Step::Cancelled => self.cancel(key, world),
                    Step::Resolved(at) => self.resolve(key, at, world),
                    Step::Fired(_) | Step::None => {
                        if let Some(d) = deadline {
                            self.queue
                                .push(d, Class::Alert, key.slot, Some(key.target.clone()));
                        }
                    }
                }
            }
        }
    }

    /// An alert's deadline `at` passed.
    pub(super) fn alert_due(&mut self, key: &Key, at: i64, world: &dyn World) {
        let Some(rule) = self.rules.get(key.slot).cloned() else {
            return;
        };
        let Some(e) = self.episodes.get_mut(key) else {
            return;
        };
        match e.due(at, rule.for_ms, rule.keep_firing_for_ms) {
            Step::Fired(at) => self.fired(key, at, world),
            Step::Resolved(at) => self.resolve(key, at, world),
            Step::Cancelled | Step::None => {}
        }
    }

    /// The alert `key` fired at `at`: notified unless muted.
    fn fired(&mut self, key: &Key, at: i64, world: &dyn World) {
        self.notify_unless_muted(key, at, world);
        self.event(key, EventKind::Firing, world);
    }

    /// Notifies the firing of `key` at `at`, or schedules a check for when its muting ends.
    pub(super) fn notify_unless_muted(&mut self, key: &Key, at: i64, world: &dyn World) {
        let Some(rule) = self.rules.get(key.slot).cloned() else {
            return;
        };
        let Some(e) = self.episodes.get(key) else {
            return;
        };
        if !e.firing() || e.notified.is_some() {
            return;
        }
        let info = Arc::new(view::info_of(&rule, &key.target, e, world));
        let facts = TargetFacts::of(&key.target, world);
        if let Some(until) = self.muted_until(&key.target, &facts, &info.labels, at, world) {
            self.queue
                .push(until, Class::Unmute, key.slot, Some(key.target.clone()));
            return;
        }
        let seq = self.outbox.push(Status::Firing, at, info.clone());
        self.infos.insert(info.id, info);
        if let Some(e) = self.episodes.get_mut(key) {
            e.notified = Some(seq);
        }
    }

    /// A pending alert's condition stopped holding.
    fn cancel(&mut self, key: &Key, world: &dyn World) {
        self.event(key, EventKind::Cancelled, world);
        if let Some(e) = self.episodes.remove(key) {
            self.by_id.remove(&e.id);
        }
    }

    /// The alert `key` resolved at `at`.
    pub(super) fn resolve(&mut self, key: &Key, at: i64, world: &dyn World) {
        let Some(rule) = self.rules.get(key.slot).cloned() else {
            return;
        };
        let Some(e) = self.episodes.remove(key) else {
            return;
        };
        self.by_id.remove(&e.id);
        let info = match self.infos.remove(&e.id) {
            Some(info) => info,
            None => Arc::new(view::info_of(&rule, &key.target, &e, world)),
        };
        if e.notified.is_some() {
            self.outbox.push(Status::Resolved, at, info.clone());
        }
        let facts = TargetFacts::of(&key.target, world);
        let resolved = Arc::new(ResolvedAlert {
            info,
            target: key.target.clone(),
            kind: facts.kind,
            site: facts.site,
            district: facts.district,
            active_since_ms: e.active_since,
            fired_at_ms: e.fired_at.unwrap_or(at),
            resolved_at_ms: at,
            value: e.value,
            notified: e.notified.is_some(),
            ack: e.ack,
        });
        self.resolved.push_back(resolved.clone());
        while self.resolved.len() > RESOLVED_KEPT {
            self.resolved.pop_front();
        }
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(Arc::new(AlertEvent {
                kind: EventKind::Resolved,
                alert: Alerts::view_resolved(&resolved),
            }));
        }
    }

    /// A muted alert's muting may have ended at `at`.
    pub(super) fn unmute_due(&mut self, key: &Key, at: i64, world: &dyn World) {
        self.notify_unless_muted(key, at, world);
    }

    /// Checks again, at `at`, every firing alert not notified yet (after silences or
    /// maintenance windows changed).
    pub(crate) fn mutes_changed(&mut self, at: i64) {
        let mut keys: Vec<Key> = self
            .episodes
            .iter()
            .filter(|(_, e)| e.firing() && e.notified.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        for key in keys {
            self.queue
                .push(at, Class::Unmute, key.slot, Some(key.target));
        }
    }

    /// Until when `target` is in maintenance at `at`, if it is.
    pub(super) fn maintenance_until(
        &self,
        target: &Target,
        facts: &TargetFacts,
        at: i64,
        world: &dyn World,
    ) -> Option<i64> {
        match target.kind {
            TargetKind::Device => world.maintenance_until(Some(&target.id), None, at),
            TargetKind::Site => world.maintenance_until(None, facts.site.as_deref(), at),
            TargetKind::District => None,
        }
    }

    /// Until when an alert with `labels` about `target` is muted at `at` (the earliest end of
    /// what mutes it), or `None`.
    fn muted_until(
        &self,
        target: &Target,
        facts: &TargetFacts,
        labels: &super::labels::Labels,
        at: i64,
        world: &dyn World,
    ) -> Option<i64> {
        let maintenance = self.maintenance_until(target, facts, at, world);
        let silence = self
            .silences
            .values()
            .filter(|s| s.active(at) && s.matches(labels))
            .map(|s| s.ends_ms)
            .min();
        match (maintenance, silence) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Tells live watchers what happened to the open alert `key`.
    pub(super) fn event(&self, key: &Key, kind: EventKind, world: &dyn World) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let Some(e) = self.episodes.get(key) else {
            return;
        };
        if let Some(alert) = self.view_open(key, e, world) {
            let _ = self.events.send(Arc::new(AlertEvent { kind, alert }));
        }
    }

    /// The view of the open alert with `id`.
    pub fn view_of(&self, id: u64, world: &dyn World) -> Option<AlertView> {
        let key = self.by_id.get(&id)?;
        self.view_open(key, self.episodes.get(key)?, world)
    }
}
