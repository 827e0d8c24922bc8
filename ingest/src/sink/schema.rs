//! The line protocol schema of the InfluxDB sink, defined once: the sink writes these names and
//! a test checks every Grafana dashboard query against them (documented in `SCHEMA.md`).
//!
//! - Measurement: the device kind (`cabinet`, `small_cell`, `sensor`, `gateway`, or any other
//!   kind a topic names).
//! - Tags (bounded cardinality): [`TAG_DEVICE_ID`], [`TAG_SITE`], [`TAG_KIND`].
//! - Fields: one per metric, named as the device names it (float), plus [`FIELD_RECEIVED_AT_MS`]
//!   (integer) when the receive time differs from the device's timestamp by more than the
//!   configured threshold.
//! - Timestamp: the device's reading time, in nanoseconds.

use citytel_proto::catalog::metric_names;
use citytel_proto::kind::Kind;

/// Tag with the device id.
pub const TAG_DEVICE_ID: &str = "device_id";
/// Tag with the device's site.
pub const TAG_SITE: &str = "site";
/// Tag with the device's kind (also the measurement, so queries across kinds can group by it).
pub const TAG_KIND: &str = "kind";
/// Every tag the sink writes, in the (sorted) order it writes them.
pub const TAGS: [&str; 3] = [TAG_DEVICE_ID, TAG_KIND, TAG_SITE];
/// Integer field with citytel's receive time (ms since the Unix epoch), written only when it
/// differs from the reading's timestamp by more than `sink.influxdb.receive_time_threshold`.
pub const FIELD_RECEIVED_AT_MS: &str = "received_at_ms";

/// The measurement a device kind writes to.
pub fn measurement(kind: &str) -> &str {
    kind
}

/// A measurement the fleet's device kinds write, with their metric fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// Measurement name.
    pub name: &'static str,
    /// Metric fields of the kind: its metric names in the contract's [`citytel_proto::catalog`].
    pub fields: &'static [&'static str],
}

/// The measurements of the known device kinds. Devices may send further metrics (they are
/// written as further fields); dashboards only use these.
pub fn measurements() -> Vec<Measurement> {
    Kind::ALL
        .into_iter()
        .map(|kind| Measurement {
            name: kind.as_str(),
            fields: metric_names(kind),
        })
        .collect()
}

/// Whether `field` is written to `measurement` for a known kind (metric or receive time).
pub fn has_field(measurement: &str, field: &str) -> bool {
    field == FIELD_RECEIVED_AT_MS
        || measurements()
            .iter()
            .any(|m| m.name == measurement && m.fields.contains(&field))
}

/// Whether `tag` is a tag the sink writes.
pub fn is_tag(tag: &str) -> bool {
    TAGS.contains(&tag)
}
