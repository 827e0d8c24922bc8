//! Completeness rules of one interval share one count per device: the counts are exact at
//! bucket boundaries, each rule sums its own window, and a restart (from this layout or from
//! the one that listed counts per rule) keeps them.

use super::{Lab, M, T0, n};
use crate::alerts::Alerts;
use crate::alerts::outbox::Status::{Firing, Resolved};
use crate::alerts::snapshot::{AlertsSnapshot, DeviceBuckets};

/// Two completeness rules every minute over 6 and 2 minutes, and one every 2 minutes that
/// selects sensors only.
const RULES: &str = r#"
[[rule]]
name = "short"
kind = "completeness"
severity = "warning"
target = 90.0
window = "2m"
interval = "1m"

[[rule]]
name = "long"
kind = "completeness"
severity = "minor"
target = 90.0
window = "6m"
interval = "1m"

[[rule]]
name = "sensors"
kind = "completeness"
severity = "minor"
target = 50.0
window = "10m"
interval = "2m"
devices = { kinds = ["sensor"] }
"#;

/// The first bucket of `T0`'s minute.
const B0: i64 = T0 / M;

/// (bucket, stored, produced).
type Bucket = (i64, u32, u32);

/// A device's counted buckets in a snapshot, by the rule they are listed under.
fn listed(s: &AlertsSnapshot) -> Vec<(&str, &str, &[Bucket])> {
    s.buckets
        .iter()
        .map(|(r, d, b)| (&**r, &**d, b.as_slice()))
        .collect()
}

#[test]
fn counts_are_exact_at_bucket_boundaries_and_kept_once_per_interval() {
    let mut lab = Lab::new(RULES);
    lab.device("cell", "small_cell", "hill");
    lab.device("sen", "sensor", "hill");
    lab.online("cell", T0);
    lab.online("sen", T0);
    for (at, stored, produced) in [
        (T0, 1, 1),
        (T0 + M - 1, 2, 3),
        (T0 + M, 4, 4),
        (T0 + M + 1, 1, 2),
        (T0 + 2 * M - 1, 1, 1),
        (T0 + 2 * M, 5, 5),
        // Received late (an earlier receive time): back into its own minute.
        (T0 + 30_000, 10, 20),
    ] {
        lab.readings("cell", at, &[("rsrp_dbm", -90.0)], stored, produced);
        lab.readings("sen", at, &[("pm25_ugm3", 5.0)], stored, produced);
    }
    let s = lab.alerts.snapshot();
    let minutes: &[(i64, u32, u32)] = &[(B0, 13, 24), (B0 + 1, 6, 7), (B0 + 2, 5, 5)];
    // Two-minute buckets: [T0, T0 + 2m) and [T0 + 2m, ...); T0 is on a whole hour.
    let two_minutes: &[(i64, u32, u32)] = &[(T0 / (2 * M), 19, 31), (T0 / (2 * M) + 1, 5, 5)];
    assert_eq!(
        listed(&s),
        [
            // One list per device for "short" and "long", under the first name.
            ("long", "cell", minutes),
            ("long", "sen", minutes),
            // "sensors" selects "sen" only.
            ("sensors", "sen", two_minutes),
        ]
    );
}

/// `cell` reports six readings a minute from minute 0 to 13; in minute 3 one of six arrives.
fn lossy_minutes(lab: &mut Lab, minutes: std::ops::Range<i64>) {
    for m in minutes {
        let (stored, produced) = if m == 3 { (1, 6) } else { (6, 6) };
        lab.readings("cell", T0 + m * M, &[("rsrp_dbm", -90.0)], stored, produced);
        lab.advance(T0 + m * M);
    }
}

fn lab() -> Lab {
    let mut lab = Lab::new(RULES);
    lab.device("cell", "small_cell", "hill");
    lab.online("cell", T0);
    lab
}

#[test]
fn rules_sharing_an_interval_each_sum_their_own_window() {
    let mut lab = lab();
    lossy_minutes(&mut lab, 0..14);
    lab.advance(T0 + 14 * M);
    // At 4, "short" reads minutes 2 and 3: 7 of 12 (58 %); "long" reads 0 to 3: 19 of 24
    // (79 %). "short" no longer holds minute 3 from 6 on, "long" from 10 on.
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "short", "cell", 4.0, 4.0),
            n(Firing, "long", "cell", 4.0, 4.0),
            n(Resolved, "short", "cell", 6.0, 4.0),
            n(Resolved, "long", "cell", 10.0, 4.0),
        ]
    );
    // The figures of the open alerts are each rule's own: at 5, "short" has 7 of 12 and
    // "long" 25 of 30.
    let values = open_values(&lab_until(5));
    assert!(
        same_values(&values, &[("long", 2500.0 / 30.0), ("short", 700.0 / 12.0)]),
        "{values:?}"
    );
}

/// The lab after the minutes before `minute`, evaluated at `minute`.
fn lab_until(minute: i64) -> Lab {
    let mut lab = lab();
    lossy_minutes(&mut lab, 0..minute);
    lab.advance(T0 + minute * M + 1);
    lab
}

