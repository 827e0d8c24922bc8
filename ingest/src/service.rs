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
    /// The dashboard's HTTP server failed.
    #[error(transparent)]
    Web(#[from] web::WebError),
}

/// A started service.
pub struct Running {
    /// Address of the MQTT device endpoint, when it runs.
    pub mqtt_addr: Option<SocketAddr>,
    /// Address of the gRPC API.
    pub grpc_addr: SocketAddr,
    /// Address of the web dashboard (and gRPC-Web), when it runs.
    pub http_addr: Option<SocketAddr>,
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
    writer_done: oneshot::Receiver<WriterResult>,
    health: HealthReporter,
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
    let (writer_tx, writer_done) = oneshot::channel();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let policy = CheckpointPolicy {
        interval: settings.storage.checkpoint_interval,
        maintenance: Some(maintenance::spawn(db.clone(), threads).map_err(ServiceError::Thread)?),
        threads,
        clock,
        runtime: tokio::runtime::Handle::current(),
    };
    let writer = Writer::new(queue, wal, db.clone(), policy);
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
        Some(addr) => Some(bind_http(addr).await?),
        None => None,
    };

    let intake = CancellationToken::new();
    let (health, health_service) = tonic_health::server::health_reporter();
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
        db,
        replay,
        broker_stats,
        intake,
        api_shutdown,
        source,
        api,
        web_shutdown,
        web,
        writer_done,
        health,
    })
}

/// Binds the web dashboard's listener; returns it with the address it got.
async fn bind_http(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServiceError> {
    let bind_error = |source| ServiceError::Bind {
        what: "the web dashboard",
        addr,
        source,
    };
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
                let _ = self.source.await;
                let _ = self.api.await;
                if let Some(web) = self.web {
                    let _ = web.await;
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
        let stats = writer_outcome(self.writer_done.await);
        self.health
            .set_not_serving::<QueryServiceServer<QueryApi>>()
            .await;
        self.api_shutdown.cancel();
        let api = self.api.await;
        self.web_shutdown.cancel();
        if let Some(web) = self.web
            && let Ok(Err(e)) = web.await
        {
            return Err(e.into());
        }
        if let Ok(Err(e)) = api {
            return Err(e.into());
        }
        let stats = stats?;
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
