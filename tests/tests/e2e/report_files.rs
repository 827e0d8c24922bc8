//! The report files a browser downloaded from the dashboard against the ones `citytel report`
//! writes for the same district (or all of them) and period, run against the same service a
//! moment later: the same CSV header, the same districts, and the same values in every column
//! and field, except those that move with the clock between the two answers (availability,
//! outages and rank, as the devices turn late and offline; the period's end and the shares of
//! expected readings, which grow with the period cut at now), which must be present in both or absent in both.
//! That the dashboard writes the very bytes of the command line for the same answer is
//! `dashboard_export`'s test.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use citytel_tests::process::{Citytel, binary};
use serde_json::Value;

/// CSV columns that move with the clock.
const MOVING_COLUMNS: [&str; 13] = [
    "end",
    "rank",
    "availability_pct",
    "cabinet_availability_pct",
    "small_cell_availability_pct",
    "outage_minutes",
    "outages",
    "mttr_minutes",
    "small_cell_readings_pct",
    "energy_covered_pct",
    "energy_readings_pct",
    "no2_readings_pct",
    "pm25_readings_pct",
];

/// JSON fields that move with the clock (the worst devices are ordered by availability).
const MOVING_FIELDS: [&str; 10] = [
    "end",
    "rank",
    "availability_percent",
    "outage_minutes",
    "outages",
    "mttr_ms",
    "share_percent",
    "readings_expected",
    "covered_percent",
    "worst_devices",
];

/// Two values agree: numbers within rounding (a checkpoint between two answers may sum in
/// another order), anything else equal.
fn agree(got: &str, want: &str) -> bool {
    match (got.parse::<f64>(), want.parse::<f64>()) {
        (Ok(g), Ok(w)) => (g - w).abs() <= 1e-9 * w.abs().max(1.0),
        _ => got == want,
    }
}

/// `text` as CSV: its header and its rows by district.
fn parse_csv(text: &str, who: &str) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap_or_else(|e| panic!("{who}'s CSV header: {e}"))
        .iter()
        .map(String::from)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{who}'s CSV: {e}"));
            (r[0].to_string(), r.iter().map(String::from).collect())
        })
        .collect();
    (header, rows)
}

fn check_csv(got: &str, want: &str, what: &str) {
    let (header, rows) = parse_csv(got, "the dashboard");
    let (want_header, want_rows) = parse_csv(want, "citytel report");
    assert_eq!(header, want_header, "{what}: the CSV columns");
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        want_rows.keys().collect::<Vec<_>>(),
        "{what}: the CSV's districts"
    );
    for (district, row) in &rows {
        for ((column, g), w) in header.iter().zip(row).zip(&want_rows[district]) {
            let where_ = format!("{what}: {district}, column {column}");
            if MOVING_COLUMNS.contains(&column.as_str()) {
                assert_eq!(g.is_empty(), w.is_empty(), "{where_}: {g:?} vs {w:?}");
            } else {
                assert!(
                    agree(g, w),
                    "{where_}: the dashboard {g:?}, citytel report {w:?}"
                );
            }
        }
    }
}

fn check_json(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            assert_eq!(
                g.keys().collect::<Vec<_>>(),
                w.keys().collect::<Vec<_>>(),
                "{path}: the fields"
            );
            for (key, gv) in g {
                let inner = format!("{path}.{key}");
                if MOVING_FIELDS.contains(&key.as_str()) {
                    assert_eq!(
                        gv.is_null(),
                        w[key].is_null(),
                        "{inner}: {gv} vs {}",
                        w[key]
                    );
                } else {
                    check_json(gv, &w[key], &inner);
                }
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: the length");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                check_json(gv, wv, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(_), Value::Number(_)) => {
            assert!(
                agree(&got.to_string(), &want.to_string()),
                "{path}: {got} vs {want}"
            );
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// The reports in a JSON file, by district (their order is the moving rank's).
fn by_district(json: &str, who: &str) -> Value {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{who}'s JSON: {e}"));
    let reports = v
        .as_array()
        .unwrap_or_else(|| panic!("{who}'s JSON: an array"));
    Value::Object(
        reports
            .iter()
            .map(|r| {
                (
                    r["district"].as_str().expect("a district").to_string(),
                    r.clone(),
                )
            })
            .collect(),
    )
}

fn rfc3339(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).expect("after 1970"));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `citytel report` for `which` (a district, or `None` for all) over `period`, as `format`.
fn cli_report(citytel: &Citytel, which: Option<&str>, period: (i64, i64), format: &str) -> String {
    let (from, to) = (rfc3339(period.0), rfc3339(period.1));
    let mut cmd = Command::new(binary());
    cmd.arg("report")
        .args(["--grpc", &citytel.grpc.to_string()])
        .args(["--from", &from, "--to", &to, "--format", format]);
    match which {
        Some(district) => cmd.args(["--district", district]),
        None => cmd.arg("--all"),
    };
    let out = cmd.output().expect("run citytel report");
    assert!(
        out.status.success(),
        "citytel report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Checks the files the dashboard downloaded for `which` (a district's page, or `None`: the city
/// page's, every district): the script's `{csv, json, csv_name, json_name}`.
pub(super) fn check_downloads(
    citytel: &Citytel,
    which: Option<&str>,
    period: (i64, i64),
    files: &str,
) {
    let files: Value = serde_json::from_str(files).expect("the downloads as JSON");
    let text = |k: &str| {
        files[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} downloaded"))
            .to_string()
    };
    let what = format!("the downloads of {}", which.unwrap_or("the city page"));
    let (csv_name, json_name) = (text("csv_name"), text("json_name"));
    let stem = format!("citytel-report-{}-", which.unwrap_or("all"));
    assert!(
        csv_name.starts_with(&stem) && csv_name.ends_with(".csv"),
        "{what}: {csv_name}"
    );
    assert!(
        json_name.starts_with(&stem) && json_name.ends_with(".json"),
        "{what}: {json_name}"
    );
    let csv = text("csv");
    assert!(
        csv.ends_with('\n') && !csv.contains('\r'),
        "{what}: lines end in \\n"
    );
    check_csv(&csv, &cli_report(citytel, which, period, "csv"), &what);
    let got = by_district(&text("json"), "the dashboard");
    let want = by_district(
        &cli_report(citytel, which, period, "json"),
        "citytel report",
    );
    check_json(&got, &want, &what);
    let districts = got.as_object().map_or(0, |o| o.len());
    assert!(districts >= 1, "{what}: some report");
    if let Some(district) = which {
        assert_eq!(
            got.as_object().map(|o| o.contains_key(district)),
            Some(true),
            "{what}"
        );
    }
}
