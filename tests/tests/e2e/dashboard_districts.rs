//! The dashboard's city map and district page in a real browser: the `citytel serve` binary with
//! the simulator's districts file, the simulator's city fleet publishing a few readings per
//! device over MQTT, and Debian's headless Chromium driven by `dashboards/web/test/districts.mjs`.
//! The service is the oracle: for each figure the map can be coloured by, the script reports
//! every area as drawn (its district, value and computed fill) and this test checks that every
//! district of `GetDistrictMap` is drawn once, with the figure `ListDistrictReports` gives over
//! the same period, and that the fills follow the values (the lowest value the scale's first
//! colour, the highest its last, lightness rising with the value). Then the script clicks the
//! district with the highest NO2 mean and reports its page, whose figures must be
//! `GetDistrictReport`'s (with a small-cell capacity configured, so the demand against it too)
//! and whose devices must be the district's in `ListDevices`, asked for with its district
//! filter (the test decodes the page's requests). Last, citytel restarts on the same data
//! without the capacity, and the district page must say that none is configured. On the city
//! page and the district page the script downloads the report as CSV and JSON, which must hold
//! what `citytel report` writes for the same period (see `report_files`).
//!
//! Availability moves with the clock (the devices stop after their readings and turn late, then
//! offline), so its values are checked for range and for the fill order the page gives them;
//! energy, carbon and the air figures rest on readings that no longer change, and must be equal.
//!
//! Part of the `interop` group: needs `chromium` (Debian), Node.js and `npm ci` in
//! `dashboards/web`; fails with a clear message when one is missing.

use std::collections::BTreeMap;
use std::time::Duration;

use citytel_proto::v1::report_service_client::ReportServiceClient;
use citytel_proto::v1::{self, DistrictReport};
use citytel_tests::fleet;
use citytel_tests::process::Citytel;
use citytel_tests::wire::now_ms;
use prost::Message as _;
use serde_json::Value;
use tonic::transport::Channel;

use crate::browser_script::{BrowserScript, artifacts, check_prerequisites};
use crate::report_files::check_downloads;

const HOUR_MS: i64 = 3_600_000;
/// One small cell's rating, low enough for the simulator's cells to keep some hours busy.
const CAPACITY: &str =
    "reports.small_cell_capacity={connected_ues=40.0,throughput_mbps=200.0,busy_percent=50.0}";
/// The scale's ends (viridis), as the browser computes the fills.
const LOWEST: &str = "rgb(68, 1, 84)";
const HIGHEST: &str = "rgb(253, 231, 37)";

/// An area as the map drew it.
#[derive(Debug)]
struct Area {
    district: String,
    value: Option<f64>,
    fill: String,
}

/// What the map showed for one figure.
#[derive(Debug)]
struct MapSeen {
    areas: Vec<Area>,
    table: BTreeMap<String, Option<f64>>,
}

/// What a district's page showed.
#[derive(Debug)]
struct DistrictSeen {
    figures: BTreeMap<String, Option<f64>>,
    devices: Vec<String>,
    /// The bodies of the page's ListDevices requests (gRPC-Web frames).
    list_devices: Vec<Vec<u8>>,
}

/// A JSON object's values as numbers (`null`: none).
fn numbers(v: &Value) -> BTreeMap<String, Option<f64>> {
    let object = v
        .as_object()
        .unwrap_or_else(|| panic!("an object, not {v}"));
    object
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64()))
        .collect()
}

impl MapSeen {
    /// The script's report: `{areas: [{district, value, fill}], table: {district: value}}`.
    fn parse(json: &str) -> Self {
        let v: Value = serde_json::from_str(json).expect("the map as JSON");
        let text = |a: &Value, k: &str| {
            a[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {a}"))
                .to_string()
        };
        let areas = v["areas"].as_array().expect("areas");
        MapSeen {
            areas: areas
                .iter()
                .map(|a| Area {
                    district: text(a, "district"),
                    value: a["value"].as_f64(),
                    fill: text(a, "fill"),
                })
                .collect(),
            table: numbers(&v["table"]),
        }
    }
}

impl DistrictSeen {
    /// The script's report: `{figures: {key: value}, devices: [id], listDevices: [[byte]]}`.
    fn parse(json: &str) -> Self {
        let v: Value = serde_json::from_str(json).expect("the page as JSON");
        let devices = v["devices"].as_array().expect("devices");
        let bytes = |body: &Value| -> Vec<u8> {
            let body = body.as_array().expect("a request body");
            body.iter()
                .map(|b| {
                    b.as_u64()
                        .and_then(|b| u8::try_from(b).ok())
                        .expect("a byte")
                })
                .collect()
        };
        DistrictSeen {
            figures: numbers(&v["figures"]),
            devices: devices
                .iter()
                .map(|d| d.as_str().expect("an id").to_string())
                .collect(),
            list_devices: v["listDevices"]
                .as_array()
                .expect("listDevices")
                .iter()
                .map(bytes)
                .collect(),
        }
    }

