use citytel_proto::kind::Kind;

use super::firmware::Firmware;
use super::truth::{Delivered, DeviceCondition, DeviceTruth, ReadingTruth, Recorder};
use super::*;

const MINIMAL: &str = r#"
name = "t"
duration = "10m"
interval = "10s"

[[devices]]
id = "gw-1"
kind = "gateway"
site = "park"

[[devices]]
id = "sen-1"
kind = "sensor"
site = "park"
gateway = "gw-1"
interval = "30s"
clock_skew = "-90s"
buffer = 5

[[devices]]
id = "cab-1"
kind = "cabinet"
site = "street"
heartbeat = "1m"
start = "30s"
"#;

fn with(extra: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_toml("test", &format!("{MINIMAL}\n{extra}"))
}

fn invalid(extra: &str) -> (String, String) {
    match with(extra) {
        Err(ScenarioError::Invalid { key, message, .. }) => (key, message),
        other => panic!("expected an invalid scenario, got {other:?}"),
    }
}

#[test]
fn every_builtin_parses_and_validates() {
    assert_eq!(BUILTINS.len(), 7);
    for b in BUILTINS {
        let s = b.scenario().unwrap_or_else(|e| panic!("{}: {e}", b.name));
        assert_eq!(s.name, b.name, "the file's name is the built-in's name");
        assert!(!s.description.is_empty());
    }
    assert!(matches!(
        builtin("nope"),
        Err(ScenarioError::UnknownBuiltin(n)) if n == "nope"
    ));
}

#[test]
fn a_file_resolves_into_devices_gateways_and_sorted_events() {
    let s = with(
        r#"
[[events]]
at = "5m"
action = "power-off"
devices = ["gw-1"]

[[events]]
at = "1m"
every = "2m"
times = 3
action = "reboot"
downtime = "20s"
site = "street"
"#,
    )
    .unwrap();
    assert_eq!(s.duration_ms, 600_000);
    let sen = &s.devices[1];
    assert_eq!(
        (sen.kind, sen.interval_ms, sen.clock_skew_ms, sen.buffer),
        (Kind::Sensor, 30_000, -90_000, 5)
    );
    assert_eq!(sen.gateway, Some(0));
    assert_eq!(s.devices[0].children, vec![1]);
    let cab = &s.devices[2];
    assert_eq!(
        (cab.interval_ms, cab.heartbeat_ms, cab.start_ms),
        (10_000, Some(60_000), 30_000)
    );
    assert_eq!(cab.expected_interval_ms(), 60_000);
    let timeline: Vec<(i64, usize, Action)> = s
        .events
        .iter()
        .map(|e| (e.at_ms, e.device, e.action))
        .collect();
    assert_eq!(
        timeline,
        vec![
            (60_000, 2, Action::Reboot),
            (180_000, 2, Action::Reboot),
            (300_000, 0, Action::PowerOff),
            (300_000, 2, Action::Reboot),
        ],
        "repeats expanded, sorted by time, file order within an instant; a site selects its devices without a gateway"
    );
    assert!(
        s.events
            .iter()
            .filter(|e| e.action == Action::Reboot)
            .all(|e| e.downtime_ms == 20_000)
    );
}

