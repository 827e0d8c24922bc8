//! `citytel report` against the real binary: the simulator's city publishes over MQTT, and the
//! reports the command line writes (JSON and CSV, one district and all of them) hold the same
//! figures as the service's `ReportService` answers (over gRPC, and over gRPC-Web as a browser
//! asks the dashboard port); bad requests end with a clear message and a failing exit code.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use citytel_proto::v1::report_service_client::ReportServiceClient;
use citytel_proto::v1::{ListDistrictReportsRequest, ListDistrictReportsResponse};
use citytel_testkit::grpc_web;
use citytel_tests::fleet;
use citytel_tests::process::{Citytel, binary};
use citytel_tests::wire::now_ms;
use prost::Message as _;

const HOUR_MS: i64 = 3_600_000;

/// The figures of two answers agree (a checkpoint between them may sum in another order).
fn close(got: Option<f64>, want: Option<f64>, what: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{what}: {g} vs {w}"
        ),
        _ => assert_eq!(got, want, "{what}"),
    }
}

fn report(citytel: &Citytel, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("report")
        .args(["--grpc", &citytel.grpc.to_string()])
        .args(args)
        .output()
        .expect("run citytel report")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "citytel report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn failed(out: Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_writes_the_services_district_reports_as_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let set = fleet::city_districts(dir.path());
    let citytel = Citytel::start(&dir.path().join("data"), &["--set", &set]);
    fleet::city(citytel.mqtt_host_port(), (5, 5, 5), 5).await;

    // The hour before this one and this one, as the command line rounds them.
    let start = (now_ms() / HOUR_MS - 1) * HOUR_MS;
    let from = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_millis(start as u64),
    )
    .to_string();
    let json: serde_json::Value = serde_json::from_str(&ok(report(
        &citytel,
        &["--all", "--from", &from, "--format", "json"],
    )))
    .expect("JSON");
    let url = format!("http://{}", citytel.grpc);
    let mut client = ReportServiceClient::connect(url).await.expect("connect");
    let request = ListDistrictReportsRequest {
        start_unix_ms: start,
        end_unix_ms: start + 2 * HOUR_MS,
        worst_limit: 0,
    };
    let api = client
        .list_district_reports(request)
        .await
        .expect("ListDistrictReports")
        .into_inner()
        .reports;
    assert_eq!(api.len(), 5, "the city's five districts");
    let web = grpc_web::call(
        citytel.dashboard_addr(),
        "/citytel.v1.ReportService/ListDistrictReports",
        &request.encode_to_vec(),
    )
    .await
    .expect("gRPC-Web ListDistrictReports on the dashboard port");
    let (messages, status) = web.finish().await.expect("the answer ends");
    assert_eq!((messages.len(), status.as_deref()), (1, Some("0")));
    let web = ListDistrictReportsResponse::decode(messages[0].clone()).expect("a response");
    // Availability moves with the clock between the two answers (devices turn late), so each
    // answer is checked for its own order, and both for the same districts.
    let names = |reports: &[citytel_proto::v1::DistrictReport]| {
        let ranks: Vec<u32> = reports
            .iter()
            .map(|r| r.connectivity.as_ref().map_or(u32::MAX, |c| c.rank))
            .collect();
        assert!(ranks.is_sorted(), "listed best rank first: {ranks:?}");
        let mut names: Vec<String> = reports.iter().map(|r| r.district.clone()).collect();
        names.sort();
        names
    };
    assert_eq!(names(&web.reports), names(&api), "the same districts");

    // Readings do not move between the two answers: energy and air figures are equal.
    let by_name: BTreeMap<String, &serde_json::Value> = json
        .as_array()
        .expect("an array of reports")
        .iter()
        .map(|r| (r["district"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(by_name.len(), 5);
    for r in &api {
        let j = by_name[&r.district];
        let e = r.energy.as_ref().unwrap();
        close(
            j["energy"]["energy_kwh"].as_f64(),
            Some(e.energy_kwh),
            &r.district,
        );
        assert!(
            e.energy_kwh > 0.0,
            "{}: the cabinets draw power",
            r.district
        );
        assert_eq!(
            j["energy"]["basis"]["readings"].as_u64(),
            e.basis.map(|b| b.readings)
        );
        let no2 = r.air_quality.as_ref().unwrap().no2.as_ref().unwrap();
        let mean = no2.period_mean_ugm3.as_ref().unwrap();
        close(
            j["air_quality"]["no2"]["period_mean_ugm3"]["value"].as_f64(),
            mean.value,
            &r.district,
        );
        assert_eq!(
            j["air_quality"]["limits"].as_array().map(Vec::len),
            Some(7),
            "every default limit"
        );
        let c = r.connectivity.as_ref().unwrap();
        assert_eq!(j["connectivity"]["districts_ranked"].as_u64(), Some(5));
        assert_eq!(
            j["connectivity"]["all"]["basis"]["devices"].as_u64(),
            c.all
                .as_ref()
                .and_then(|a| a.basis)
                .map(|b| u64::from(b.devices))
        );
    }

    // One district as CSV: a header and its row.
    let district = &api[0].district;
    let csv = ok(report(
        &citytel,
        &["--district", district, "--from", &from, "--format", "csv"],
    ));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[0].starts_with("district,start,end,rank,"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!("{district},")),
        "{}",
        lines[1]
    );
    let energy_column = lines[0].split(',').position(|c| c == "energy_kwh");
    let kwh = lines[1]
        .split(',')
        .nth(energy_column.expect("an energy_kwh column"))
        .and_then(|f| f.parse().ok());
    close(
        kwh,
        Some(api[0].energy.as_ref().unwrap().energy_kwh),
        district,
    );

    // Written to a file.
    let out = dir.path().join("all.csv");
    ok(report(
        &citytel,
        &["--all", "--from", &from, "-o", out.to_str().unwrap()],
    ));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 6);

    // Clear errors.
    let e = failed(report(
        &citytel,
        &["--district", "atlantis", "--from", &from],
    ));
    assert!(e.contains("NotFound") || e.contains("not found"), "{e}");
    assert!(e.contains("atlantis"), "{e}");
    let e = failed(report(
        &citytel,
        &["--all", "--from", "2026-01-01T00:30:00Z"],
    ));
    assert!(e.contains("whole UTC hours"), "{e}");
    let e = failed(report(&citytel, &["--from", &from]));
    assert!(e.contains("--district") && e.contains("--all"), "{e}");
    let help = ok(report(&citytel, &["--help"]));
    assert!(help.contains("--format") && help.contains("csv"), "{help}");
}