    /// The page's ListDevices requests.
    fn list_devices_requests(&self) -> Vec<v1::ListDevicesRequest> {
        self.list_devices
            .iter()
            .map(|frame| {
                // A gRPC-Web frame: a flag byte, a 4-byte length, the message.
                assert!(frame.len() >= 5 && frame[0] == 0, "a data frame: {frame:?}");
                let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
                v1::ListDevicesRequest::decode(&frame[5..5 + len]).expect("a ListDevicesRequest")
            })
            .collect()
    }
}

/// The figure `key` of a report, as the map defines it.
fn figure(report: &DistrictReport, key: &str) -> Option<f64> {
    let energy = report
        .energy
        .as_ref()
        .filter(|e| e.basis.as_ref().is_some_and(|b| b.devices > 0));
    match key {
        "availability" => report
            .connectivity
            .as_ref()
            .and_then(|c| c.all.as_ref())
            .and_then(|a| a.availability_percent),
        "energy" => energy.map(|e| e.energy_kwh),
        "carbon" => energy.map(|e| e.carbon_kg),
        "no2" => air(report, |a| a.no2.as_ref()),
        "pm25" => air(report, |a| a.pm25.as_ref()),
        other => panic!("the map has no figure {other:?}"),
    }
}

fn air(
    report: &DistrictReport,
    pollutant: impl Fn(&v1::AirQuality) -> Option<&v1::Pollutant>,
) -> Option<f64> {
    let p = report.air_quality.as_ref().and_then(pollutant)?;
    p.period_mean_ugm3.as_ref().and_then(|f| f.value)
}

/// The figures of two answers agree (a checkpoint between them may sum in another order).
fn close(got: Option<f64>, want: Option<f64>, what: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{what}: the page shows {g}, the API {w}"
        ),
        _ => assert_eq!(got, want, "{what}: the page against the API"),
    }
}

/// Relative luminance of a CSS `rgb(r, g, b)`.
fn luminance(fill: &str) -> f64 {
    let inner = fill
        .strip_prefix("rgb(")
        .and_then(|f| f.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a fill of a colour, not {fill:?}"));
    let c: Vec<f64> = inner
        .split(',')
        .map(|v| v.trim().parse::<f64>().expect("a channel") / 255.0)
        .map(|v| {
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        })
        .collect();
    0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
}

/// The areas' fills follow their values: no value is hatched, equal values share a colour, a
/// higher value is lighter, and the lowest and highest take the scale's ends.
fn check_fill_order(key: &str, areas: &[Area]) {
    let mut valued: Vec<&Area> = areas.iter().filter(|a| a.value.is_some()).collect();
    for a in areas.iter().filter(|a| a.value.is_none()) {
        assert!(
            a.fill.starts_with("url("),
            "{key}: {a:?} has no value but a colour"
        );
    }
    valued.sort_by(|a, b| a.value.partial_cmp(&b.value).expect("numbers"));
    for pair in valued.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.value == b.value {
            assert_eq!(a.fill, b.fill, "{key}: equal values, equal colours");
        } else {
            assert!(
                luminance(&a.fill) < luminance(&b.fill),
                "{key}: {a:?} is lower than {b:?}, so it must be darker"
            );
        }
    }
    let (first, last) = (
        valued.first().expect("values"),
        valued.last().expect("values"),
    );
    if first.value != last.value {
        assert_eq!(
            (first.fill.as_str(), last.fill.as_str()),
            (LOWEST, HIGHEST),
            "{key}"
        );
    }
}

