//! The engine's part of the checkpoint snapshot: the rules in force (as written to the WAL),
//! the engine's time and counters, open alerts (with what their firing notification said),
//! devices' recoveries, absence clocks, readings counted for completeness rules, silences, the
//! notifications some receiver has not confirmed, and the recently resolved alerts. Rules are
//! named, never referred to by slot. The deadline queue is not kept: [`Alerts::restore`]
//! rebuilds it from the rest. Encoded by `state::persist` (snapshot layout 4).
//!
//! Counted readings are listed once per device and bucket interval, under the name of the
//! completeness rule of that interval that comes first by name (every rule of the interval
//! reads them). Snapshots written before the counts were shared list them per rule and
//! device; [`Alerts::restore`] reads both, merging a device's lists of one interval (the same
//! readings, so a bucket keeps its larger counts).

use std::sync::Arc;

use super::counts::Counts;
use super::devices::DeviceEntry;
use super::episode::{Episode, Key, Target};
use super::outbox::{AlertInfo, Notification};
use super::rule::Condition;
use super::ruleset::RuleSet;
use super::silence::Silence;
use super::{Absent, Alerts, Recovery, ResolvedAlert, config};

/// A device's counted readings at the interval of a completeness rule: (rule, device, [(bucket,
/// stored, produced)]).
pub type DeviceBuckets = (Arc<str>, Arc<str>, Vec<(i64, u32, u32)>);

/// An open alert.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAlert {
    /// Its rule's name.
    pub rule: Arc<str>,
    /// What it is about.
    pub target: Target,
    /// Its state.
    pub episode: Episode,
    /// What its firing notification said, once it went out.
    pub info: Option<Arc<AlertInfo>>,
}

/// The engine's state, for the checkpoint snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsSnapshot {
    /// The rules in force, as written to the WAL (empty: none).
    pub rules_source: String,
    /// The engine's time.
    pub now_ms: i64,
    /// The id of the next alert.
    pub next_id: u64,
    /// The id of the next silence.
    pub next_silence: u64,
    /// The sequence number of the next notification.
    pub next_seq: u64,
    /// Open alerts, by id.
    pub open: Vec<OpenAlert>,
    /// Devices' recoveries, by device.
    pub recovery: Vec<(Arc<str>, Recovery)>,
    /// Absence clocks: (rule, device, last receive time of the metric).
    pub absence: Vec<(Arc<str>, Arc<str>, i64)>,
    /// Readings counted for completeness rules: (rule, device, buckets), one entry per device
    /// and interval, named by the interval's first completeness rule by name.
    pub buckets: Vec<DeviceBuckets>,
    /// Silences, by id.
    pub silences: Vec<Silence>,
    /// Notifications not confirmed by every receiver, by sequence.
    pub outbox: Vec<Notification>,
    /// Recently resolved alerts, oldest first.
    pub resolved: Vec<ResolvedAlert>,
}

