//! The sections of the configuration file, one struct per `[section]`.
//!
//! Every field is documented here and in the shipped `citytel.toml`; a test keeps the two in step.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[storage]`: where and how data is persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory for the write-ahead log and everything else citytel persists.
    pub data_dir: PathBuf,
    /// When a write counts as durable.
    pub fsync: citytel_storage::wal::FsyncPolicy,
    /// Size at which the WAL rolls over to a new segment file, in bytes.
    pub wal_segment_bytes: u64,
    /// Longest time between checkpoints (head to compressed segments, WAL truncated).
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// Points held in memory before a checkpoint is forced.
    pub head_max_points: u64,
    /// Block cache of the embedded store, in bytes.
    pub cache_bytes: u64,
    /// Memory for decoded segments kept for repeated queries, in bytes (0: none).
    pub decoded_cache_bytes: u64,
    /// Average points per minute (over the minutes that hold points) a segment needs for its
    /// 1-minute rollup to be stored.
    pub rollup_minute_min_points: u32,
    /// How long after a day ends its segments are merged into one.
    #[serde(with = "humantime_serde")]
    pub compaction_delay: Duration,
    /// How long raw points are kept ("forever" or a duration).
    #[serde(with = "retention")]
    pub retention_raw: Option<Duration>,
    /// How long 1-minute rollups are kept.
    #[serde(with = "retention")]
    pub retention_minute: Option<Duration>,
    /// How long 1-hour rollups are kept.
    #[serde(with = "retention")]
    pub retention_hour: Option<Duration>,
    /// How long dead letters (rejected messages) are kept ("forever" or a duration). Their
    /// counts per reason are kept forever.
    #[serde(with = "retention")]
    pub dead_letter_retention: Option<Duration>,
    /// Free space on the data directory's file system below which nothing more is committed or
    /// acknowledged (health NOT_SERVING) until space returns; 0 turns the check off.
    pub min_free_bytes: u64,
    /// Payload bytes kept with each dead letter (at most 65536).
    pub dead_letter_payload_bytes: usize,
    /// Bytes of dead letters (payloads, details, topics) kept in all, in memory and on disk;
    /// beyond it the oldest are dropped first.
    pub dead_letter_bytes: usize,
}

/// Serde for retention periods: `"forever"` or a humantime duration.
mod retention {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_str("forever"),
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim() == "forever" {
            return Ok(None);
        }
        humantime::parse_duration(&text)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e} (or \"forever\")")))
    }
}

impl StorageConfig {
    /// The storage options these settings describe, with availability options and a clock.
    pub fn store_options(
        &self,
        state: crate::state::StateOptions,
        clock: crate::clock::Clock,
    ) -> crate::db::StoreOptions {
        crate::db::StoreOptions {
            state,
            clock,
            wal: citytel_storage::wal::WalOptions {
                segment_bytes: self.wal_segment_bytes,
                fsync: self.fsync,
            },
            engine: citytel_storage::engine::EngineConfig {
                cache_bytes: self.cache_bytes,
                flush_points: self.head_max_points,
                rollup_minute_min_points: self.rollup_minute_min_points,
                retention_raw: self.retention_raw,
                retention_minute: self.retention_minute,
                retention_hour: self.retention_hour,
                compaction_delay: self.compaction_delay,
                flush_level: citytel_storage::engine::codec::DEFAULT_LEVEL,
                decoded_cache_bytes: self.decoded_cache_bytes,
            },
        }
    }
}

