//! What the gRPC health service reports: `citytel.v1.QueryService` serving while citytel can
//! ingest (with a broker source, only while it is connected and subscribed), and the InfluxDB
//! sink under [`SINK_HEALTH_SERVICE`] while it delivers.

use citytel_proto::v1::query_service_server::QueryServiceServer;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::query::QueryApi;

/// Health name of the InfluxDB sink: serving while it delivers, not serving while it is held
/// (e.g. the server answers 401/403).
pub const SINK_HEALTH_SERVICE: &str = "citytel.sink.influxdb";

/// Reports the query service as serving or not.
pub(super) async fn serving(health: &HealthReporter, serving: bool) {
    if serving {
        health.set_serving::<QueryServiceServer<QueryApi>>().await;
    } else {
        health
            .set_not_serving::<QueryServiceServer<QueryApi>>()
            .await;
    }
}

/// Mirrors the sink's health into the gRPC health service until `stop`.
pub(super) async fn follow_sink(
    mut healthy: tokio::sync::watch::Receiver<bool>,
    health: HealthReporter,
    stop: CancellationToken,
) {
    loop {
        let status = if *healthy.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        health.set_service_status(SINK_HEALTH_SERVICE, status).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = healthy.changed() => if changed.is_err() { return },
        }
    }
}

/// Reports the query service as serving only while the broker source is connected and
/// subscribed, until `stop`: dashboards and load balancers see at once when citytel cannot
/// ingest.
pub(super) async fn follow_broker(
    mut ready: tokio::sync::watch::Receiver<bool>,
    health: HealthReporter,
    stop: CancellationToken,
) {
    loop {
        let up = *ready.borrow_and_update();
        serving(&health, up).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = ready.changed() => if changed.is_err() { return },
        }
    }
}
