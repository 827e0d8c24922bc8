//! How a parsed line becomes citytel data.
//!
//! - **Device**: the id is the tag named by `device_tag` (default `device_id`); the site is the
//!   `site` tag, else `default_site` (default `unknown`); the kind is the `kind` tag, else the
//!   measurement. All three must be valid citytel ids (`[A-Za-z0-9._-]`, 1 to 128 bytes). Other
//!   tags are ignored.
//! - **Metrics**: every numeric field becomes a metric of that name: floats as they are, signed
//!   and unsigned integers converted to `f64` (exact up to 2^53), booleans as 1.0 and 0.0. String
//!   fields are skipped and counted. Metric names must be valid ids of at most 64 bytes.
//! - **Time**: the line's timestamp, in the configured [`Precision`], converted to milliseconds
//!   (rounded down: sub-millisecond parts are dropped and counted).
//!
//! A line is imported whole or not at all: one without a timestamp, without the device tag, with
//! an invalid id or metric name, or with a NaN or infinite value is a bad line and gives no point.

use rustc_hash::FxHashMap;
use std::fmt;
use std::str::FromStr;

use citytel_proto::topic::is_valid_id;

use super::lineproto::{FieldValue, Line};
use super::summary::BadLineReason;
use super::{BatchPoint, DeviceKey, PointBatch};

/// Longest metric name, in bytes.
pub const MAX_METRIC_NAME_LEN: usize = 64;

/// The unit of line protocol timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// Nanoseconds (InfluxDB's default).
    #[default]
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl Precision {
    /// `timestamp` in milliseconds, rounded down, and whether a sub-millisecond part was
    /// dropped; `None` if it does not fit.
    pub fn to_millis(self, timestamp: i64) -> Option<(i64, bool)> {
        let per_ms = match self {
            Precision::Nanoseconds => 1_000_000,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => return Some((timestamp, false)),
            Precision::Seconds => return timestamp.checked_mul(1_000).map(|ms| (ms, false)),
        };
        Some((
            timestamp.div_euclid(per_ms),
            timestamp.rem_euclid(per_ms) != 0,
        ))
    }

    /// The short name: `ns`, `us`, `ms` or `s`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;

    /// `ns`, `us` (or `µs`), `ms` or `s`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ns" => Ok(Precision::Nanoseconds),
            "us" | "µs" => Ok(Precision::Microseconds),
            "ms" => Ok(Precision::Milliseconds),
            "s" => Ok(Precision::Seconds),
            _ => Err(format!(
                "unknown precision {s:?} (expected ns, us, ms or s)"
            )),
        }
    }
}

/// The mapping settings, from [`ImportOptions`](super::ImportOptions).
#[derive(Debug, Clone, Copy)]
pub struct Mapping<'a> {
    /// The tag holding the device id.
    pub device_tag: &'a str,
    /// The site of lines without a `site` tag.
    pub default_site: &'a str,
    /// The unit of timestamps.
    pub precision: Precision,
}