/// `[endpoint]`: citytel's own MQTT 3.1.1 device endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Whether the endpoint runs (it is off whenever a broker url is configured).
    pub enabled: bool,
    /// Address to listen on for device connections.
    pub listen: SocketAddr,
    /// Maximum number of simultaneous device connections (0: derived from the open-file limit).
    pub max_connections: usize,
    /// Open connections per peer IP address.
    pub max_connections_per_ip: usize,
    /// New connections per second per peer IP address, sustained.
    pub connect_rate_per_ip: f64,
    /// New connections per peer IP address in a burst.
    pub connect_burst_per_ip: u32,
    /// Refused CONNECTs per peer IP address within a minute before its connections are refused
    /// for the rest of that minute.
    pub failed_connects_per_ip: u32,
    /// Largest MQTT packet accepted, in bytes.
    pub max_packet_bytes: usize,
    /// Largest packet read past (PUBLISH only) and dead-lettered as `oversize`; larger ones
    /// close the connection.
    pub max_discard_bytes: usize,
    /// Longest client id accepted, in bytes.
    pub max_client_id_bytes: usize,
    /// MQTT 5 Receive Maximum granted to each connection: QoS 1 and 2 publishes it may have
    /// unacknowledged; one more closes the connection (DISCONNECT 0x93).
    pub receive_maximum: u16,
    /// How long an MQTT 5 QoS 1 or 2 PUBLISH waits for room in the intake's in-flight budget
    /// before it is refused with reason code 0x97 (quota exceeded) and not stored, when nothing
    /// earlier of its connection is still unacknowledged (0: wait as long as it takes, as 3.1.1
    /// publishes always do).
    #[serde(with = "humantime_serde")]
    pub busy_refusal_after: Duration,
    /// MQTT 5 Topic Alias Maximum granted to each connection (0: no aliases).
    pub topic_alias_maximum: u16,
    /// Longest MQTT 5 Session Expiry Interval granted; a longer one (or "never") is cut to this
    /// and the client told in CONNACK.
    #[serde(with = "humantime_serde")]
    pub max_session_expiry: Duration,
    /// Most MQTT 5 sessions kept after their connection at once.
    pub max_kept_sessions: usize,
    /// Whether a keep-alive of 0 (never expire) is honoured.
    pub allow_keep_alive_zero: bool,
    /// Longest keep-alive applied: a connection is closed after 1.5 times this of silence, also
    /// when it asked for 0 (unless allowed) or for longer.
    #[serde(with = "humantime_serde")]
    pub max_keep_alive: Duration,
    /// Time a new connection has to send CONNECT.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Whether the plain (non-TLS) listener on `listen` runs.
    pub plain: bool,
    /// Whether devices must prove who they are (a client certificate or their credentials) and
    /// may only speak for themselves (and a gateway for its children).
    pub authentication: bool,
    /// Run without device authentication even on a non-loopback listener
    /// (`--allow-anonymous-devices`).
    pub allow_anonymous: bool,
    /// Admit devices the provisioning file does not list, each bound to the first site and kind
    /// it publishes for (until restart).
    pub auto_register: bool,
    /// The provisioning file (`citytel devices`), relative to `storage.data_dir` unless absolute.
    pub devices_file: PathBuf,
    /// `[endpoint.tls]`: the `mqtts` listener.
    pub tls: EndpointTlsConfig,
    /// The Sparkplug B host application on the endpoint, from `[sparkplug]` when
    /// `sparkplug.enabled` (set by validation, not read from `[endpoint]`).
    #[serde(skip)]
    pub sparkplug: Option<crate::sparkplug::SparkplugSettings>,
}

/// `[endpoint.tls]`: the device endpoint's MQTT-over-TLS (`mqtts`) listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointTlsConfig {
    /// Whether the `mqtts` listener runs.
    pub enabled: bool,
    /// Address of the `mqtts` listener.
    pub listen: SocketAddr,
    /// The server's certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// The server's private key (PEM).
    pub key_file: PathBuf,
    /// CA bundle client certificates are checked against (PEM; "": clients are not asked for
    /// one).
    pub client_ca_file: PathBuf,
    /// Revoked client certificates (PEM CRLs; "": none).
    pub crl_file: PathBuf,
    /// Refuse the handshake of a client without a valid certificate from `client_ca_file`.
    pub require_client_certificate: bool,
    /// Where a device's id is read from its client certificate.
    pub identity: CertIdentity,
}

/// Which part of a client certificate names the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertIdentity {
    /// The subject's common name.
    Cn,
    /// The first DNS name or URI among its subject alternative names.
    San,
}

/// `[grpc.tls]`, `[http.tls]`, `[metrics.tls]`: TLS on one of the HTTP listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// Whether the listener speaks TLS (https).
    pub enabled: bool,
    /// The server's certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// The server's private key (PEM).
    pub key_file: PathBuf,
    /// CA bundle client certificates are checked against (PEM; "": clients are not asked for
    /// one).
    pub client_ca_file: PathBuf,
    /// Revoked client certificates (PEM CRLs; "": none).
    pub crl_file: PathBuf,
    /// Refuse the handshake of a client without a valid certificate from `client_ca_file`.
    pub require_client_certificate: bool,
}

