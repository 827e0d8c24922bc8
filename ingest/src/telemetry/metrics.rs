//! Metric names, with units in the name. Labels have bounded cardinality: never a device id.
//!
//! Components record through the `metrics` facade; without an installed exporter the calls are
//! no-ops.

/// MQTT messages received from devices or the broker (label `source`: endpoint, broker, will).
pub const MESSAGES_RECEIVED_TOTAL: &str = "citytel_messages_received_total";
/// Messages accepted and stored.
pub const MESSAGES_ACCEPTED_TOTAL: &str = "citytel_messages_accepted_total";
/// Messages rejected, by `reason` (see `RejectReason::as_str`).
pub const MESSAGES_REJECTED_TOTAL: &str = "citytel_messages_rejected_total";
/// Messages acknowledged to their device or broker after they became durable.
pub const MESSAGES_ACKED_TOTAL: &str = "citytel_messages_acked_total";
/// Readings stored (after deduplication).
pub const READINGS_STORED_TOTAL: &str = "citytel_readings_stored_total";
/// Readings dropped as duplicates of (device, boot, seq) already stored.
pub const READINGS_DUPLICATE_TOTAL: &str = "citytel_readings_duplicate_total";
/// Bytes appended to the WAL.
pub const WAL_BYTES_TOTAL: &str = "citytel_wal_bytes_total";
/// Group commits made.
pub const WAL_COMMITS_TOTAL: &str = "citytel_wal_commits_total";
/// Attempts at a group commit that storage could not take, by `reason` (disk_full, low_space,
/// descriptors); the group is retried, never acknowledged before it is durable.
pub const WAL_COMMIT_RETRIES_TOTAL: &str = "citytel_wal_commit_retries_total";
/// 1 while the writer is paused (nothing acknowledged), by `reason`.
pub const STORAGE_PAUSED: &str = "citytel_storage_paused";
/// Times the writer paused, by `reason`.
pub const STORAGE_PAUSES_TOTAL: &str = "citytel_storage_pauses_total";
/// Free bytes on the data directory's file system, at the last check.
pub const STORAGE_FREE_BYTES: &str = "citytel_storage_free_bytes";
/// Time a group commit (write and fsync) took.
pub const WAL_COMMIT_SECONDS: &str = "citytel_wal_commit_seconds";
/// WAL repairs at start-up (recorded by the storage library).
pub use citytel_storage::metrics::WAL_CORRUPTIONS_TOTAL;
/// Persisted records that did not decode and were left out, by `record` (history,
/// dead_letter, maintenance, wal_entry, wal_message, wal_command).
pub const RECORDS_UNDECODABLE_TOTAL: &str = "citytel_records_undecodable_total";
/// Dead letters dropped from the store, oldest first, to keep it within its count and byte
/// budget (their counts per reason remain).
pub const DEAD_LETTERS_EVICTED_TOTAL: &str = "citytel_dead_letters_evicted_total";
/// Connection events of devices beyond `ingest.max_devices`, not stored (they would only
/// register the device).
pub const CONNECTION_EVENTS_DROPPED_TOTAL: &str = "citytel_connection_events_dropped_total";
/// Bytes received and not yet acknowledged.
pub const IN_FLIGHT_BYTES: &str = "citytel_in_flight_bytes";
/// Open device connections on the MQTT endpoint.
pub const ENDPOINT_CONNECTIONS: &str = "citytel_endpoint_connections";
/// Failed `accept` calls, by `listener` (mqtt, grpc, dashboard, metrics) and `error`
/// (descriptors: no file descriptor left, backed off; other).
pub const ACCEPT_ERRORS_TOTAL: &str = "citytel_accept_errors_total";
/// Open connections of the HTTP listeners, by `listener` (grpc, dashboard, metrics).
pub const CONNECTIONS_OPEN: &str = "citytel_connections_open";
/// Connections of the HTTP listeners closed at once, by `listener` and `reason`
/// (connection_limit).
pub const CONNECTIONS_REFUSED_TOTAL: &str = "citytel_connections_refused_total";
/// TLS handshakes that failed or timed out on the gRPC, dashboard or metrics listener, by
/// `listener` (the device endpoint counts them in `citytel_endpoint_disconnects_total{reason="tls_handshake"}`).
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "citytel_tls_handshake_failures_total";
/// HTTP requests refused before they were answered, by `listener` and `reason`: on the
/// dashboard `host` (a `Host` not in `http.allowed_hosts`, 421) and `origin` (a cross-site
/// `Origin`, 403); on the metrics endpoint `no_token` and `wrong_token` (401).
pub const HTTP_REQUESTS_REFUSED_TOTAL: &str = "citytel_http_requests_refused_total";
/// Connections of the HTTP listeners closed after their idle timeout, by `listener`.
pub const CONNECTIONS_IDLE_CLOSED_TOTAL: &str = "citytel_connections_idle_closed_total";
/// Endpoint connections closed, by `reason` (see `Disconnect::label`: client_disconnect,
/// closed, keep_alive_expired, connect_timeout, refused, protocol_error, bad_connect,
/// slow_reader, oversize, taken_over, shutdown, pipeline_closed, io_error).
pub const ENDPOINT_DISCONNECTS_TOTAL: &str = "citytel_endpoint_disconnects_total";
/// Connections refused, by `reason`: at accept connection_limit, ip_connection_limit,
/// connect_rate, failed_connects; at CONNECT protocol_version, client_id, auth.
pub const ENDPOINT_REFUSED_TOTAL: &str = "citytel_endpoint_refused_total";
/// Reconnects to the external broker.
pub const BROKER_RECONNECTS_TOTAL: &str = "citytel_broker_reconnects_total";
/// Times the broker reported no session and citytel subscribed again.
pub const BROKER_RESUBSCRIBES_TOTAL: &str = "citytel_broker_resubscribes_total";
/// QoS 0 messages from the broker dropped because the queue to the pipeline was full.
pub const BROKER_QOS0_DROPPED_TOTAL: &str = "citytel_broker_qos0_dropped_total";
/// Sparkplug B rebirth requests (NCMD `Node Control/Rebirth`) citytel published.
pub const SPARKPLUG_REBIRTHS_REQUESTED_TOTAL: &str = "citytel_sparkplug_rebirths_requested_total";
/// Sparkplug B rebirth requests that fell due for an edge node not connected to the device
/// endpoint, so not sent (it asks again with its next NBIRTH).
pub const SPARKPLUG_REBIRTHS_UNDELIVERED_TOTAL: &str =
    "citytel_sparkplug_rebirths_undelivered_total";
