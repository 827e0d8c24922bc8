//! The alerts a scenario run must raise, computed from its ground truth alone: from the state
//! changes [`scenario_expect`](crate::scenario_expect) derives from it, and from the deliveries
//! it lists, by a plain reading of the documented rule semantics (`docs/alerting.md`), written
//! without citytel's code:
//!
//! - a condition holds over maximal intervals of time; an alert is pending from the start of
//!   one, fires `for` later if the condition still holds then (stopping exactly at that
//!   instant wins: no alert), and resolves when it stops holding, or `keep_firing_for` after
//!   that unless it holds again by then (holding again at that very instant continues it);
//! - **state**: the device is in one of the rule's states;
//! - **absence**: the device is up (online or late) and the metric has not been received for
//!   `after`, counted from its last reading or the device's last recovery (up after down), if
//!   later; it starts at that deadline and ends at the next reading or when the device goes
//!   down;
//! - **availability**: evaluated at every multiple of `interval`, over `[T - window, T)`, as
//!   (online + late) / (online + late + offline); no observed time, no figure.
//!
//! Only what happens before the end of the run counts: citytel's clock stops there.

use std::collections::BTreeMap;

use citytel_firmware_sim::scenario::{Delivered, DeviceTruth};

use crate::scenario_expect::{Change, State};

/// One alert as the API lists it at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alert {
    /// What it is about (a device id).
    pub target: String,
    /// When its condition started holding.
    pub pending_ms: i64,
    /// When it fired, if it did.
    pub fired_ms: Option<i64>,
    /// When it resolved, if it did.
    pub resolved_ms: Option<i64>,
}

/// A maximal interval over which a condition holds: `[start, end)`, `end` none when it still
/// held at the end of the run.
pub type Holds = (i64, Option<i64>);

/// The alerts of one target whose condition holds over `holds` (in time order, disjoint),
/// under `for_ms` and `keep_firing_for_ms`, as they stand at `end_ms`.
pub fn episodes(
    target: &str,
    holds: &[Holds],
    for_ms: i64,
    keep_firing_for_ms: i64,
    end_ms: i64,
) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < holds.len() {
        let (start, stop) = holds[i];
        i += 1;
        if start >= end_ms {
            break;
        }
        let fires = start + for_ms;
        let alert = |fired_ms, resolved_ms| Alert {
            target: target.to_string(),
            pending_ms: start,
            fired_ms,
            resolved_ms,
        };
        if stop.is_some_and(|s| s <= fires) {
            continue;
        }
        if fires >= end_ms {
            out.push(alert(None, None));
            break;
        }
        let mut stop = stop;
        let resolved = loop {
            let Some(s) = stop else { break None };
            if keep_firing_for_ms <= 0 {
                break Some(s);
            }
            let deadline = s + keep_firing_for_ms;
            match holds.get(i) {
                Some((next, next_stop)) if *next <= deadline && *next < end_ms => {
                    stop = *next_stop;
                    i += 1;
                }
                _ => break (deadline < end_ms).then_some(deadline),
            }
        };
        out.push(alert(Some(fires), resolved));
    }
    out
}

/// The device's state at every instant, from its changes: `(from, state)` in time order,
/// unknown before the first.
fn timeline(changes: &[Change]) -> Vec<(i64, State)> {
    let mut out: Vec<(i64, State)> = vec![(i64::MIN, State::Unknown)];
    for c in changes {
        match out.last_mut() {
            Some(last) if last.0 == c.at_ms => last.1 = c.to,
            _ => out.push((c.at_ms, c.to)),
        }
    }
    out
}

/// The state at `at`, changes at `at` included.
fn state_at(timeline: &[(i64, State)], at: i64) -> State {
    timeline
        .iter()
        .take_while(|(from, _)| *from <= at)
        .last()
        .map_or(State::Unknown, |(_, s)| *s)
}

