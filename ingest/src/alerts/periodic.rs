//! Availability and completeness rules: evaluated every `interval`, at instants aligned to it
//! (multiples of the interval since the Unix epoch), over the window `[T - window, T)` ending at
//! the instant T; per device, or per site or district over the selected devices together.
//!
//! - Availability is the one `GetAvailability` reports: (online + late) / (online + late +
//!   offline) over the window from the device's state history, maintenance taken out; unknown
//!   and unreachable time do not count. A group with no observed time has no figure and no alert.
//! - Completeness counts, per device, the readings stored and the readings their sequence
//!   numbers say were produced, in buckets of `interval` by receive time: a batch adds the
//!   readings it stored, and as produced either the span of a new boot's readings or how far
//!   the boot's highest sequence number rose. Completeness = stored / produced (at most 100 %)
//!   over the window's buckets; a group that produced nothing has no figure.

use std::collections::BTreeMap;
use std::sync::Arc;

use citytel_availability::Span;

use super::episode::{Key, Target};
use super::rule::{Condition, TargetKind};
use super::world::{DeviceRef, World};
use super::{Alerts, Buckets};

/// (numerator, denominator) of a group's figure.
type Tally = BTreeMap<Target, (i64, i64)>;

/// The group a device belongs to under `per`.
fn group(per: TargetKind, d: &DeviceRef<'_>) -> Option<Target> {
    let id: Arc<str> = match per {
        TargetKind::Device => d.id.clone(),
        TargetKind::Site => d.site.clone(),
        TargetKind::District => d.district?.into(),
    };
    Some(Target { kind: per, id })
}

impl Alerts {
    /// Evaluates periodic rule `slot` at the instant `at`.
    pub(super) fn evaluate(&mut self, slot: u32, at: i64, world: &dyn World) {
        let Some(rule) = self.rules.get(slot).cloned() else {
            return;
        };
        let (tally, target_percent) = match rule.condition {
            Condition::Availability {
                target_percent,
                window_ms,
                ..
            } => {
                let window = Span::new(at.saturating_sub(window_ms), at);
                let mut tally = Tally::new();
                world.devices(&mut |d| {
                    if !rule.selector.selects(d.id, d.kind, d.site, d.district) {
                        return;
                    }
                    let Some(g) = group(rule.per, &d) else {
                        return;
                    };
                    let times = world.times(d.id, window);
                    let entry = tally.entry(g).or_default();
                    entry.0 += times.available_ms();
                    entry.1 += times.observed_ms();
                });
                (tally, target_percent)
            }
            Condition::Completeness {
                target_percent,
                window_ms,
                interval_ms,
            } => (
                self.completeness_tally(slot, &rule, at, window_ms, interval_ms, world),
                target_percent,
            ),
            _ => return,
        };
        let mut open: Vec<Target> = self
            .episodes
            .keys()
            .filter(|k| k.slot == slot && !tally.contains_key(&k.target))
            .map(|k| k.target.clone())
            .collect();
        open.sort();
        for target in open {
            self.set_condition(&Key { slot, target }, false, at, None, world);
        }
        for (target, (num, den)) in tally {
            let key = Key { slot, target };
            if den <= 0 {
                self.set_condition(&key, false, at, None, world);
                continue;
            }
            let percent = (num as f64 * 100.0 / den as f64).min(100.0);
            self.set_condition(&key, percent < target_percent, at, Some(percent), world);
        }
    }

    /// Stored and produced readings per group over `[at - window, at)`, dropping buckets that
    /// fell out of every window to come.
    fn completeness_tally(
        &mut self,
        slot: u32,
        rule: &super::rule::Rule,
        at: i64,
        window_ms: i64,
        interval_ms: i64,
        world: &dyn World,
    ) -> Tally {
        let last = at.div_euclid(interval_ms);
        let first = last - window_ms / interval_ms;
        let mut tally = Tally::new();
        let mut emptied = Vec::new();
        let mut devices: Vec<(&(u32, Arc<str>), &mut Buckets)> = self
            .buckets
            .iter_mut()
            .filter(|((s, _), _)| *s == slot)
            .collect();
        devices.sort_by(|a, b| a.0.cmp(b.0));
        for (key, buckets) in devices {
            while buckets.front().is_some_and(|(b, _, _)| *b < first) {
                buckets.pop_front();
            }
            if buckets.is_empty() {
                emptied.push(key.clone());
                continue;
            }
            let Some(d) = world.device(&key.1) else {
                continue;
            };
            if !rule.selector.selects(d.id, d.kind, d.site, d.district) {
                continue;
            }
            let Some(g) = group(rule.per, &d) else {
                continue;
            };
            let (stored, produced) = buckets
                .iter()
                .filter(|(b, _, _)| *b < last)
                .fold((0i64, 0i64), |(s, p), (_, bs, bp)| {
                    (s + i64::from(*bs), p + i64::from(*bp))
                });
            let entry = tally.entry(g).or_default();
            entry.0 += stored;
            entry.1 += produced;
        }
        for key in emptied {
            self.buckets.remove(&key);
        }
        tally
    }

    /// Counts a batch of `device` received at `at` for completeness rule `slot`.
    pub(super) fn count_readings(
        &mut self,
        slot: u32,
        device: &Arc<str>,
        at: i64,
        stored: u64,
        produced: u64,
    ) {
        let Some(interval) = self.rules.get(slot).and_then(|r| r.condition.interval_ms()) else {
            return;
        };
        let bucket = at.div_euclid(interval);
        let buckets = self.buckets.entry((slot, device.clone())).or_default();
        let (stored, produced) = (
            u32::try_from(stored).unwrap_or(u32::MAX),
            u32::try_from(produced).unwrap_or(u32::MAX),
        );
        // Receive times nearly always grow; an earlier one goes into its own bucket.
        match buckets.iter().rposition(|(b, _, _)| *b <= bucket) {
            Some(i) if buckets[i].0 == bucket => {
                let (_, s, p) = &mut buckets[i];
                *s = s.saturating_add(stored);
                *p = p.saturating_add(produced);
            }
            Some(i) => buckets.insert(i + 1, (bucket, stored, produced)),
            None => buckets.push_front((bucket, stored, produced)),
        }
    }
}
