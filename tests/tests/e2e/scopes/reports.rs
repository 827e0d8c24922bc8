//! District reports for each key: a report lists only the districts where the key sees a device,
//! and each figure rests on the devices and metrics it sees alone. Pollutant means are compared
//! with the mean of what the test published for the sensors the key sees ([`Truth`]).

use std::collections::{BTreeMap, BTreeSet};

use citytel_proto::v1::report_service_client::ReportServiceClient;
use citytel_proto::v1::{self, GetDistrictReportRequest, ListDistrictReportsRequest};
use citytel_tests::keys::Bearer;
use citytel_tests::wire::now_ms;
use tonic::Code;

use super::{DEVICES, Fleet, Who, channel, district};

const HOUR_MS: i64 = 3_600_000;

/// The visible devices of `kind` in each district.
fn visible(who: &Who, kind: &str) -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (id, site, k) in DEVICES {
        if let Some(d) = district(site)
            && who.sees(id)
        {
            let entry = out.entry(d).or_default();
            if k == kind {
                entry.insert(id);
            }
        }
    }
    out
}

/// The mean of every published value of `metric` of `devices`.
fn published_mean(fleet: &Fleet, devices: &BTreeSet<&str>, metric: &str) -> Option<f64> {
    let values: Vec<f64> = devices
        .iter()
        .filter_map(|d| fleet.truth.get(&(d.to_string(), metric.to_string())))
        .flatten()
        .map(|(_, v)| *v)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn devices(f: Option<&v1::MetricFigure>) -> u32 {
    f.and_then(|f| f.basis).map_or(0, |b| b.devices)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn district_reports_rest_only_on_what_each_key_sees() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = Fleet::start(&dir.path().join("data")).await;
    let start = fleet.start_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let end = now_ms().div_euclid(HOUR_MS) * HOUR_MS + HOUR_MS;
    for who in &fleet.who {
        let mut client = ReportServiceClient::with_interceptor(
            channel(fleet.citytel.grpc).await,
            Bearer(Some(who.key.clone())),
        );
        let reports = client
            .list_district_reports(ListDistrictReportsRequest {
                start_unix_ms: start,
                end_unix_ms: end,
                worst_limit: 100,
            })
            .await
            .unwrap_or_else(|e| panic!("{}: ListDistrictReports: {e}", who.name))
            .into_inner()
            .reports;
        let cabinets = visible(who, "cabinet");
        let cells = visible(who, "small_cell");
        let sensors = visible(who, "sensor");
        let names: BTreeSet<&str> = reports.iter().map(|r| r.district.as_str()).collect();
        let want: BTreeSet<&str> = cabinets.keys().copied().collect();
        assert_eq!(
            names, want,
            "{}: the districts it sees a device in",
            who.name
        );
        for r in &reports {
            let d = r.district.as_str();
            let what = format!("{}: {d}", who.name);
            let c = r.connectivity.as_ref().expect("connectivity");
            let connected = cabinets[d].len() + cells[d].len();
            assert_eq!(
                c.all
                    .as_ref()
                    .and_then(|a| a.basis)
                    .map(|b| b.devices as usize),
                Some(connected),
                "{what}: cabinets and small cells"
            );
            assert_eq!(c.districts_ranked as usize, want.len(), "{what}");
            who.check(
                &what,
                c.worst_devices.iter().map(|w| w.device_id.as_str()),
                [],
            );
            let power = if who.sees_metric("power_w") {
                cabinets[d].len()
            } else {
                0
            };
            let e = r.energy.as_ref().expect("energy");
            assert_eq!(
                e.basis.map(|b| b.devices as usize),
                Some(power),
                "{what}: power"
            );
            assert_eq!(e.energy_kwh > 0.0, power > 0, "{what}: {}", e.energy_kwh);
            let air = r.air_quality.as_ref().expect("air quality");
            for (metric, p) in [("no2_ugm3", &air.no2), ("pm25_ugm3", &air.pm25)] {
                let p = p.as_ref().expect("pollutant");
                let figure = p.period_mean_ugm3.as_ref();
                let seen: BTreeSet<&str> = if who.sees_metric(metric) {
                    sensors[d].clone()
                } else {
                    BTreeSet::new()
                };
                assert_eq!(devices(figure) as usize, seen.len(), "{what}: {metric}");
                let got = figure.and_then(|f| f.value);
                match (got, published_mean(&fleet, &seen, metric)) {
                    (Some(g), Some(w)) => {
                        assert!(
                            (g - w).abs() < 1e-9 * w.abs().max(1.0),
                            "{what}: {g} vs {w}"
                        )
                    }
                    (g, w) => assert_eq!(g, w, "{what}: {metric}"),
                }
                who.check(
                    &what,
                    p.worst_sensors.iter().map(|s| s.device_id.as_str()),
                    [],
                );
            }
        }
        // A district where it sees nothing does not exist for it.
        for d in ["north", "east", "south", "nowhere"] {
            let answer = client
                .get_district_report(GetDistrictReportRequest {
                    district: d.into(),
                    start_unix_ms: start,
                    end_unix_ms: end,
                    worst_limit: 0,
                })
                .await;
            match answer {
                Ok(r) if want.contains(d) => {
                    let r = r.into_inner().report.expect("a report");
                    assert_eq!(r.district, d);
                }
                Ok(_) => panic!("{}: {d} answered, but it sees no device there", who.name),
                Err(e) => {
                    assert!(!want.contains(d), "{}: {d}: {e}", who.name);
                    assert_eq!(e.code(), Code::NotFound, "{}: {d}", who.name);
                }
            }
        }
    }
    fleet.citytel.stop();
}
