//! What the gRPC health service reports: `citytel.v1.QueryService` (and the whole server, `""`)
//! serving while citytel can ingest, that is while its source can take messages (with a broker
//! source, only while it is connected and subscribed) and storage can make them durable; the
//! storage alone under [`STORAGE_HEALTH_SERVICE`]; and the InfluxDB sink under
//! [`SINK_HEALTH_SERVICE`] while it delivers. Queries are answered whatever health says.

use citytel_proto::v1::query_service_server::QueryServiceServer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::query::QueryApi;
use crate::pipeline::durability::Pause;

/// Health name of the InfluxDB sink: serving while it delivers, not serving while it is held
/// (e.g. the server answers 401/403).
pub const SINK_HEALTH_SERVICE: &str = "citytel.sink.influxdb";

/// Health name of the storage: not serving while the writer is paused (disk full, free space
/// below `storage.min_free_bytes`, no file descriptor left); the reason is in the log and in
/// `citytel_storage_paused{reason}`.
pub const STORAGE_HEALTH_SERVICE: &str = "citytel.storage";

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Reports the query service (and the server as a whole) as serving or not.
pub(super) async fn serving(health: &HealthReporter, serving: bool) {
    if serving {
        health.set_serving::<QueryServiceServer<QueryApi>>().await;
    } else {
        health
            .set_not_serving::<QueryServiceServer<QueryApi>>()
            .await;
    }
    health.set_service_status("", status(serving)).await;
}

/// Mirrors the sink's health into the gRPC health service until `stop`.
pub(super) async fn follow_sink(
    mut healthy: watch::Receiver<bool>,
    health: HealthReporter,
    stop: CancellationToken,
) {
    loop {
        let up = *healthy.borrow_and_update();
        health
            .set_service_status(SINK_HEALTH_SERVICE, status(up))
            .await;
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = healthy.changed() => if changed.is_err() { return },
        }
    }
}

/// Reports what the source and storage say now: the query service serving only while the
/// source is ready and storage is not paused, and the storage alone.
pub(super) async fn report(
    source_ready: &mut watch::Receiver<bool>,
    storage: &mut watch::Receiver<Option<Pause>>,
    health: &HealthReporter,
) {
    let paused = *storage.borrow_and_update();
    let ready = *source_ready.borrow_and_update();
    health
        .set_service_status(STORAGE_HEALTH_SERVICE, status(paused.is_none()))
        .await;
    serving(health, ready && paused.is_none()).await;
}

/// Reports (see [`report`]) whenever the source or storage changes, until `stop`: dashboards
/// and load balancers see at once when citytel cannot ingest. The caller reports once before
/// the gRPC server starts, so a health check never finds the query service unregistered.
pub(super) async fn follow(
    mut source_ready: watch::Receiver<bool>,
    mut storage: watch::Receiver<Option<Pause>>,
    health: HealthReporter,
    stop: CancellationToken,
) {
    // A channel whose sender is gone keeps its last value.
    let (mut source_open, mut storage_open) = (true, true);
    loop {
        report(&mut source_ready, &mut storage, &health).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = source_ready.changed(), if source_open => source_open = changed.is_ok(),
            changed = storage.changed(), if storage_open => storage_open = changed.is_ok(),
        }
    }
}
