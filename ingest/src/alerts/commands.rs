//! Changes made through the API and the configuration, each applied by the writer from a WAL
//! command: acknowledging an alert, creating and expiring silences, and a new set of rules.
//!
//! When the rules change, a rule whose name and condition (selector, condition, `per`, `for`,
//! `keep_firing_for`) stay the same keeps its alerts, with the new severity, labels and
//! annotations for what fires from then on; the alerts of every other old rule resolve at once.
//! A new state rule starts from the devices' current states (a device offline for an hour fires
//! at once, with `startsAt` the hour-old instant plus `for`); threshold, absence and
//! completeness rules start with the next readings; availability rules at their next instant.

use std::sync::Arc;

use super::episode::{Ack, Key, Target};
use super::queue::{self, Class};
use super::rule::{Condition, Rule};
use super::ruleset::RuleSet;
use super::silence::Silence;
use super::view::AlertView;
use super::world::World;
use super::{Alerts, EventKind, MAX_SILENCES, SILENCE_KEPT_MS};

/// Why an alert command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertRefusal {
    /// No open alert has this id (it may have resolved).
    #[error("no open alert {0}")]
    NoSuchAlert(u64),
    /// No silence has this id.
    #[error("no silence {0}")]
    NoSuchSilence(u64),
    /// The silence limit is reached.
    #[error("{0} silences exist, the most allowed; expire one first")]
    TooManySilences(usize),
}

impl Alerts {
    /// Acknowledges the open alert `id` by `by` at `at`.
    pub fn ack(
        &mut self,
        id: u64,
        by: String,
        at: i64,
        world: &dyn World,
    ) -> Result<AlertView, AlertRefusal> {
        let key = self
            .by_id
            .get(&id)
            .cloned()
            .ok_or(AlertRefusal::NoSuchAlert(id))?;
        let episode = self
            .episodes
            .get_mut(&key)
            .ok_or(AlertRefusal::NoSuchAlert(id))?;
        episode.ack = Some(Ack { by, at_ms: at });
        self.event(&key, EventKind::Acknowledged, world);
        self.view_of(id, world).ok_or(AlertRefusal::NoSuchAlert(id))
    }

    /// Adds a silence; its id is assigned here.
    pub fn create_silence(&mut self, mut silence: Silence) -> Result<Silence, AlertRefusal> {
        if self.silences.len() >= MAX_SILENCES {
            return Err(AlertRefusal::TooManySilences(self.silences.len()));
        }
        silence.id = self.next_silence;
        self.next_silence += 1;
        self.silences.insert(silence.id, silence.clone());
        Ok(silence)
    }

    /// Ends silence `id` at `at` (if it had not ended yet): what it muted is notified now if it
    /// still fires and nothing else mutes it.
    pub fn expire_silence(&mut self, id: u64, at: i64) -> Result<Silence, AlertRefusal> {
        let silence = self
            .silences
            .get_mut(&id)
            .ok_or(AlertRefusal::NoSuchSilence(id))?;
        silence.ends_ms = silence.ends_ms.min(at).max(silence.starts_ms);
        let expired = silence.clone();
        self.mutes_changed(at);
        Ok(expired)
    }

    /// Forgets silences that ended more than a week ago.
    pub(super) fn expire_silences(&mut self) {
        let horizon = self.now_ms.saturating_sub(SILENCE_KEPT_MS);
        self.silences.retain(|_, s| s.ends_ms >= horizon);
    }