/// `[broker]`: an external MQTT broker to consume from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://host:port` or `mqtts://host:port` of the broker; empty for none.
    pub url: String,
    /// CA bundle the broker's certificate is checked against (`mqtts://`; "": the system's
    /// trusted roots are not used, so this is required for `mqtts://`).
    pub ca_file: PathBuf,
    /// citytel's client certificate for the broker (PEM; "": none).
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// Stable client id of citytel's persistent session.
    pub client_id: String,
    /// Shared-subscription group; empty for a plain subscription.
    pub share_group: String,
    /// MQTT keep-alive interval.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Largest packet accepted from the broker, in bytes.
    pub max_packet_bytes: usize,
    /// Username at the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password at the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `[sparkplug]`: citytel as a Sparkplug B 3.0 host application, on the broker source or on the
/// device endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparkplugConfig {
    /// Act as a Sparkplug B host application: on the broker source (subscribing to `spBv1.0/#`)
    /// or, without `broker.url`, on the device endpoint, where edge nodes connect directly.
    pub enabled: bool,
    /// The primary host id: with one, citytel publishes its STATE on `spBv1.0/STATE/{host_id}`
    /// (a Will offline, online once connected). Empty: no STATE.
    pub host_id: String,
    /// Device id of an edge node; `{group}` and `{edge_node}` are replaced.
    pub node_id_template: String,
    /// Device id of a Sparkplug device; `{group}`, `{edge_node}` and `{device}` are replaced.
    pub device_id_template: String,
    /// citytel kind of a Sparkplug device (an edge node is a `gateway`).
    pub device_kind: String,
    /// How long a seq gap, data before a birth or an unknown metric may last before citytel
    /// requests a rebirth.
    #[serde(with = "humantime_serde")]
    pub reorder_timeout: Duration,
    /// Reporting interval stated for Sparkplug nodes and devices (0s: the kind's default).
    #[serde(with = "humantime_serde")]
    pub reporting_interval: Duration,
}

/// `[ingest]`: validation limits and the pipeline's in-flight budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// Most readings accepted in one telemetry message.
    pub max_readings_per_message: usize,
    /// How far ahead of the receive time a device timestamp may be.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// How far behind the receive time a device timestamp may be.
    #[serde(with = "humantime_serde")]
    pub max_past: Duration,
    /// Bytes received but not yet durable and acknowledged, before intake pauses.
    pub max_in_flight_bytes: u64,
    /// Most series (device, metric pairs) stored; messages that would add more are dead-lettered
    /// as `too_many_series`.
    pub max_series: u64,
    /// Most devices in the registry; messages from further devices (telemetry and status alike)
    /// are dead-lettered as `too_many_devices`.
    pub max_devices: u64,
    /// Most attributes (latest text values) kept per device; a status that would add more is
    /// dead-lettered as `too_many_attributes`.
    pub max_attributes_per_device: u32,
    /// Most bytes of attributes (names, values and datatypes) kept per device; a status that
    /// would bring more is dead-lettered as `too_many_attributes`.
    pub max_attribute_bytes_per_device: u64,
}

/// `[availability]`: when devices count as late or offline, and how they roll up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityConfig {
    /// A device is Late after this many expected intervals without being heard.
    pub late_grace: f64,
    /// A device is Offline after this many expected intervals without being heard.
    pub offline_grace: f64,
    /// Expected interval of devices whose birth states none and whose kind is not listed.
    #[serde(with = "humantime_serde")]
    pub default_interval: Duration,
    /// Expected interval per device kind (humantime durations).
    pub kind_intervals: BTreeMap<String, String>,
    /// Device kinds that connect only to report (battery devices that wake, connect, publish,
    /// disconnect cleanly and sleep): a clean DISCONNECT without a death keeps such a device
    /// online until its silence deadlines pass. A birth's `intermittent` field, when set, wins
    /// over this default. Each kind is a valid topic segment, listed once.
    pub intermittent_kinds: Vec<String>,
    /// District of each site: the district of its devices that have no location, or whose
    /// location is in no polygon of `districts_file`.
    pub districts: BTreeMap<String, String>,
    /// A GeoJSON FeatureCollection of the districts' polygons (each feature a Polygon or
    /// MultiPolygon with a string property `name`); a device whose birth states a location is in
    /// the district whose polygon holds it. Relative to the data directory unless absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub districts_file: Option<std::path::PathBuf>,
    /// Planned maintenance windows, excluded from availability.
    pub maintenance: Vec<MaintenanceConfig>,
    /// How long the state history (transitions, reboots) is kept ("forever" or a duration);
    /// availability over windows older than this is unknown.
    #[serde(with = "retention")]
    pub history_retention: Option<Duration>,
}

