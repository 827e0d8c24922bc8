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

/// (numerator, denominator) per group, in target order.
type Tally = Vec<(Target, (i64, i64))>;

/// Adds up figures per group: per device straight into a list (devices come in id order, each
/// once), per site or district through a map.
#[derive(Default)]
struct Adder {
    devices: Tally,
    groups: BTreeMap<Target, (i64, i64)>,
}

impl Adder {
    fn add(&mut self, g: Target, num: i64, den: i64) {
        let entry = if g.kind == TargetKind::Device
            && self.devices.last().is_none_or(|(last, _)| *last < g)
        {
            self.devices.push((g, (0, 0)));
            &mut self.devices.last_mut().expect("pushed").1
        } else if g.kind == TargetKind::Device {
            // Out of order (a world that does not list devices in id order): find its place.
            match self.devices.binary_search_by(|(t, _)| t.cmp(&g)) {
                Ok(i) => &mut self.devices[i].1,
                Err(i) => {
                    self.devices.insert(i, (g, (0, 0)));
                    &mut self.devices[i].1
                }
            }
        } else {
            self.groups.entry(g).or_default()
        };
        entry.0 += num;
        entry.1 += den;
    }

    fn tally(self) -> Tally {
        let mut out = self.devices;
        out.extend(self.groups);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

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
                let mut adder = Adder::default();
                let cache = &mut self.eval_cache;
                let mut position = 0;
                world.devices(&mut |d| {
                    let here = position;
                    position += 1;
                    if !rule.selector.selects(d.id, d.kind, d.site, d.district) {
                        return;
                    }
                    let Some(g) = group(rule.per, &d) else {
                        return;
                    };
                    let times = cache.times(here, d.id, window, world);
                    adder.add(g, times.available_ms(), times.observed_ms());
                });
                (adder.tally(), target_percent)
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
        let in_tally = |t: &Target| tally.binary_search_by(|(g, _)| g.cmp(t)).is_ok();
        let mut open: Vec<Target> = self
            .episodes
            .keys()
            .filter(|k| k.slot == slot && !in_tally(&k.target))
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
        for entry in self.devices.iter_mut() {
            let Some(buckets) = entry.buckets.get_mut(slot) else {
                continue;
            };
            while buckets.front().is_some_and(|(b, _, _)| *b < first) {
                buckets.pop_front();
            }
            if buckets.is_empty() {
                entry.buckets.remove(slot);
            }
        }
        let devices = &self.devices;
        let entries = self.eval_cache.entries(devices, world);
        let mut adder = Adder::default();
        let mut position = 0;
        world.devices(&mut |d| {
            let here = position;
            position += 1;
            let Some(buckets) = entries
                .get(here)
                .copied()
                .flatten()
                .and_then(|i| devices.at(i).buckets.get(slot))
            else {
                return;
            };
            if !rule.selector.selects(d.id, d.kind, d.site, d.district) {
                return;
            }
            let Some(g) = group(rule.per, &d) else {
                return;
            };
            let (stored, produced) = buckets
                .iter()
                .filter(|(b, _, _)| *b < last)
                .fold((0i64, 0i64), |(s, p), (_, bs, bp)| {
                    (s + i64::from(*bs), p + i64::from(*bp))
                });
            adder.add(g, stored, produced);
        });
        adder.tally()
    }

    /// Counts a batch of the device at index `device`, received at `at`, for completeness rule
    /// `slot`.
    pub(super) fn count_readings(
        &mut self,
        slot: u32,
        device: u32,
        at: i64,
        stored: u64,
        produced: u64,
    ) {
        let Some(interval) = self.rules.get(slot).and_then(|r| r.condition.interval_ms()) else {
            return;
        };
        let bucket = at.div_euclid(interval);
        let buckets = self
            .devices
            .at_mut(device)
            .buckets
            .get_or_insert_with(slot, Buckets::new);
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
