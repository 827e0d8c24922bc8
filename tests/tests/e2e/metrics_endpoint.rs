//! citytel's Prometheus endpoint on the real process: the counters move under load by exactly
//! what the fleet saw acknowledged, devices are counted by state, gRPC calls are counted by
//! method and by transport (native gRPC, and gRPC-Web as the dashboard calls), and no label
//! carries a device id.

use std::time::Duration;

use citytel_firmware_sim::fleet::BrokerAddr;
use citytel_firmware_sim::{Fleet, FleetConfig};
use citytel_proto::v1::ListDevicesRequest;
use citytel_testkit::grpc_web;
use citytel_testkit::metrics::Scrape;
use citytel_tests::process::Citytel;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_under_load_and_labels_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let citytel = Citytel::start(dir.path(), &[]);
    let url = citytel.metrics.clone().expect("the metrics URL is printed");
    let before = Scrape::fetch(&url).await;
    // A counter appears with its first increment: before any reading, absent or 0.
    assert_eq!(
        before.get("citytel_readings_stored_total").unwrap_or(0.0),
        0.0,
        "no reading stored yet"
    );

    let (host, port) = citytel.mqtt_host_port();
    let report = Fleet::new(FleetConfig {
        broker: BrokerAddr::new(host, port),
        cabinets: 2,
        small_cells: 2,
        sensors: 2,
        gateways: 1,
        children_per_gateway: 2,
        sites: 2,
        interval: Duration::from_millis(20),
        readings: Some(25),
        ..FleetConfig::default()
    })
    .unwrap()
    .run(CancellationToken::new(), None)
    .await
    .unwrap();
    let acked = report.totals.readings_acked;
    assert_eq!(acked, report.totals.readings_published);
    assert!(acked > 0);

    let mut client = citytel.client().await;
    let devices = client
        .list_devices(ListDevicesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .devices;
    // The dashboard's way in: gRPC-Web on the HTTP port, twice.
    let dashboard = citytel.dashboard_addr();
    for _ in 0..2 {
        let answer = grpc_web::call(
            dashboard,
            "/citytel.v1.QueryService/ListDevices",
            &ListDevicesRequest::default().encode_to_vec(),
        )
        .await
        .expect("gRPC-Web ListDevices");
        let (messages, status) = answer.finish().await.expect("the answer ends");
        assert_eq!((messages.len(), status.as_deref()), (1, Some("0")));
    }

    let after = Scrape::fetch(&url).await;
    assert_eq!(
        after.value("citytel_readings_stored_total"),
        acked as f64,
        "stored readings = readings the fleet saw acknowledged"
    );
    assert!(after.value("citytel_messages_received_total{source=\"endpoint\"}") > 0.0);
    assert_eq!(
        after.value("citytel_messages_acked_total"),
        after.value("citytel_messages_accepted_total"),
        "every accepted message acknowledged (QoS 1 fleet)"
    );
    assert!(after.value("citytel_wal_commits_total") > 0.0);
    assert!(after.value("citytel_wal_commit_seconds_count") > 0.0);
    assert_eq!(
        after.sum("citytel_devices_by_state"),
        devices.len() as f64,
        "every known device counted in exactly one state"
    );
    let requests = |transport: &str| {
        after.value(&format!(
            "citytel_grpc_requests_total{{transport=\"{transport}\",method=\"ListDevices\",code=\"0\"}}"
        ))
    };
    let latencies = |transport: &str| {
        after.value(&format!(
            "citytel_grpc_request_seconds_count{{transport=\"{transport}\",method=\"ListDevices\"}}"
        ))
    };
    assert_eq!(requests("grpc"), 1.0, "the native call");
    assert_eq!(latencies("grpc"), 1.0);
    assert_eq!(requests("grpc-web"), 2.0, "the dashboard's calls");
    assert_eq!(latencies("grpc-web"), 2.0);
    for series in after.series() {
        for device in &devices {
            assert!(
                !series.contains(&format!("\"{}\"", device.device_id)),
                "device id as a label: {series}"
            );
        }
    }
}
