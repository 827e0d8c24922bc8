//! The dashboard's report downloads are `citytel report`'s files: district reports full of
//! awkward values (names with commas, quotes and line breaks, numbers Rust and JavaScript write
//! differently such as 1e21, 1e-7 and the smallest subnormal, absent figures, a limit one report
//! lacks, NaN and infinity) go through the dashboard's code (`dashboards/web/src/report-export.ts`,
//! run by `node test/export.mjs`) and through the command line's (`citytel::report_format`): the
//! CSV files must be the same bytes, the JSON files the same values (JSON may spell a number two
//! ways: `1` and `1.0`).
//!
//! Part of the `interop` group: needs Node.js and `npm ci` in `dashboards/web`.

use std::process::Command;

use citytel::report_format;
use citytel_proto::v1;
use prost::Message as _;
use serde_json::Value;

use crate::browser_script::web_dir;

fn basis(devices: u32, readings: u64, expected: u64, share: Option<f64>) -> Option<v1::Basis> {
    Some(v1::Basis {
        devices,
        readings,
        readings_expected: expected,
        share_percent: share,
    })
}

fn kind(
    availability: Option<f64>,
    minutes: f64,
    mttr_ms: Option<i64>,
) -> Option<v1::KindAvailability> {
    Some(v1::KindAvailability {
        availability_percent: availability,
        outage_minutes: minutes,
        outages: 3,
        mttr_ms,
        basis: basis(4, 1000, 1200, Some(83.33333333333333)),
    })
}

fn pollutant(metric: &str, mean: Option<f64>, days: usize) -> Option<v1::Pollutant> {
    Some(v1::Pollutant {
        metric: metric.into(),
        period_mean_ugm3: Some(v1::MetricFigure {
            value: mean,
            basis: basis(2, 48, 48, Some(100.0)),
        }),
        daily_means: (0..days)
            .map(|d| v1::DailyMean {
                day_unix_ms: 1_700_000_000_000 + d as i64 * 86_400_000,
                mean_ugm3: 0.1 + 0.2 * d as f64,
                readings: 24,
            })
            .collect(),
        worst_sensors: vec![v1::WorstSensor {
            device_id: "sensor-\"a\"".into(),
            // The double just above 41: 41.00000000000001.
            mean_ugm3: f64::from_bits(41.0f64.to_bits() + 1),
            basis: basis(1, 24, 24, None),
        }],
    })
}

fn limit(name: &str, exceeded: u32, evaluated: u32) -> v1::LimitExceedance {
    v1::LimitExceedance {
        name: name.into(),
        metric: "no2_ugm3".into(),
        averaging: "day".into(),
        limit_ugm3: 25.0,
        exceeded,
        evaluated,
    }
}

