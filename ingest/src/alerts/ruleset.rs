//! The rules in force, indexed for the ingest path: which rules read readings (threshold,
//! absence, completeness) and, per metric, which of those read it, so a message costs a hash
//! lookup per metric and a bit test per rule that reads it. Each device caches which reading
//! rules select it as a bit set ([`DeviceRules`]), computed on first use and again when the rules
//! or the device's site change, with the bucket intervals ([`Counter`]) its readings are counted
//! at for completeness rules.

use std::collections::HashSet;
use std::sync::Arc;

use super::rule::{Condition, Rule};
use crate::hash::Map;

/// A bucket interval at which the completeness rules with that interval count readings
/// together (see `counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// The width of its buckets (the rules' interval).
    pub interval_ms: i64,
    /// How many buckets before the current one the longest of its rules' windows spans.
    pub keep: i64,
}

/// The rules, with their indexes.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
    source: String,
    state: Vec<u32>,
    periodic: Vec<u32>,
    reading: Vec<u32>,
    by_metric: Map<Arc<str>, Vec<u16>>,
    /// Metrics some threshold rule compares.
    valued: HashSet<Arc<str>, foldhash::fast::RandomState>,
    /// Completeness rules: (index in the reading rules, counter).
    completeness: Vec<(u16, u16)>,
    /// The bucket intervals completeness rules count at.
    counters: Vec<Counter>,
    /// The counter of each rule, by slot (`u16::MAX`: none).
    counter_of: Vec<u16>,
    absence: Vec<u32>,
    generation: u64,
}

impl RuleSet {
    /// The rules of `source` (as written to the WAL), `generation` telling caches apart.
    pub fn new(rules: Vec<Arc<Rule>>, source: String, generation: u64) -> RuleSet {
        let mut set = RuleSet {
            source,
            generation,
            counter_of: vec![u16::MAX; rules.len()],
            ..RuleSet::default()
        };
        for (slot, rule) in rules.iter().enumerate() {
            let slot = slot as u32;
            match &rule.condition {
                Condition::State { .. } => set.state.push(slot),
                Condition::Availability { .. } => set.periodic.push(slot),
                Condition::Completeness {
                    window_ms,
                    interval_ms,
                    ..
                } => {
                    set.periodic.push(slot);
                    let keep = window_ms / interval_ms;
                    let counter = match set
                        .counters
                        .iter()
                        .position(|c| c.interval_ms == *interval_ms)
                    {
                        Some(c) => {
                            set.counters[c].keep = set.counters[c].keep.max(keep);
                            c
                        }
                        None => {
                            set.counters.push(Counter {
                                interval_ms: *interval_ms,
                                keep,
                            });
                            set.counters.len() - 1
                        }
                    } as u16;
                    set.counter_of[slot as usize] = counter;
                    set.completeness.push((set.reading.len() as u16, counter));
                    set.reading.push(slot);
                }
                Condition::Threshold { metric, .. } | Condition::Absence { metric, .. } => {
                    if matches!(rule.condition, Condition::Absence { .. }) {
                        set.absence.push(slot);
                    } else {
                        set.valued.insert(metric.clone());
                    }
                    set.by_metric
                        .entry(metric.clone())
                        .or_default()
                        .push(set.reading.len() as u16);
                    set.reading.push(slot);
                }
            }
        }
        set.rules = rules;
        set
    }

    /// The rule in `slot`.
    pub fn get(&self, slot: u32) -> Option<&Arc<Rule>> {
        self.rules.get(slot as usize)
    }

    /// Every rule, by slot.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// The slot of the rule named `name`.
    pub fn slot_of(&self, name: &str) -> Option<u32> {
        self.rules
            .iter()
            .position(|r| &*r.name == name)
            .map(|s| s as u32)
    }

    /// The rules as written to the WAL.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Which rule set this is (caches computed for another are stale).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Slots of the state rules.
    pub fn state_slots(&self) -> &[u32] {
        &self.state
    }

    /// Slots of the availability and completeness rules.
    pub fn periodic_slots(&self) -> &[u32] {
        &self.periodic
    }

    /// Slots of the absence rules.
    pub fn absence_slots(&self) -> &[u32] {
        &self.absence
    }

    /// Whether any rule reads readings.
    pub fn reads_readings(&self) -> bool {
        !self.reading.is_empty()
    }

    /// Whether a threshold rule compares `metric`'s values (other reading rules only note that
    /// readings arrived).
    pub fn reads_value(&self, metric: &str) -> bool {
        self.valued.contains(metric)
    }