/// SUBSCRIBE filters on the device endpoint, by `outcome`: granted, or why refused (filter:
/// not an edge node's commands nor citytel's STATE, which is every filter without Sparkplug;
/// not_own_node; other_host).
pub const ENDPOINT_SUBSCRIPTIONS_TOTAL: &str = "citytel_endpoint_subscriptions_total";
/// MQTT 5 PUBLISH packets at QoS 1 or 2 refused with reason code 0x97 (quota exceeded, not
/// stored) after waiting `endpoint.busy_refusal_after` for room in the intake.
pub const ENDPOINT_BUSY_REFUSED_TOTAL: &str = "citytel_endpoint_busy_refused_total";
/// MQTT 5 sessions not kept after their connection because `endpoint.max_kept_sessions` were
/// kept already (the client finds no session when it returns).
pub const ENDPOINT_SESSIONS_NOT_KEPT_TOTAL: &str = "citytel_endpoint_sessions_not_kept_total";
/// Known devices.
pub const DEVICES: &str = "citytel_devices";
/// Known devices by availability `state` (computed when scraped).
pub const DEVICES_BY_STATE: &str = "citytel_devices_by_state";
/// gRPC requests, by `transport` (`grpc`: native gRPC on the gRPC port; `grpc-web`: gRPC-Web,
/// as the dashboard calls on the HTTP port), `method` and `code` (the gRPC status when known as
/// the response starts).
pub const GRPC_REQUESTS_TOTAL: &str = "citytel_grpc_requests_total";
/// gRPC latency until the response starts, by `transport` and `method`.
pub const GRPC_REQUEST_SECONDS: &str = "citytel_grpc_request_seconds";
/// WAL bytes a sink has not yet had confirmed (label `sink`).
pub const SINK_BACKLOG_BYTES: &str = "citytel_sink_backlog_bytes";
/// 1 while a sink's backlog is over its limit and intake is held back (label `sink`).
pub const SINK_BACKPRESSURE: &str = "citytel_sink_backpressure";
/// Points a sink's server confirmed (label `sink`).
pub const SINK_POINTS_SENT_TOTAL: &str = "citytel_sink_points_sent_total";
/// Values (fields) a sink's server confirmed (label `sink`).
pub const SINK_VALUES_SENT_TOTAL: &str = "citytel_sink_values_sent_total";
/// Time a confirmed sink request took (label `sink`).
pub const SINK_REQUEST_SECONDS: &str = "citytel_sink_request_seconds";
/// Failed sink requests by `class` (network, timeout, throttled, server, auth, bad_request,
/// other); transient ones are retried with backoff (label `sink`).
pub const SINK_RETRIES_TOTAL: &str = "citytel_sink_retries_total";
/// Points a sink's server refused (HTTP 400), moved to the dead-letter store (label `sink`).
pub const SINK_REJECTED_POINTS_TOTAL: &str = "citytel_sink_rejected_points_total";
/// WAL bytes a sink gave up (drop_oldest backlog policy, damaged or missing segments).
pub const SINK_DROPPED_BYTES_TOTAL: &str = "citytel_sink_dropped_bytes_total";
/// 1 while a sink can deliver, 0 while it is held (e.g. HTTP 401/403) (label `sink`).
pub const SINK_HEALTHY: &str = "citytel_sink_healthy";
/// Heavy reads refused because too many were running or waiting.
pub const GRPC_READS_REFUSED_TOTAL: &str = "citytel_grpc_reads_refused_total";
/// API calls refused before their handler ran, by `reason` (no_key, malformed, unknown, revoked,
/// expired, rate_limited, permission).
pub const API_REQUESTS_REFUSED_TOTAL: &str = "citytel_api_requests_refused_total";
/// Open alerts by `state` (pending, firing) and `severity` (critical, major, minor, warning).
pub const ALERTS: &str = "citytel_alerts";
/// Alert notifications by `receiver` (its configured name) and `outcome` (sent, failed: a
/// request that will be retried).
pub const ALERT_NOTIFICATIONS_TOTAL: &str = "citytel_alert_notifications_total";
/// Notifications dropped from the outbox over `alerts.outbox_limit` before every receiver
/// confirmed them.
pub const ALERT_NOTIFICATIONS_DROPPED_TOTAL: &str = "citytel_alert_notifications_dropped_total";
/// Notifications not yet confirmed, by `receiver`.
pub const ALERT_NOTIFICATIONS_PENDING: &str = "citytel_alert_notifications_pending";
