//! Each kind of rule fires and resolves at the instants its definition says, however late the
//! engine is told that time passed.

use citytel_availability::{Cause, DeviceState};

use super::{Lab, M, T0, n};
use crate::alerts::outbox::Status::{Firing, Resolved};

const OFFLINE: &str = r#"
[[rule]]
name = "cabinet-offline"
kind = "state"
severity = "critical"
devices = { kinds = ["cabinet"] }
states = ["offline"]
for = "5m"
annotations = { summary = "{{ device }} at {{ site }} is {{ state }}" }
"#;

#[test]
fn a_state_alert_fires_at_its_deadline_even_when_told_late_and_resolves_when_heard() {
    let mut lab = Lab::new(OFFLINE);
    lab.device("cab-1", "cabinet", "docks");
    lab.device("cell-1", "small_cell", "docks");
    lab.online("cab-1", T0);
    lab.online("cell-1", T0);
    lab.offline("cab-1", T0 + 2 * M);
    lab.offline("cell-1", T0 + 2 * M);
    // Nothing arrives for a long time; the engine hears of time passing once, much later.
    lab.advance(T0 + 60 * M);
    lab.online("cab-1", T0 + 61 * M);
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "cabinet-offline", "cab-1", 7.0, 7.0),
            n(Resolved, "cabinet-offline", "cab-1", 61.0, 7.0),
        ],
        "the cell is not selected"
    );
    let summary = &lab.alerts.outbox().from(0, 1)[0].alert.annotations["summary"];
    assert_eq!(summary, "cab-1 at docks is offline");
}

#[test]
fn a_state_alert_does_not_fire_if_the_device_returns_within_for_or_exactly_at_it() {
    let mut lab = Lab::new(OFFLINE);
    lab.device("cab-1", "cabinet", "docks");
    lab.offline("cab-1", T0);
    lab.online("cab-1", T0 + 4 * M);
    lab.offline("cab-1", T0 + 10 * M);
    // Back exactly at the deadline: on time.
    lab.online("cab-1", T0 + 15 * M);
    lab.advance(T0 + 30 * M);
    assert_eq!(lab.sent(), vec![]);
    assert!(lab.alerts.open().is_empty());
    assert_eq!(lab.alerts.resolved().count(), 0, "cancelled, never fired");
}

#[test]
fn unreachable_children_are_not_offline() {
    let mut lab = Lab::new(OFFLINE.replace("[\"cabinet\"]", "[]").as_str());
    lab.device("gw-1", "gateway", "park");
    lab.device("sen-1", "sensor", "park");
    lab.device("sen-2", "sensor", "park");
    for d in ["gw-1", "sen-1", "sen-2"] {
        lab.online(d, T0);
    }
    lab.offline("gw-1", T0 + M);
    lab.change(
        "sen-1",
        DeviceState::Unreachable,
        T0 + M,
        Cause::GatewayOffline,
    );
    lab.change(
        "sen-2",
        DeviceState::Unreachable,
        T0 + M,
        Cause::GatewayOffline,
    );
    lab.advance(T0 + 30 * M);
    assert_eq!(
        lab.sent(),
        vec![n(Firing, "cabinet-offline", "gw-1", 6.0, 6.0)],
        "one alert, for the gateway"
    );
}

#[test]
fn keep_firing_for_turns_a_flapping_device_into_one_alert() {
    let rules = r#"
[[rule]]
name = "link-flapping"
kind = "state"
severity = "major"
states = ["offline"]
keep_firing_for = "3m"
"#;
    let mut lab = Lab::new(rules);
    lab.device("cell-1", "small_cell", "hill");
    lab.online("cell-1", T0);
    for i in 0..6 {
        let down = T0 + (3 + 2 * i) * M;
        lab.offline("cell-1", down);
        lab.online("cell-1", down + 40_000);
    }
    lab.advance(T0 + 60 * M);
    let last_up = T0 + 13 * M + 40_000;
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "link-flapping", "cell-1", 3.0, 3.0),
            n(
                Resolved,
                "link-flapping",
                "cell-1",
                (last_up + 3 * M - T0) as f64 / M as f64,
                3.0
            ),
        ]
    );

    // Without keep_firing_for: six alerts.
    let mut lab = Lab::new(&rules.replace("keep_firing_for = \"3m\"\n", ""));
    lab.device("cell-1", "small_cell", "hill");
    for i in 0..6 {
        let down = T0 + (3 + 2 * i) * M;
        lab.offline("cell-1", down);
        lab.online("cell-1", down + 40_000);
    }
    assert_eq!(lab.sent().len(), 12);
}

const HOT: &str = r#"
[[rule]]
name = "cabinet-hot"
kind = "threshold"
severity = "minor"
metric = "temperature_c"
op = ">"
value = 60.0
clear = 55.0
for = "2m"
annotations = { summary = "{{ device }} at {{ value }} °C (over {{ threshold }})" }
"#;

#[test]
fn a_threshold_holds_for_its_duration_and_clears_past_its_clear_value() {
    let mut lab = Lab::new(HOT);
    lab.device("cab-1", "cabinet", "docks");
    lab.online("cab-1", T0);
    let t = |m: i64, v: f64| (T0 + m * M, v);
    for (at, v) in [
        t(1, 50.0),
        t(2, 61.0),
        t(3, 62.5),
        t(4, 58.0),
        t(5, 57.0),
        t(6, 54.0),
        t(7, 61.0),
        t(8, 50.0),
    ] {
        lab.readings(
            "cab-1",
            at,
            &[("temperature_c", v), ("humidity_pct", 40.0)],
            1,
            1,
        );
    }
    lab.advance(T0 + 20 * M);
    // Over 60 from minute 2; firing at 4 (58 then, but over the clear value 55, which holds an
    // open alert); clears at 6 (54 < 55). From 7 over again, under 55 at 8: cancelled.
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "cabinet-hot", "cab-1", 4.0, 4.0),
            n(Resolved, "cabinet-hot", "cab-1", 6.0, 4.0),
        ]
    );
    let alert = &lab.alerts.outbox().from(0, 1)[0].alert;
    assert_eq!(alert.annotations["summary"], "cab-1 at 58 °C (over 60)");
}