#[test]
fn errors_name_the_key_and_say_what_is_wrong() {
    let cases = [
        (
            "[[events]]\nat = \"1m\"\naction = \"power-off\"\ndevices = [\"nope\"]",
            "events[0].devices",
            "unknown device \"nope\"",
        ),
        (
            "[[events]]\nat = \"11m\"\naction = \"power-off\"\ndevices = [\"gw-1\"]",
            "events[0].at",
            "before the end",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"power-off\"",
            "events[0].devices",
            "at least one device",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"power-off\"\nsite = \"park\"\ndevices = [\"gw-1\"]",
            "events[0].site",
            "not both",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"link-down\"\ndevices = [\"sen-1\"]",
            "events[0].action",
            "sen-1 has no link of its own",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"set-clock-skew\"\ndevices = [\"cab-1\"]",
            "events[0].skew",
            "needs the new skew",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"power-off\"\ndowntime = \"1s\"\ndevices = [\"cab-1\"]",
            "events[0].downtime",
            "only a reboot",
        ),
        (
            "[[events]]\nat = \"1m\"\nevery = \"5m\"\ntimes = 3\naction = \"reboot\"\ndevices = [\"cab-1\"]",
            "events[0].times",
            "repeat 3 falls after the end",
        ),
        (
            "[[events]]\nat = \"1m\"\nevery = \"5m\"\naction = \"reboot\"\ndevices = [\"cab-1\"]",
            "events[0].times",
            "together with every",
        ),
        (
            "[[events]]\nat = \"soon\"\naction = \"reboot\"\ndevices = [\"cab-1\"]",
            "events[0].at",
            "\"soon\" is not a duration",
        ),
        (
            "[[devices]]\nid = \"cab-1\"\nkind = \"cabinet\"\nsite = \"x\"",
            "devices[3].id",
            "appears twice",
        ),
        (
            "[[devices]]\nid = \"bad id\"\nkind = \"cabinet\"\nsite = \"x\"",
            "devices[3].id",
            "[A-Za-z0-9._-]",
        ),
        (
            "[[devices]]\nid = \"x-1\"\nkind = \"toaster\"\nsite = \"x\"",
            "devices[3].kind",
            "\"toaster\" is not one of",
        ),
        (
            "[[devices]]\nid = \"x-1\"\nkind = \"sensor\"\nsite = \"x\"\ninterval = \"0s\"",
            "devices[3].interval",
            "more than 0",
        ),
        (
            "[[devices]]\nid = \"x-1\"\nkind = \"sensor\"\nsite = \"park\"\ngateway = \"cab-1\"",
            "devices[3].gateway",
            "is a cabinet, not a gateway",
        ),
        (
            "[[devices]]\nid = \"x-1\"\nkind = \"sensor\"\nsite = \"elsewhere\"\ngateway = \"gw-1\"",
            "devices[3].gateway",
            "at another site",
        ),
        (
            "[[devices]]\nid = \"x-1\"\nkind = \"sensor\"\nsite = \"x\"\nstart = \"10m\"",
            "devices[3].start",
            "before the end",
        ),
        (
            "[[devices]]\nid = \"x-1\"\nkind = \"sensor\"\nsite = \"park\"\ngateway = \"gw-1\"\nsleepy = true",
            "devices[3].sleepy",
            "reports through a gateway",
        ),
        (
            "[[devices]]\nid = \"gw-2\"\nkind = \"gateway\"\nsite = \"x\"\nsleepy = true\n[[devices]]\nid = \"x-1\"\nkind = \"sensor\"\nsite = \"x\"\ngateway = \"gw-2\"",
            "devices[3].sleepy",
            "is a gateway with children",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"set-metric\"\nmetric = \"temperature_c\"\ndevices = [\"cab-1\"]",
            "events[0].value",
            "needs the value",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"set-metric\"\nvalue = 68.0\ndevices = [\"cab-1\"]",
            "events[0].metric",
            "set-metric needs a metric",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"reset-metric\"\ndevices = [\"cab-1\"]",
            "events[0].metric",
            "reset-metric needs a metric",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"set-metric\"\nmetric = \"temperature_c\"\nvalue = 68.0\nsite = \"park\"",
            "events[0].metric",
            "gw-1 is a gateway, whose metrics are",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"set-metric\"\nmetric = \"temperature_c\"\nvalue = nan\ndevices = [\"cab-1\"]",
            "events[0].value",
            "not a finite number",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"reset-metric\"\nmetric = \"temperature_c\"\nvalue = 1.0\ndevices = [\"cab-1\"]",
            "events[0].value",
            "only set-metric has a value",
        ),
        (
            "[[events]]\nat = \"1m\"\naction = \"reboot\"\nmetric = \"temperature_c\"\ndevices = [\"cab-1\"]",
            "events[0].metric",
            "only set-metric and reset-metric",
        ),
    ];
    for (extra, want_key, want_message) in cases {
        let (key, message) = invalid(extra);
        assert_eq!(key, want_key, "{extra}");
        assert!(
            message.contains(want_message),
            "{extra}: {message:?} should mention {want_message:?}"
        );
    }
}