    /// Whether any completeness rule counts readings.
    pub fn counts_readings(&self) -> bool {
        !self.completeness.is_empty()
    }

    /// The reading rules that read `metric`, as (index in the reading rules, slot).
    pub fn reading_metric(&self, metric: &str) -> impl Iterator<Item = (u16, u32)> + '_ {
        self.by_metric
            .get(metric)
            .into_iter()
            .flatten()
            .map(|&i| (i, self.reading[usize::from(i)]))
    }

    /// The bucket intervals completeness rules count at, by counter index.
    pub fn counters(&self) -> &[Counter] {
        &self.counters
    }

    /// The counter index of completeness rule `slot`.
    pub fn counter_of(&self, slot: u32) -> Option<u16> {
        self.counter_of
            .get(slot as usize)
            .copied()
            .filter(|&c| c != u16::MAX)
    }

    /// The counter index at `interval_ms`, if a completeness rule counts at it.
    pub fn counter_at(&self, interval_ms: i64) -> Option<u16> {
        self.counters
            .iter()
            .position(|c| c.interval_ms == interval_ms)
            .map(|c| c as u16)
    }

    /// Which reading rules select a device of `kind` at `site` in `district` with id `id`.
    pub fn device_rules(
        &self,
        id: &str,
        kind: &str,
        site: &Arc<str>,
        district: Option<&str>,
    ) -> DeviceRules {
        let mut bits = vec![0u64; self.reading.len().div_ceil(64)];
        for (i, slot) in self.reading.iter().enumerate() {
            if self.rules[*slot as usize]
                .selector
                .selects(id, kind, site, district)
            {
                bits[i / 64] |= 1 << (i % 64);
            }
        }
        let mut counters: Vec<u16> = self
            .completeness
            .iter()
            .filter(|(i, _)| bits[usize::from(*i) / 64] & (1 << (i % 64)) != 0)
            .map(|(_, c)| *c)
            .collect();
        counters.sort_unstable();
        counters.dedup();
        DeviceRules {
            generation: self.generation,
            kind: kind.into(),
            site: site.clone(),
            district: district.map(Into::into),
            bits: bits.into_boxed_slice(),
            counters: counters.into_boxed_slice(),
        }
    }
}

/// Which reading rules select one device.
#[derive(Debug, Clone)]
pub struct DeviceRules {
    generation: u64,
    kind: Box<str>,
    site: Arc<str>,
    district: Option<Box<str>>,
    bits: Box<[u64]>,
    counters: Box<[u16]>,
}

impl DeviceRules {
    /// Whether it was computed for rule set `generation` and a device of `kind` at `site` in
    /// `district` (a new birth may move a device to another site or district).
    pub fn fresh(&self, generation: u64, kind: &str, site: &str, district: Option<&str>) -> bool {
        self.generation == generation
            && &*self.site == site
            && &*self.kind == kind
            && self.district.as_deref() == district
    }

    /// The counters its readings are counted at: those of the completeness rules that select
    /// it, in index order.
    pub fn counters(&self) -> &[u16] {
        &self.counters
    }

    /// Whether reading rule `i` selects the device.
    pub fn has(&self, i: u16) -> bool {
        let i = usize::from(i);
        self.bits
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::RuleSet;
    use crate::alerts::config::parse_rules;

    #[test]
    fn a_device_that_moves_district_gets_its_rules_again() {
        let (_, rules) = parse_rules(
            r#"
            [[rule]]
            name = "north-no2"
            kind = "threshold"
            severity = "minor"
            metric = "no2_ugm3"
            op = ">"
            value = 200.0
            devices = { districts = ["north"] }
            "#,
        )
        .expect("a valid rule");
        let set = RuleSet::new(rules, String::new(), 1);
        let site: Arc<str> = "site-01".into();
        let north = set.device_rules("sen-1", "sensor", &site, Some("north"));
        assert!(north.has(0));
        assert!(north.fresh(1, "sensor", "site-01", Some("north")));
        for (kind, district) in [
            ("sensor", Some("south")),
            ("sensor", None),
            ("cabinet", Some("north")),
        ] {
            assert!(
                !north.fresh(1, kind, "site-01", district),
                "{kind} {district:?}"
            );
        }
        assert!(
            !north.fresh(2, "sensor", "site-01", Some("north")),
            "a newer rule set"
        );
        let south = set.device_rules("sen-1", "sensor", &site, Some("south"));
        assert!(!south.has(0));
    }
}
