//! The running service: wires storage, the writer, a source and the gRPC API together, and tears
//! them down in phases.
//!
//! Start-up: open the data directory and replay the WAL, start the writer thread, bind the gRPC
//! listener and the source, then report the bound addresses. Shutdown: stop intake (sources stop
//! reading and flush acknowledgements of what they already handed in), let the writer drain and
//! commit the queue, stop the gRPC server after in-flight calls, exit. A WAL failure stops the
//! service with an error instead of acknowledging anything more.

use std::net::SocketAddr;
use std::sync::Arc;

use citytel_proto::v1::query_service_server::QueryServiceServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;

use crate::api::{self, query::QueryApi};
use crate::clock::Clock;
use crate::config::{Settings, SourceSettings};
use crate::decode::Limits;
use crate::pipeline::Pipeline;
use crate::pipeline::writer::{CheckpointPolicy, Writer, WriterStats};
use crate::source::broker::{BrokerSource, BrokerStats};
use crate::source::endpoint::Endpoint;
use crate::store::wal::ReplayStats;
use crate::store::{Database, StoreError, maintenance};
use crate::telemetry::exporter;
use crate::web;

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Opening or replaying storage failed.
    #[error("cannot open storage in {dir}: {source}")]
    Storage {
        /// The data directory.
        dir: String,
        /// The error.
        source: StoreError,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the writer thread: {0}")]
    Thread(std::io::Error),
    /// Storage failed while running; nothing after the failure was acknowledged.
    #[error("storage failed, stopping without acknowledging more data: {0}")]
    Failed(StoreError),
    /// The writer thread panicked.
    #[error("the writer thread panicked")]
    WriterPanicked,
    /// The gRPC server failed.
    #[error(transparent)]
    Api(#[from] api::ApiServeError),
    /// The metrics endpoint could not be set up.
    #[error(transparent)]
    Metrics(exporter::ExporterError),
    /// The dashboard's HTTP server failed.
    #[error(transparent)]
    Web(#[from] web::WebError),
    /// A sink could not start or failed.
    #[error(transparent)]
    Sink(#[from] crate::sink::influxdb::SinkError),
}

/// A started service.
pub struct Running {
    /// Address of the MQTT device endpoint, when it runs.
    pub mqtt_addr: Option<SocketAddr>,
    /// Address of the gRPC API.
    pub grpc_addr: SocketAddr,
    /// Address of the web dashboard (and gRPC-Web), when it runs.
    pub http_addr: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint, when it runs.
    pub metrics_addr: Option<SocketAddr>,
    /// The shared state (for in-process callers such as tests and the demo).
    pub db: Arc<Database>,
    /// What the WAL replay found at start-up.
    pub replay: ReplayStats,
    /// Counters of the broker source, when it runs.
    pub broker_stats: Option<Arc<BrokerStats>>,
    intake: CancellationToken,
    api_shutdown: CancellationToken,
    source: JoinHandle<()>,
    api: JoinHandle<Result<(), api::ApiServeError>>,
    web_shutdown: CancellationToken,
    web: Option<JoinHandle<Result<(), web::WebError>>>,
    metrics_shutdown: CancellationToken,
    writer_done: oneshot::Receiver<WriterResult>,
    health: HealthReporter,
    sink: Option<crate::sink::influxdb::Handle>,
}

type WriterResult = std::thread::Result<Result<WriterStats, StoreError>>;

/// Starts the service described by `settings`.
pub async fn start(settings: Settings) -> Result<Running, ServiceError> {
    start_with_clock(settings, Clock::System).await
}

/// Starts the service with `clock` as the source of "now" (tests script time with a paused
/// tokio clock; see [`Clock::tokio`]).
pub async fn start_with_clock(settings: Settings, clock: Clock) -> Result<Running, ServiceError> {
    let data_dir = settings.storage.data_dir.clone();
    let options = settings.store_options(clock);
    let opened = tokio::task::spawn_blocking(move || Database::open(&data_dir, &options))
        .await
        .map_err(|_| ServiceError::WriterPanicked)?;
    let (db, wal, replay) = opened.map_err(|source| ServiceError::Storage {
        dir: settings.storage.data_dir.display().to_string(),
        source,
    })?;
    tracing::info!(
        data_dir = %settings.storage.data_dir.display(),
        records = replay.records,
        segments = replay.segments,
        corruptions = replay.corruptions,
        devices = db.read().registry.len(),
        "storage opened"
    );

    let (pipeline, queue) = Pipeline::with_clock(
        Limits::from(&settings.ingest),
        settings.ingest.max_in_flight_bytes,
        clock,
    );
    // The sink sets its WAL hold before the writer can checkpoint.
    let sink = start_sink(&settings, &db)?;
    let (writer_tx, writer_done) = oneshot::channel();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let policy = CheckpointPolicy {
        interval: settings.storage.checkpoint_interval,
        maintenance: Some(
            maintenance::spawn(db.clone(), threads, settings.storage.dead_letter_retention)
                .map_err(ServiceError::Thread)?,
        ),
        threads,
        clock,
        runtime: tokio::runtime::Handle::current(),
        gate: sink.as_ref().map(|s| s.gate()),
    };
    let writer =
        Writer::new(queue, wal, db.clone(), policy).limit_series(settings.ingest.max_series);
    std::thread::Builder::new()
        .name("citytel-wal".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.run()));
            let _ = writer_tx.send(result);
        })
        .map_err(ServiceError::Thread)?;

    let grpc_listener = TcpListener::bind(settings.grpc_listen)
        .await
        .map_err(|source| ServiceError::Bind {
            what: "gRPC",
            addr: settings.grpc_listen,
            source,
        })?;
    let grpc_addr = grpc_listener
        .local_addr()
        .map_err(|source| ServiceError::Bind {
            what: "gRPC",
            addr: settings.grpc_listen,
            source,
        })?;
    let http_listener = match settings.http_listen {
        Some(addr) => Some(bind_http(addr, "the web dashboard").await?),
        None => None,
    };
    let metrics_shutdown = CancellationToken::new();
    let metrics_addr = match settings.metrics_listen {
        Some(addr) => {
            let (listener, addr) = bind_http(addr, "the metrics endpoint").await?;
            let sources = exporter::Sources {
                db: db.clone(),
                in_flight: Some(pipeline.in_flight()),
            };
            exporter::handle().map_err(ServiceError::Metrics)?;
            let stop = metrics_shutdown.clone();
            tokio::spawn(async move {
                if let Err(e) = exporter::serve(listener, sources, stop).await {
                    tracing::error!(error = %e, "metrics endpoint stopped");
                }
            });
            tracing::info!(url = %exporter::url(addr), "metrics endpoint listening");
            Some(addr)
        }
        None => None,
    };

    let intake = CancellationToken::new();
    let (health, health_service) = tonic_health::server::health_reporter();
    if let Some(sink) = &sink {
        tokio::spawn(follow_sink(sink.health(), health.clone(), intake.clone()));
    }
    let (mqtt_addr, broker_stats, source) = match settings.source {
        SourceSettings::Endpoint(config) => {
            let listen = config.listen;
            let endpoint =
                Endpoint::bind(config, pipeline)
                    .await
                    .map_err(|source| ServiceError::Bind {
                        what: "the MQTT device endpoint",
                        addr: listen,
                        source,
                    })?;
            let addr = endpoint.local_addr().map_err(|source| ServiceError::Bind {
                what: "the MQTT device endpoint",
                addr: listen,
                source,
            })?;
            tracing::info!(%addr, "device endpoint listening");
            health.set_serving::<QueryServiceServer<QueryApi>>().await;
            (Some(addr), None, tokio::spawn(endpoint.run(intake.clone())))
        }
        SourceSettings::Broker(broker) => {
            tracing::info!(host = %broker.host, port = broker.port, client_id = %broker.config.client_id, "consuming from broker");
            let source = BrokerSource::new(broker, pipeline);
            let stats = source.stats();
            health
                .set_not_serving::<QueryServiceServer<QueryApi>>()
                .await;
            tokio::spawn(follow_broker(
                source.ready(),
                health.clone(),
                intake.clone(),
            ));
            (None, Some(stats), tokio::spawn(source.run(intake.clone())))
        }
    };
    let api_shutdown = CancellationToken::new();
    let api = tokio::spawn(api::serve(
        grpc_listener,
        QueryApi::with_clock(db.clone(), clock),
        health_service,
        api_shutdown.clone(),
    ));
    tracing::info!(%grpc_addr, "gRPC query service listening");
    let web_shutdown = CancellationToken::new();
    let (http_addr, web) = match http_listener {
        Some((listener, addr)) => {
            let api = QueryApi::with_clock(db.clone(), clock);
            let server = tokio::spawn(web::serve(listener, api, web_shutdown.clone()));
            tracing::info!(%addr, "web dashboard listening");
            (Some(addr), Some(server))
        }
        None => (None, None),
    };

    Ok(Running {
        mqtt_addr,
        grpc_addr,
        http_addr,
        metrics_addr,
        db,
        replay,
        broker_stats,
        intake,
        api_shutdown,
        source,
        api,
        web_shutdown,
        web,
        metrics_shutdown,
        writer_done,
        health,
        sink,
    })
}