/// The snapshot as a build that counted per rule wrote it: the shared list again under each
/// rule of the interval, cut to the rule's own window as that build kept it (its window
/// before the last evaluation), and "short"'s first bucket counted only in part (as if the
/// rule had come into force during it).
fn per_rule(mut s: AlertsSnapshot, last_eval: i64) -> AlertsSnapshot {
    let mut out: Vec<DeviceBuckets> = Vec::new();
    for (rule, device, buckets) in std::mem::take(&mut s.buckets) {
        if &*rule != "long" {
            out.push((rule, device, buckets));
            continue;
        }
        let short: Vec<(i64, u32, u32)> = buckets
            .iter()
            .filter(|(b, _, _)| *b >= last_eval - 2)
            .enumerate()
            .map(|(i, &(b, s, p))| if i == 0 { (b, s / 2, p / 3) } else { (b, s, p) })
            .collect();
        out.push(("short".into(), device.clone(), short));
        out.push((rule, device, buckets));
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    s.buckets = out;
    s
}

#[test]
fn a_restart_keeps_the_counts_from_this_layout_and_the_per_rule_one() {
    let mut whole = lab();
    lossy_minutes(&mut whole, 0..14);
    whole.advance(T0 + 14 * M);
    for cut in [2, 4, 5, 8] {
        let mut before = lab_until(cut);
        let snapshot = before.alerts.snapshot();
        assert_eq!(
            snapshot.buckets.len(),
            1,
            "one list for the two rules: {:?}",
            snapshot.buckets
        );
        let old = per_rule(snapshot.clone(), B0 + cut);
        assert_eq!(old.buckets.len(), 2, "{:?}", old.buckets);
        for (layout, s) in [("shared", snapshot.clone()), ("per rule", old)] {
            let mut restored = Alerts::default();
            restored.restore(s);
            assert_eq!(
                restored.snapshot(),
                snapshot,
                "{layout} at {cut}: restored as it was"
            );
            // Restored into the lab of the run so far, it carries on as the whole run.
            before.alerts = restored;
            let mut after = before;
            lossy_minutes(&mut after, cut..14);
            after.advance(T0 + 14 * M);
            assert_eq!(after.sent(), whole.sent(), "{layout} at {cut}");
            assert_eq!(
                after.alerts.snapshot(),
                whole.alerts.snapshot(),
                "{layout} at {cut}"
            );
            before = lab_until(cut);
        }
    }
}

/// The open alerts' rules and values.
fn open_values(lab: &Lab) -> Vec<(String, f64)> {
    let mut values: Vec<(String, f64)> = lab
        .alerts
        .open()
        .into_iter()
        .map(|(k, e)| {
            let rule = lab.alerts.rules()[k.slot as usize].name.to_string();
            (rule, e.value.unwrap_or(f64::NAN))
        })
        .collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    values
}

/// Whether `values` are `expected`, to rounding.
fn same_values(values: &[(String, f64)], expected: &[(&str, f64)]) -> bool {
    values.len() == expected.len()
        && values
            .iter()
            .zip(expected)
            .all(|((r, v), (er, ev))| r == er && (v - ev).abs() < 1e-9)
}

#[test]
fn a_changed_rule_reads_the_counts_of_its_interval_and_a_new_interval_starts_empty() {
    let mut lab = lab();
    lossy_minutes(&mut lab, 0..3);
    lab.advance(T0 + 3 * M + 1);
    // "short" changes its target, "long" and "sensors" go, "cells" counts every 2 minutes.
    let rules = r#"
[[rule]]
name = "short"
kind = "completeness"
severity = "warning"
target = 95.0
window = "2m"
interval = "1m"

[[rule]]
name = "cells"
kind = "completeness"
severity = "minor"
target = 50.0
window = "10m"
interval = "2m"
devices = { kinds = ["small_cell"] }
"#;
    lab.set_rules(rules, T0 + 3 * M + 1);
    let s = lab.alerts.snapshot();
    let minutes: &[(i64, u32, u32)] = &[(B0, 6, 6), (B0 + 1, 6, 6), (B0 + 2, 6, 6)];
    assert_eq!(
        listed(&s),
        [("short", "cell", minutes)],
        "the 1m counts stay"
    );
    lossy_minutes(&mut lab, 3..5);
    lab.advance(T0 + 4 * M + 1);
    // At 4, "short" reads minutes 2 (counted before its change) and 3: 7 of 12. "cells" reads
    // the two minutes before 4, counted since it came into force: minute 3 alone, 1 of 6.
    let values = open_values(&lab);
    assert!(
        same_values(&values, &[("cells", 100.0 / 6.0), ("short", 700.0 / 12.0)]),
        "{values:?}"
    );
    lossy_minutes(&mut lab, 5..8);
    lab.advance(T0 + 8 * M + 1);
    let k = T0 / (2 * M);
    let s = lab.alerts.snapshot();
    let two_minutes: &[(i64, u32, u32)] = &[(k + 1, 1, 6), (k + 2, 12, 12), (k + 3, 12, 12)];
    let minutes: &[(i64, u32, u32)] = &[(B0 + 6, 6, 6), (B0 + 7, 6, 6)];
    assert_eq!(
        listed(&s),
        [("cells", "cell", two_minutes), ("short", "cell", minutes)],
        "1m pruned to the 2m window at 8"
    );
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "short", "cell", 4.0, 4.0),
            n(Firing, "cells", "cell", 4.0, 4.0),
            n(Resolved, "short", "cell", 6.0, 4.0),
            n(Resolved, "cells", "cell", 6.0, 4.0),
        ]
    );
}