impl Alerts {
    /// The engine's state, sorted so that equal engines give equal snapshots.
    pub fn snapshot(&self) -> AlertsSnapshot {
        let name = |slot: u32| self.rules.get(slot).map(|r| r.name.clone());
        let mut open: Vec<OpenAlert> = self
            .episodes
            .iter()
            .filter_map(|(k, e)| {
                Some(OpenAlert {
                    rule: name(k.slot)?,
                    target: k.target.clone(),
                    episode: e.clone(),
                    info: self.infos.get(&e.id).cloned(),
                })
            })
            .collect();
        open.sort_by_key(|o| o.episode.id);
        // Devices in id order and the rules that keep per-device state in name order: the
        // lists come out sorted without sorting entries by two strings each.
        let mut order: Vec<&DeviceEntry> = self.devices.iter().collect();
        order.sort_by(|a, b| a.id.cmp(&b.id));
        let recovery: Vec<(Arc<str>, Recovery)> = order
            .iter()
            .filter(|e| e.recovery != Recovery::default())
            .map(|e| (e.id.clone(), e.recovery))
            .collect();
        // Absence rules by name; counters under the first name of their completeness rules.
        let mut absences: Vec<(&Arc<str>, u32)> = Vec::new();
        let mut counters: Vec<Option<&Arc<str>>> = vec![None; self.rules.counters().len()];
        for (slot, r) in self.rules.rules().iter().enumerate() {
            match r.condition {
                Condition::Absence { .. } => absences.push((&r.name, slot as u32)),
                Condition::Completeness { .. } => {
                    if let Some(c) = self.rules.counter_of(slot as u32) {
                        let name = &mut counters[usize::from(c)];
                        if name.is_none_or(|n| r.name < *n) {
                            *name = Some(&r.name);
                        }
                    }
                }
                _ => {}
            }
        }
        absences.sort();
        let mut named_counters: Vec<(&Arc<str>, u32)> = counters
            .iter()
            .enumerate()
            .filter_map(|(c, name)| Some(((*name)?, c as u32)))
            .collect();
        named_counters.sort();
        let mut absence: Vec<(Arc<str>, Arc<str>, i64)> = Vec::new();
        for (name, slot) in absences {
            for e in &order {
                if let Some(a) = e.absence.get(slot) {
                    absence.push((name.clone(), e.id.clone(), a.last_ms));
                }
            }
        }
        let mut buckets: Vec<DeviceBuckets> = Vec::new();
        for (name, c) in named_counters {
            for e in &order {
                if let Some(counts) = e.counts.get(c) {
                    buckets.push((name.clone(), e.id.clone(), counts.buckets().collect()));
                }
            }
        }
        AlertsSnapshot {
            rules_source: self.rules.source().to_string(),
            now_ms: self.now_ms,
            next_id: self.next_id,
            next_silence: self.next_silence,
            next_seq: self.outbox.next_seq(),
            open,
            recovery,
            absence,
            buckets,
            silences: self.silences.values().cloned().collect(),
            outbox: self.outbox.items().map(|n| (**n).clone()).collect(),
            resolved: self.resolved.iter().map(|r| (**r).clone()).collect(),
        }
    }

    /// Restores a snapshot into a fresh engine. Rules that no longer parse (a build that reads
    /// them differently) leave the engine without rules, which the configured rules then
    /// replace; that is logged.
    pub fn restore(&mut self, s: AlertsSnapshot) {
        let rules = if s.rules_source.is_empty() {
            Vec::new()
        } else {
            match config::parse_rules(&s.rules_source) {
                Ok((_, rules)) => rules,
                Err(e) => {
                    tracing::warn!(error = %e, "the persisted alert rules do not validate; starting without them");
                    Vec::new()
                }
            }
        };
        let source = if rules.is_empty() {
            String::new()
        } else {
            s.rules_source
        };
        self.generation += 1;
        self.rules = RuleSet::new(rules, source, self.generation);
        self.now_ms = s.now_ms;
        self.next_id = s.next_id;
        self.next_silence = s.next_silence;
        self.outbox.restore(s.outbox, s.next_seq);
        for o in s.open {
            let Some(slot) = self.rules.slot_of(&o.rule) else {
                continue;
            };
            let key = Key {
                slot,
                target: o.target,
            };
            if let Some(info) = o.info {
                self.infos.insert(o.episode.id, info);
            }
            self.by_id.insert(o.episode.id, key.clone());
            self.episodes.insert(key, o.episode);
        }
        for (device, r) in s.recovery {
            self.restore_recovery(device, r);
        }
        for (rule, device, last_ms) in s.absence {
            if let Some(slot) = self.rules.slot_of(&rule) {
                let index = self.devices.index_of(&device);
                self.devices.at_mut(index).absence.insert(
                    slot,
                    Absent {
                        last_ms,
                        scheduled: None,
                    },
                );
            }
        }
        for (rule, device, b) in s.buckets {
            if let Some(c) = self
                .rules
                .slot_of(&rule)
                .and_then(|slot| self.rules.counter_of(slot))
            {
                let index = self.devices.index_of(&device);
                self.devices
                    .at_mut(index)
                    .counts
                    .get_or_insert_with(u32::from(c), Counts::default)
                    .merge(b);
            }
        }
        self.silences = s.silences.into_iter().map(|s| (s.id, s)).collect();
        self.resolved = s.resolved.into_iter().map(Arc::new).collect();
        self.rebuild_queue(self.now_ms);
    }
}
