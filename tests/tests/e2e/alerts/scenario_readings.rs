//! The rules on readings of the scenario tests ([`super::scenarios`]): threshold rules (with
//! `for`, a clear value and `keep_firing_for`) and completeness rules (per device and per site),
//! their configuration, and the alerts the readings in a run's ground truth imply
//! ([`citytel_tests::readings_expect`]).
//!
//! The thresholds are far from what the devices' models produce, so only the faults the
//! scenarios script cross them: the reboot loop's runaway process pegs the small cell's CPU at
//! 100 % before each reboot (five dips: five alerts bare, one under `keep_firing_for`, none
//! with a `for` longer than a dip), and the backfill's cabinet reports 68 °C from its buffer
//! when its link returns, then 48 °C, between the clear value and the threshold, before it is
//! repaired.

use citytel_firmware_sim::scenario::ScenarioReport;
use citytel_tests::alert_expect::{ByRule, episodes};
use citytel_tests::readings_expect::{
    Arrival, Op, Threshold, arrivals, completeness_holds, samples, threshold_alerts,
};
use std::collections::BTreeMap;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

/// A threshold rule: name, device kind, metric, condition and timing.
struct ThresholdRule {
    name: &'static str,
    kind: &'static str,
    metric: &'static str,
    threshold: Threshold,
}

const THRESHOLD_RULES: &[ThresholdRule] = &[
    ThresholdRule {
        name: "cabinet-hot",
        kind: "cabinet",
        metric: "temperature_c",
        threshold: Threshold {
            op: Op::Gt,
            value: 50.0,
            clear: Some(45.0),
            for_ms: MINUTE,
            keep_firing_for_ms: 0,
        },
    },
    ThresholdRule {
        name: "cpu-pegged",
        kind: "small_cell",
        metric: "cpu_pct",
        threshold: Threshold {
            op: Op::Ge,
            value: 95.0,
            clear: None,
            for_ms: 30 * SECOND,
            keep_firing_for_ms: 0,
        },
    },
    ThresholdRule {
        name: "cpu-pegged-long",
        kind: "small_cell",
        metric: "cpu_pct",
        threshold: Threshold {
            op: Op::Ge,
            value: 95.0,
            clear: None,
            for_ms: 90 * SECOND,
            keep_firing_for_ms: 0,
        },
    },
    ThresholdRule {
        name: "cpu-pegged-steady",
        kind: "small_cell",
        metric: "cpu_pct",
        threshold: Threshold {
            op: Op::Ge,
            value: 95.0,
            clear: Some(90.0),
            for_ms: 30 * SECOND,
            keep_firing_for_ms: 90 * SECOND,
        },
    },
];

/// A completeness rule: name, per, target (percent), window, interval, `keep_firing_for` (ms).
struct CompletenessRule {
    name: &'static str,
    per: &'static str,
    target: f64,
    window_ms: i64,
    interval_ms: i64,
    keep_firing_for_ms: i64,
}

const COMPLETENESS_RULES: &[CompletenessRule] = &[
    CompletenessRule {
        name: "completeness",
        per: "device",
        target: 95.0,
        window_ms: MINUTE,
        interval_ms: 30 * SECOND,
        keep_firing_for_ms: 0,
    },
    CompletenessRule {
        name: "completeness-steady",
        per: "device",
        target: 95.0,
        window_ms: MINUTE,
        interval_ms: 30 * SECOND,
        keep_firing_for_ms: 2 * MINUTE,
    },
    CompletenessRule {
        name: "site-completeness",
        per: "site",
        target: 90.0,
        window_ms: 5 * MINUTE,
        interval_ms: MINUTE,
        keep_firing_for_ms: 0,
    },
];

/// The `[[alerts.rule]]` tables of every rule above.
pub(super) fn config() -> String {
    let mut text = String::new();
    for r in THRESHOLD_RULES {
        let t = &r.threshold;
        text.push_str(&format!(
            "\n[[alerts.rule]]\nname = \"{}\"\nkind = \"threshold\"\nseverity = \"major\"\ndevices = {{ kinds = [\"{}\"] }}\nmetric = \"{}\"\nop = \"{}\"\nvalue = {:?}\nfor = \"{}ms\"\nkeep_firing_for = \"{}ms\"\n",
            r.name,
            r.kind,
            r.metric,
            t.op.as_str(),
            t.value,
            t.for_ms,
            t.keep_firing_for_ms
        ));
        if let Some(clear) = t.clear {
            text.push_str(&format!("clear = {clear:?}\n"));
        }
    }
    for r in COMPLETENESS_RULES {
        text.push_str(&format!(
            "\n[[alerts.rule]]\nname = \"{}\"\nkind = \"completeness\"\nseverity = \"minor\"\nper = \"{}\"\ntarget = {:?}\nwindow = \"{}ms\"\ninterval = \"{}ms\"\nkeep_firing_for = \"{}ms\"\n",
            r.name, r.per, r.target, r.window_ms, r.interval_ms, r.keep_firing_for_ms
        ));
    }
    text
}

/// Adds to `out` the alerts, fired or not, the readings of `report` imply for every rule above.
pub(super) fn expected(report: &ScenarioReport, out: &mut ByRule) {
    let (start, end) = (report.start_unix_ms, report.end_unix_ms);
    let by_device: Vec<Vec<Arrival>> = report.devices.iter().map(arrivals).collect();
    let mut add =
        |rule: &str, alerts: Vec<_>| out.entry(rule.to_string()).or_default().extend(alerts);
    for (device, arrived) in report.devices.iter().zip(&by_device) {
        let id = device.device_id.as_str();
        for r in THRESHOLD_RULES {
            let Some(index) = device.metric_index(r.metric) else {
                continue;
            };
            if device.kind == r.kind {
                let values = samples(arrived, index);
                add(r.name, threshold_alerts(id, &values, &r.threshold, end));
            }
        }
    }
    for r in COMPLETENESS_RULES {
        let mut groups: BTreeMap<&str, Vec<&[Arrival]>> = BTreeMap::new();
        for (device, arrived) in report.devices.iter().zip(&by_device) {
            let target = match r.per {
                "device" => device.device_id.as_str(),
                "site" => device.site.as_str(),
                other => unreachable!("per {other}"),
            };
            groups.entry(target).or_default().push(arrived);
        }
        for (target, group) in groups {
            let holds =
                completeness_holds(&group, r.target, r.window_ms, r.interval_ms, (start, end));
            add(
                r.name,
                episodes(target, &holds, 0, r.keep_firing_for_ms, end),
            );
        }
    }
}