/// The intervals over which the device is in one of `states`.
pub fn state_holds(changes: &[Change], states: &[State]) -> Vec<Holds> {
    let mut out: Vec<Holds> = Vec::new();
    let mut open: Option<i64> = None;
    for (from, state) in timeline(changes) {
        match (open, states.contains(&state)) {
            (None, true) => open = Some(from),
            (Some(start), false) => {
                out.push((start, Some(from)));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        out.push((start, None));
    }
    out
}

fn up(state: State) -> bool {
    matches!(state, State::Online | State::Late)
}

fn down(state: State) -> bool {
    matches!(state, State::Offline | State::Unreachable)
}

/// The intervals over which an absence rule with `after_ms` holds for `device` (whose every
/// telemetry batch carries every metric of its kind).
pub fn absence_holds(device: &DeviceTruth, changes: &[Change], after_ms: i64) -> Vec<Holds> {
    let readings: Vec<i64> = device
        .deliveries
        .iter()
        .filter(|d| matches!(d.what, Delivered::Readings { .. }))
        .map(|d| d.at_unix_ms)
        .collect();
    let Some(&first) = readings.first() else {
        return Vec::new();
    };
    let timeline = timeline(changes);
    // Recoveries: up after having been down (unknown in between does not count as either).
    let mut recoveries = Vec::new();
    let mut was_down = false;
    for (from, state) in &timeline {
        if down(*state) {
            was_down = true;
        } else if up(*state) {
            if was_down {
                recoveries.push(*from);
            }
            was_down = false;
        }
    }
    // The anchors an absence counts from, in order.
    let mut anchors: Vec<i64> = readings
        .iter()
        .copied()
        .chain(recoveries.into_iter().filter(|r| *r >= first))
        .collect();
    anchors.sort_unstable();
    anchors.dedup();
    let mut out = Vec::new();
    for (k, anchor) in anchors.iter().enumerate() {
        let deadline = anchor + after_ms;
        if anchors.get(k + 1).is_some_and(|next| *next <= deadline) {
            continue;
        }
        if !up(state_at(&timeline, deadline)) {
            continue;
        }
        let next_reading = readings.iter().copied().find(|r| *r > deadline);
        let went_down = timeline
            .iter()
            .find(|(from, s)| *from > deadline && down(*s))
            .map(|(from, _)| *from);
        let stop = match (next_reading, went_down) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.push((deadline, stop));
    }
    out
}

/// Online + late and online + late + offline time of `changes` within `[from, to)`.
fn tally(timeline: &[(i64, State)], from: i64, to: i64) -> (i64, i64) {
    let (mut available, mut observed) = (0, 0);
    for (k, (start, state)) in timeline.iter().enumerate() {
        let end = timeline.get(k + 1).map_or(i64::MAX, |n| n.0);
        let (a, b) = ((*start).max(from), end.min(to));
        if b <= a {
            continue;
        }
        if up(*state) {
            available += b - a;
            observed += b - a;
        } else if *state == State::Offline {
            observed += b - a;
        }
    }
    (available, observed)
}

/// The intervals over which an availability rule holds for a group of devices (their changes
/// together), evaluated at every multiple of `interval_ms` in `(start_ms, end_ms)`.
pub fn availability_holds(
    group: &[&[Change]],
    target_percent: f64,
    window_ms: i64,
    interval_ms: i64,
    (start_ms, end_ms): (i64, i64),
) -> Vec<Holds> {
    let timelines: Vec<Vec<(i64, State)>> = group.iter().map(|c| timeline(c)).collect();
    below_target(target_percent, interval_ms, (start_ms, end_ms), |at| {
        timelines
            .iter()
            .map(|t| tally(t, at - window_ms, at))
            .fold((0, 0), |(a, o), (x, y)| (a + x, o + y))
    })
}

/// The intervals over which a rule on a share holds: evaluated at every multiple of
/// `interval_ms` in `[start_ms, end_ms)`, it holds while `share(at)` (a part and its whole) is
/// below `target_percent` of a whole that is not empty.
pub(crate) fn below_target(
    target_percent: f64,
    interval_ms: i64,
    (start_ms, end_ms): (i64, i64),
    mut share: impl FnMut(i64) -> (i64, i64),
) -> Vec<Holds> {
    let mut out: Vec<Holds> = Vec::new();
    let mut open: Option<i64> = None;
    let mut at = start_ms.div_euclid(interval_ms) * interval_ms;
    while at < end_ms {
        if at >= start_ms {
            let (part, whole) = share(at);
            let below = whole > 0 && (part as f64 * 100.0 / whole as f64) < target_percent;
            match (open, below) {
                (None, true) => open = Some(at),
                (Some(s), false) => {
                    out.push((s, Some(at)));
                    open = None;
                }
                _ => {}
            }
        }
        at += interval_ms;
    }
    if let Some(s) = open {
        out.push((s, None));
    }
    out
}

/// Alerts by rule name, each list sorted.
pub type ByRule = BTreeMap<String, Vec<Alert>>;
