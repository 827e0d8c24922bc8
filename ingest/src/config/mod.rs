//! Configuration: one TOML file, overridable by environment variables and flags.
//!
//! The shipped `citytel.toml` is the single source of defaults. [`load`] layers, in order: the
//! built-in defaults, an optional config file, then `key=value` overrides (from flags and the
//! environment). The merged table is deserialized with `deny_unknown_fields`, so a typo is an
//! error, and [`Config::validate`] turns it into the runtime [`Settings`] the service runs with.

mod load;
mod sections;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use load::{DEFAULT_TOML, load, load_str};
pub use sections::HttpConfig;
pub use sections::MetricsConfig;
pub use sections::SinkConfig;
pub use sections::{
    ApiConfig, AvailabilityConfig, BrokerConfig, CertIdentity, EndpointConfig, EndpointTlsConfig,
    GrpcConfig, IngestConfig, ListenerTlsConfig, LogConfig, LogFormat, MaintenanceConfig,
    ServiceConfig, SparkplugConfig, StorageConfig,
};

mod tls;

/// Everything `citytel serve` can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where and how data is persisted.
    pub storage: StorageConfig,
    /// citytel's own MQTT device endpoint.
    pub endpoint: EndpointConfig,
    /// An external MQTT broker to consume from instead of the endpoint.
    pub broker: BrokerConfig,
    /// citytel as a Sparkplug B host application.
    pub sparkplug: SparkplugConfig,
    /// Validation limits and the in-flight budget of the ingest pipeline.
    pub ingest: IngestConfig,
    /// Device availability rules.
    pub availability: AvailabilityConfig,
    /// The gRPC query service.
    pub grpc: GrpcConfig,
    /// The operator web dashboard, with the query service over gRPC-Web.
    pub http: HttpConfig,
    /// citytel's own Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// Who may call the API.
    pub api: ApiConfig,
    /// The process as a whole.
    pub service: ServiceConfig,
    /// Logging.
    pub log: LogConfig,
    /// Sinks fed from the WAL.
    pub sink: SinkConfig,
    /// Alert rules and notification receivers.
    pub alerts: crate::alerts::config::AlertsConfig,
    /// District reports: grid carbon intensity and air-quality limits.
    pub reports: crate::reports::config::ReportsConfig,
}

/// A configuration error, with the offending key where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML could not be parsed or does not match the expected shape.
    #[error("invalid configuration in {origin}: {message}")]
    Parse {
        /// Where the TOML came from (a path, "defaults" or "overrides").
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// An override is not of the form `section.key=value`.
    #[error("invalid override {0:?}: expected section.key=value")]
    Override(String),
    /// An alert rule or receiver does not validate (the error names it and its key).
    #[error("invalid alerting configuration: {0}")]
    Alerts(#[from] crate::alerts::config::AlertConfigError),
    /// A value is out of range or inconsistent with another.
    #[error("invalid value for {key}: {message}")]
    Invalid {
        /// The key, e.g. `broker.url`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl From<crate::reports::config::ReportsConfigError> for ConfigError {
    fn from(e: crate::reports::config::ReportsConfigError) -> Self {
        ConfigError::Invalid {
            key: e.key,
            message: e.message,
        }
    }
}

/// Where messages come from: citytel's own device endpoint, or an external broker.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSettings {
    /// Devices connect to citytel's MQTT endpoint.
    Endpoint(EndpointConfig),
    /// citytel subscribes to an external broker.
    Broker(BrokerSettings),
}

/// A validated broker configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerSettings {
    /// Broker host name or address.
    pub host: String,
    /// Broker TCP port.
    pub port: u16,
    /// Whether the connection is TLS (`mqtts://`).
    pub tls: bool,
    /// The rest of the broker section.
    pub config: BrokerConfig,
    /// The Sparkplug B host application, when `sparkplug.enabled`.
    pub sparkplug: Option<crate::sparkplug::SparkplugSettings>,
}

