//! Sinks: copies of the ingested data sent to other systems, each fed from the WAL through its
//! own durable cursor (an outbox), so the ingest path never waits for them.
//!
//! - [`schema`]: the line protocol names (measurements, tags, fields) the InfluxDB sink writes and
//!   the Grafana dashboards read, defined once (documented in `SCHEMA.md`).
//! - [`line`]: turning WAL entries into line protocol batches.
//! - [`cursor`]: the durable position of a sink in the WAL.
//! - [`gate`]: the backlog gate through which a sink applies backpressure to intake.
//! - [`stats`]: counters shared with tests and mirrored to metrics.
//! - [`influxdb`]: the InfluxDB v2 sink (also VictoriaMetrics and anything else answering
//!   `/api/v2/write`).
//!
//! A sink holds the WAL segments it has not yet had confirmed (see `citytel_storage::wal::hold`),
//! reads them with `citytel_storage::wal::tail::Tail`, and advances its cursor only after the server confirmed a
//! batch: a crash resends at most the batch in flight, which the server overwrites (same series,
//! same timestamp, same value).

pub mod cursor;
pub mod gate;
pub mod influxdb;
pub mod line;
pub mod schema;
pub mod stats;

pub use gate::BacklogGate;

/// A point a sink's server refused, handed to the dead-letter store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedPoint {
    /// The sink's name.
    pub sink: &'static str,
    /// The line protocol line, without its newline.
    pub line: String,
    /// What the server answered.
    pub error: String,
}

/// Where refused points go (in the service: the dead-letter store).
pub type DeadLetterFn = std::sync::Arc<dyn Fn(RejectedPoint) + Send + Sync>;

/// The dead letter of a refused point, as (topic, payload, rejection): reason
/// `sink_rejected`, topic `sink/{name}`, the server's answer as detail and the line as payload.
pub fn dead_letter(point: RejectedPoint) -> (String, bytes::Bytes, crate::decode::Rejection) {
    (
        format!("sink/{}", point.sink),
        bytes::Bytes::from(point.line.into_bytes()),
        crate::decode::Rejection::new(crate::decode::RejectReason::SinkRejected, point.error),
    )
}
