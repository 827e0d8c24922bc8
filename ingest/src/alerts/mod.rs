//! Alerting: rules evaluated by the writer on every state change, deadline and reading, and the
//! notifications they produce, delivered to Alertmanager and webhooks.
//!
//! The engine ([`Alerts`]) is pure: it owns no clock and does no I/O. The state feeds it what
//! the writer applies (device transitions with their deadline-derived times, readings with their
//! receive times, commands) and tells it how far time has gone (every WAL entry's time, and the
//! writer's ticks, which are WAL entries too while rules exist). It answers with alerts going
//! pending, firing and resolving, stamped with the instants they happened, and appends a
//! [`outbox::Notification`] for each that is not muted. Applying the same WAL entries in the
//! same order always builds the same alerts, notifications and sequence numbers, live or on
//! replay; the checkpoint snapshot keeps the engine's state ([`snapshot`]).
//!
//! - [`config`]: the `[alerts]` section: rules, receivers, delivery settings, validation.
//! - [`rule`], [`template`], [`labels`]: rules, annotation templates, labels and fingerprints.
//! - [`ruleset`]: the rules in force, indexed for the ingest path.
//! - [`devices`]: the engine's per-device state, by a dense device index.
//! - [`counts`]: readings counted for completeness rules, once per device and bucket interval.
//! - [`episode`]: one alert's pure state machine (pending, firing, resolved).
//! - [`queue`]: the engine's deadlines.
//! - `inputs`: what the state feeds in; `periodic`: availability and completeness rules, those
//!   due at one instant tallied together (`eval_cache`);
//!   `emit`: firing, resolving and muting; `commands`: acknowledgements, silences, new rules.
//! - [`silence`]: silences and label matchers.
//! - [`outbox`]: the notifications, with their sequence numbers.
//! - [`view`]: alerts as the API shows them.
//! - [`world`]: what the engine may ask of the rest of the state.
//! - [`snapshot`]: the engine's part of the checkpoint snapshot.

pub mod commands;
pub mod config;
pub mod counts;
pub mod devices;
mod emit;
pub mod episode;
mod eval_cache;
mod inputs;
pub mod labels;
pub mod outbox;
mod periodic;
pub mod queue;
pub mod rule;
pub mod ruleset;
pub mod silence;
pub mod snapshot;
pub mod template;
pub mod view;
pub mod world;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::hash::Map;
use devices::Devices;
use episode::{Ack, Episode, Key, Target};
pub use inputs::BatchFacts;
use outbox::{AlertInfo, Outbox};
use queue::Queue;
use rule::{Rule, Severity};
use ruleset::RuleSet;
use silence::Silence;
use view::{AlertView, Phase};

/// Resolved alerts kept for the API (the most recent).
pub const RESOLVED_KEPT: usize = 1000;
/// How long expired silences are still listed.
pub const SILENCE_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;
/// Most silences.
pub const MAX_SILENCES: usize = 10_000;
/// Alert events buffered for live watchers before slow ones start missing some.
const EVENTS_BUFFER: usize = 1024;
/// Notifications kept for receivers by default.
pub const DEFAULT_OUTBOX_LIMIT: usize = 100_000;

/// A device's recovery, for absence rules: whether it is down (offline or unreachable) as far
/// as it was last known, and when it last came back up from down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Down as last known.
    pub down: bool,
    /// When it last came back up.
    pub recovered_ms: Option<i64>,
}

/// An absence rule's view of one device: when the metric was last received, and the deadline
/// scheduled for it, if one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Absent {
    /// The last receive time of the metric.
    pub last_ms: i64,
    /// The deadline in the queue for it, if any.
    pub scheduled: Option<i64>,
}

/// A resolved alert, kept for the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedAlert {
    /// Identity and text.
    pub info: Arc<AlertInfo>,
    /// What it was about.
    pub target: Target,
    /// The device's kind, site and district, where they apply.
    pub kind: Option<String>,
    /// Site.
    pub site: Option<String>,
    /// District.
    pub district: Option<String>,
    /// When its condition started holding.
    pub active_since_ms: i64,
    /// When it fired.
    pub fired_at_ms: i64,
    /// When it resolved.
    pub resolved_at_ms: i64,
    /// The value behind it.
    pub value: Option<f64>,
    /// Whether its firing was notified.
    pub notified: bool,
    /// Its acknowledgement.
    pub ack: Option<Ack>,
}

