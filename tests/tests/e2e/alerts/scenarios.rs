//! The built-in scenarios with alert rules: the devices act out each scenario over real MQTT
//! against an in-process citytel on a manual clock, and the alerts it lists (`ListAlerts`) and
//! posts to a webhook must be exactly those computed from the scenario's ground truth
//! (`citytel_tests::alert_expect`, from `scenario_expect`'s state changes and the deliveries,
//! and `citytel_tests::readings_expect`, from the readings' values and fates): every rule kind
//! (state, with and without `keep_firing_for`, absence, availability per device and per site,
//! and, in [`super::scenario_readings`], threshold with `for`, a clear value and
//! `keep_firing_for`, and completeness per device and per site), pending, firing and resolving
//! at the exact instants. Flapping under `keep_firing_for` gives one alert (a flapping link's
//! state and completeness, a CPU pegged before each reboot of a loop), and a failed gateway one
//! offline alert, its children being unreachable, not offline.

use std::collections::BTreeMap;
use std::time::Duration;

use citytel_firmware_sim::scenario::{self, RunOptions, ScenarioReport};
use citytel_proto::v1;
use citytel_testkit::net::loopback;
use citytel_testkit::wait::Wait;
use citytel_tests::alert_expect::{
    Alert, ByRule, absence_holds, availability_holds, episodes, state_holds,
};
use citytel_tests::scenario::ManualPacer;
use citytel_tests::scenario_expect::{Change, Graces, State, expect};
use citytel_tests::webhook::Webhook;

use super::scenario_readings;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

/// Where scenario time starts: a whole minute a day ago.
fn start_ms() -> i64 {
    let now = citytel_ingest::clock::system_now_ms();
    now - now.rem_euclid(MINUTE) - 24 * 60 * MINUTE
}

/// A state rule: name, states, `for`, `keep_firing_for` (ms).
struct StateRule {
    name: &'static str,
    states: &'static [State],
    for_ms: i64,
    keep_firing_for_ms: i64,
}

const STATE_RULES: &[StateRule] = &[
    StateRule {
        name: "offline",
        states: &[State::Offline],
        for_ms: 20 * SECOND,
        keep_firing_for_ms: 0,
    },
    StateRule {
        name: "offline-steady",
        states: &[State::Offline],
        for_ms: 10 * SECOND,
        keep_firing_for_ms: 3 * MINUTE,
    },
    StateRule {
        name: "late",
        states: &[State::Late],
        for_ms: 0,
        keep_firing_for_ms: 0,
    },
    StateRule {
        name: "unreachable",
        states: &[State::Unreachable],
        for_ms: MINUTE,
        keep_firing_for_ms: 0,
    },
];

/// Absence rules: name, device kind, metric, `after` (ms).
const ABSENCE_RULES: &[(&str, &str, &str, i64)] = &[
    ("cabinet-silent", "cabinet", "temperature_c", 25 * SECOND),
    ("cell-silent", "small_cell", "rsrp_dbm", 25 * SECOND),
    ("sensor-silent", "sensor", "pm25_ugm3", 75 * SECOND),
    ("gateway-silent", "gateway", "cpu_pct", 25 * SECOND),
];

/// Availability rules: name, per, target (percent), window (ms), interval (ms).
const AVAILABILITY_RULES: &[(&str, &str, f64, i64, i64)] = &[
    ("availability", "device", 90.0, 5 * MINUTE, MINUTE),
    ("site-availability", "site", 95.0, 10 * MINUTE, 30 * SECOND),
];

fn state_name(s: &State) -> &'static str {
    match s {
        State::Offline => "offline",
        State::Late => "late",
        State::Unreachable => "unreachable",
        State::Online | State::Unknown => unreachable!("not a rule state"),
    }
}

fn duration(ms: i64) -> String {
    format!("{ms}ms")
}