/// Checks the map coloured by `key` against the API's reports.
fn check_map(key: &str, seen: &MapSeen, districts: &[String], api: &[DistrictReport]) {
    let mut drawn: Vec<String> = seen.areas.iter().map(|a| a.district.clone()).collect();
    drawn.sort();
    assert_eq!(drawn, districts, "{key}: every district drawn once");
    let api: BTreeMap<&str, &DistrictReport> =
        api.iter().map(|r| (r.district.as_str(), r)).collect();
    for area in &seen.areas {
        let want = figure(api[area.district.as_str()], key);
        let what = format!("{key} of {}", area.district);
        if key == "availability" {
            let v = area.value.unwrap_or_else(|| panic!("{what}: no value"));
            assert!(want.is_some() && (0.0..=100.0).contains(&v), "{what}: {v}");
        } else {
            close(area.value, want, &what);
        }
        assert_eq!(
            seen.table[&area.district], area.value,
            "{what}: table and map"
        );
    }
    if key != "availability" {
        let mut values: Vec<String> = seen
            .areas
            .iter()
            .map(|a| format!("{:?}", a.value))
            .collect();
        values.dedup();
        assert!(
            values.len() > 1,
            "{key}: the districts differ, so the colours can be told apart"
        );
    }
    check_fill_order(key, &seen.areas);
}

/// Checks the district page of `name` against `GetDistrictReport` and `ListDevices`.
async fn check_district(citytel: &Citytel, name: &str, seen: &DistrictSeen, period: (i64, i64)) {
    let mut reports = ReportServiceClient::connect(format!("http://{}", citytel.grpc))
        .await
        .expect("connect");
    let report = reports
        .get_district_report(v1::GetDistrictReportRequest {
            district: name.into(),
            start_unix_ms: period.0,
            end_unix_ms: period.1,
            worst_limit: 0,
        })
        .await
        .expect("GetDistrictReport")
        .into_inner()
        .report
        .expect("a report");
    let shown = |k: &str| {
        *seen
            .figures
            .get(k)
            .unwrap_or_else(|| panic!("the page shows {k}"))
    };
    let e = report.energy.as_ref().expect("energy");
    close(shown("energy"), Some(e.energy_kwh), "energy");
    close(shown("carbon"), Some(e.carbon_kg), "carbon");
    close(
        shown("previous-energy"),
        Some(e.previous_energy_kwh),
        "previous energy",
    );
    close(shown("no2"), figure(&report, "no2"), "NO2 mean");
    close(shown("pm25"), figure(&report, "pm25"), "PM2.5 mean");
    let c = report.connectivity.as_ref().expect("connectivity");
    let value = |f: &Option<v1::MetricFigure>| f.as_ref().and_then(|f| f.value);
    close(shown("peak-ues"), value(&c.peak_connected_ues), "peak UEs");
    close(shown("p95-ues"), value(&c.p95_connected_ues), "p95 UEs");
    close(
        shown("p95-throughput"),
        value(&c.p95_throughput_mbps),
        "p95 throughput",
    );
    let cap = c.capacity.as_ref().expect("a capacity is configured");
    assert!(cap.cell_hours > 0, "the cells reported: {cap:?}");
    close(
        shown("capacity-peak-ues"),
        cap.peak_ues_percent,
        "peak UEs against capacity",
    );
    close(
        shown("capacity-p95-ues"),
        cap.p95_ues_percent,
        "p95 UEs against capacity",
    );
    close(
        shown("capacity-p95-throughput"),
        cap.p95_throughput_percent,
        "p95 throughput against capacity",
    );
    close(
        shown("busy-cell-hours"),
        Some(cap.busy_cell_hours as f64),
        "busy cell-hours",
    );
    for key in [
        "all-availability",
        "cabinets-availability",
        "small-cells-availability",
    ] {
        let v = shown(key).unwrap_or_else(|| panic!("{key} shown"));
        assert!((0.0..=100.0).contains(&v), "{key}: {v}");
    }
    let requests = seen.list_devices_requests();
    assert!(!requests.is_empty(), "the page asked for its devices");
    for r in &requests {
        assert_eq!(
            r.district, name,
            "the page asks only for its district's devices: {r:?}"
        );
        assert!(r.page_size > 0, "in pages: {r:?}");
    }
    let mut devices: Vec<String> = citytel
        .client()
        .await
        .list_devices(v1::ListDevicesRequest::default())
        .await
        .expect("ListDevices")
        .into_inner()
        .devices
        .into_iter()
        .filter(|d| d.district == name)
        .map(|d| d.device_id)
        .collect();
    devices.sort();
    let mut listed = seen.devices.clone();
    listed.sort();
    assert!(!devices.is_empty(), "{name} has devices");
    assert_eq!(listed, devices, "the page lists the district's devices");
}