/// What happened to an alert, for live watchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// It went pending.
    Pending,
    /// It fired.
    Firing,
    /// It resolved.
    Resolved,
    /// It was pending and its condition stopped holding.
    Cancelled,
    /// It was acknowledged.
    Acknowledged,
}

/// An alert event, for live watchers.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// What happened.
    pub kind: EventKind,
    /// The alert after it.
    pub alert: AlertView,
}

/// The alerting engine's state.
#[derive(Debug)]
pub struct Alerts {
    rules: RuleSet,
    devices: Devices,
    episodes: Map<Key, Episode>,
    by_id: Map<u64, Key>,
    infos: Map<u64, Arc<AlertInfo>>,
    queue: Queue,
    next_eval: BTreeMap<u32, i64>,
    silences: BTreeMap<u64, Silence>,
    outbox: Outbox,
    resolved: VecDeque<Arc<ResolvedAlert>>,
    now_ms: i64,
    next_id: u64,
    next_silence: u64,
    generation: u64,
    events: broadcast::Sender<Arc<AlertEvent>>,
    /// Reused by the ingest path: (metric index, rule slot) pairs of one batch.
    scratch: Vec<(usize, u32)>,
    /// What periodic evaluations at one instant share.
    eval_cache: eval_cache::EvalCache,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts::new(DEFAULT_OUTBOX_LIMIT)
    }
}

impl Alerts {
    /// An engine without rules, keeping at most `outbox_limit` notifications.
    pub fn new(outbox_limit: usize) -> Self {
        Alerts {
            rules: RuleSet::default(),
            devices: Devices::default(),
            episodes: Map::default(),
            by_id: Map::default(),
            infos: Map::default(),
            queue: Queue::default(),
            next_eval: BTreeMap::new(),
            silences: BTreeMap::new(),
            outbox: Outbox::new(outbox_limit),
            resolved: VecDeque::new(),
            now_ms: i64::MIN,
            next_id: 1,
            next_silence: 1,
            generation: 0,
            events: broadcast::channel(EVENTS_BUFFER).0,
            scratch: Vec::new(),
            eval_cache: eval_cache::EvalCache::default(),
        }
    }

    // ---- reads -------------------------------------------------------------------------------

    /// Whether any rule is in force.
    pub fn has_rules(&self) -> bool {
        !self.rules.rules().is_empty()
    }

    /// Keeps at most `limit` notifications for receivers that have not confirmed them.
    pub fn set_outbox_limit(&mut self, limit: usize) {
        self.outbox.set_limit(limit);
    }

    /// Whether any rule in force reads readings (threshold, absence, completeness).
    pub fn reads_readings(&self) -> bool {
        self.rules.reads_readings()
    }

    /// Whether a threshold rule in force compares `metric`'s values: only those metrics need
    /// [`BatchFacts::latest`].
    pub fn reads_value(&self, metric: &str) -> bool {
        self.rules.reads_value(metric)
    }

    /// Whether a completeness rule in force counts readings: only then does
    /// [`BatchFacts::produced`] matter.
    pub fn counts_readings(&self) -> bool {
        self.rules.counts_readings()
    }

    /// The rules in force.
    pub fn rules(&self) -> &[Arc<Rule>] {
        self.rules.rules()
    }

    /// The rules in force as written to the WAL.
    pub fn rules_source(&self) -> &str {
        self.rules.source()
    }

    /// The notification outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The silences, by id (expired ones for a week).
    pub fn silences(&self) -> impl Iterator<Item = &Silence> {
        self.silences.values()
    }

    /// The engine's time: everything before it has been evaluated.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The earliest instant past which the engine has work to do by itself.
    pub fn next_deadline(&self) -> Option<i64> {
        self.queue.next_at()
    }

    /// A receiver of every alert event from now on.
    pub fn watch(&self) -> broadcast::Receiver<Arc<AlertEvent>> {
        self.events.subscribe()
    }

    /// Open alerts (pending and firing) whose rule and target are known, in id order.
    pub fn open(&self) -> Vec<(&Key, &Episode)> {
        let mut open: Vec<(&Key, &Episode)> = self.episodes.iter().collect();
        open.sort_by_key(|(_, e)| e.id);
        open
    }

    /// The recently resolved alerts, oldest first.
    pub fn resolved(&self) -> impl DoubleEndedIterator<Item = &Arc<ResolvedAlert>> {
        self.resolved.iter()
    }