/// The configuration: every rule above, and the webhook at `hook`.
fn config(hook: &str) -> String {
    let mut text = String::from(
        "[alerts]\nretry_initial = \"50ms\"\nretry_max = \"200ms\"\n\n[[alerts.webhook]]\nname = \"hook\"\n",
    );
    text.push_str(&format!("url = \"{hook}\"\n"));
    for r in STATE_RULES {
        let states: Vec<String> = r
            .states
            .iter()
            .map(|s| format!("\"{}\"", state_name(s)))
            .collect();
        text.push_str(&format!(
            "\n[[alerts.rule]]\nname = \"{}\"\nkind = \"state\"\nseverity = \"critical\"\nstates = [{}]\nfor = \"{}\"\nkeep_firing_for = \"{}\"\n",
            r.name,
            states.join(", "),
            duration(r.for_ms),
            duration(r.keep_firing_for_ms)
        ));
    }
    for (name, kind, metric, after) in ABSENCE_RULES {
        text.push_str(&format!(
            "\n[[alerts.rule]]\nname = \"{name}\"\nkind = \"absence\"\nseverity = \"minor\"\ndevices = {{ kinds = [\"{kind}\"] }}\nmetric = \"{metric}\"\nafter = \"{}\"\n",
            duration(*after)
        ));
    }
    for (name, per, target, window, interval) in AVAILABILITY_RULES {
        text.push_str(&format!(
            "\n[[alerts.rule]]\nname = \"{name}\"\nkind = \"availability\"\nseverity = \"major\"\nper = \"{per}\"\ntarget = {target:.1}\nwindow = \"{}\"\ninterval = \"{}\"\n",
            duration(*window),
            duration(*interval)
        ));
    }
    text.push_str(&scenario_readings::config());
    text
}

/// The alerts the ground truth says every rule fires before the end of the run, by rule, each
/// list sorted.
fn expected(report: &ScenarioReport) -> ByRule {
    let changes = expect(report, Graces::default(), &[]);
    let end = report.end_unix_ms;
    let mut out = ByRule::new();
    let mut add =
        |rule: &str, alerts: Vec<Alert>| out.entry(rule.to_string()).or_default().extend(alerts);
    for device in &report.devices {
        let id = device.device_id.as_str();
        let c: &[Change] = &changes[id].changes;
        for r in STATE_RULES {
            let holds = state_holds(c, r.states);
            add(
                r.name,
                episodes(id, &holds, r.for_ms, r.keep_firing_for_ms, end),
            );
        }
        for (name, kind, _, after) in ABSENCE_RULES {
            if device.kind == *kind {
                add(
                    name,
                    episodes(id, &absence_holds(device, c, *after), 0, 0, end),
                );
            }
        }
        let (name, _, target, window, interval) = AVAILABILITY_RULES[0];
        let holds = availability_holds(&[c], target, window, interval, (report.start_unix_ms, end));
        add(name, episodes(id, &holds, 0, 0, end));
    }
    let mut sites: BTreeMap<&str, Vec<&[Change]>> = BTreeMap::new();
    for device in &report.devices {
        sites
            .entry(device.site.as_str())
            .or_default()
            .push(&changes[&device.device_id].changes);
    }
    let (name, _, target, window, interval) = AVAILABILITY_RULES[1];
    for (site, group) in sites {
        let holds = availability_holds(
            &group,
            target,
            window,
            interval,
            (report.start_unix_ms, end),
        );
        add(name, episodes(site, &holds, 0, 0, end));
    }
    scenario_readings::expected(report, &mut out);
    for alerts in out.values_mut() {
        alerts.retain(|a| a.fired_ms.is_some());
        alerts.sort();
    }
    out.retain(|_, a| !a.is_empty());
    out
}

/// The alerts citytel lists that fired before `end`, by rule, as they stood then (later
/// instants are cut off: at `end` the devices send a last heartbeat and disconnect, which the
/// ground truth does not cover; an alert still pending then may be cancelled at that instant).
async fn listed(pacer: &ManualPacer, end: i64) -> ByRule {
    let answer = pacer
        .ingester
        .alerts()
        .await
        .list_alerts(v1::ListAlertsRequest {
            filter: None,
            limit: 10_000,
        })
        .await
        .expect("ListAlerts")
        .into_inner();
    let before = |ms: i64| (ms != 0 && ms < end).then_some(ms);
    let mut out = ByRule::new();
    for a in answer.alerts {
        if before(a.firing_since_unix_ms).is_none() {
            continue;
        }
        out.entry(a.rule.clone()).or_default().push(Alert {
            target: a.target.clone(),
            pending_ms: a.pending_since_unix_ms,
            fired_ms: before(a.firing_since_unix_ms),
            resolved_ms: before(a.firing_since_unix_ms).and(before(a.resolved_unix_ms)),
        });
    }
    for alerts in out.values_mut() {
        alerts.sort();
    }
    out
}

