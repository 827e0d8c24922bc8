//! Shutdown does not wait for clients: the real binary, held by an open `WatchEvents` stream over
//! native gRPC and another over gRPC-Web (a raw HTTP/1.1 request, as the dashboard makes it),
//! exits successfully on SIGTERM well within `service.shutdown_timeout`, and both streams end
//! with UNAVAILABLE (grpc-status 14), which clients take as "reconnect later".

use std::time::{Duration, Instant};

use citytel_proto::v1::{FleetEvent, WatchEventsRequest};
use citytel_testkit::grpc_web::{self, Frame};
use citytel_testkit::http::StatusCode;
use citytel_tests::process::Citytel;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{batch_payload, now_ms, telemetry_topic};
use prost::Message as _;

/// The shutdown timeout the test runs citytel with. A stream that held the servers would keep
/// the process until it passed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the whole exit may take: intake, the final checkpoint and the servers, with room
/// for a loaded machine, and still far from the timeout.
const EXIT_LIMIT: Duration = Duration::from_secs(10);
/// How long a live event may take to reach a stream.
const EVENT_LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_streams_with_unavailable_and_exits_within_the_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let timeout = format!(
        "service.shutdown_timeout=\"{}s\"",
        SHUTDOWN_TIMEOUT.as_secs()
    );
    let citytel = Citytel::start(dir.path(), &["--set", &timeout]);

    let mut client = citytel.client().await;
    let mut native = client
        .watch_events(WatchEventsRequest::default())
        .await
        .expect("WatchEvents over gRPC")
        .into_inner();
    let mut web = grpc_web::call(
        citytel.dashboard_addr(),
        "/citytel.v1.QueryService/WatchEvents",
        &WatchEventsRequest::default().encode_to_vec(),
    )
    .await
    .expect("WatchEvents over gRPC-Web");
    assert_eq!(web.status, StatusCode::OK);
    assert!(
        web.headers.get("grpc-status").is_none(),
        "the gRPC-Web stream is open, not answered at once: {:?}",
        web.headers
    );

    // Both streams are live: a device's first reading reaches each of them.
    let mut device = RawClient::connect(citytel.mqtt.expect("endpoint"), "cab-hold").await;
    let payload = batch_payload("cab-hold", 1, &["power_w"], &[(1, now_ms(), vec![1.0])]);
    device
        .publish_acked(&telemetry_topic("cab-hold"), payload, 1)
        .await;
    let first = tokio::time::timeout(EVENT_LIMIT, native.message())
        .await
        .expect("an event over gRPC in time")
        .expect("the gRPC stream is healthy")
        .expect("the gRPC stream is open");
    assert_eq!(device_of(&first), "cab-hold");
    let first = tokio::time::timeout(EVENT_LIMIT, web.next())
        .await
        .expect("an event over gRPC-Web in time")
        .expect("the gRPC-Web stream is healthy");
    let Some(Frame::Message(bytes)) = first else {
        panic!("expected an event over gRPC-Web, got {first:?}");
    };
    let event = FleetEvent::decode(bytes).expect("a FleetEvent");
    assert_eq!(device_of(&event), "cab-hold");

    let started = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || citytel.stop());
    let native_end = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
        loop {
            match native.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    });
    let web_end = tokio::time::timeout(SHUTDOWN_TIMEOUT, web.finish());
    let (native_end, web_end) = tokio::join!(native_end, web_end);
    let exit = stopping.await.expect("the stopping thread");
    let took = started.elapsed();

    assert!(exit.success(), "citytel exits successfully, got {exit}");
    assert!(
        took < EXIT_LIMIT,
        "citytel took {took:?} to exit with open streams (shutdown timeout {SHUTDOWN_TIMEOUT:?})"
    );
    let native_end = native_end
        .expect("the gRPC stream ends before the shutdown timeout")
        .expect("the gRPC stream ends with a status, not a clean end");
    assert_eq!(
        native_end.code(),
        tonic::Code::Unavailable,
        "the gRPC stream's status: {native_end:?}"
    );
    let (_, web_status) = web_end
        .expect("the gRPC-Web stream ends before the shutdown timeout")
        .expect("the gRPC-Web answer reads to its end");
    assert_eq!(
        web_status.as_deref(),
        Some("14"),
        "the gRPC-Web stream's grpc-status"
    );
    drop(device);
}

/// The device an event is about.
fn device_of(event: &FleetEvent) -> &str {
    use citytel_proto::v1::fleet_event::Event;
    match &event.event {
        Some(Event::Transition(t)) => &t.device_id,
        Some(Event::Reboot(r)) => &r.device_id,
        None => "",
    }
}