    /// Firing alerts whose firing was notified, with the sequence number of that notification
    /// (what Alertmanager is sent again periodically), in sequence order.
    pub fn notified_firing(&self) -> Vec<(u64, Arc<AlertInfo>)> {
        let mut out: Vec<(u64, Arc<AlertInfo>)> = self
            .episodes
            .values()
            .filter_map(|e| Some((e.notified?, self.infos.get(&e.id)?.clone())))
            .collect();
        out.sort_by_key(|(seq, _)| *seq);
        out
    }

    /// Number of open alerts per (firing, severity).
    pub fn counts(&self) -> BTreeMap<(Phase, Severity), u64> {
        let mut out = BTreeMap::new();
        for (key, e) in &self.episodes {
            let Some(rule) = self.rules.get(key.slot) else {
                continue;
            };
            let phase = if e.firing() {
                Phase::Firing
            } else {
                Phase::Pending
            };
            *out.entry((phase, rule.severity)).or_default() += 1;
        }
        out
    }

    /// The view of the open alert `key`.
    pub fn view_open(&self, key: &Key, e: &Episode, world: &dyn world::World) -> Option<AlertView> {
        let rule = self.rules.get(key.slot)?;
        let facts = view::TargetFacts::of(&key.target, world);
        let (labels, annotations, fingerprint) = match self.infos.get(&e.id) {
            Some(info) => (
                info.labels.clone(),
                info.annotations.clone(),
                info.fingerprint,
            ),
            None => {
                let labels = view::labels_of(rule, &facts);
                let annotations = view::annotations_of(rule, &key.target, &facts, &labels, e.value);
                let fingerprint = labels::fingerprint(&labels);
                (labels, annotations, fingerprint)
            }
        };
        let at = self.now_ms;
        let suppressed_until_ms = self.maintenance_until(&key.target, &facts, at, world);
        let silenced_by = self
            .silences
            .values()
            .filter(|s| s.active(at) && s.matches(&labels))
            .map(|s| s.id)
            .collect();
        Some(AlertView {
            id: e.id,
            rule: rule.name.clone(),
            severity: rule.severity,
            phase: if e.firing() {
                Phase::Firing
            } else {
                Phase::Pending
            },
            target: key.target.clone(),
            kind: facts.kind,
            site: facts.site,
            district: facts.district,
            labels,
            annotations,
            fingerprint,
            active_since_ms: e.active_since,
            fired_at_ms: e.fired_at,
            resolved_at_ms: None,
            value: e.value,
            notified: e.notified.is_some(),
            suppressed_until_ms,
            silenced_by,
            ack: e.ack.clone(),
        })
    }

    /// The view of a resolved alert.
    pub fn view_resolved(r: &ResolvedAlert) -> AlertView {
        AlertView {
            id: r.info.id,
            rule: r.info.rule.clone(),
            severity: r.info.severity,
            phase: Phase::Resolved,
            target: r.target.clone(),
            kind: r.kind.clone(),
            site: r.site.clone(),
            district: r.district.clone(),
            labels: r.info.labels.clone(),
            annotations: r.info.annotations.clone(),
            fingerprint: r.info.fingerprint,
            active_since_ms: r.active_since_ms,
            fired_at_ms: Some(r.fired_at_ms),
            resolved_at_ms: Some(r.resolved_at_ms),
            value: r.value,
            notified: r.notified,
            suppressed_until_ms: None,
            silenced_by: Vec::new(),
            ack: r.ack.clone(),
        }
    }

    /// Every alert, open ones first (firing, then pending), then resolved ones newest first.
    pub fn views(&self, world: &dyn world::World) -> Vec<AlertView> {
        let mut out: Vec<AlertView> = self
            .open()
            .into_iter()
            .filter_map(|(k, e)| self.view_open(k, e, world))
            .collect();
        out.sort_by(|a, b| {
            (
                a.phase,
                a.severity,
                a.fired_at_ms.unwrap_or(a.active_since_ms),
                a.id,
            )
                .cmp(&(
                    b.phase,
                    b.severity,
                    b.fired_at_ms.unwrap_or(b.active_since_ms),
                    b.id,
                ))
        });
        out.extend(self.resolved.iter().rev().map(|r| Self::view_resolved(r)));
        out
    }
}