#[test]
fn unknown_keys_and_actions_are_parse_errors_naming_the_origin() {
    for (text, needle) in [
        (
            "name = \"x\"\nduration = \"1m\"\ncolour = \"red\"",
            "colour",
        ),
        (
            "name = \"x\"\nduration = \"1m\"\n[[devices]]\nid=\"a\"\nkind=\"cabinet\"\nsite=\"s\"\n[[events]]\nat=\"1s\"\naction=\"explode\"\ndevices=[\"a\"]",
            "explode",
        ),
    ] {
        let err = Scenario::from_toml("my.toml", text).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("scenario my.toml: "), "{shown}");
        assert!(shown.contains(needle), "{shown}");
    }
    let err = Scenario::from_toml("x", "name = \"x\"\nduration = \"1m\"").unwrap_err();
    assert_eq!(
        err.to_string(),
        "scenario \"x\": devices: list at least one device"
    );
}

#[test]
fn signed_skews_parse_both_ways() {
    let s = with("[[events]]\nat = \"1m\"\naction = \"set-clock-skew\"\nskew = \"+2m\"\ndevices = [\"cab-1\"]").unwrap();
    assert_eq!(s.events[0].skew_ms, 120_000);
    assert_eq!(s.devices[1].clock_skew_ms, -90_000);
}

fn device(def_index: usize) -> Firmware {
    let s = with("").unwrap();
    Firmware::new(def_index, s.devices[def_index].clone(), 7, 1_000)
}

#[test]
fn firmware_takes_readings_on_schedule_with_its_own_clock_and_buffers_within_bounds() {
    let mut fw = device(1);
    assert_eq!(fw.next_due_ms(), None, "unpowered");
    fw.boot(100_000);
    let first_boot = fw.boot_id;
    assert_ne!(first_boot, 0);
    assert_eq!(fw.take_due(100_000), 1);
    assert_eq!(fw.next_due_ms(), Some(130_000));
    assert_eq!(fw.take_due(129_999), 0);
    assert_eq!(fw.take_due(190_000), 3, "every reading due by then");
    let seqs: Vec<u64> = fw.outbox.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(
        fw.outbox[0].time_unix_ms,
        100_000 - 90_000,
        "stamped by the skewed clock"
    );
    assert_eq!(fw.last_seq(), Some(4));
    fw.take_due(250_000);
    assert_eq!(fw.outbox.len(), 6);
    assert_eq!(fw.trim_buffer(), [1], "a buffer of 5 drops the oldest");
    assert_eq!(fw.outbox.front().map(|r| r.seq), Some(2));
    let batches = fw.batches(Some("gw-1"));
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].readings.len(), 5);
    assert_eq!(batches[0].gateway_id.as_deref(), Some("gw-1"));
    assert_eq!(
        fw.power_off(),
        [2, 3, 4, 5, 6],
        "buffered readings die with the power"
    );
    fw.boot(300_000);
    assert_ne!(fw.boot_id, first_boot, "a new boot id");
    assert_eq!(fw.take_due(300_000), 1);
    assert_eq!(fw.outbox[0].seq, 1, "sequence numbers restart");
}

#[test]
fn hung_firmware_takes_no_readings_until_it_boots_again() {
    let mut fw = device(2);
    fw.boot(0);
    assert_eq!(fw.take_due(0), 1);
    fw.hung = true;
    assert_eq!(fw.next_due_ms(), None);
    assert_eq!(fw.take_due(60_000), 0);
    fw.power_off();
    fw.boot(90_000);
    assert!(!fw.hung);
    assert_eq!(fw.take_due(90_000), 1);
}

#[test]
fn a_hang_may_have_a_watchdog_downtime() {
    let s = with(
        "[[events]]\nat = \"1m\"\naction = \"hang\"\ndowntime = \"2m\"\ndevices = [\"cab-1\"]",
    )
    .unwrap();
    assert_eq!(
        (s.events[0].action, s.events[0].downtime_ms),
        (Action::Hang, 120_000)
    );
}