/// Three reports that between them take every branch of the two files.
fn reports() -> Vec<v1::DistrictReport> {
    let full = v1::DistrictReport {
        district: "old town, \"north\"".into(),
        start_unix_ms: 1_700_000_000_000 - 800_000,
        end_unix_ms: 1_700_000_000_000 + 2_800_000,
        connectivity: Some(v1::Connectivity {
            cabinets: kind(Some(99.5), 1e-7, Some(90_000)),
            small_cells: kind(None, 0.0, None),
            all: kind(Some(1.0 / 3.0), 1e21, Some(1)),
            worst_devices: vec![v1::WorstDevice {
                device_id: "cab-1".into(),
                kind: "cabinet".into(),
                availability_percent: None,
                outage_minutes: 12.5,
                outages: 2,
            }],
            peak_connected_ues: Some(v1::MetricFigure {
                value: Some(250.0),
                basis: basis(3, 10, 12, Some(83.3)),
            }),
            p95_connected_ues: Some(v1::MetricFigure {
                value: Some(5e-324),
                basis: None,
            }),
            p95_throughput_mbps: None,
            rank: 2,
            districts_ranked: 5,
            capacity: Some(v1::SmallCellCapacity {
                connected_ues: 200.0,
                throughput_mbps: 0.0,
                peak_ues_percent: Some(125.0),
                p95_ues_percent: Some(1.7976931348623157e308),
                p95_throughput_percent: None,
                busy_cell_hours: 7,
                cell_hours: 48,
                busy_percent: 80.0,
            }),
        }),
        energy: Some(v1::Energy {
            energy_kwh: 12.345678901234567,
            covered_percent: Some(99.99999999999999),
            carbon_kg: 0.1 + 0.2,
            grid_intensity_kg_per_kwh: 0.20705,
            previous_energy_kwh: 0.0,
            previous_covered_percent: None,
            trend_percent: Some(-12.5),
            basis: basis(2, 96, 96, Some(100.0)),
            grid_intensity_source: "series grid-gb/carbon_intensity".into(),
            grid_intensity_measured_percent: Some(50.0),
            effective_intensity_kg_per_kwh: Some(0.024),
        }),
        air_quality: Some(v1::AirQuality {
            no2: pollutant("no2_ugm3", Some(123_456_789.125), 3),
            pm25: pollutant("pm25_ugm3", None, 1),
            limits: vec![
                limit("WHO 2021 NO2 24-hour", 2, 3),
                limit("EU, 2030 \"PM2.5\"\nday", 0, 3),
            ],
        }),
    };
    let sparse = v1::DistrictReport {
        district: "line\nbreak über".into(),
        start_unix_ms: -5,
        end_unix_ms: 4_102_444_800_000,
        connectivity: None,
        energy: Some(v1::Energy {
            energy_kwh: f64::NAN,
            carbon_kg: f64::INFINITY,
            previous_energy_kwh: -0.0,
            ..Default::default()
        }),
        air_quality: Some(v1::AirQuality {
            limits: vec![limit("WHO 2021 NO2 24-hour", 0, 0)],
            ..Default::default()
        }),
    };
    let empty = v1::DistrictReport {
        district: String::new(),
        ..Default::default()
    };
    vec![full, sparse, empty]
}

/// Every number as a double, so `1` and `1.0` compare equal.
fn doubles(v: Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(items) => Value::Array(items.into_iter().map(doubles).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, doubles(v))).collect())
        }
        other => other,
    }
}

/// The dashboard's files for `reports`: (CSV, JSON).
fn dashboard_files(reports: &[v1::DistrictReport]) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("reports.pb");
    let answer = v1::ListDistrictReportsResponse {
        reports: reports.to_vec(),
    };
    std::fs::write(&input, answer.encode_to_vec()).expect("write the reports");
    let out = Command::new("node")
        .arg("test/export.mjs")
        .arg(&input)
        .arg(dir.path())
        .current_dir(web_dir())
        .output()
        .expect("node is installed (`apt-get install -y nodejs npm`)");
    assert!(
        out.status.success(),
        "node test/export.mjs failed (did `npm ci` run in dashboards/web?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| std::fs::read(dir.path().join(name)).expect(name);
    (read("reports.csv"), read("reports.json"))
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Node.js and npm ci in dashboards/web: cargo test -p citytel-tests --features interop"
)]
#[test]
fn the_dashboards_report_files_are_the_command_lines() {
    // As both read them off the wire (where -0.0 is 0.0, for one).
    let bytes = v1::ListDistrictReportsResponse { reports: reports() }.encode_to_vec();
    let reports = v1::ListDistrictReportsResponse::decode(bytes.as_slice())
        .expect("decode")
        .reports;
    let (csv, json) = dashboard_files(&reports);
    let want_csv = report_format::csv(&reports).expect("the command line's CSV");
    assert_eq!(
        String::from_utf8_lossy(&csv),
        String::from_utf8_lossy(&want_csv),
        "the dashboard's CSV against citytel report's"
    );
    let want_json = report_format::json_file(&reports).expect("the command line's JSON");
    let parse = |bytes: &[u8]| doubles(serde_json::from_slice(bytes).expect("JSON"));
    assert_eq!(
        parse(&json),
        parse(&want_json),
        "the dashboard's JSON against citytel report's"
    );
    assert!(json.ends_with(b"]\n"), "the JSON file ends in a newline");

    // Just one report, as a district page downloads it, and none, as a city page with no
    // district would.
    for some in [&reports[..1], &[]] {
        let (csv, _) = dashboard_files(some);
        assert_eq!(csv, report_format::csv(some).expect("CSV"));
    }
}
