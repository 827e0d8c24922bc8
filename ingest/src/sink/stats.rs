//! A sink's counters: kept as atomics (tests and the service read them) and mirrored to the
//! metrics registry with the sink's name as the only label.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::telemetry::metrics as m;

/// Why a send failed, as counted in `citytel_sink_retries_total{class}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The connection failed or was reset.
    Network,
    /// No answer within the request timeout.
    Timeout,
    /// HTTP 429: the server asks to slow down.
    Throttled,
    /// HTTP 5xx.
    Server,
    /// HTTP 401 or 403: the token is wrong or lacks permission. The sink holds.
    Auth,
    /// HTTP 400 or 413: some points are refused; the batch is split to find them.
    BadRequest,
    /// Any other answer (e.g. 404: no such bucket or org). The sink holds.
    Other,
}

impl ErrorClass {
    /// Every class, in index order.
    pub const ALL: [ErrorClass; 7] = [
        ErrorClass::Network,
        ErrorClass::Timeout,
        ErrorClass::Throttled,
        ErrorClass::Server,
        ErrorClass::Auth,
        ErrorClass::BadRequest,
        ErrorClass::Other,
    ];

    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Network => "network",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Server => "server",
            ErrorClass::Auth => "auth",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::Other => "other",
        }
    }

    /// Whether the same request is retried with backoff (the sink stays healthy).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorClass::Network | ErrorClass::Timeout | ErrorClass::Throttled | ErrorClass::Server
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one sink.
#[derive(Debug)]
pub struct SinkStats {
    name: &'static str,
    /// Points confirmed by the server.
    pub points_sent: AtomicU64,
    /// Values (fields) confirmed by the server.
    pub values_sent: AtomicU64,
    /// Requests the server confirmed.
    pub requests_ok: AtomicU64,
    /// Points refused with 400 and dead-lettered.
    pub points_rejected: AtomicU64,
    /// WAL bytes not yet confirmed.
    pub backlog_bytes: AtomicU64,
    /// WAL bytes given up (drop_oldest policy, damaged or missing segments).
    pub dropped_bytes: AtomicU64,
    /// Whether the sink can deliver (false while held on 401/403 and the like).
    pub healthy: AtomicBool,
    /// Whether the sink holds intake back (backlog over its limit).
    pub backpressure: AtomicBool,
    failures: [AtomicU64; 7],
}

impl SinkStats {
    /// Zeroed counters of the sink `name`, healthy.
    pub fn new(name: &'static str) -> Self {
        SinkStats {
            name,
            points_sent: AtomicU64::new(0),
            values_sent: AtomicU64::new(0),
            requests_ok: AtomicU64::new(0),
            points_rejected: AtomicU64::new(0),
            backlog_bytes: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            backpressure: AtomicBool::new(false),
            failures: Default::default(),
        }
    }

    /// Failed sends of `class` so far.
    pub fn failures(&self, class: ErrorClass) -> u64 {
        self.failures[class.index()].load(Ordering::Relaxed)
    }

    pub(crate) fn record_failure(&self, class: ErrorClass) {
        self.failures[class.index()].fetch_add(1, Ordering::Relaxed);
        metrics::counter!(m::SINK_RETRIES_TOTAL, "sink" => self.name, "class" => class.as_str())
            .increment(1);
    }

    pub(crate) fn record_sent(&self, points: u64, values: u64, seconds: f64) {
        self.points_sent.fetch_add(points, Ordering::Relaxed);
        self.values_sent.fetch_add(values, Ordering::Relaxed);
        self.requests_ok.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(m::SINK_POINTS_SENT_TOTAL, "sink" => self.name).increment(points);
        metrics::counter!(m::SINK_VALUES_SENT_TOTAL, "sink" => self.name).increment(values);
        metrics::histogram!(m::SINK_REQUEST_SECONDS, "sink" => self.name).record(seconds);
    }

    pub(crate) fn record_rejected(&self, points: u64) {
        self.points_rejected.fetch_add(points, Ordering::Relaxed);
        metrics::counter!(m::SINK_REJECTED_POINTS_TOTAL, "sink" => self.name).increment(points);
    }

    pub(crate) fn record_dropped(&self, bytes: u64) {
        if bytes > 0 {
            self.dropped_bytes.fetch_add(bytes, Ordering::Relaxed);
            metrics::counter!(m::SINK_DROPPED_BYTES_TOTAL, "sink" => self.name).increment(bytes);
        }
    }

    pub(crate) fn set_backlog(&self, bytes: u64) {
        self.backlog_bytes.store(bytes, Ordering::Relaxed);
        metrics::gauge!(m::SINK_BACKLOG_BYTES, "sink" => self.name).set(bytes as f64);
    }

    /// Sets the health; returns whether it changed.
    pub(crate) fn set_healthy(&self, healthy: bool) -> bool {
        metrics::gauge!(m::SINK_HEALTHY, "sink" => self.name).set(f64::from(u8::from(healthy)));
        self.healthy.swap(healthy, Ordering::Relaxed) != healthy
    }

    /// Sets the backpressure flag; returns whether it changed.
    pub(crate) fn set_backpressure(&self, on: bool) -> bool {
        metrics::gauge!(m::SINK_BACKPRESSURE, "sink" => self.name).set(f64::from(u8::from(on)));
        self.backpressure.swap(on, Ordering::Relaxed) != on
    }
}