/// (rule, target, status, instant) of every notification `expected` implies.
fn notifications(expected: &ByRule) -> Vec<(String, String, &'static str, i64)> {
    let mut out = Vec::new();
    for (rule, alerts) in expected {
        for a in alerts {
            if let Some(fired) = a.fired_ms {
                out.push((rule.clone(), a.target.clone(), "firing", fired));
            }
            if let Some(resolved) = a.resolved_ms {
                out.push((rule.clone(), a.target.clone(), "resolved", resolved));
            }
        }
    }
    out.sort();
    out
}

fn rfc3339_ms(text: &str) -> i64 {
    let t = humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let d = t.duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(d.as_millis()).expect("fits")
}

/// (rule, target, status, instant) of every notification the webhook got before `end`.
fn posted(hook: &Webhook, end: i64) -> Vec<(String, String, &'static str, i64)> {
    let mut out = Vec::new();
    for p in hook.received() {
        for a in p.body["alerts"].as_array().into_iter().flatten() {
            let labels = &a["labels"];
            let rule = labels["alertname"].as_str().unwrap_or_default().to_string();
            let target = ["device", "site", "district"]
                .iter()
                .find_map(|k| labels[*k].as_str())
                .unwrap_or_default()
                .to_string();
            let (status, at) = match a["status"].as_str() {
                Some("firing") => ("firing", rfc3339_ms(a["startsAt"].as_str().unwrap_or(""))),
                Some("resolved") => ("resolved", rfc3339_ms(a["endsAt"].as_str().unwrap_or(""))),
                other => panic!("unexpected status {other:?}: {p:?}"),
            };
            if at < end {
                out.push((rule, target, status, at));
            }
        }
    }
    out.sort();
    out
}

/// Runs built-in `name` with every rule and checks the alerts and notifications; returns the
/// alerts, by rule, for the scenario's own checks, and the instant the run started.
async fn run(name: &str) -> (ByRule, i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Webhook::start(loopback(0)).await;
    let scenario = scenario::builtin(name).expect("built-in scenario");
    let start = start_ms();
    let text = config(&hook.url());
    let mut pacer = ManualPacer::start_configured(dir.path(), start, None, Some(&text)).await;
    let report = scenario::run(&scenario, &RunOptions::starting_at(start), &mut pacer).await;
    let end = report.end_unix_ms;
    pacer.clock().set_ms(end);

    let want = expected(&report);
    let mut wait = Wait::new(
        format!("{name}: the expected alerts"),
        Duration::from_secs(20),
    )
    .every(Duration::from_millis(50));
    loop {
        let got = listed(&pacer, end).await;
        if got == want {
            break;
        }
        if wait.retry().await.is_err() {
            assert_eq!(
                got, want,
                "{name}: alerts by rule (ms since the epoch, start {start})"
            );
        }
    }

    let want_sent = notifications(&want);
    let mut wait = Wait::new(
        format!("{name}: the expected notifications"),
        Duration::from_secs(20),
    )
    .every(Duration::from_millis(50));
    while posted(&hook, end).len() < want_sent.len() {
        if wait.retry().await.is_err() {
            break;
        }
    }
    // Anything sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        posted(&hook, end),
        want_sent,
        "{name}: webhook notifications"
    );
    pacer.ingester.stop().await;
    (want, start)
}

fn targets(alerts: &ByRule, rule: &str) -> Vec<String> {
    alerts
        .get(rule)
        .into_iter()
        .flatten()
        .map(|a| a.target.clone())
        .collect()
}