/// The validated runtime settings the service starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Storage settings.
    pub storage: StorageConfig,
    /// The message source.
    pub source: SourceSettings,
    /// Ingest limits.
    pub ingest: IngestConfig,
    /// The fleet tracker's settings.
    pub availability: crate::state::StateOptions,
    /// How long the state history is kept (`None`: forever).
    pub history_retention: Option<std::time::Duration>,
    /// The gRPC API.
    pub grpc: GrpcConfig,
    /// Address of the dashboard's HTTP server; `None` when it is disabled.
    pub http_listen: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint; `None` when it is disabled.
    pub metrics_listen: Option<SocketAddr>,
    /// The dashboard's server.
    pub http: HttpConfig,
    /// The metrics endpoint's server.
    pub metrics: MetricsConfig,
    /// Who may call the API.
    pub api: ApiConfig,
    /// The process as a whole.
    pub service: ServiceConfig,
    /// Logging.
    pub log: LogConfig,
    /// Sinks fed from the WAL.
    pub sink: SinkConfig,
    /// Alert rules and receivers.
    pub alerts: crate::alerts::config::AlertSettings,
    /// District reports.
    pub reports: crate::reports::config::ReportSettings,
}

impl Config {
    /// Checks ranges and cross-field rules and resolves the message source.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_string(),
        };
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty"));
        }
        if self.storage.wal_segment_bytes < 64 * 1024 {
            return Err(invalid(
                "storage.wal_segment_bytes",
                "must be at least 65536",
            ));
        }
        let longer = |a: Option<std::time::Duration>, b: Option<std::time::Duration>| match (a, b) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a >= b,
        };
        if !longer(self.storage.retention_minute, self.storage.retention_raw) {
            return Err(invalid(
                "storage.retention_minute",
                "must be at least storage.retention_raw (minute rollups are made from raw data)",
            ));
        }
        if !longer(self.storage.retention_hour, self.storage.retention_minute) {
            return Err(invalid(
                "storage.retention_hour",
                "must be at least storage.retention_minute",
            ));
        }
        if self.storage.head_max_points < 1000 {
            return Err(invalid("storage.head_max_points", "must be at least 1000"));
        }
        if self.storage.checkpoint_interval < std::time::Duration::from_secs(1) {
            return Err(invalid(
                "storage.checkpoint_interval",
                "must be at least 1s",
            ));
        }
        if self.storage.dead_letter_payload_bytes > crate::journal::DEAD_LETTER_PAYLOAD_CAP {
            return Err(invalid(
                "storage.dead_letter_payload_bytes",
                "must be at most 65536 (what a WAL entry keeps)",
            ));
        }
        if self.storage.dead_letter_bytes < self.storage.dead_letter_payload_bytes + 4096 {
            return Err(invalid(
                "storage.dead_letter_bytes",
                "must exceed storage.dead_letter_payload_bytes by at least 4096",
            ));
        }
        if self.endpoint.max_packet_bytes < 1024 {
            return Err(invalid(
                "endpoint.max_packet_bytes",
                "must be at least 1024",
            ));
        }
        if self.endpoint.receive_maximum == 0 {
            return Err(invalid(
                "endpoint.receive_maximum",
                "must be at least 1 (MQTT 5 does not allow 0)",
            ));
        }
        if self.endpoint.max_discard_bytes < self.endpoint.max_packet_bytes {
            return Err(invalid(
                "endpoint.max_discard_bytes",
                "must be at least endpoint.max_packet_bytes",
            ));
        }
        if self.endpoint.max_connections_per_ip == 0
            || self.endpoint.connect_burst_per_ip == 0
            || self.endpoint.failed_connects_per_ip == 0
        {
            return Err(invalid(
                "endpoint.max_connections_per_ip",
                "the per-address limits (max_connections_per_ip, connect_burst_per_ip, \
                 failed_connects_per_ip) must be at least 1",
            ));
        }
        if self.endpoint.connect_rate_per_ip.is_nan() || self.endpoint.connect_rate_per_ip <= 0.0 {
            return Err(invalid("endpoint.connect_rate_per_ip", "must be above 0"));
        }
        if self.endpoint.max_client_id_bytes == 0 {
            return Err(invalid(
                "endpoint.max_client_id_bytes",
                "must be at least 1",
            ));
        }
        if self.endpoint.max_keep_alive < std::time::Duration::from_secs(1) {
            return Err(invalid("endpoint.max_keep_alive", "must be at least 1s"));
        }
        if self.ingest.max_payload_bytes == 0 {
            return Err(invalid("ingest.max_payload_bytes", "must be at least 1"));
        }
        if self.ingest.max_in_flight_bytes < self.ingest.max_payload_bytes as u64 + 1024 {
            return Err(invalid(
                "ingest.max_in_flight_bytes",
                "must exceed ingest.max_payload_bytes by at least 1024",
            ));
        }
        if self.ingest.max_readings_per_message == 0 {
            return Err(invalid(
                "ingest.max_readings_per_message",
                "must be at least 1",
            ));
        }
        if self.ingest.max_series == 0 {
            return Err(invalid("ingest.max_series", "must be at least 1"));
        }
        if self.ingest.max_devices == 0 {
            return Err(invalid("ingest.max_devices", "must be at least 1"));
        }
        if self.ingest.max_attributes_per_device == 0 {
            return Err(invalid(
                "ingest.max_attributes_per_device",
                "must be at least 1",
            ));
        }
        if self.ingest.max_attribute_bytes_per_device == 0 {
            return Err(invalid(
                "ingest.max_attribute_bytes_per_device",
                "must be at least 1",
            ));
        }
        let source = if self.broker.url.is_empty() {
            if !self.endpoint.enabled {
                return Err(invalid(
                    "endpoint.enabled",
                    "the endpoint is disabled and no broker.url is set: nothing to ingest from",
                ));
            }
            self.check_endpoint()?;
            let mut endpoint = self.endpoint.clone();
            endpoint.devices_file = self.in_data_dir(&self.endpoint.devices_file);
            endpoint.sparkplug = self.sparkplug_settings()?;
            SourceSettings::Endpoint(endpoint)
        } else {
            let (host, port, tls) = parse_broker_url(&self.broker.url)
                .map_err(|message| invalid("broker.url", &message))?;
            self.check_broker_tls(tls)?;
            if self.broker.client_id.is_empty() {
                return Err(invalid("broker.client_id", "must not be empty"));
            }
            if self.broker.max_packet_bytes < 1024 {
                return Err(invalid("broker.max_packet_bytes", "must be at least 1024"));
            }
            SourceSettings::Broker(BrokerSettings {
                host,
                port,
                tls,
                config: self.broker.clone(),
                sparkplug: self.sparkplug_settings()?,
            })
        };
        self.sink
            .influxdb
            .check(self.storage.wal_segment_bytes)
            .map_err(|e| invalid(e.key, &e.message))?;
        // Read once: the district assignment and the map's outlines come from the same text.
        let districts_file = match self.availability.districts_file.as_deref() {
            None => None,
            Some(p) => {
                let path = self.in_data_dir(p);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    invalid(
                        "availability.districts_file",
                        &format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Some((path, text))
            }
        };
        let districts = districts_file
            .as_ref()
            .map(|(path, text)| (path.as_path(), text.as_str()));
        let mut availability = self.availability.validate(districts)?;
        if let SourceSettings::Endpoint(endpoint) = &source
            && endpoint.authentication
        {
            // Devices the provisioning file places are placed from the start, replay included.
            let file = crate::provisioning::ProvisioningFile::read(&endpoint.devices_file)
                .map_err(|e| invalid("endpoint.devices_file", &e.to_string()))?;
            let districts = (*availability.districts).clone();
            availability.districts =
                std::sync::Arc::new(districts.with_provisioned(file.locations()));
        }
        availability.dead_letters = crate::state::dead_letters::DeadLetterLimits {
            payload_bytes: self.storage.dead_letter_payload_bytes,
            total_bytes: self.storage.dead_letter_bytes,
        };
        self.check_api()?;
        self.check_listener_tls()?;
        self.check_http_and_metrics()?;
        let alerts = self.alerts.validate()?;
        let mut reports = self.reports.validate()?;
        if let Some((path, text)) = districts {
            let outlines =
                crate::reports::map::DistrictOutlines::from_geojson(text).map_err(|e| {
                    invalid(
                        "availability.districts_file",
                        &format!("{}: {e}", path.display()),
                    )
                })?;
            reports.outlines = std::sync::Arc::new(outlines);
        }
        Ok(Settings {
            storage: self.storage.clone(),
            source,
            ingest: self.ingest.clone(),
            availability,
            history_retention: self.availability.history_retention,
            grpc: self.grpc.clone(),
            http_listen: self.http.enabled.then_some(self.http.listen),
            metrics_listen: self.metrics.enabled.then_some(self.metrics.listen),
            http: self.http.clone(),
            metrics: self.metrics.clone(),
            api: self.api.clone(),
            service: self.service.clone(),
            log: self.log.clone(),
            sink: self.sink.clone(),
            alerts,
            reports,
        })
    }

    /// The Sparkplug host application's settings, when enabled.
    fn sparkplug_settings(
        &self,
    ) -> Result<Option<crate::sparkplug::SparkplugSettings>, ConfigError> {
        let c = &self.sparkplug;
        if !c.enabled {
            return Ok(None);
        }
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_string(),
        };
        if !c.host_id.is_empty() && !citytel_proto::topic::is_valid_id(&c.host_id) {
            return Err(invalid(
                "sparkplug.host_id",
                "must be 1 to 128 characters of [A-Za-z0-9._-]",
            ));
        }
        if !c.node_id_template.contains("{edge_node}") {
            return Err(invalid(
                "sparkplug.node_id_template",
                "must contain {edge_node}",
            ));
        }
        if !(c.device_id_template.contains("{edge_node}")
            && c.device_id_template.contains("{device}"))
        {
            return Err(invalid(
                "sparkplug.device_id_template",
                "must contain {edge_node} and {device}",
            ));
        }
        if !citytel_proto::topic::is_valid_id(&c.device_kind) {
            return Err(invalid(
                "sparkplug.device_kind",
                "must be 1 to 128 characters of [A-Za-z0-9._-]",
            ));
        }
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if c.reorder_timeout.is_zero() {
            return Err(invalid("sparkplug.reorder_timeout", "must be more than 0s"));
        }
        Ok(Some(crate::sparkplug::SparkplugSettings {
            host: crate::sparkplug::HostSettings {
                node_id_template: c.node_id_template.clone(),
                device_id_template: c.device_id_template.clone(),
                device_kind: c.device_kind.clone(),
                reorder_timeout_ms: ms(c.reorder_timeout),
                reporting_interval_ms: u32::try_from(c.reporting_interval.as_millis())
                    .unwrap_or(u32::MAX),
            },
            host_id: (!c.host_id.is_empty()).then(|| c.host_id.clone()),
        }))
    }

    /// The API's settings, and the rule that a non-loopback API listener never runs without
    /// authentication unless that is explicitly allowed.
    fn check_api(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid { key, message };
        if self.api.rate_limit_per_key == 0 {
            return Err(invalid(
                "api.rate_limit_per_key",
                "must be at least 1".into(),
            ));
        }
        if self.api.bootstrap_organisation.is_empty()
            || !crate::state::access::valid_org_id(&self.api.bootstrap_organisation)
        {
            return Err(invalid(
                "api.bootstrap_organisation",
                "must be 1 to 64 characters of [a-z0-9-]".into(),
            ));
        }
        if self.api.authentication || self.api.allow_anonymous {
            return Ok(());
        }
        let exposed = [
            Some(("grpc.listen", self.grpc.listen)),
            self.http
                .enabled
                .then_some(("http.listen", self.http.listen)),
        ];
        if let Some((key, addr)) = exposed
            .into_iter()
            .flatten()
            .find(|(_, addr)| !addr.ip().is_loopback())
        {
            return Err(invalid(
                key,
                format!(
                    "{addr} is not a loopback address and api.authentication is off: anyone who \
                     reaches it could read everything and change maintenance windows. Turn \
                     api.authentication on, listen on loopback, or pass --allow-anonymous-api \
                     (api.allow_anonymous) if that is really intended"
                ),
            ));
        }
        Ok(())
    }

    /// The dashboard's allowed hosts, and the rule that a non-loopback metrics endpoint never
    /// runs without a token unless that is explicitly allowed.
    fn check_http_and_metrics(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid { key, message };
        crate::web::hosts::AllowedHosts::new(&self.http.allowed_hosts, self.http.listen)
            .map_err(|e| invalid("http.allowed_hosts", e))?;
        let m = &self.metrics;
        if m.bearer_token_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return Err(invalid(
                "metrics.bearer_token_file",
                "must name a file (or be left out)".into(),
            ));
        }
        if m.enabled
            && !m.listen.ip().is_loopback()
            && m.bearer_token_file.is_none()
            && !m.allow_anonymous
        {
            return Err(invalid(
                "metrics.listen",
                format!(
                    "{} is not a loopback address and metrics.bearer_token_file is not set: \
                     anyone who reaches it could read citytel's metrics. Set \
                     metrics.bearer_token_file, listen on loopback, or pass \
                     --allow-anonymous-metrics (metrics.allow_anonymous) if that is intended",
                    m.listen
                ),
            ));
        }
        Ok(())
    }

    /// The configuration as TOML, with secrets replaced by `"<redacted>"`.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        for secret in [&mut shown.broker.password] {
            if secret.is_some() {
                *secret = Some("<redacted>".to_string());
            }
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

