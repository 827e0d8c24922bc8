//! The running service: wires storage, the writer, a source, the gRPC API, the dashboard, the
//! metrics endpoint and the sinks together, and tears them down in phases.
//!
//! Start-up ([`start`]): open the data directory and replay the WAL, start the sink and the
//! writer thread, bind every listener, start the source and the servers. Every task hangs off
//! one root cancellation token (intake and serving are its children) and one task tracker.
//! Shutdown ([`teardown`]) is one routine whatever the reason (a signal, or storage failing):
//! stop intake, let the writer drain and checkpoint, flush the sinks, then end the servers and
//! their open streams, within `service.shutdown_timeout`.
//!
//! - [`bootstrap`]: the first admin key, when no admin key works.
//! - [`listeners`]: binding the listeners, with errors that name them.
//! - [`servers`]: the gRPC server, the dashboard and the metrics endpoint as tasks.
//! - [`health`]: what the gRPC health service reports, following the source and the sink.
//! - [`reload`]: certificates and the provisioning file reread on SIGHUP (and the file when it
//!   changes), without a restart.
//! - [`teardown`]: the phased shutdown.
//! - [`alerting`]: the alert rules put in force at start and on reload, and the receivers.

mod alerting;
mod bootstrap;
mod health;
mod listeners;
mod reload;
mod servers;
mod teardown;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::server::HealthReporter;

use crate::api::admin::AdminApi;
use crate::api::alerts::AlertApi;
use crate::api::auth::Authenticator;
use crate::api::report::ReportApi;
use crate::api::session::SessionApi;
use crate::api::{Api, query::QueryApi, reads::Reads};
use crate::clock::Clock;
use crate::config::{Settings, SourceSettings};
use crate::db::{Database, DbError, OpenReport, housekeeping};
use crate::exporter;
use crate::exporter::token::BearerToken;
use crate::net::fds::{self, ConnectionCaps};
use crate::net::tls::{self, ServerTls, TlsError};
use crate::pipeline::Pipeline;
use crate::pipeline::durability::Durability;
use crate::pipeline::writer::{CheckpointPolicy, Writer};
use crate::provisioning::Provisioning;
use crate::source::broker::BrokerSource;
use crate::source::endpoint::Endpoint;
use crate::source::endpoint::identity::{Authority, DeviceAuth};
use reload::Reloadable;