    /// Puts `rules` (written to the WAL as `source`) in force at `at`.
    pub fn set_rules(&mut self, rules: Vec<Arc<Rule>>, source: String, at: i64, world: &dyn World) {
        self.advance(at, world);
        self.generation += 1;
        let new = RuleSet::new(rules, source, self.generation);
        let mapping: Vec<Option<u32>> = self
            .rules
            .rules()
            .iter()
            .map(|old| {
                let slot = new.slot_of(&old.name)?;
                new.get(slot)
                    .filter(|r| r.same_condition(old))
                    .map(|_| slot)
            })
            .collect();
        let slot_of = |slot: u32| mapping.get(slot as usize).copied().flatten();
        // The alerts of rules that go (or change their condition) end now.
        let mut gone: Vec<Key> = self
            .episodes
            .keys()
            .filter(|k| slot_of(k.slot).is_none())
            .cloned()
            .collect();
        gone.sort();
        for key in gone {
            match self.episodes.get(&key).map(|e| e.firing()) {
                Some(true) => self.resolve(&key, at, world),
                Some(false) => self.set_condition(&key, false, at, None, world),
                None => {}
            }
        }
        let kept: Vec<u32> = mapping.iter().flatten().copied().collect();
        // Counts carry over to the new rules' counter of the same interval.
        let counters: Vec<Option<u32>> = self
            .rules
            .counters()
            .iter()
            .map(|c| new.counter_at(c.interval_ms).map(u32::from))
            .collect();
        let counter_of = |c: u32| counters.get(c as usize).copied().flatten();
        self.rules = new;
        self.devices.forget_rules();
        self.episodes = std::mem::take(&mut self.episodes)
            .into_iter()
            .filter_map(|(k, e)| {
                let slot = slot_of(k.slot)?;
                Some((
                    Key {
                        slot,
                        target: k.target,
                    },
                    e,
                ))
            })
            .collect();
        self.by_id = self
            .episodes
            .iter()
            .map(|(k, e)| (e.id, k.clone()))
            .collect();
        for entry in self.devices.iter_mut() {
            entry.absence.remap(slot_of);
            entry.counts.remap(counter_of);
        }
        self.rebuild_queue(at);
        self.start_state_rules(&kept, at, world);
    }

    /// Schedules everything the engine's state needs from `from` on: alert deadlines, absence
    /// checks, periodic evaluations, and notifications held back by muting.
    pub(super) fn rebuild_queue(&mut self, from: i64) {
        self.queue.clear();
        let mut keys: Vec<&Key> = self.episodes.keys().collect();
        keys.sort();
        for key in keys {
            let (Some(rule), Some(e)) = (self.rules.get(key.slot), self.episodes.get(key)) else {
                continue;
            };
            if let Some(d) = e.deadline(rule.for_ms, rule.keep_firing_for_ms) {
                self.queue
                    .push(d, Class::Alert, key.slot, Some(key.target.clone()));
            }
            if e.firing() && e.notified.is_none() {
                self.queue
                    .push(from, Class::Unmute, key.slot, Some(key.target.clone()));
            }
        }
        let mut pushes = Vec::new();
        for (index, entry) in self.devices.iter_mut().enumerate() {
            for (slot, a) in entry.absence.iter_mut() {
                a.scheduled = None;
                pushes.push((index as u32, slot, a.last_ms, entry.recovery.recovered_ms));
            }
        }
        for (index, slot, last, recovered_ms) in pushes {
            // A deadline before the engine's time was handled already (it fired, or found the
            // device down): as after handling it, the next reading or recovery schedules again.
            if let Some(d) = self
                .absence_deadline(slot, recovered_ms, last)
                .filter(|d| *d >= self.now_ms)
            {
                let entry = self.devices.at_mut(index);
                if let Some(a) = entry.absence.get_mut(slot) {
                    a.scheduled = Some(d);
                }
                self.queue
                    .push(d, Class::Absence, slot, Some(queue::device(&entry.id)));
            }
        }
        self.schedule_periodic(from.max(self.now_ms));
    }

    /// New state rules (slots not in `kept`) start from the devices' current states.
    fn start_state_rules(&mut self, kept: &[u32], at: i64, world: &dyn World) {
        let slots: Vec<u32> = self
            .rules
            .state_slots()
            .iter()
            .copied()
            .filter(|s| !kept.contains(s))
            .collect();
        if slots.is_empty() {
            return;
        }
        let mut holding: Vec<(Key, i64)> = Vec::new();
        for slot in slots {
            let Some(rule) = self.rules.get(slot).cloned() else {
                continue;
            };
            let Condition::State { states } = &rule.condition else {
                continue;
            };
            world.devices(&mut |d| {
                if !rule.selector.selects(d.id, d.kind, d.site, d.district) {
                    return;
                }
                if states.contains(&world.state(d.id)) {
                    let since = world.since(d.id).unwrap_or(at);
                    holding.push((
                        Key {
                            slot,
                            target: Target {
                                kind: super::rule::TargetKind::Device,
                                id: d.id.clone(),
                            },
                        },
                        since,
                    ));
                }
            });
        }
        for (key, since) in holding {
            self.set_condition(&key, true, since, None, world);
        }
    }
}
