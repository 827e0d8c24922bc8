//! The threshold and completeness alerts a scenario run must raise, computed from the readings
//! in its ground truth alone (the values the simulator produced, their sequence numbers, and
//! when citytel acknowledged each or the device lost it), by a plain reading of the documented
//! rule semantics (`docs/alerting.md`), written without citytel's code. The alert lifecycle
//! (pending, `for`, `keep_firing_for`) is [`alert_expect`](crate::alert_expect)'s.
//!
//! - **What citytel stores**: of a batch, the readings it had not stored before. A metric's
//!   latest value moves only forward in the device's time (a reading stamped at or after the
//!   latest replaces it), so a backfill moves it at most to its newest reading and never back.
//! - **threshold**: the metric's latest value is compared whenever a batch moves it, at the
//!   batch's receive time; nothing else changes the condition (a device that goes quiet keeps
//!   its alert as it was). A value that compares true opens an alert (pending); while it is
//!   open (pending, firing, or clearing under `keep_firing_for`), with a clear value, a value
//!   holds until it is past the clear value (strictly below it for `>`/`>=`, above it for
//!   `<`/`<=`). A pending alert fires `for` after it opened unless a value stopped holding by
//!   then (at that very instant included: a receive time equal to a deadline comes first); a
//!   firing one resolves when a value stops holding, or `keep_firing_for` later unless a value
//!   holds again by then (at that very instant included).
//! - **completeness**: a batch accounts, of its boot, for the readings up to its highest
//!   sequence number: all of them from its lowest for the boot's first batch, and those past
//!   the boot's highest so far for the next ones (a reading lost before the first one citytel
//!   got, or after the last, is not known to be missing). Counted by receive time in buckets of
//!   `interval`; at every multiple T of `interval`, completeness over `[T - window, T)` is the
//!   readings stored over the readings accounted for, per device or per group of devices; no
//!   reading accounted for, no figure. Every reading accounted for and not stored must be one
//!   the ground truth says was lost, which [`arrivals`] checks.

use std::collections::{BTreeMap, BTreeSet};

use citytel_firmware_sim::scenario::{Delivered, DeviceTruth, ReadingTruth};

use crate::alert_expect::{Alert, Holds, below_target};

/// A comparison of a threshold rule, as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl Op {
    /// The operator as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    fn compares(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    /// Whether `value` is past `clear`, on the side away from the threshold.
    fn past(self, value: f64, clear: f64) -> bool {
        match self {
            Op::Gt | Op::Ge => value < clear,
            Op::Lt | Op::Le => value > clear,
        }
    }
}

/// A threshold rule's condition and timing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// The comparison.
    pub op: Op,
    /// The threshold.
    pub value: f64,
    /// The clear value (hysteresis), if any.
    pub clear: Option<f64>,
    /// `for`, ms.
    pub for_ms: i64,
    /// `keep_firing_for`, ms.
    pub keep_firing_for_ms: i64,
}

/// One telemetry batch citytel stored readings of, as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// When citytel received it, ms since the epoch.
    pub at_ms: i64,
    /// Readings of it citytel had not stored before.
    pub stored: u64,
    /// Readings of its boot it accounts for (see the module's description).
    pub accounted: u64,
    /// Per metric (the device's `metric_names` order): the new latest value, if the batch
    /// moved it.
    pub latest: Vec<Option<f64>>,
}