#[test]
fn keep_firing_for_turns_a_flapping_threshold_into_one_alert() {
    let rules = HOT.replace("clear = 55.0\nfor = \"2m\"\n", "keep_firing_for = \"3m\"\n");
    let flapping = |lab: &mut Lab| {
        lab.device("cab-1", "cabinet", "docks");
        lab.online("cab-1", T0);
        // Over 60 at odd minutes, under at even ones, from minute 1 to 10; under from then on.
        for m in 1..=12 {
            let v = if m % 2 == 1 && m < 10 { 65.0 } else { 50.0 };
            lab.readings("cab-1", T0 + m * M, &[("temperature_c", v)], 1, 1);
        }
        lab.advance(T0 + 20 * M);
    };
    let mut lab = Lab::new(&rules);
    flapping(&mut lab);
    // Fires at once at 1; the condition last stops holding at 10; 3 minutes later, resolved.
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "cabinet-hot", "cab-1", 1.0, 1.0),
            n(Resolved, "cabinet-hot", "cab-1", 13.0, 1.0),
        ]
    );

    // Without keep_firing_for: one alert per excursion, five.
    let mut lab = Lab::new(&rules.replace("keep_firing_for = \"3m\"\n", ""));
    flapping(&mut lab);
    let sent = lab.sent();
    assert_eq!(sent.len(), 10, "{sent:?}");
    assert_eq!(sent[9], n(Resolved, "cabinet-hot", "cab-1", 10.0, 9.0));
}

const DEAD_SENSOR: &str = r#"
[[rule]]
name = "no2-missing"
kind = "absence"
severity = "warning"
metric = "no2_ugm3"
after = "10m"
"#;

#[test]
fn an_absence_fires_while_the_device_is_up_and_counts_from_its_recovery() {
    let mut lab = Lab::new(DEAD_SENSOR);
    lab.device("sen-1", "sensor", "park");
    lab.online("sen-1", T0);
    lab.readings("sen-1", T0, &[("no2_ugm3", 20.0), ("pm25_ugm3", 5.0)], 1, 1);
    // The NO2 cell dies at once; the device keeps reporting PM2.5.
    for m in 1..=15 {
        lab.readings("sen-1", T0 + m * M, &[("pm25_ugm3", 5.0)], 1, 1);
    }
    lab.advance(T0 + 15 * M);
    // It fired at 10; the device goes offline at 16: the absence alert ends (the state rule's
    // business now); it comes back at 20 and has 10 minutes again, until 30.
    lab.offline("sen-1", T0 + 16 * M);
    lab.online("sen-1", T0 + 20 * M);
    lab.advance(T0 + 29 * M);
    assert_eq!(lab.sent().len(), 2);
    lab.advance(T0 + 31 * M);
    lab.readings("sen-1", T0 + 32 * M, &[("no2_ugm3", 21.0)], 1, 1);
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "no2-missing", "sen-1", 10.0, 10.0),
            n(Resolved, "no2-missing", "sen-1", 16.0, 10.0),
            n(Firing, "no2-missing", "sen-1", 30.0, 30.0),
            n(Resolved, "no2-missing", "sen-1", 32.0, 30.0),
        ]
    );
}

#[test]
fn an_absence_deadline_told_late_judges_the_device_as_it_was_at_the_deadline() {
    let mut lab = Lab::new(DEAD_SENSOR);
    lab.device("sen-1", "sensor", "park");
    lab.online("sen-1", T0);
    lab.readings("sen-1", T0, &[("no2_ugm3", 20.0)], 1, 1);
    // Silent from then: late at 8, offline at 12, both applied before the engine hears that
    // time passed 10 (as a writer tick applies every silence timeout up to its time first).
    lab.change("sen-1", DeviceState::Late, T0 + 8 * M, Cause::Silent);
    lab.offline("sen-1", T0 + 12 * M);
    lab.advance(T0 + 13 * M);
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "no2-missing", "sen-1", 10.0, 10.0),
            n(Resolved, "no2-missing", "sen-1", 12.0, 10.0),
        ],
        "up (late) at 10: it fired then, and ended when the device went offline"
    );
}

#[test]
fn an_absence_clock_keeps_one_deadline_and_fires_exactly_after_the_last_reading() {
    let mut lab = Lab::new(DEAD_SENSOR);
    lab.device("sen-1", "sensor", "park");
    lab.online("sen-1", T0);
    // A reading every 15 s for half an hour: the clock moves with each, its one deadline in
    // the queue is re-armed only when it comes due.
    let every = 15_000;
    for i in 0..120 {
        lab.readings("sen-1", T0 + i * every, &[("no2_ugm3", 20.0)], 1, 1);
        assert_eq!(
            lab.alerts.queue.len(),
            1,
            "one deadline, not one per reading"
        );
    }
    let last = T0 + 119 * every;
    // Handled strictly before an instant: at the deadline itself it has not fired yet.
    lab.advance(last + 10 * M);
    assert_eq!(lab.sent(), vec![]);
    lab.advance(last + 10 * M + 1);
    assert_eq!(
        lab.sent(),
        vec![n(Firing, "no2-missing", "sen-1", 39.75, 39.75)],
        "10 minutes after the last reading, at 29:45"
    );
}