impl IngestConfig {
    /// The validation limits these settings describe.
    pub(crate) fn limits(&self) -> crate::decode::Limits {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        crate::decode::Limits {
            max_payload_bytes: self.max_payload_bytes,
            max_readings_per_message: self.max_readings_per_message,
            max_future_ms: ms(self.max_future),
            max_past_ms: ms(self.max_past),
        }
    }

    /// The attribute limits these settings describe.
    pub(crate) fn attribute_limits(&self) -> crate::state::attributes::AttributeLimits {
        crate::state::attributes::AttributeLimits {
            max_per_device: self.max_attributes_per_device,
            max_bytes_per_device: self.max_attribute_bytes_per_device,
        }
    }
}

impl Settings {
    /// The storage options, with `clock` for citytel's own restart time.
    pub fn store_options(&self, clock: crate::clock::Clock) -> crate::db::StoreOptions {
        self.storage.store_options(self.availability.clone(), clock)
    }
}

impl AvailabilityConfig {
    /// The runtime settings; `districts_file` is `districts_file` resolved, and its text.
    fn validate(
        &self,
        districts_file: Option<(&std::path::Path, &str)>,
    ) -> Result<crate::state::StateOptions, ConfigError> {
        use crate::state::maintenance::{MaintenanceWindow, Target};
        use citytel_availability::{Policy, Span};
        let invalid = |key, message: String| ConfigError::Invalid { key, message };
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let mut kind_intervals = std::collections::BTreeMap::new();
        for (kind, text) in &self.kind_intervals {
            let d = humantime::parse_duration(text).map_err(|e| {
                invalid(
                    "availability.kind_intervals",
                    format!("{kind} = {text:?}: {e}"),
                )
            })?;
            kind_intervals.insert(kind.clone(), ms(d));
        }
        let mut intermittent_kinds = std::collections::BTreeSet::new();
        for kind in &self.intermittent_kinds {
            if !citytel_proto::topic::is_valid_id(kind) {
                return Err(invalid(
                    "availability.intermittent_kinds",
                    format!("{kind:?} is not 1 to 128 characters of [A-Za-z0-9._-]"),
                ));
            }
            if !intermittent_kinds.insert(kind.clone()) {
                return Err(invalid(
                    "availability.intermittent_kinds",
                    format!("{kind:?} is listed twice"),
                ));
            }
        }
        let policy = Policy {
            late_grace: self.late_grace,
            offline_grace: self.offline_grace,
            default_interval_ms: ms(self.default_interval),
            kind_intervals_ms: kind_intervals,
            intermittent_kinds,
        };
        policy
            .validate()
            .map_err(|e| invalid("availability", e.to_string()))?;
        let time = |text: &str| -> Result<i64, ConfigError> {
            let t = humantime::parse_rfc3339_weak(text).map_err(|e| {
                invalid(
                    "availability.maintenance",
                    format!("{text:?} is not RFC 3339: {e}"),
                )
            })?;
            t.duration_since(std::time::UNIX_EPOCH)
                .map(ms)
                .map_err(|_| {
                    invalid(
                        "availability.maintenance",
                        format!("{text:?} is before 1970"),
                    )
                })
        };
        let mut maintenance = Vec::new();
        for (i, w) in self.maintenance.iter().enumerate() {
            let target = match (&w.device, &w.site) {
                (Some(d), None) => Target::Device(d.clone()),
                (None, Some(s)) => Target::Site(s.clone()),
                _ => {
                    return Err(invalid(
                        "availability.maintenance",
                        format!("window {} needs exactly one of device and site", i + 1),
                    ));
                }
            };
            let span = Span::new(time(&w.start)?, time(&w.end)?);
            if span.len_ms() == 0 {
                return Err(invalid(
                    "availability.maintenance",
                    format!("window {} ends before it starts", i + 1),
                ));
            }
            maintenance.push(MaintenanceWindow {
                id: i as u64 + 1,
                target,
                span,
                reason: w.reason.clone(),
            });
        }
        let map = match districts_file {
            None => citytel_availability::DistrictMap::default(),
            Some((path, text)) => {
                citytel_availability::DistrictMap::from_geojson(text).map_err(|e| {
                    invalid(
                        "availability.districts_file",
                        format!("{}: {e}", path.display()),
                    )
                })?
            }
        };
        Ok(crate::state::StateOptions {
            policy,
            districts: std::sync::Arc::new(citytel_availability::Districts::new(
                map,
                &self.districts,
            )),
            maintenance,
            dead_letters: Default::default(),
        })
    }
}

/// Parses `mqtt://host:port` (port defaults to 1883).
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16), String> {
    match parse_broker_url(url)? {
        (_, _, true) => Err(format!("{url:?} must start with mqtt://")),
        (host, port, false) => Ok((host, port)),
    }
}

/// Parses `mqtt://host[:port]` (port 1883 by default) or `mqtts://host[:port]` (TLS, port 8883
/// by default) into the host, the port and whether it is TLS.
pub fn parse_broker_url(url: &str) -> Result<(String, u16, bool), String> {
    let (rest, tls) = if let Some(rest) = url.strip_prefix("mqtts://") {
        (rest, true)
    } else if let Some(rest) = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
    {
        (rest, false)
    } else {
        return Err(format!("{url:?} must start with mqtt:// or mqtts://"));
    };
    let default_port = if tls { 8883 } else { 1883 };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(format!(
            "{url:?} must be mqtt://host[:port] or mqtts://host[:port]"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{url:?} has an invalid port {port:?}"))?;
            (host, port)
        }
        _ => (rest, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok((host.to_string(), port, tls))
}

#[cfg(test)]
mod tests;