#[test]
fn a_scripted_fault_overrides_one_metric_across_reboots_until_reset() {
    let s = with(
        r#"
[[events]]
at = "1m"
action = "set-metric"
metric = "power_w"
value = 140
devices = ["cab-1"]

[[events]]
at = "3m"
action = "reset-metric"
metric = "power_w"
devices = ["cab-1"]
"#,
    )
    .unwrap();
    let power = citytel_proto::catalog::metric_names(Kind::Cabinet)
        .iter()
        .position(|m| *m == "power_w")
        .expect("a cabinet reports its power draw");
    let events: Vec<(i64, Action, Option<usize>, f64)> = s
        .events
        .iter()
        .map(|e| (e.at_ms, e.action, e.metric, e.value))
        .collect();
    assert_eq!(
        events,
        [
            (60_000, Action::SetMetric, Some(power), 140.0),
            (180_000, Action::ResetMetric, Some(power), 0.0),
        ]
    );

    // The same device with and without the fault, sampled at the same instants: the fault
    // changes that one metric and nothing else, and outlasts a reboot.
    let (mut faulty, mut plain) = (device(2), device(2));
    for fw in [&mut faulty, &mut plain] {
        fw.boot(0);
    }
    faulty.overrides[power] = Some(140.0);
    let mut values = Vec::new();
    for at in [0, 10_000] {
        for fw in [&mut faulty, &mut plain] {
            if at > 0 {
                fw.power_off();
                fw.boot(at);
            }
            fw.take_due(at);
        }
        values.push((
            faulty.outbox[0].values.clone(),
            plain.outbox[0].values.clone(),
        ));
    }
    for (faulty, plain) in &values {
        assert_eq!(faulty[power], 140.0);
        assert_ne!(plain[power], 140.0);
        let others = |v: &[f64]| {
            let mut v = v.to_vec();
            v.remove(power);
            v
        };
        assert_eq!(
            others(faulty),
            others(plain),
            "only the faulty metric differs"
        );
    }
    faulty.overrides[power] = None;
    for fw in [&mut faulty, &mut plain] {
        fw.take_due(20_000);
    }
    assert_eq!(
        faulty.outbox.back().map(|r| r.values.clone()),
        plain.outbox.back().map(|r| r.values.clone()),
        "reset: the model's values again, its walk undisturbed by the fault"
    );
}

#[test]
fn heartbeats_fall_due_at_their_own_interval() {
    let mut fw = device(2);
    fw.boot(0);
    fw.take_due(0);
    assert!(!fw.heartbeat_due);
    assert_eq!(fw.next_due_ms(), Some(10_000));
    fw.take_due(60_000);
    assert!(fw.heartbeat_due);
    assert_eq!(fw.next_heartbeat_ms, Some(120_000));
}

fn truth(id: &str) -> DeviceTruth {
    DeviceTruth {
        device_id: id.into(),
        kind: "cabinet".into(),
        site: "s".into(),
        gateway_id: None,
        reporting_interval_ms: 10_000,
        heartbeat_interval_ms: None,
        sleepy: false,
        clock_skew_ms: 0,
        periods: Vec::new(),
        boots: Vec::new(),
        deliveries: Vec::new(),
        metric_names: vec!["t".into()],
        readings: Vec::new(),
        readings_produced: 0,
        readings_delivered: 0,
        readings_lost: 0,
        readings_backfilled: 0,
    }
}

/// Reading `seq` of boot `boot_id`, taken at `at` with value `v`.
fn reading(boot_id: u64, seq: u64, at: i64, v: f64) -> ReadingTruth {
    ReadingTruth {
        boot_id,
        seq,
        taken_unix_ms: at,
        time_unix_ms: at,
        values: vec![v],
        delivered_unix_ms: None,
        lost_unix_ms: None,
    }
}