/// The batches of `device` that stored readings, in order, from its ground truth.
///
/// # Panics
///
/// If a delivery names a reading the device did not take, or a reading accounted for was
/// neither stored nor lost: the ground truth contradicts itself.
pub fn arrivals(device: &DeviceTruth) -> Vec<Arrival> {
    let metrics = device.metric_names.len();
    let mut stored: BTreeSet<(u64, u64)> = BTreeSet::new();
    // Per boot: the highest sequence number stored.
    let mut highest: BTreeMap<u64, u64> = BTreeMap::new();
    // Per metric: the latest point (device time, value).
    let mut latest: Vec<Option<(i64, f64)>> = vec![None; metrics];
    let mut out = Vec::new();
    for delivery in &device.deliveries {
        let Delivered::Readings {
            first_seq,
            last_seq,
            ..
        } = delivery.what
        else {
            continue;
        };
        let boot = delivery.boot_id;
        let readings: Vec<&ReadingTruth> = (first_seq..=last_seq)
            .map(|seq| {
                device.reading(boot, seq).unwrap_or_else(|| {
                    panic!("{}: boot {boot} has no reading {seq}", device.device_id)
                })
            })
            .filter(|r| stored.insert((boot, r.seq)))
            .collect();
        if readings.is_empty() {
            continue;
        }
        let before = latest.clone();
        for r in &readings {
            for (slot, value) in latest.iter_mut().zip(&r.values) {
                if slot.is_none_or(|(t, _)| r.time_unix_ms >= t) {
                    *slot = Some((r.time_unix_ms, *value));
                }
            }
        }
        let lo = readings.iter().map(|r| r.seq).min().unwrap_or(first_seq);
        let hi = readings.iter().map(|r| r.seq).max().unwrap_or(last_seq);
        let from = match highest.get(&boot) {
            None => lo,
            Some(&h) => h + 1,
        };
        let to = hi.max(highest.get(&boot).copied().unwrap_or(0));
        highest.insert(boot, to);
        for seq in from..=to {
            let r = device.reading(boot, seq).unwrap_or_else(|| {
                panic!("{}: boot {boot} has no reading {seq}", device.device_id)
            });
            assert!(
                stored.contains(&(boot, seq)) || r.lost_unix_ms.is_some(),
                "{}: boot {boot} reading {seq} is missing at {} but the device never lost it",
                device.device_id,
                delivery.at_unix_ms
            );
        }
        out.push(Arrival {
            at_ms: delivery.at_unix_ms,
            stored: readings.len() as u64,
            accounted: (to + 1).saturating_sub(from),
            latest: latest
                .iter()
                .zip(&before)
                .map(|(now, was)| (now != was).then(|| now.map(|(_, v)| v)).flatten())
                .collect(),
        });
    }
    out
}

/// The values of metric `index` a threshold rule compares: `(receive time, value)` of every
/// arrival that moved its latest value.
pub fn samples(arrivals: &[Arrival], index: usize) -> Vec<(i64, f64)> {
    arrivals
        .iter()
        .filter_map(|a| Some((a.at_ms, a.latest.get(index).copied().flatten()?)))
        .collect()
}

/// The alerts of a threshold rule `rule` over the values `samples` of `target` (in time
/// order), as they stand at `end_ms` (samples and deadlines from `end_ms` on do not count).
pub fn threshold_alerts(
    target: &str,
    samples: &[(i64, f64)],
    rule: &Threshold,
    end_ms: i64,
) -> Vec<Alert> {
    let mut out = Vec::new();
    // The open alert, and since when its condition stopped holding while it fires.
    let mut open: Option<(Alert, Option<i64>)> = None;
    // Deadlines strictly before `at` pass.
    let settle = |open: &mut Option<(Alert, Option<i64>)>, out: &mut Vec<Alert>, at: i64| {
        let Some((alert, clearing)) = open.as_mut() else {
            return;
        };
        let fires = alert.pending_ms + rule.for_ms;
        if alert.fired_ms.is_none() && fires < at {
            alert.fired_ms = Some(fires);
        }
        if let Some(since) = *clearing
            && since + rule.keep_firing_for_ms < at
        {
            alert.resolved_ms = Some(since + rule.keep_firing_for_ms);
            out.extend(open.take().map(|(a, _)| a));
        }
    };
    for &(at, v) in samples.iter().take_while(|(at, _)| *at < end_ms) {
        settle(&mut open, &mut out, at);
        let holds = match (&open, rule.clear) {
            (Some(_), Some(clear)) => !rule.op.past(v, clear),
            _ => rule.op.compares(v, rule.value),
        };
        match open.as_mut() {
            None if holds => {
                let alert = Alert {
                    target: target.to_string(),
                    pending_ms: at,
                    fired_ms: (rule.for_ms <= 0).then_some(at),
                    resolved_ms: None,
                };
                open = Some((alert, None));
            }
            None => {}
            // A pending alert that stops holding is cancelled.
            Some((alert, _)) if alert.fired_ms.is_none() && !holds => open = None,
            Some((alert, _)) if alert.fired_ms.is_none() => {}
            Some((_, clearing)) if holds => *clearing = None,
            Some((_, Some(_))) => {}
            Some((alert, clearing)) => {
                if rule.keep_firing_for_ms > 0 {
                    *clearing = Some(at);
                } else {
                    alert.resolved_ms = Some(at);
                    out.extend(open.take().map(|(a, _)| a));
                }
            }
        }
    }
    settle(&mut open, &mut out, end_ms);
    out.extend(open.map(|(a, _)| a));
    out
}