/// One configured maintenance window (`[[availability.maintenance]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// The device it covers (or set `site`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The site it covers (or set `device`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Start, RFC 3339 (e.g. "2026-12-01T02:00:00Z").
    pub start: String,
    /// End (exclusive), RFC 3339.
    pub end: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `[grpc]`: the query service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// Address of the gRPC server.
    pub listen: SocketAddr,
    /// Heavy reads (many devices, long ranges, availability over many windows) computed at
    /// once, off the async workers; 0 means one per CPU. Up to four times as many wait their
    /// turn; beyond that a request is refused with RESOURCE_EXHAUSTED.
    pub max_concurrent_reads: usize,
    /// Longest time a request may take (a client's shorter `grpc-timeout` wins); past it the
    /// answer is DEADLINE_EXCEEDED.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Most connections at once (0: derived from the open-file limit); further ones are closed
    /// at once.
    pub max_connections: usize,
    /// A connection with no traffic either way for this long is closed (HTTP/2 keep-alive
    /// pings count as traffic).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// TLS on this listener.
    pub tls: ListenerTlsConfig,
}

/// `[http]`: the operator web dashboard, and the query service over gRPC-Web for browsers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Whether the dashboard's HTTP server runs.
    pub enabled: bool,
    /// Address of the dashboard's HTTP server.
    pub listen: SocketAddr,
    /// Host names the dashboard answers for besides the listen address, `localhost`,
    /// `127.0.0.1` and `[::1]` (on the listen port): `name` (any port) or `name:port`; `"*"`
    /// turns the check off. Other `Host`s get 421, requests with an `Origin` of another host 403.
    pub allowed_hosts: Vec<String>,
    /// Most connections at once (0: derived from the open-file limit).
    pub max_connections: usize,
    /// A connection with no traffic either way for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// TLS on this listener.
    pub tls: ListenerTlsConfig,
}

/// `[metrics]`: citytel's own metrics for Prometheus (`GET /metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether the metrics endpoint runs.
    pub enabled: bool,
    /// Address of the metrics endpoint's HTTP server.
    pub listen: SocketAddr,
    /// File holding the bearer token scrapers must send (`Authorization: Bearer <token>`),
    /// read at start; unset: no token needed. The token itself is never in the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// Serve the metrics without a token even on a non-loopback address
    /// (`--allow-anonymous-metrics`).
    pub allow_anonymous: bool,
    /// Most connections at once (0: derived from the open-file limit).
    pub max_connections: usize,
    /// A connection with no traffic either way for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// TLS on this listener.
    pub tls: ListenerTlsConfig,
}

/// `[sink]`: copies of the stored data sent to other systems, each fed from the WAL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `[sink.influxdb]`: the InfluxDB v2 sink.
    pub influxdb: crate::sink::influxdb::InfluxDbConfig,
}

/// `[api]`: who may call the gRPC API and the dashboard's gRPC-Web, and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Whether every call needs an API key (`authorization: Bearer citytel_<id>_<secret>`). When
    /// false, every caller is an anonymous admin: allowed on loopback listeners only, unless
    /// `allow_anonymous` is set.
    pub authentication: bool,
    /// Run without authentication even on a non-loopback gRPC or dashboard listener
    /// (`--allow-anonymous-api`).
    pub allow_anonymous: bool,
    /// Calls per second each API key may make, sustained.
    pub rate_limit_per_key: u32,
    /// Calls each API key may make in a burst.
    pub rate_limit_burst: u32,
    /// The organisation of the first admin key, created at start when no admin key works.
    pub bootstrap_organisation: String,
    /// Where that admin key is written (readable only by citytel's user), relative to
    /// `storage.data_dir` unless absolute.
    pub admin_key_file: PathBuf,
    /// How long the audit log is kept ("forever" or a duration).
    #[serde(with = "retention")]
    pub audit_retention: Option<Duration>,
}

/// `[service]`: the process as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// How long the servers get, once ingest has stopped and the data is safe, to end their open
    /// streams and in-flight calls before their connections are closed.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// File descriptors kept back from the connection caps for storage, logs and outgoing
    /// connections (at most half the open-file limit).
    pub reserved_fds: u64,
}

/// `[log]`: logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log filter in tracing's EnvFilter syntax.
    pub filter: String,
    /// Output format.
    pub format: LogFormat,
}

impl LogConfig {
    /// Installs logging as configured (see [`crate::telemetry::logging::init`]).
    pub fn init(&self) {
        crate::telemetry::logging::init(&self.filter, self.format);
    }
}

pub use crate::telemetry::logging::LogFormat;
