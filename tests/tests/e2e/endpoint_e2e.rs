//! End to end through citytel's own MQTT device endpoint: the real `citytel serve` process on
//! free ports, a simulated fleet of ordinary MQTT clients (rumqttc's, over MQTT 3.1.1 and over
//! MQTT 5), and a gRPC client that must see exactly what the fleet saw acknowledged, also after a
//! restart.

use citytel_firmware_sim::FleetConfig;
use citytel_firmware_sim::load::MqttVersion;
use citytel_proto::v1::{GetDeviceRequest, GetLatestRequest, QueryRangeRequest};
use citytel_tests::fleet;
use citytel_tests::process::Citytel;
use citytel_tests::truth;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_readings_are_queryable_and_survive_a_restart_over_mqtt311() {
    published_readings_are_queryable_and_survive_a_restart(MqttVersion::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_readings_are_queryable_and_survive_a_restart_over_mqtt5() {
    published_readings_are_queryable_and_survive_a_restart(MqttVersion::V5).await;
}

async fn published_readings_are_queryable_and_survive_a_restart(version: MqttVersion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let citytel = Citytel::start(dir.path(), &[]);
    let (host, port) = citytel.mqtt_host_port();
    let report = fleet::run(FleetConfig {
        mqtt_version: version,
        ..fleet::small(host, port, 30)
    })
    .await;
    assert!(report.totals.errors == 0, "{:?}", report.totals);
    assert_eq!(
        report.devices.len(),
        12,
        "9 devices, a gateway and its 2 children"
    );

    let mut client = citytel.client().await;
    truth::assert_matches(&mut client, &report).await;

    // Births carried firmware and interval; children are known to be behind their gateway.
    let child = client
        .get_device(GetDeviceRequest {
            device_id: "gw-0001-s01".into(),
        })
        .await
        .expect("GetDevice")
        .into_inner()
        .device
        .expect("the child is known");
    assert_eq!(child.gateway_id.as_deref(), Some("gw-0001"));
    assert!(child.firmware_version.is_some());
    assert_eq!(child.reporting_interval_ms, Some(20));

    // The latest value of each metric is the last acknowledged reading.
    let cab = report.device("cab-0001").expect("the fleet has cab-0001");
    let last = cab
        .acked_readings
        .iter()
        .max_by_key(|r| r.time_unix_ms)
        .expect("cab-0001 had readings acknowledged");
    let latest = client
        .get_latest(GetLatestRequest {
            device_id: "cab-0001".into(),
        })
        .await
        .expect("GetLatest")
        .into_inner();
    assert_eq!(latest.values.len(), cab.metric_names.len());
    for value in &latest.values {
        let i = cab
            .metric_names
            .iter()
            .position(|m| *m == value.metric)
            .expect("a metric of the device");
        assert_eq!(value.time_unix_ms, last.time_unix_ms);
        assert_eq!(value.value.to_bits(), last.values[i].to_bits());
    }

    let status = citytel.stop();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let citytel = Citytel::start(dir.path(), &[]);
    let mut client = citytel.client().await;
    truth::assert_matches(&mut client, &report).await;
    assert!(citytel.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_map_to_grpc_codes() {
    let dir = tempfile::tempdir().unwrap();
    let citytel = Citytel::start(dir.path(), &[]);
    let mut client = citytel.client().await;

    let missing = client
        .get_device(GetDeviceRequest {
            device_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert!(missing.message().contains("nope"));

    let empty = client
        .get_latest(GetLatestRequest {
            device_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    let backwards = client
        .query_range(QueryRangeRequest {
            device_id: "cab-0001".into(),
            metric: "temperature_c".into(),
            start_unix_ms: 10,
            end_unix_ms: 5,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), tonic::Code::InvalidArgument);
    assert!(backwards.message().contains("end_unix_ms"));
    assert!(citytel.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer_for_grpc_tools() {
    use tokio_stream::StreamExt;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

    let dir = tempfile::tempdir().unwrap();
    let citytel = Citytel::start(dir.path(), &[]);
    let url = format!("http://{}", citytel.grpc);
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "citytel.v1.QueryService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    // grpcurl 1.8 uses v1alpha, newer tools v1: both must list the query service.
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel.clone())
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = stream.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("expected a service list");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(
            names.contains(&"citytel.v1.QueryService".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"grpc.health.v1.Health".to_string()),
            "{names:?}"
        );
    }
    {
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = stream.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("expected a service list");
        };
        assert!(
            list.service
                .iter()
                .any(|s| s.name == "citytel.v1.QueryService")
        );
    }
    assert!(citytel.stop().success());
}
