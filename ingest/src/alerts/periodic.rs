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
//!   over the window's buckets; a group that produced nothing has no figure. The buckets are
//!   counted once per device and interval for every completeness rule with that interval that
//!   selects the device ([`Counts`]).
//!
//! Every periodic rule due at one instant is tallied in the same pass over the devices, on the
//! first one's turn (the others find their tally in [`EvalCache`]): the world's devices are
//! listed once, each device's state times are read once per window, and its counts once per
//! interval and window. A target whose condition does not hold is only kept while its rule has
//! an open alert (telling it so is a no-op otherwise).

use std::collections::BTreeMap;
use std::sync::Arc;

use citytel_availability::{Span, StateTimes};

use super::Alerts;
use super::counts::Counts;
use super::episode::{Key, Target};
use super::eval_cache::EvalCache;
use super::rule::{Condition, Rule, TargetKind};
use super::world::{DeviceRef, World};

/// A device's counts summed for a window: (counter, first bucket, last bucket).
type SumKey = (u16, i64, i64);

/// (numerator, denominator) per group, in target order.
pub(super) type Tally = Vec<(Target, (i64, i64))>;

/// The figure of (numerator, denominator) in percent, and whether it is below `target`; `None`
/// without a denominator.
fn figure(num: i64, den: i64, target: f64) -> Option<(f64, bool)> {
    if den <= 0 {
        return None;
    }
    let percent = (num as f64 * 100.0 / den as f64).min(100.0);
    Some((percent, percent < target))
}

/// What one rule due at the instant reads.
enum Reads {
    /// State times over the window.
    Times(Span),
    /// Counts of a counter, in the buckets from the first up to, not including, the last.
    Counts { counter: u16, first: i64, last: i64 },
}

/// One rule's tally in the making: per device straight into a list (devices come in id order,
/// each once), per site or district through a map.
struct Plan {
    slot: u32,
    rule: Arc<Rule>,
    target_percent: f64,
    reads: Reads,
    /// Whether the rule has an open alert (then every target is kept).
    keep_all: bool,
    devices: Tally,
    groups: BTreeMap<Target, (i64, i64)>,
}

impl Plan {
    /// Whether a target with this figure matters: it holds, or an open alert may need telling.
    fn keeps(&self, num: i64, den: i64) -> bool {
        self.keep_all || figure(num, den, self.target_percent).is_some_and(|(_, below)| below)
    }

    fn add(&mut self, d: &DeviceRef<'_>, num: i64, den: i64) {
        let g = match self.rule.per {
            TargetKind::Device => {
                if !self.keeps(num, den) {
                    return;
                }
                let g = Target {
                    kind: TargetKind::Device,
                    id: d.id.clone(),
                };
                match self.devices.last() {
                    Some((last, _)) if *last >= g => {
                        // Not in id order (a world listing devices otherwise): find its place.
                        match self.devices.binary_search_by(|(t, _)| t.cmp(&g)) {
                            Ok(i) => {
                                self.devices[i].1.0 += num;
                                self.devices[i].1.1 += den;
                            }
                            Err(i) => self.devices.insert(i, (g, (num, den))),
                        }
                    }
                    _ => self.devices.push((g, (num, den))),
                }
                return;
            }
            TargetKind::Site => Target {
                kind: TargetKind::Site,
                id: d.site.clone(),
            },
            TargetKind::District => {
                let Some(district) = d.district else {
                    return;
                };
                Target {
                    kind: TargetKind::District,
                    id: district.into(),
                }
            }
        };
        let e = self.groups.entry(g).or_default();
        e.0 += num;
        e.1 += den;
    }