/// (pending, fired, resolved) of `rule`'s alerts, in ms after `start`.
fn instants(alerts: &ByRule, rule: &str, start: i64) -> Vec<(i64, Option<i64>, Option<i64>)> {
    alerts
        .get(rule)
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a.pending_ms - start,
                a.fired_ms.map(|t| t - start),
                a.resolved_ms.map(|t| t - start),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_alerts_fire_and_resolve_at_the_ground_truths_instants() {
    let (alerts, _) = run("power-cut").await;
    let cabinets = ["cab-hs-01", "cab-hs-02", "cab-hs-03", "cab-hs-04"];
    assert_eq!(targets(&alerts, "offline"), cabinets, "{alerts:#?}");
    assert!(
        targets(&alerts, "site-availability").contains(&"high-street".to_string()),
        "{alerts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gateway_raises_one_offline_alert_its_children_are_unreachable() {
    let (alerts, _) = run("gateway-failure").await;
    assert_eq!(targets(&alerts, "offline"), ["gw-park-01"], "{alerts:#?}");
    assert_eq!(
        targets(&alerts, "unreachable"),
        ["sen-park-01", "sen-park-02", "sen-park-03"],
        "{alerts:#?}"
    );
    // The two sensors without a buffer lose what they take while unreachable; the third
    // backfills it.
    assert_eq!(
        targets(&alerts, "completeness"),
        ["sen-park-01", "sen-park-02"],
        "{alerts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_loop_cpu_flaps_into_one_threshold_alert_and_a_hung_cabinet_alerts() {
    let (alerts, start) = run("reboot-loop").await;
    assert!(
        targets(&alerts, "cabinet-silent").contains(&"cab-stn-01".to_string()),
        "a hung cabinet is silent before it is offline: {alerts:#?}"
    );
    // Pegged from 3 min for a minute before each of the five reboots, normal from each boot
    // 30 s later: five alerts under the bare rule, pending with the first pegged reading,
    // firing 30 s later, resolved by the first reading after the reboot.
    let cycles: Vec<_> = (0..5)
        .map(|k| {
            let pegged = (3 + 2 * k) * MINUTE;
            (
                pegged,
                Some(pegged + 30 * SECOND),
                Some(pegged + 90 * SECOND),
            )
        })
        .collect();
    assert_eq!(
        instants(&alerts, "cpu-pegged", start),
        cycles,
        "{alerts:#?}"
    );
    // A `for` of 90 s outlasts every pegged minute: each alert is cancelled while pending.
    assert_eq!(targets(&alerts, "cpu-pegged-long"), [] as [&str; 0]);
    // keep_firing_for (90 s) bridges the 60 s between a boot and the next pegged reading.
    let steady = instants(&alerts, "cpu-pegged-steady", start);
    assert_eq!(targets(&alerts, "cpu-pegged-steady"), ["cell-stn-07"]);
    assert_eq!(
        (steady[0].0, steady[0].1),
        (3 * MINUTE, Some(3 * MINUTE + 30 * SECOND)),
        "one alert from the first pegged reading: {alerts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_link_gives_one_alert_under_keep_firing_for() {
    let (alerts, start) = run("flapping-link").await;
    assert_eq!(targets(&alerts, "offline").len(), 6, "{alerts:#?}");
    assert_eq!(
        targets(&alerts, "offline-steady"),
        ["cell-hill-02"],
        "{alerts:#?}"
    );
    // Each 40 s drop loses one reading (a buffer of three): the minute after each link-up is
    // 80 % complete, the one after that whole again. Six alerts bare, one kept firing.
    assert_eq!(targets(&alerts, "completeness").len(), 6, "{alerts:#?}");
    assert_eq!(
        instants(&alerts, "completeness-steady", start),
        [(4 * MINUTE, Some(4 * MINUTE), Some(17 * MINUTE))],
        "{alerts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_alerts_fire_and_resolve_at_the_ground_truths_instants() {
    let (alerts, start) = run("backfill").await;
    assert_eq!(
        targets(&alerts, "offline"),
        ["cab-dock-01", "cab-dock-02"],
        "{alerts:#?}"
    );
    // Hot from 9 min while cut off: citytel learns it from the backfill at 13 min and fires a
    // minute later; 48 °C from 15 min is not past the clear value (45), so only the repair at
    // 16 min resolves it.
    assert_eq!(targets(&alerts, "cabinet-hot"), ["cab-dock-01"]);
    assert_eq!(
        instants(&alerts, "cabinet-hot", start),
        [(13 * MINUTE, Some(14 * MINUTE), Some(16 * MINUTE))],
        "{alerts:#?}"
    );
    // The cabinet without a buffer lost eight minutes; the other backfilled them.
    assert_eq!(
        targets(&alerts, "completeness"),
        ["cab-dock-02"],
        "{alerts:#?}"
    );
    assert_eq!(
        targets(&alerts, "site-completeness"),
        ["docks"],
        "{alerts:#?}"
    );
}