async fn list_reports(
    client: &mut ReportServiceClient<Channel>,
    period: (i64, i64),
) -> Vec<DistrictReport> {
    client
        .list_district_reports(v1::ListDistrictReportsRequest {
            start_unix_ms: period.0,
            end_unix_ms: period.1,
            worst_limit: 0,
        })
        .await
        .expect("ListDistrictReports")
        .into_inner()
        .reports
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages and npm ci in dashboards/web: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_city_map_colours_every_district_by_its_figure_and_opens_its_report() {
    check_prerequisites();
    let dir = tempfile::tempdir().expect("temp dir");
    let set = fleet::city_districts(dir.path());
    let data = dir.path().join("data");
    let mut running = Some(Citytel::start(&data, &["--set", &set, "--set", CAPACITY]));
    let citytel = running.as_ref().expect("citytel runs");
    let url = citytel
        .dashboard
        .clone()
        .expect("citytel prints its dashboard URL");
    fleet::city(citytel.mqtt_host_port(), (5, 5, 10), 5).await;

    // The hour before this one and this one: whole hours, as reports need.
    let start = (now_ms() / HOUR_MS - 1) * HOUR_MS;
    let period = (start, start + 2 * HOUR_MS);
    let mut client = ReportServiceClient::connect(format!("http://{}", citytel.grpc))
        .await
        .expect("connect");
    let mut districts: Vec<String> = client
        .get_district_map(v1::GetDistrictMapRequest {})
        .await
        .expect("GetDistrictMap")
        .into_inner()
        .areas
        .into_iter()
        .map(|a| a.district)
        .collect();
    districts.sort();
    assert_eq!(
        districts,
        [
            "east-side",
            "harbour",
            "north-hills",
            "old-town",
            "west-end"
        ],
        "the simulator's city"
    );

    let (from, to) = (period.0.to_string(), period.1.to_string());
    let mut browser = BrowserScript::start("districts.mjs", &[&url, &from, &to], &[]);
    let mut checked = Vec::new();
    let limit = Duration::from_secs(240);
    let finished = tokio::time::timeout(limit, async {
        while let Some(request) = browser.request().await {
            let mut parts = request.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("map"), Some(key), Some(json)) => {
                    let seen = MapSeen::parse(json);
                    let api = list_reports(&mut client, period).await;
                    check_map(key, &seen, &districts, &api);
                    // The district with the dirtiest air is the one to open.
                    let target = api
                        .iter()
                        .filter(|r| figure(r, "no2").is_some())
                        .max_by(|a, b| {
                            figure(a, "no2")
                                .partial_cmp(&figure(b, "no2"))
                                .expect("numbers")
                        })
                        .expect("a district with NO2 readings");
                    browser.answer(&format!("ok {}", target.district));
                    checked.push(key.to_string());
                }
                (Some("district"), Some(name), Some(json)) => {
                    let seen = DistrictSeen::parse(json);
                    let citytel = running.as_ref().expect("citytel runs");
                    check_district(citytel, name, &seen, period).await;
                    browser.answer(&format!("ok {name}"));
                    checked.push(format!("district {name}"));
                }
                (Some("export"), Some(which), Some(files)) => {
                    let district = (which != "all").then_some(which);
                    let citytel = running.as_ref().expect("citytel runs");
                    check_downloads(citytel, district, period, files);
                    browser.answer(&format!("ok {which}"));
                    checked.push(format!("export {which}"));
                }
                (Some("restart"), None, None) => {
                    // The same data, without a small-cell capacity.
                    let old = running.take().expect("citytel runs");
                    assert!(old.stop().success(), "citytel exits cleanly");
                    let citytel = Citytel::start(&data, &["--set", &set]);
                    let url = citytel.dashboard.clone().expect("the dashboard URL");
                    running = Some(citytel);
                    browser.answer(&format!("ok {url}"));
                    checked.push("restart".into());
                }
                other => panic!("the browser test asked for {other:?}"),
            }
        }
    })
    .await;
    let status = browser.conclude(finished.is_ok(), limit);
    assert!(
        status.success() && checked.len() == 8,
        "the browser test failed ({status}, checked {checked:?}); its output is above, \
         screenshots in {}",
        artifacts().display()
    );
    let citytel = running.take().expect("citytel runs");
    assert!(citytel.stop().success(), "citytel exits cleanly");
}