    fn tally(self) -> Tally {
        let mut out = self.devices;
        let (keep_all, target) = (self.keep_all, self.target_percent);
        out.extend(self.groups.into_iter().filter(|(_, (num, den))| {
            keep_all || figure(*num, *den, target).is_some_and(|(_, below)| below)
        }));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Alerts {
    /// Evaluates periodic rule `slot` at the instant `at`.
    pub(super) fn evaluate(&mut self, slot: u32, at: i64, world: &dyn World) {
        let Some(rule) = self.rules.get(slot).cloned() else {
            return;
        };
        let target_percent = match rule.condition {
            Condition::Availability { target_percent, .. }
            | Condition::Completeness { target_percent, .. } => target_percent,
            _ => return,
        };
        let tally = match self.eval_cache.take(at, slot) {
            Some(tally) => tally,
            None => {
                self.tally_due(at, slot, world);
                self.eval_cache.take(at, slot).unwrap_or_default()
            }
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
            match figure(num, den, target_percent) {
                None => self.set_condition(&key, false, at, None, world),
                Some((percent, below)) => {
                    self.set_condition(&key, below, at, Some(percent), world);
                }
            }
        }
    }

    /// Tallies every periodic rule due at `at` (`slot` and those whose next evaluation is
    /// `at`) in one pass over the devices, into the cache; drops the counted buckets that fell
    /// out of every window to come.
    fn tally_due(&mut self, at: i64, slot: u32, world: &dyn World) {
        let mut plans: Vec<Plan> = Vec::new();
        // Per counter due: the first bucket its rules' windows still need.
        let mut firsts: Vec<Option<i64>> = vec![None; self.rules.counters().len()];
        for &s in self.rules.periodic_slots() {
            if s != slot && self.next_eval.get(&s) != Some(&at) {
                continue;
            }
            let Some(rule) = self.rules.get(s).cloned() else {
                continue;
            };
            let (target_percent, reads) = match rule.condition {
                Condition::Availability {
                    target_percent,
                    window_ms,
                    ..
                } => (
                    target_percent,
                    Reads::Times(Span::new(at.saturating_sub(window_ms), at)),
                ),
                Condition::Completeness {
                    target_percent,
                    window_ms,
                    interval_ms,
                } => {
                    let Some(counter) = self.rules.counter_of(s) else {
                        continue;
                    };
                    let last = at.div_euclid(interval_ms);
                    let keep = self.rules.counters()[usize::from(counter)].keep;
                    firsts[usize::from(counter)] = Some(last - keep);
                    let first = last - window_ms / interval_ms;
                    (
                        target_percent,
                        Reads::Counts {
                            counter,
                            first,
                            last,
                        },
                    )
                }
                _ => continue,
            };
            plans.push(Plan {
                slot: s,
                keep_all: self.episodes.keys().any(|k| k.slot == s),
                rule,
                target_percent,
                reads,
                devices: Tally::new(),
                groups: BTreeMap::new(),
            });
        }
        if firsts.iter().any(Option::is_some) {
            for entry in self.devices.iter_mut() {
                entry.counts.retain(|c, counts| {
                    if let Some(first) = firsts.get(c as usize).copied().flatten() {
                        counts.drop_before(first);
                    }
                    !counts.is_empty()
                });
            }
        }
        let devices = &self.devices;
        let mut times: Vec<(Span, StateTimes)> = Vec::new();
        let mut sums: Vec<(SumKey, (i64, i64))> = Vec::new();
        world.devices(&mut |d| {
            times.clear();
            sums.clear();
            let entry = devices.get(d.id);
            for plan in plans.iter_mut() {
                let (num, den) = match plan.reads {
                    Reads::Times(window) => {
                        if !plan.rule.selector.selects(d.id, d.kind, d.site, d.district) {
                            continue;
                        }
                        let t = match times.iter().find(|(w, _)| *w == window) {
                            Some((_, t)) => *t,
                            None => {
                                let t = world.times(d.id, window);
                                times.push((window, t));
                                t
                            }
                        };
                        (t.available_ms(), t.observed_ms())
                    }
                    Reads::Counts {
                        counter,
                        first,
                        last,
                    } => {
                        let Some(counts) = entry.and_then(|e| e.counts.get(u32::from(counter)))
                        else {
                            continue;
                        };
                        if !plan.rule.selector.selects(d.id, d.kind, d.site, d.district) {
                            continue;
                        }
                        let key = (counter, first, last);
                        match sums.iter().find(|(k, _)| *k == key) {
                            Some((_, sum)) => *sum,
                            None => {
                                let sum = counts.sum(first, last);
                                sums.push((key, sum));
                                sum
                            }
                        }
                    }
                };
                plan.add(&d, num, den);
            }
        });
        let tallies = plans.into_iter().map(|p| (p.slot, p.tally())).collect();
        self.eval_cache = EvalCache::new(at, tallies);
    }

    /// Counts a batch of the device at index `device`, received at `at`, once at each counter
    /// of the completeness rules that select it (its rule mask must be fresh).
    pub(super) fn count_readings(&mut self, device: u32, at: i64, stored: u64, produced: u64) {
        let counters = self.rules.counters();
        let entry = self.devices.at_mut(device);
        let Some(mask) = &entry.rules else {
            return;
        };
        for &c in mask.counters() {
            let Some(counter) = counters.get(usize::from(c)) else {
                continue;
            };
            entry
                .counts
                .get_or_insert_with(u32::from(c), Counts::default)
                .add(at.div_euclid(counter.interval_ms), stored, produced);
        }
    }
}
