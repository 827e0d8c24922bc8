//! Availability and completeness rules, evaluated at aligned instants over rolling windows.

use citytel_availability::{Cause, DeviceState};

use super::{Lab, M, T0, n};
use crate::alerts::outbox::Status::{Firing, Resolved};

#[test]
fn availability_per_site_fires_at_the_first_instant_below_target() {
    let rules = r#"
[[rule]]
name = "site-availability"
kind = "availability"
severity = "major"
target = 90.0
window = "1h"
interval = "5m"
per = "site"
"#;
    let mut lab = Lab::new(rules);
    for d in ["a", "b"] {
        lab.device(d, "cabinet", "docks");
        lab.online(d, T0);
    }
    lab.device("c", "cabinet", "market");
    lab.online("c", T0);
    // "a" down from 10 to 40: over the hour, the site (two devices, 120 device-minutes) has
    // lost 30 of them at 40 (and of the 40 observed per device...). At instant T the window is
    // [T - 1h, T); before T0 nothing is observed. At 15: observed 30, down 5 -> 83 % < 90.
    lab.offline("a", T0 + 10 * M);
    lab.online("a", T0 + 40 * M);
    lab.advance(T0 + 200 * M);
    let sent = lab.sent();
    // At 15: (2*15 - 5) / 30 = 83.3 %: fires at 15. It resolves at the first instant with at
    // least 90 %: down 30 over observed 2 * min(T, 60); at T = 100 the window [40, 100) holds
    // no downtime.  At T = 95: window [35, 95): down 5 of 120 = 95.8 % -> resolved at 95? At
    // 90: [30, 90): down 10 of 120 = 91.7 %; at 85: [25, 85) down 15/120 = 87.5 %. So 90.
    assert_eq!(
        sent,
        vec![
            n(Firing, "site-availability", "docks", 15.0, 15.0),
            n(Resolved, "site-availability", "docks", 90.0, 15.0),
        ]
    );
}

#[test]
fn availability_excludes_unknown_and_unreachable_time() {
    let rules = r#"
[[rule]]
name = "device-availability"
kind = "availability"
severity = "minor"
target = 99.0
window = "30m"
interval = "1m"
"#;
    let mut lab = Lab::new(rules);
    lab.device("s", "sensor", "park");
    lab.online("s", T0);
    lab.change(
        "s",
        DeviceState::Unreachable,
        T0 + 5 * M,
        Cause::GatewayOffline,
    );
    lab.change("s", DeviceState::Unknown, T0 + 20 * M, Cause::GatewayOnline);
    lab.online("s", T0 + 21 * M);
    lab.advance(T0 + 90 * M);
    assert_eq!(lab.sent(), vec![]);
}

#[test]
fn completeness_counts_readings_in_interval_buckets() {
    let rules = r#"
[[rule]]
name = "completeness"
kind = "completeness"
severity = "warning"
target = 80.0
window = "10m"
interval = "1m"
"#;
    let mut lab = Lab::new(rules);
    lab.device("cell", "small_cell", "hill");
    lab.online("cell", T0);
    // One reading every 10 s: 6 a minute. From minute 5 to 8 only every other one arrives
    // (the sequence numbers show the gaps: 6 produced, 3 stored per minute).
    for m in 0..30 {
        let stored = if (5..8).contains(&m) { 3 } else { 6 };
        for k in 0..6 {
            let at = T0 + m * M + k * 10_000;
            if k < stored {
                lab.readings(
                    "cell",
                    at,
                    &[("rsrp_dbm", -90.0)],
                    1,
                    if k + 1 == stored {
                        7 - stored as u64
                    } else {
                        1
                    },
                );
            }
        }
    }
    lab.advance(T0 + 40 * M);
    // Window [T-10m, T): at T = 8: minutes 0..8 -> stored 5*6 + 3*3 = 39 of 48 = 81 %;
    // at T = 9 (minutes 0..9): 45 of 54 = 83 %... never below 80 % over ten minutes of which
    // three lost half: (10*6 - 9) / 60 = 85 %. Nothing fires.
    assert_eq!(lab.sent(), vec![]);
    lab.set_rules(&rules.replace("80.0", "90.0"), T0 + 40 * M);
    // A new rule: starts evaluating at its next instant, with the buckets of the new rule only
    // (none before it): nothing to say until readings arrive.
    lab.advance(T0 + 50 * M);
    assert_eq!(lab.sent(), vec![]);
}

#[test]
fn completeness_fires_when_a_device_loses_most_readings() {
    let rules = r#"
[[rule]]
name = "completeness"
kind = "completeness"
severity = "warning"
target = 90.0
window = "5m"
interval = "1m"
"#;
    let mut lab = Lab::new(rules);
    lab.device("cell", "small_cell", "hill");
    lab.online("cell", T0);
    for m in 0..20 {
        // From minute 3 to 6 one reading in six arrives (and says five were lost).
        let (stored, produced) = if (3..6).contains(&m) { (1, 6) } else { (6, 6) };
        lab.readings("cell", T0 + m * M, &[("rsrp_dbm", -90.0)], stored, produced);
    }
    lab.advance(T0 + 20 * M);
    // At T = 4: minutes 0..4 -> 18+1 = 19 of 24 = 79 % -> fires at 4. Resolves at the first
    // instant >= 90 %: at T = 11 the window [6, 11) holds no loss.
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "completeness", "cell", 4.0, 4.0),
            n(Resolved, "completeness", "cell", 11.0, 4.0),
        ]
    );
}

#[test]
fn availability_rules_due_together_read_each_device_once() {
    // Three rules over the same window, per device, per site and per district: evaluated at
    // the same instants, they share what they read of the world.
    let rule = |name: &str, per: &str| {
        format!(
            "[[rule]]\nname = \"{name}\"\nkind = \"availability\"\nseverity = \"minor\"\n\
             target = 90.0\nwindow = \"1h\"\ninterval = \"5m\"\nper = \"{per}\"\n"
        )
    };
    let rules = [
        rule("by-device", "device"),
        rule("by-site", "site"),
        rule("by-district", "district"),
    ]
    .join("\n");
    let mut lab = Lab::new(&rules);
    lab.districts.insert("docks".into(), "harbour".into());
    for d in ["a", "b", "c"] {
        lab.device(d, "cabinet", "docks");
        lab.online(d, T0);
    }
    lab.offline("a", T0 + 10 * M);
    lab.online("a", T0 + 40 * M);
    // Hearing of 40 handled the instants up to 35; now 40, 45, ..., 60, one tick each.
    lab.times_read.set(0);
    for i in 8..=12 {
        lab.advance(T0 + i * 5 * M + 1);
    }
    assert_eq!(lab.times_read.get(), 5 * 3, "once per device and instant");
    // The figures are the same as each rule reading alone: "a" is down from 10 to 40; at 15
    // it has 10 of 15 minutes (66.7 %), the site and district 40 of 45 (88.9 %).
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "by-device", "a", 15.0, 15.0),
            n(Firing, "by-site", "docks", 15.0, 15.0),
            n(Firing, "by-district", "harbour", 15.0, 15.0),
        ]
    );
}
