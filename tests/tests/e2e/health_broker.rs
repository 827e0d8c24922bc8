//! gRPC health follows the broker: SERVING while citytel is connected and subscribed,
//! NOT_SERVING while the broker is unreachable, SERVING again after it returns, with the
//! reconnect counted. Part of the `interop` group (a real Mosquitto).

use std::time::Duration;

use citytel_testkit::metrics::Scrape;
use citytel_testkit::mosquitto::Mosquitto;
use citytel_tests::process::Citytel;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Waits on the health Watch stream until the query service reports `want`.
async fn wait_for(
    stream: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
    want: ServingStatus,
) {
    let seen = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(update) = stream.next().await {
            if update.expect("health update").status() == want {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "health never reported {want:?}");
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_the_broker_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start(broker_dir.path())
        .await
        .expect("start mosquitto");
    let citytel = Citytel::start(
        dir.path(),
        &[
            "--broker-url",
            &mosquitto.url(),
            "--set",
            "broker.keep_alive=\"2s\"",
        ],
    );
    citytel.wait_serving().await;
    let metrics = citytel.metrics.clone().expect("metrics URL");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", citytel.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: "citytel.v1.QueryService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    wait_for(&mut watch, ServingStatus::Serving).await;

    let config = mosquitto.config().clone();
    mosquitto.stop().expect("stop mosquitto");
    wait_for(&mut watch, ServingStatus::NotServing).await;

    let _back = Mosquitto::launch(&config)
        .await
        .expect("start mosquitto again");
    wait_for(&mut watch, ServingStatus::Serving).await;
    let scrape = Scrape::fetch(&metrics).await;
    assert!(
        scrape.value("citytel_broker_reconnects_total") >= 1.0,
        "the reconnect is counted:\n{}",
        scrape.text
    );
}