/// The intervals over which a completeness rule holds for a group of devices (their arrivals
/// together), evaluated at every multiple of `interval_ms` in `[start_ms, end_ms)`.
pub fn completeness_holds(
    group: &[&[Arrival]],
    target_percent: f64,
    window_ms: i64,
    interval_ms: i64,
    (start_ms, end_ms): (i64, i64),
) -> Vec<Holds> {
    below_target(target_percent, interval_ms, (start_ms, end_ms), |at| {
        // Buckets of `interval`, by receive time: the window's are whole buckets.
        let (from, to) = (
            (at - window_ms).div_euclid(interval_ms) * interval_ms,
            at.div_euclid(interval_ms) * interval_ms,
        );
        let (stored, accounted) = group
            .iter()
            .flat_map(|a| a.iter())
            .filter(|a| a.at_ms >= from && a.at_ms < to)
            .fold((0u64, 0u64), |(s, p), a| (s + a.stored, p + a.accounted));
        (stored as i64, accounted as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOT: Threshold = Threshold {
        op: Op::Gt,
        value: 60.0,
        clear: Some(55.0),
        for_ms: 10,
        keep_firing_for_ms: 30,
    };

    fn alert(pending: i64, fired: Option<i64>, resolved: Option<i64>) -> Alert {
        Alert {
            target: "d".into(),
            pending_ms: pending,
            fired_ms: fired,
            resolved_ms: resolved,
        }
    }

    #[test]
    fn hysteresis_and_keep_firing_for_bridge_dips_a_bare_rule_does_not() {
        // The wavering value of the threshold end-to-end test, worked out there by hand.
        let samples = [
            (0, 50.0),
            (10, 61.0),
            (15, 58.0),
            (25, 57.0),
            (30, 54.0),
            (45, 62.0),
            (50, 50.0),
            (70, 54.0),
        ];
        assert_eq!(
            threshold_alerts("d", &samples, &HOT, 90),
            [alert(10, Some(20), Some(80))]
        );
        let bare = Threshold {
            clear: None,
            for_ms: 0,
            keep_firing_for_ms: 0,
            ..HOT
        };
        assert_eq!(
            threshold_alerts("d", &samples, &bare, 90),
            [alert(10, Some(10), Some(15)), alert(45, Some(45), Some(50))]
        );
        // Cut off before it resolves: still firing at the end.
        assert_eq!(
            threshold_alerts("d", &samples, &HOT, 80),
            [alert(10, Some(20), None)]
        );
    }

    #[test]
    fn a_value_at_the_deadline_comes_first() {
        // Stopping exactly when `for` passes: no alert.
        assert_eq!(
            threshold_alerts("d", &[(0, 61.0), (10, 50.0)], &HOT, 100),
            []
        );
        // Holding again exactly when `keep_firing_for` passes: the same alert.
        assert_eq!(
            threshold_alerts("d", &[(0, 61.0), (20, 50.0), (50, 56.0)], &HOT, 100),
            [alert(0, Some(10), None)]
        );
        assert_eq!(
            threshold_alerts("d", &[(0, 61.0), (20, 50.0), (51, 56.0)], &HOT, 100),
            [alert(0, Some(10), Some(50))],
            "past keep_firing_for, 56 is below the threshold: no new alert"
        );
    }

    #[test]
    fn completeness_counts_whole_buckets_before_each_instant() {
        let a = |at_ms, stored, accounted| Arrival {
            at_ms,
            stored,
            accounted,
            latest: Vec::new(),
        };
        // 4 of 5 at 100 (80 %), all at 150 and 230.
        let arrivals = [a(100, 4, 5), a(150, 1, 1), a(230, 1, 1)];
        let holds = completeness_holds(&[&arrivals], 90.0, 100, 50, (0, 400));
        // At 150: [50, 150) has 4/5; 200: [100, 200) 5/6 = 83 %; 250: [150, 250) 2/2.
        assert_eq!(holds, [(150, Some(250))]);
        assert_eq!(
            completeness_holds(&[&arrivals], 90.0, 100, 50, (0, 200)),
            [(150, None)]
        );
    }
}
