//! The Prometheus endpoint: `GET /metrics` on its own HTTP listener.
//!
//! Counters, gauges and histograms recorded through the `metrics` facade land in one process-wide
//! Prometheus recorder (installed on first use; a process that starts the service twice, as tests
//! do, shares it). Gauges that describe current state rather than events (devices by state,
//! bytes in flight) are computed when Prometheus scrapes, so they are never stale and cost
//! nothing between scrapes. The listener is bound by citytel (port 0 works and the bound
//! address is printed), and the exporter crate only renders.
//!
//! - [`token`]: the bearer token `/metrics` requires when `metrics.bearer_token_file` is set.

pub mod token;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::db::Database;
use crate::net::listener::HttpListener;
use crate::pipeline::InFlight;
use crate::telemetry::metrics as m;
use citytel_availability::DeviceState;

/// Histogram buckets for latencies, in seconds (100 us to 10 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// Another metrics recorder was installed in this process first.
    #[error("cannot install the Prometheus recorder: {0}")]
    Install(String),
    /// Serving failed.
    #[error("metrics HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
    /// The bearer token could not be read.
    #[error(transparent)]
    Token(#[from] token::TokenError),
}

/// The process-wide Prometheus recorder, installed on first use.
pub(crate) fn handle() -> Result<PrometheusHandle, ExporterError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .map_err(|e| e.to_string())?;
            let handle = builder.install_recorder().map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(ExporterError::Install)
}

/// What the endpoint reads at scrape time.
#[derive(Clone)]
pub(crate) struct Sources {
    /// The stored state (device states).
    pub(crate) db: Arc<Database>,
    /// The pipeline's in-flight byte budget, when a source runs.
    pub(crate) in_flight: Option<InFlight>,
}

/// Serves `GET /metrics` on `listener` until `shutdown` is cancelled, to requests that carry
/// `token` when there is one.
pub(crate) async fn serve(
    listener: HttpListener,
    sources: Sources,
    token: Option<token::BearerToken>,
    shutdown: CancellationToken,
) -> Result<(), ExporterError> {
    let handle = handle()?;
    let upkeep = {
        let handle = handle.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = every.tick() => handle.run_upkeep(),
                }
            }
        })
    };
    let mut app = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            let sources = sources.clone();
            async move { scrape(&handle, &sources) }
        }),
    );
    if let Some(token) = token {
        app = app.layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(token),
            token::require,
        ));
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    upkeep.abort();
    Ok(served?)
}

/// Where the endpoint listens, for logs and the start-up banner.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/metrics")
}

fn scrape(handle: &PrometheusHandle, sources: &Sources) -> impl IntoResponse + use<> {
    record_state(sources);
    handle.run_upkeep();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}

/// Sets the gauges that describe current state.
fn record_state(sources: &Sources) {
    let mut counts = [0u64; DeviceState::ALL.len()];
    {
        let state = sources.db.read();
        for device in state.registry().iter_after(None) {
            let current = state.device_state(&device.device_id);
            counts[usize::from(current.code() - 1)] += 1;
        }
    }
    for (state, count) in DeviceState::ALL.iter().zip(counts) {
        metrics::gauge!(m::DEVICES_BY_STATE, "state" => state.as_str()).set(count as f64);
    }
    record_alerts(sources);
    if let Some(in_flight) = &sources.in_flight {
        metrics::gauge!(m::IN_FLIGHT_BYTES).set(in_flight.bytes() as f64);
    }
}

/// Sets `citytel_alerts{state,severity}`: open alerts, every combination (zero included).
fn record_alerts(sources: &Sources) {
    use crate::alerts::rule::Severity;
    use crate::alerts::view::Phase;
    let counts = sources.db.read().alerts().counts();
    for phase in [Phase::Pending, Phase::Firing] {
        for severity in Severity::ALL {
            let n = counts.get(&(phase, severity)).copied().unwrap_or(0);
            metrics::gauge!(m::ALERTS, "state" => phase.as_str(), "severity" => severity.as_str())
                .set(n as f64);
        }
    }
}

/// Help texts for the metrics Prometheus shows.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        m::MESSAGES_RECEIVED_TOTAL,
        "MQTT messages received, by source"
    );
    describe_counter!(m::MESSAGES_ACCEPTED_TOTAL, "Messages accepted and stored");
    describe_counter!(m::MESSAGES_REJECTED_TOTAL, "Messages rejected, by reason");
    describe_counter!(
        m::MESSAGES_ACKED_TOTAL,
        "Messages acknowledged after they became durable"
    );
    describe_counter!(m::READINGS_STORED_TOTAL, "Readings stored");
    describe_counter!(
        m::READINGS_DUPLICATE_TOTAL,
        "Readings dropped as duplicates of stored ones"
    );
    describe_counter!(m::WAL_BYTES_TOTAL, Unit::Bytes, "Bytes appended to the WAL");
    describe_counter!(m::WAL_COMMITS_TOTAL, "WAL group commits");
    describe_histogram!(
        m::WAL_COMMIT_SECONDS,
        Unit::Seconds,
        "Time a WAL group commit (write and fsync) took"
    );
    describe_counter!(m::WAL_CORRUPTIONS_TOTAL, "WAL repairs at start-up");
    describe_gauge!(
        m::IN_FLIGHT_BYTES,
        Unit::Bytes,
        "Bytes received and not yet acknowledged"
    );
    describe_gauge!(m::DEVICES_BY_STATE, "Known devices, by availability state");
    describe_gauge!(m::DEVICES, "Known devices");
    describe_gauge!(m::ALERTS, "Open alerts, by state and severity");
    describe_counter!(
        m::ALERT_NOTIFICATIONS_TOTAL,
        "Alert notifications, by receiver and outcome (sent, failed and retried, refused)"
    );
    describe_counter!(
        m::ALERT_NOTIFICATIONS_DROPPED_TOTAL,
        "Alert notifications dropped over alerts.outbox_limit before every receiver confirmed them"
    );
    describe_gauge!(
        m::ALERT_NOTIFICATIONS_PENDING,
        "Alert notifications not yet confirmed, by receiver"
    );
    describe_counter!(m::GRPC_REQUESTS_TOTAL, "gRPC requests, by method and code");
    describe_counter!(
        m::HTTP_REQUESTS_REFUSED_TOTAL,
        "HTTP requests refused (foreign Host or Origin, missing metrics token), by listener and reason"
    );
    describe_histogram!(
        m::GRPC_REQUEST_SECONDS,
        Unit::Seconds,
        "gRPC request latency until the response starts, by method"
    );
}

#[cfg(test)]
mod tests;