/// Why a line cannot be imported, borrowing the offending text from the line.
#[derive(Debug, Clone, PartialEq)]
pub enum MapError<'l> {
    /// No timestamp.
    MissingTimestamp,
    /// The timestamp overflows milliseconds.
    TimestampOutOfRange(i64),
    /// No tag of this name.
    MissingDeviceTag(&'l str),
    /// An invalid device id.
    InvalidDeviceId(&'l str),
    /// An invalid site.
    InvalidSite(&'l str),
    /// An invalid kind.
    InvalidKind(&'l str),
    /// An invalid metric name.
    InvalidMetricName(&'l str),
    /// A NaN or infinite value, with its field.
    NonFiniteValue(&'l str),
}

impl MapError<'_> {
    /// The reason the summary counts it under.
    pub fn reason(&self) -> BadLineReason {
        match self {
            MapError::MissingTimestamp => BadLineReason::MissingTimestamp,
            MapError::TimestampOutOfRange(_) => BadLineReason::TimestampOutOfRange,
            MapError::MissingDeviceTag(_) => BadLineReason::MissingDeviceTag,
            MapError::InvalidDeviceId(_) => BadLineReason::InvalidDeviceId,
            MapError::InvalidSite(_) => BadLineReason::InvalidSite,
            MapError::InvalidKind(_) => BadLineReason::InvalidKind,
            MapError::InvalidMetricName(_) => BadLineReason::InvalidMetricName,
            MapError::NonFiniteValue(_) => BadLineReason::NonFiniteValue,
        }
    }
}

impl fmt::Display for MapError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ID: &str = "1 to 128 bytes of [A-Za-z0-9._-]";
        match self {
            MapError::MissingTimestamp => f.write_str("missing timestamp"),
            MapError::TimestampOutOfRange(ts) => {
                write!(f, "timestamp {ts} is out of range for the precision")
            }
            MapError::MissingDeviceTag(tag) => write!(f, "missing device tag {tag:?}"),
            MapError::InvalidDeviceId(id) => write!(f, "invalid device id {id:?} (need {ID})"),
            MapError::InvalidSite(site) => write!(f, "invalid site {site:?} (need {ID})"),
            MapError::InvalidKind(kind) => write!(f, "invalid kind {kind:?} (need {ID})"),
            MapError::InvalidMetricName(name) => write!(
                f,
                "invalid metric name {name:?} (need 1 to {MAX_METRIC_NAME_LEN} bytes of \
                 [A-Za-z0-9._-])"
            ),
            MapError::NonFiniteValue(field) => write!(f, "field {field:?} is NaN or infinite"),
        }
    }
}

/// What a mapped line added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mapped {
    /// Points added.
    pub points: u64,
    /// String fields skipped.
    pub skipped_string_fields: u64,
    /// Whether the timestamp lost a sub-millisecond part.
    pub truncated_timestamp: bool,
}

/// Maps `line` into `batch`: all of its points, or none and the reason.
pub fn map_line<'l>(
    line: &'l Line<'_>,
    mapping: &Mapping<'l>,
    batch: &mut BatchBuilder,
) -> Result<Mapped, MapError<'l>> {
    let timestamp = line.timestamp.ok_or(MapError::MissingTimestamp)?;
    let (time_ms, truncated_timestamp) = mapping
        .precision
        .to_millis(timestamp)
        .ok_or(MapError::TimestampOutOfRange(timestamp))?;
    let device_id = line
        .tag(mapping.device_tag)
        .ok_or(MapError::MissingDeviceTag(mapping.device_tag))?;
    let site = line.tag("site").unwrap_or(mapping.default_site);
    let kind = line.tag("kind").unwrap_or(&line.measurement);
    // Names already in the batch were validated when they were added.
    let known_device = batch.known_device(device_id, site, kind);
    if known_device.is_none() {
        if !is_valid_id(device_id) {
            return Err(MapError::InvalidDeviceId(device_id));
        }
        if !is_valid_id(site) {
            return Err(MapError::InvalidSite(site));
        }
        if !is_valid_id(kind) {
            return Err(MapError::InvalidKind(kind));
        }
    }
    let mut mapped = Mapped {
        truncated_timestamp,
        ..Mapped::default()
    };
    for (position, (name, value)) in line.fields.iter().enumerate() {
        if matches!(value, FieldValue::String(_)) {
            mapped.skipped_string_fields += 1;
            continue;
        }
        if batch.known_metric_at(position, name).is_none() && !is_valid_metric_name(name) {
            return Err(MapError::InvalidMetricName(name));
        }
        if numeric(value).is_some_and(|v| !v.is_finite()) {
            return Err(MapError::NonFiniteValue(name));
        }
    }
    let device = match known_device {
        Some(d) => d,
        None => batch.device(device_id, site, kind),
    };
    for (position, (name, value)) in line.fields.iter().enumerate() {
        if let Some(value) = numeric(value) {
            let metric = batch.metric_at(position, name);
            batch.push(BatchPoint {
                device,
                metric,
                time_ms,
                value,
            });
            mapped.points += 1;
        }
    }
    Ok(mapped)
}

/// Whether `name` is acceptable as a metric name.
pub fn is_valid_metric_name(name: &str) -> bool {
    name.len() <= MAX_METRIC_NAME_LEN && is_valid_id(name)
}