/// Starts the InfluxDB sink when it is enabled, or drops the WAL hold of a disabled one.
fn start_sink(
    settings: &Settings,
    db: &Arc<Database>,
) -> Result<Option<crate::sink::influxdb::Handle>, ServiceError> {
    use crate::sink::influxdb;
    let data_dir = settings.storage.data_dir.clone();
    let config = &settings.sink.influxdb;
    if !config.enabled {
        if influxdb::release(&data_dir).map_err(|e| ServiceError::Sink(e.into()))? {
            tracing::info!("influxdb sink disabled; its WAL hold is released");
        }
        return Ok(None);
    }
    let letters = Arc::downgrade(db);
    let dead_letters: crate::sink::DeadLetterFn = Arc::new(move |point| {
        if let Some(db) = letters.upgrade() {
            db.write()
                .dead_letters
                .push(crate::sink::dead_letter(point));
        }
    });
    Ok(Some(influxdb::start(influxdb::Options {
        config: config.clone(),
        data_dir,
        dead_letters,
    })?))
}

/// Health name of the InfluxDB sink: serving while it delivers, not serving while it is held
/// (e.g. the server answers 401/403).
pub const SINK_HEALTH_SERVICE: &str = "citytel.sink.influxdb";

/// Mirrors the sink's health into the gRPC health service.
async fn follow_sink(
    mut healthy: tokio::sync::watch::Receiver<bool>,
    health: HealthReporter,
    stop: CancellationToken,
) {
    use tonic_health::ServingStatus;
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

/// Binds an HTTP listener (`what` names it in errors); returns it with the address it got.
async fn bind_http(
    addr: SocketAddr,
    what: &'static str,
) -> Result<(TcpListener, SocketAddr), ServiceError> {
    let bind_error = |source| ServiceError::Bind { what, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Reports the query service as serving only while the broker source is connected and
/// subscribed: dashboards and load balancers see at once when citytel cannot ingest.
async fn follow_broker(
    mut ready: tokio::sync::watch::Receiver<bool>,
    health: HealthReporter,
    stop: CancellationToken,
) {
    loop {
        if *ready.borrow_and_update() {
            health.set_serving::<QueryServiceServer<QueryApi>>().await;
        } else {
            health
                .set_not_serving::<QueryServiceServer<QueryApi>>()
                .await;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = ready.changed() => if changed.is_err() { return },
        }
    }
}

impl Running {
    /// Runs until `stop` resolves (e.g. a signal) or storage fails, then shuts down in phases.
    pub async fn run_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<WriterStats, ServiceError> {
        tokio::select! {
            _ = stop => {
                tracing::info!("shutting down");
                self.shutdown().await
            }
            result = &mut self.writer_done => {
                // The writer only ends on its own when storage failed.
                self.health.set_not_serving::<QueryServiceServer<QueryApi>>().await;
                self.intake.cancel();
                self.api_shutdown.cancel();
                self.web_shutdown.cancel();
                self.metrics_shutdown.cancel();
                let _ = self.source.await;
                let _ = self.api.await;
                if let Some(web) = self.web {
                    let _ = web.await;
                }
                if let Some(sink) = self.sink {
                    let _ = sink.stop().await;
                }
                writer_outcome(result)
            }
        }
    }

    /// Stops intake, drains the writer, then stops the API and the dashboard. Returns the
    /// writer's totals.
    pub async fn shutdown(self) -> Result<WriterStats, ServiceError> {
        self.intake.cancel();
        let _ = self.source.await;
        if let Some(sink) = &self.sink {
            // The writer must not wait for the sink while it drains.
            sink.gate().release();
        }
        let stats = writer_outcome(self.writer_done.await);
        // Flush sinks with a timeout: what the WAL holds for them after the final checkpoint.
        let sink = match self.sink {
            Some(sink) => sink.shutdown().await,
            None => Ok(()),
        };
        self.health
            .set_not_serving::<QueryServiceServer<QueryApi>>()
            .await;
        self.api_shutdown.cancel();
        let api = self.api.await;
        self.web_shutdown.cancel();
        self.metrics_shutdown.cancel();
        if let Some(web) = self.web
            && let Ok(Err(e)) = web.await
        {
            return Err(e.into());
        }
        if let Ok(Err(e)) = api {
            return Err(e.into());
        }
        let stats = stats?;
        sink?;
        tracing::info!(
            accepted = stats.accepted,
            rejected = stats.rejected,
            readings = stats.readings_stored,
            "stopped"
        );
        Ok(stats)
    }
}

fn writer_outcome(
    result: Result<WriterResult, oneshot::error::RecvError>,
) -> Result<WriterStats, ServiceError> {
    match result {
        Ok(Ok(Ok(stats))) => Ok(stats),
        Ok(Ok(Err(e))) => Err(ServiceError::Failed(e)),
        Ok(Err(_)) | Err(_) => Err(ServiceError::WriterPanicked),
    }
}
