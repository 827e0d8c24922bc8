//! Determinism: the same inputs give the same notifications however often time is told, and an
//! engine restored from a snapshot carries on exactly as the original.

use citytel_availability::Span;

use super::{Lab, M, T0};
use crate::alerts::Alerts;

const RULES: &str = r#"
[[rule]]
name = "offline"
kind = "state"
severity = "critical"
states = ["offline"]
for = "3m"
keep_firing_for = "2m"

[[rule]]
name = "hot"
kind = "threshold"
severity = "minor"
metric = "t"
op = ">="
value = 50.0
for = "1m"

[[rule]]
name = "missing"
kind = "absence"
severity = "warning"
metric = "h"
after = "4m"

[[rule]]
name = "availability"
kind = "availability"
severity = "major"
target = 95.0
window = "20m"
interval = "2m"
per = "site"

[[rule]]
name = "complete"
kind = "completeness"
severity = "warning"
target = 95.0
window = "6m"
interval = "2m"
"#;

/// A script of inputs; `tick` says how often time is told in between (in ms), and `cut`
/// snapshots and restores the engine at that step.
fn script(lab: &mut Lab, tick: i64, cut: Option<usize>) {
    lab.device("a", "cabinet", "docks");
    lab.device("b", "cabinet", "docks");
    lab.maintenance
        .push((Some("b".into()), None, Span::new(T0 + 40 * M, T0 + 50 * M)));
    let mut now = T0;
    for step in 0..80usize {
        let at = T0 + step as i64 * M;
        while now + tick < at {
            now += tick;
            lab.advance(now);
        }
        if cut == Some(step) {
            let snapshot = lab.alerts.snapshot();
            let mut fresh = Alerts::default();
            fresh.restore(snapshot.clone());
            assert_eq!(
                fresh.snapshot(),
                snapshot,
                "a restored engine snapshots the same"
            );
            lab.alerts = fresh;
        }
        let a_up =
            !(10..25).contains(&step) && !(30..32).contains(&step) && !(60..62).contains(&step);
        let b_up = !(38..55).contains(&step);
        for (d, up) in [("a", a_up), ("b", b_up)] {
            if up {
                lab.online(d, at);
                let h = if d == "a" && (5..15).contains(&step) {
                    vec![]
                } else {
                    vec![("h", 1.0)]
                };
                let mut values = vec![("t", 40.0 + (step % 20) as f64)];
                values.extend(h);
                let produced = if step % 7 == 0 { 2 } else { 1 };
                lab.readings(d, at, &values, 1, produced);
            } else {
                lab.offline(d, at);
            }
        }
        lab.advance(at);
    }
    lab.advance(T0 + 100 * M);
}

#[test]
fn the_same_inputs_give_the_same_notifications_however_often_time_is_told() {
    let mut coarse = Lab::new(RULES);
    script(&mut coarse, i64::MAX / 4, None);
    let mut fine = Lab::new(RULES);
    script(&mut fine, 7_000, None);
    assert!(
        coarse.sent().len() > 10,
        "the script fires: {:?}",
        coarse.sent()
    );
    assert_eq!(coarse.sent(), fine.sent());
}

#[test]
fn an_engine_restored_from_its_snapshot_carries_on_as_the_original() {
    let mut whole = Lab::new(RULES);
    script(&mut whole, 30_000, None);
    for cut in [3, 12, 27, 41, 61] {
        let mut restored = Lab::new(RULES);
        script(&mut restored, 30_000, Some(cut));
        assert_eq!(restored.sent(), whole.sent(), "cut at step {cut}");
        assert_eq!(
            restored.alerts.snapshot(),
            whole.alerts.snapshot(),
            "cut at step {cut}"
        );
    }
}

#[test]
fn snapshot_lists_are_sorted_by_rule_name_then_device() {
    // Rule names out of slot order, devices heard out of id order.
    let rules = "[[rule]]\nname = \"zz-missing\"\nkind = \"absence\"\nseverity = \"warning\"\n\
                 metric = \"h\"\nafter = \"4m\"\n\n[[rule]]\nname = \"aa-missing\"\nkind = \
                 \"absence\"\nseverity = \"warning\"\nmetric = \"h\"\nafter = \"9m\"\n\n\
                 [[rule]]\nname = \"mm-complete\"\nkind = \"completeness\"\nseverity = \
                 \"warning\"\ntarget = 95.0\nwindow = \"6m\"\ninterval = \"2m\"\n";
    let mut lab = Lab::new(rules);
    for d in ["c", "a", "b"] {
        lab.device(d, "sensor", "park");
        lab.online(d, T0);
    }
    for (i, d) in ["c", "a", "b"].into_iter().enumerate() {
        lab.readings(d, T0 + i as i64 * M, &[("h", 1.0)], 1, 1);
    }
    lab.offline("c", T0 + 5 * M);
    lab.offline("b", T0 + 5 * M);
    lab.online("b", T0 + 6 * M);
    let s = lab.alerts.snapshot();
    let absence: Vec<(&str, &str)> = s.absence.iter().map(|(r, d, _)| (&**r, &**d)).collect();
    assert_eq!(
        absence,
        [
            ("aa-missing", "a"),
            ("aa-missing", "b"),
            ("aa-missing", "c"),
            ("zz-missing", "a"),
            ("zz-missing", "b"),
            ("zz-missing", "c"),
        ]
    );
    let buckets: Vec<(&str, &str)> = s.buckets.iter().map(|(r, d, _)| (&**r, &**d)).collect();
    assert_eq!(
        buckets,
        [
            ("mm-complete", "a"),
            ("mm-complete", "b"),
            ("mm-complete", "c")
        ]
    );
    let recovery: Vec<&str> = s.recovery.iter().map(|(d, _)| &**d).collect();
    assert_eq!(recovery, ["b", "c"], "b recovered, c is down");
}