/// The value of a numeric or boolean field; `None` for strings.
fn numeric(value: &FieldValue<'_>) -> Option<f64> {
    match *value {
        FieldValue::Float(v) => Some(v),
        FieldValue::Integer(v) => Some(v as f64),
        FieldValue::UInteger(v) => Some(v as f64),
        FieldValue::Boolean(v) => Some(if v { 1.0 } else { 0.0 }),
        FieldValue::String(_) => None,
    }
}

/// Builds a [`PointBatch`], interning devices and metrics.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    devices: Vec<DeviceKey>,
    device_index: FxHashMap<String, u32>,
    metrics: Vec<String>,
    metric_index: FxHashMap<String, u32>,
    /// The metric of each field position of the last line: lines of one measurement list the
    /// same fields in the same order, so a field's name is compared with one metric's rather
    /// than hashed and looked up.
    field_metrics: Vec<u32>,
    points: Vec<BatchPoint>,
    key: String,
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        BatchBuilder::default()
    }

    /// An empty builder filling `points` (cleared first) with room for `capacity` points, so that
    /// a batch of about that size is not grown (and copied) step by step. A vector from an
    /// earlier batch has its memory in place already, where a new one would take fresh pages
    /// from the system, which it zeroes.
    pub fn reusing(mut points: Vec<BatchPoint>, capacity: usize) -> Self {
        points.clear();
        points.reserve(capacity);
        BatchBuilder {
            points,
            ..BatchBuilder::default()
        }
    }

    fn set_key(&mut self, device_id: &str, site: &str, kind: &str) {
        self.key.clear();
        for part in [device_id, site, kind] {
            self.key.push_str(part);
            // Not an id character, so the joined key is unambiguous.
            self.key.push('/');
        }
    }

    /// The index of device (`device_id`, `site`, `kind`), if it is in the batch.
    pub fn known_device(&mut self, device_id: &str, site: &str, kind: &str) -> Option<u32> {
        self.set_key(device_id, site, kind);
        self.device_index.get(self.key.as_str()).copied()
    }

    /// The index of metric `name`, if it is in the batch.
    pub fn known_metric(&self, name: &str) -> Option<u32> {
        self.metric_index.get(name).copied()
    }

    /// The index of metric `name`, the field at `position` of a line, if it is in the batch.
    pub fn known_metric_at(&self, position: usize, name: &str) -> Option<u32> {
        match self.field_metrics.get(position) {
            Some(&index) if self.metrics[index as usize] == name => Some(index),
            _ => self.known_metric(name),
        }
    }

    /// The index of metric `name`, the field at `position` of a line, added if new.
    pub fn metric_at(&mut self, position: usize, name: &str) -> u32 {
        let index = match self.known_metric_at(position, name) {
            Some(index) => index,
            None => self.metric(name),
        };
        if self.field_metrics.len() <= position {
            self.field_metrics.resize(position + 1, index);
        }
        self.field_metrics[position] = index;
        index
    }

    /// The index of device (`device_id`, `site`, `kind`), added if new.
    pub fn device(&mut self, device_id: &str, site: &str, kind: &str) -> u32 {
        self.set_key(device_id, site, kind);
        if let Some(&index) = self.device_index.get(self.key.as_str()) {
            return index;
        }
        let index = u32::try_from(self.devices.len()).unwrap_or(u32::MAX);
        self.devices.push(DeviceKey {
            device_id: device_id.to_string(),
            site: site.to_string(),
            kind: kind.to_string(),
        });
        self.device_index.insert(self.key.clone(), index);
        index
    }

    /// The index of metric `name`, added if new.
    pub fn metric(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.metric_index.get(name) {
            return index;
        }
        let index = u32::try_from(self.metrics.len()).unwrap_or(u32::MAX);
        self.metrics.push(name.to_string());
        self.metric_index.insert(name.to_string(), index);
        index
    }

    /// Adds a point whose indices came from [`device`](Self::device) and
    /// [`metric`](Self::metric).
    pub fn push(&mut self, point: BatchPoint) {
        self.points.push(point);
    }

    /// Points added so far.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no point was added.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The batch.
    pub fn finish(self) -> PointBatch {
        PointBatch {
            devices: self.devices,
            metrics: self.metrics,
            points: self.points,
        }
    }
}