pub use crate::api::ApiServeError;
pub use crate::pipeline::writer::WriterStats;
pub use crate::source::broker::BrokerStats;
pub use crate::web::WebError;
pub use alerting::AlertsControl;
pub use bootstrap::key_path as admin_key_path;
pub use health::{SINK_HEALTH_SERVICE, STORAGE_HEALTH_SERVICE};

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Opening or replaying storage failed.
    #[error("cannot open storage in {dir}: {source}")]
    Storage {
        /// The data directory.
        dir: String,
        /// The error.
        source: DbError,
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
    /// A thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// Storage failed while running; nothing after the failure was acknowledged.
    #[error("storage failed, stopping without acknowledging more data: {0}")]
    Failed(DbError),
    /// A thread or task panicked.
    #[error("the {0} panicked")]
    Panicked(&'static str),
    /// The gRPC server failed.
    #[error(transparent)]
    Api(#[from] ApiServeError),
    /// The metrics endpoint could not be set up.
    #[error(transparent)]
    Metrics(exporter::ExporterError),
    /// The dashboard's HTTP server failed.
    #[error(transparent)]
    Web(#[from] WebError),
    /// The first admin key could not be created or written.
    #[error("cannot create the first admin key: {0}")]
    Bootstrap(String),
    /// A sink could not start or failed.
    #[error(transparent)]
    Sink(#[from] crate::sink::influxdb::SinkError),
    /// The configured alert rules could not be put in force.
    #[error("cannot put the alert rules in force: {0}")]
    Alerts(String),
    /// Alert notifications could not start or failed.
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    /// A listener's TLS files could not be loaded.
    #[error("TLS for {what}: {source}")]
    Tls {
        /// Which listener.
        what: &'static str,
        /// The error.
        source: TlsError,
    },
    /// The device provisioning file could not be read.
    #[error("device provisioning file: {0}")]
    Provisioning(#[from] crate::provisioning::FileError),
}

/// How the device endpoint treats devices, for the start-up banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAccess {
    /// Any client may publish for any device.
    Open,
    /// Devices authenticate and speak only for themselves.
    Authenticated {
        /// Devices in the provisioning file.
        provisioned: usize,
        /// Whether devices it does not list are admitted.
        auto_register: bool,
    },
}

/// A started service.
pub struct Running {
    /// Address of the MQTT device endpoint's plain listener, when it runs.
    pub mqtt_addr: Option<SocketAddr>,
    /// Address of its `mqtts` (TLS) listener, when it runs.
    pub mqtts_addr: Option<SocketAddr>,
    /// How devices are admitted, when the endpoint runs.
    pub devices: Option<DeviceAccess>,
    /// Whether the gRPC listener speaks TLS.
    pub grpc_tls: bool,
    /// Whether the dashboard's listener speaks TLS.
    pub http_tls: bool,
    /// Whether the metrics listener speaks TLS.
    pub metrics_tls: bool,
    /// Address of the gRPC API.
    pub grpc_addr: SocketAddr,
    /// Address of the web dashboard (and gRPC-Web), when it runs.
    pub http_addr: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint, when it runs.
    pub metrics_addr: Option<SocketAddr>,
    /// The shared state (for in-process callers such as tests and the demo).
    pub db: Arc<Database>,
    /// What opening the data directory found.
    pub opened: OpenReport,
    /// Whether the API needs keys.
    pub authentication: bool,
    /// The file a new admin key was written to at this start, if one was created.
    pub admin_key_file: Option<std::path::PathBuf>,
    /// Counters of the broker source, when it runs.
    pub broker_stats: Option<Arc<BrokerStats>>,
    /// Puts new alert rules in force (on SIGHUP).
    pub alerts: AlertsControl,
    parts: Parts,
}

/// What the teardown stops, in its order.
struct Parts {
    root: CancellationToken,
    intake: CancellationToken,
    writer_stop: CancellationToken,
    serving: CancellationToken,
    tasks: TaskTracker,
    source: tokio::task::JoinHandle<()>,
    servers: Vec<(
        &'static str,
        tokio::task::JoinHandle<Result<(), ServiceError>>,
    )>,
    writer_done: oneshot::Receiver<WriterResult>,
    health: HealthReporter,
    sink: Option<crate::sink::influxdb::Handle>,
    notifier: Option<crate::notify::Handle>,
    shutdown_timeout: Duration,
}

type WriterResult = std::thread::Result<Result<WriterStats, DbError>>;

/// Starts the service described by `settings`, with `clock` as the source of "now" (tests
/// script time with a manual clock; see [`Clock::manual`]).
pub async fn start(mut settings: Settings, clock: Clock) -> Result<Running, ServiceError> {
    tls::install_crypto_provider();
    let caps = connection_caps(&mut settings);
    let metrics_token = match &settings.metrics.bearer_token_file {
        Some(file) if settings.metrics_listen.is_some() => {
            Some(BearerToken::read(file).map_err(|e| ServiceError::Metrics(e.into()))?)
        }
        _ => None,
    };
    let (db, wal, opened) = open_storage(&settings, clock).await?;
    db.write()
        .alerts_mut()
        .set_outbox_limit(settings.alerts.config.outbox_limit);
    let root = CancellationToken::new();
    let tasks = TaskTracker::new();
    let (pipeline, queue) = Pipeline::with_clock(
        settings.ingest.limits(),
        settings.ingest.max_in_flight_bytes,
        clock,
    );
    // The sink sets its WAL hold before the writer can checkpoint.
    let sink = start_sink(&settings, &pipeline)?;
    let writer_stop = root.child_token();
    let (durability, storage) = Durability::channel();
    let writer_done = start_writer(
        &settings,
        &db,
        (wal, queue),
        clock,
        sink.as_ref(),
        (writer_stop.clone(), durability),
    )?;
    let alerts = AlertsControl::new(db.clone(), pipeline.clone());
    alerts
        .set_rules(&settings.alerts)
        .await
        .map_err(ServiceError::Alerts)?;
    let listeners = listeners::bind_all(&settings, &caps).await?;
    let mut reloadable = Reloadable {
        tls: listeners.tls.clone(),
        provisioning: None,
    };
    let (grpc_tls, http_tls, metrics_tls) = (
        settings.grpc.tls.enabled,
        settings.http_listen.is_some() && settings.http.tls.enabled,
        settings.metrics_listen.is_some() && settings.metrics.tls.enabled,
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    let intake = root.child_token();
    if let Some(sink) = &sink {
        tasks.spawn(health::follow_sink(
            sink.health(),
            health.clone(),
            intake.clone(),
        ));
    }
    let reads = Reads::new(
        settings.grpc.max_concurrent_reads,
        settings.grpc.request_timeout,
    );
    let auth = if settings.api.authentication {
        Authenticator::keys(
            db.clone(),
            clock,
            settings.api.rate_limit_per_key,
            settings.api.rate_limit_burst,
        )
    } else {
        tracing::warn!("API authentication is off: every caller can read and change everything");
        Authenticator::open()
    };
    let api = Api {
        query: QueryApi::new(db.clone(), pipeline.clone(), reads.clone(), clock),
        reports: ReportApi::new(db.clone(), reads, clock, settings.reports.clone()),
        admin: AdminApi::new(db.clone(), pipeline.clone(), clock),
        session: SessionApi::new(db.clone(), settings.api.authentication),
        alerts: AlertApi::new(db.clone(), pipeline.clone(), clock),
        auth,
    };
    let admin_key = match settings.api.authentication {
        true => bootstrap::admin_key(&settings, &db, &pipeline, clock).await?,
        false => None,
    };
    let serving = root.child_token();
    let mut servers = servers::Servers::new(&tasks, &serving);
    let metrics_addr = match listeners.metrics {
        Some(metrics) => Some(servers.metrics(metrics, (&db, &pipeline), metrics_token)?),
        None => None,
    };
    // After the metrics recorder is installed, so the receivers' first gauges are kept.
    let notifier = alerting::start_receivers(&settings, &db, clock)?;
    let started = start_source(settings.source, pipeline, &tasks, &intake).await?;
    let (mqtt_addr, mqtts_addr) = started.addrs.map_or((None, None), |a| (a.plain, a.tls));
    reloadable.tls.extend(started.tls.clone());
    reloadable.provisioning = started.provisioning.clone();
    let devices = started.devices;
    let (broker_stats, source, source_ready) = (started.broker_stats, started.task, started.ready);
    tasks.spawn(reloadable.run(intake.clone()));
    let (mut source_ready, mut storage) = (source_ready, storage);
    health::report(&mut source_ready, &mut storage, &health).await;
    tasks.spawn(health::follow(
        source_ready,
        storage,
        health.clone(),
        intake.clone(),
    ));
    let grpc_addr = servers.grpc(listeners.grpc, api.clone(), health_service);
    let http_addr = match listeners.http {
        Some(http) => Some(servers.web(http, api, &settings.http.allowed_hosts)?),
        None => None,
    };
    let servers = servers.into_list();
    tasks.close();

    Ok(Running {
        mqtt_addr,
        mqtts_addr,
        devices,
        grpc_tls,
        http_tls,
        metrics_tls,
        grpc_addr,
        http_addr,
        metrics_addr,
        db,
        opened,
        authentication: settings.api.authentication,
        admin_key_file: admin_key,
        broker_stats,
        alerts,
        parts: Parts {
            root,
            intake,
            writer_stop,
            serving,
            tasks,
            source,
            servers,
            writer_done,
            health,
            sink,
            notifier,
            shutdown_timeout: settings.service.shutdown_timeout,
        },
    })
}

/// Raises the open-file limit and derives the connection caps from it (see [`crate::net::fds`]);
/// the endpoint's cap goes into its settings.
fn connection_caps(settings: &mut Settings) -> ConnectionCaps {
    let limit = fds::raise_open_file_limit();
    let endpoint = match &settings.source {
        SourceSettings::Endpoint(config) => config.max_connections,
        SourceSettings::Broker(_) => 0,
    };
    let caps = ConnectionCaps::derive(
        limit.soft,
        settings.service.reserved_fds,
        fds::Configured {
            mqtt: endpoint,
            grpc: settings.grpc.max_connections,
            dashboard: settings.http.max_connections,
            metrics: settings.metrics.max_connections,
        },
    );
    if let SourceSettings::Endpoint(config) = &mut settings.source {
        config.max_connections = caps.mqtt;
    }
    tracing::info!(
        open_files = limit.soft,
        raised_from = limit.raised_from,
        reserved = caps.reserved,
        mqtt = caps.mqtt,
        grpc = caps.grpc,
        dashboard = caps.dashboard,
        metrics = caps.metrics,
        "connection caps"
    );
    if caps.total() > limit.soft {
        tracing::warn!(
            open_files = limit.soft,
            needed = caps.total(),
            "the configured connection caps and service.reserved_fds exceed the open-file limit: \
             storage may run out of descriptors under load (it waits rather than fail)"
        );
    }
    caps
}

/// Opens the data directory and replays the WAL, off the async workers.
async fn open_storage(
    settings: &Settings,
    clock: Clock,
) -> Result<(Arc<Database>, citytel_storage::wal::Wal, OpenReport), ServiceError> {
    let data_dir = settings.storage.data_dir.clone();
    let options = settings.store_options(clock);
    let opened = tokio::task::spawn_blocking(move || Database::open_service(&data_dir, &options))
        .await
        .map_err(|_| ServiceError::Panicked("storage opening task"))?;
    let (db, wal, report) = opened.map_err(|source| ServiceError::Storage {
        dir: settings.storage.data_dir.display().to_string(),
        source,
    })?;
    tracing::info!(
        data_dir = %settings.storage.data_dir.display(),
        records = report.replay.records,
        segments = report.replay.segments,
        corruptions = report.replay.corruptions,
        devices = db.read().registry().len(),
        "storage opened"
    );
    Ok((db, wal, report))
}

/// What [`start_source`] started.
struct Source {
    /// The endpoint's addresses.
    addrs: Option<crate::source::endpoint::Addresses>,
    /// How the endpoint admits devices.
    devices: Option<DeviceAccess>,
    /// The endpoint's provisioning file, when devices authenticate.
    provisioning: Option<Arc<Provisioning>>,
    /// The endpoint's `mqtts` listener.
    tls: Option<Arc<ServerTls>>,
    /// The broker source's counters.
    broker_stats: Option<Arc<BrokerStats>>,
    /// The source's task.
    task: tokio::task::JoinHandle<()>,
    /// Whether it can take messages.
    ready: tokio::sync::watch::Receiver<bool>,
}

/// Starts the message source (the device endpoint, or the broker source) until `intake` is
/// cancelled.
async fn start_source(
    source: SourceSettings,
    pipeline: Pipeline,
    tasks: &TaskTracker,
    intake: &CancellationToken,
) -> Result<Source, ServiceError> {
    match source {
        SourceSettings::Endpoint(config) => {
            let tls = match config.tls.files() {
                Some(files) => Some(ServerTls::load("mqtts", files, tls::ALPN_MQTT).map_err(
                    |source| ServiceError::Tls {
                        what: "the MQTT device endpoint",
                        source,
                    },
                )?),
                None => None,
            };
            let (auth, provisioning, devices) = if config.authentication {
                let provisioning = Provisioning::load(&config.devices_file)?;
                let provisioned = provisioning.snapshot().len();
                tracing::info!(
                    file = %config.devices_file.display(),
                    devices = provisioned,
                    auto_register = config.auto_register,
                    "device authentication on"
                );
                let authority = Authority::new(
                    provisioning.clone(),
                    config.auto_register,
                    config.tls.identity,
                );
                let access = DeviceAccess::Authenticated {
                    provisioned,
                    auto_register: config.auto_register,
                };
                (DeviceAuth::Required(authority), Some(provisioning), access)
            } else {
                tracing::warn!(
                    "device authentication is off: any client may publish for any device"
                );
                (DeviceAuth::Open, None, DeviceAccess::Open)
            };
            let endpoint = Endpoint::bind(config, pipeline, auth, tls.clone())
                .await
                .map_err(|(addr, source)| ServiceError::Bind {
                    what: "the MQTT device endpoint",
                    addr,
                    source,
                })?;
            let addrs = endpoint
                .local_addrs()
                .map_err(|source| ServiceError::Bind {
                    what: "the MQTT device endpoint",
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    source,
                })?;
            tracing::info!(plain = ?addrs.plain, tls = ?addrs.tls, "device endpoint listening");
            // Ready as soon as it listens.
            let (_, ready) = tokio::sync::watch::channel(true);
            let task = tasks.spawn(endpoint.run(intake.clone()));
            Ok(Source {
                addrs: Some(addrs),
                devices: Some(devices),
                provisioning,
                tls,
                broker_stats: None,
                task,
                ready,
            })
        }
        SourceSettings::Broker(broker) => {
            tracing::info!(host = %broker.host, port = broker.port, tls = broker.tls, client_id = %broker.config.client_id, "consuming from broker");
            let source =
                BrokerSource::new(broker, pipeline).map_err(|source| ServiceError::Tls {
                    what: "the broker connection",
                    source,
                })?;
            let stats = source.stats();
            let ready = source.ready();
            let task = tasks.spawn(source.run(intake.clone()));
            Ok(Source {
                addrs: None,
                devices: None,
                provisioning: None,
                tls: None,
                broker_stats: Some(stats),
                task,
                ready,
            })
        }
    }
}

/// Starts the writer thread, with the housekeeping thread that writes its checkpoints.
fn start_writer(
    settings: &Settings,
    db: &Arc<Database>,
    (wal, queue): (
        citytel_storage::wal::Wal,
        tokio::sync::mpsc::UnboundedReceiver<crate::pipeline::Queued>,
    ),
    clock: Clock,
    sink: Option<&crate::sink::influxdb::Handle>,
    (stop, durability): (CancellationToken, Durability),
) -> Result<oneshot::Receiver<WriterResult>, ServiceError> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let housekeeping = housekeeping::spawn(
        db.clone(),
        threads,
        housekeeping::Retention {
            dead_letters: settings.storage.dead_letter_retention,
            history: settings.history_retention,
            audit: settings.api.audit_retention,
        },
        clock,
    )
    .map_err(|source| ServiceError::Thread {
        what: "housekeeping",
        source,
    })?;
    let policy = CheckpointPolicy {
        interval: settings.storage.checkpoint_interval,
        housekeeping: Some(housekeeping),
        threads,
        clock,
        runtime: tokio::runtime::Handle::current(),
        gate: sink.map(|s| s.gate()),
        stop,
        durability,
        min_free_bytes: settings.storage.min_free_bytes,
    };
    let writer = Writer::new(queue, wal, db.clone(), policy)
        .limit_series(settings.ingest.max_series)
        .limit_devices(settings.ingest.max_devices)
        .limit_attributes(settings.ingest.attribute_limits());
    let (done, writer_done) = oneshot::channel();
    std::thread::Builder::new()
        .name("citytel-wal".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.run()));
            let _ = done.send(result);
        })
        .map_err(|source| ServiceError::Thread {
            what: "writer",
            source,
        })?;
    Ok(writer_done)
}

/// Starts the InfluxDB sink when it is enabled, or drops the WAL hold of a disabled one. Points
/// its server refuses become dead letters through the pipeline (and so the WAL).
fn start_sink(
    settings: &Settings,
    pipeline: &Pipeline,
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
    let pipeline = pipeline.clone();
    let dead_letters: crate::sink::DeadLetterFn = Arc::new(move |point| {
        let (topic, payload, rejection) = crate::sink::dead_letter(point);
        if pipeline.reject(topic, payload, rejection).is_err() {
            tracing::warn!("a point the sink's server refused arrived after intake stopped");
        }
    });
    Ok(Some(influxdb::start(influxdb::Options {
        config: config.clone(),
        data_dir,
        dead_letters,
    })?))
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
                teardown::run(self.parts, None).await
            }
            result = &mut self.parts.writer_done => {
                // The writer only ends on its own when storage failed.
                teardown::run(self.parts, Some(result)).await
            }
        }
    }

    /// The cursor of alert receiver `name`: every notification before it is confirmed.
    pub fn alert_confirmed(&self, name: &str) -> Option<u64> {
        self.parts.notifier.as_ref()?.confirmed(name)
    }

    /// Stops intake, drains the writer, flushes the sinks, then stops the servers. Returns the
    /// writer's totals.
    pub async fn shutdown(self) -> Result<WriterStats, ServiceError> {
        teardown::run(self.parts, None).await
    }
}