#[test]
fn the_recorder_turns_conditions_into_periods_and_counts_readings_per_boot() {
    let mut r = Recorder::new("t", 0, vec![truth("a")]);
    r.boot(0, 11, 0);
    r.condition(0, DeviceCondition::Up, 0, "boot");
    for seq in 1..=5 {
        r.took(0, reading(11, seq, 0, 20.0));
    }
    r.delivered(
        0,
        0,
        11,
        Delivered::Readings {
            first_seq: 1,
            last_seq: 3,
            backfilled: 2,
        },
        3,
    );
    r.condition(0, DeviceCondition::Up, 10, "boot");
    r.condition(0, DeviceCondition::Down, 50, "reboot");
    // Down for no time at all: the periods on either side join up.
    r.condition(0, DeviceCondition::Up, 50, "boot");
    r.condition(0, DeviceCondition::Unreachable, 70, "link-down");
    r.lost(0, 11, &[4, 5], 75);
    r.boot(0, 12, 80);
    r.took(0, reading(12, 1, 80, 21.5));
    let report = r.finish(100);
    let d = &report.devices[0];
    let periods: Vec<(DeviceCondition, i64, i64, &str)> = d
        .periods
        .iter()
        .map(|p| {
            (
                p.condition,
                p.start_unix_ms,
                p.end_unix_ms,
                p.cause.as_str(),
            )
        })
        .collect();
    assert_eq!(
        periods,
        vec![
            (DeviceCondition::Up, 0, 70, "boot"),
            (DeviceCondition::Unreachable, 70, 100, "link-down"),
        ]
    );
    assert_eq!(d.time_in(DeviceCondition::Up), 70);
    assert_eq!(d.time_in(DeviceCondition::Down), 0);
    assert_eq!(
        (
            d.readings_produced,
            d.readings_delivered,
            d.readings_backfilled,
            d.readings_lost
        ),
        (6, 3, 2, 2)
    );
    let fates: Vec<(u64, u64, Option<i64>, Option<i64>)> = d
        .readings
        .iter()
        .map(|r| (r.boot_id, r.seq, r.delivered_unix_ms, r.lost_unix_ms))
        .collect();
    assert_eq!(
        fates,
        vec![
            (11, 1, Some(0), None),
            (11, 2, Some(0), None),
            (11, 3, Some(0), None),
            (11, 4, None, Some(75)),
            (11, 5, None, Some(75)),
            (12, 1, None, None),
        ],
        "each reading's fate: delivered, lost, or still buffered at the end"
    );
    assert_eq!(d.reading(12, 1).map(|r| r.values.clone()), Some(vec![21.5]));
    assert_eq!(d.metric_index("t"), Some(0));
    let per_boot: Vec<(u64, u64, u64)> = d
        .boots
        .iter()
        .map(|b| (b.boot_id, b.readings_produced, b.readings_delivered))
        .collect();
    assert_eq!(per_boot, vec![(11, 5, 3), (12, 1, 0)]);
    assert_eq!(report.end_unix_ms, 100);
}

#[test]
fn the_report_round_trips_through_json() {
    let mut r = Recorder::new("t", 5, vec![truth("a")]);
    r.boot(0, 1, 5);
    r.condition(0, DeviceCondition::Up, 5, "boot");
    r.took(0, reading(1, 1, 5, 68.25));
    r.delivered(
        0,
        6,
        1,
        Delivered::Readings {
            first_seq: 1,
            last_seq: 1,
            backfilled: 0,
        },
        1,
    );
    r.delivered(
        0,
        5,
        1,
        Delivered::Birth {
            reporting_interval_ms: 10_000,
            heartbeat_interval_ms: None,
            intermittent: Some(true),
        },
        0,
    );
    r.delivered(0, 7, 1, Delivered::Disconnect, 0);
    r.delivered(0, 9, 1, Delivered::LastWill, 0);
    let report = r.finish(20);
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains(r#""kind":"last_will""#), "{json}");
    assert!(json.contains(r#""kind":"disconnect""#), "{json}");
    assert!(json.contains(r#""intermittent":true"#), "{json}");
    assert!(json.contains(r#""values":[68.25]"#), "{json}");
    assert!(json.contains(r#""delivered_unix_ms":6"#), "{json}");
    // A birth that did not say is written, and read, without the field.
    let old = r#"{"at_unix_ms":5,"boot_id":1,"kind":"birth","reporting_interval_ms":10000,"heartbeat_interval_ms":null}"#;
    let delivery: super::truth::Delivery = serde_json::from_str(old).unwrap();
    assert_eq!(
        delivery.what,
        Delivered::Birth {
            reporting_interval_ms: 10_000,
            heartbeat_interval_ms: None,
            intermittent: None,
        }
    );
    let back: ScenarioReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn a_sleepy_device_says_so_in_its_birth_and_wakes_only_with_news() {
    let s = with("[[devices]]\nid = \"sen-2\"\nkind = \"sensor\"\nsite = \"x\"\nsleepy = true")
        .unwrap();
    let def = s.devices[3].clone();
    assert!(def.sleepy);
    let mut fw = Firmware::new(3, def, 7, 1_000);
    fw.boot(0);
    assert!(!fw.has_news());
    fw.take_due(0);
    assert!(fw.has_news(), "its first reading");
    let birth = fw.birth(0, None, Vec::new());
    let Some(citytel_proto::v1::status::Kind::Birth(b)) = birth.kind else {
        panic!("a birth: {birth:?}");
    };
    assert_eq!(b.intermittent, Some(true));
    // Firmware that stays connected does not say (as firmware that predates the field).
    assert_eq!(device(2).intermittent(), None);
}
