//! The rules a decoded message must satisfy before it is stored.

use std::collections::HashSet;

use citytel_proto::topic::is_valid_id;
use citytel_proto::v1::{Attribute, Status, TelemetryBatch, status};

use super::{RejectReason, Rejection};

/// Longest accepted metric name, in bytes.
const MAX_METRIC_NAME_LEN: usize = 64;
/// Longest accepted firmware version in a birth, in bytes (it is kept in the registry).
pub(crate) const MAX_FIRMWARE_VERSION_LEN: usize = 128;
/// Most children a gateway's birth may list.
const MAX_BIRTH_CHILDREN: usize = 10_000;
/// Most values in one attributes status.
pub(crate) const MAX_ATTRIBUTES_PER_MESSAGE: usize = 256;
/// Longest accepted attribute value, in bytes.
pub(crate) const MAX_ATTRIBUTE_VALUE_LEN: usize = 4096;
/// Longest accepted attribute datatype name, in bytes.
const MAX_ATTRIBUTE_DATATYPE_LEN: usize = 32;

/// Validation limits, from `[ingest]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Limits {
    /// Largest payload accepted, in bytes.
    pub(crate) max_payload_bytes: usize,
    /// Most readings per message.
    pub(crate) max_readings_per_message: usize,
    /// Largest accepted lead of a device timestamp over the receive time, in ms.
    pub(crate) max_future_ms: i64,
    /// Largest accepted lag of a device timestamp behind the receive time, in ms.
    pub(crate) max_past_ms: i64,
}

fn invalid(detail: impl Into<String>) -> Rejection {
    Rejection::new(RejectReason::InvalidField, detail)
}

pub(super) fn telemetry(
    batch: &TelemetryBatch,
    received_at_ms: i64,
    limits: &Limits,
) -> Result<(), Rejection> {
    if batch.readings.is_empty() {
        return Err(invalid("batch has no readings"));
    }
    if batch.readings.len() > limits.max_readings_per_message {
        return Err(invalid(format!(
            "batch has {} readings, more than the limit of {}",
            batch.readings.len(),
            limits.max_readings_per_message
        )));
    }
    if batch.metric_names.is_empty() {
        return Err(invalid("batch names no metrics"));
    }
    if let Some(gw) = &batch.gateway_id
        && !is_valid_id(gw)
    {
        return Err(invalid(format!(
            "gateway_id {gw:?} is not a valid device id"
        )));
    }
    let mut seen = HashSet::with_capacity(batch.metric_names.len());
    for name in &batch.metric_names {
        if name.len() > MAX_METRIC_NAME_LEN || !is_valid_id(name) {
            return Err(invalid(format!(
                "metric name {name:?} is not 1 to 64 characters of [A-Za-z0-9._-]"
            )));
        }
        if !seen.insert(name.as_str()) {
            return Err(invalid(format!("metric name {name:?} appears twice")));
        }
    }
    for reading in &batch.readings {
        if reading.values.len() != batch.metric_names.len() {
            return Err(invalid(format!(
                "reading seq {} has {} values for {} metric names",
                reading.seq,
                reading.values.len(),
                batch.metric_names.len()
            )));
        }
        if let Some(i) = reading.values.iter().position(|v| !v.is_finite()) {
            return Err(Rejection::new(
                RejectReason::NonFiniteValue,
                format!(
                    "reading seq {} has value {} for metric {:?}",
                    reading.seq, reading.values[i], batch.metric_names[i]
                ),
            ));
        }
        check_time(reading.time_unix_ms, received_at_ms, limits, || {
            format!("reading seq {}", reading.seq)
        })?;
    }
    Ok(())
}

/// Checks a device timestamp against the receive time and the accepted future and past.
fn check_time(
    time_ms: i64,
    received_at_ms: i64,
    limits: &Limits,
    what: impl Fn() -> String,
) -> Result<(), Rejection> {
    let earliest = received_at_ms.saturating_sub(limits.max_past_ms);
    let latest = received_at_ms.saturating_add(limits.max_future_ms);
    if time_ms > latest {
        return Err(Rejection::new(
            RejectReason::TimestampInFuture,
            format!(
                "{} is stamped {} ms after its receive time (limit {} ms)",
                what(),
                time_ms.saturating_sub(received_at_ms),
                limits.max_future_ms
            ),
        ));
    }
    if time_ms < earliest {
        return Err(Rejection::new(
            RejectReason::TimestampTooOld,
            format!(
                "{} is stamped {} ms before its receive time (limit {} ms)",
                what(),
                received_at_ms.saturating_sub(time_ms),
                limits.max_past_ms
            ),
        ));
    }
    Ok(())
}

pub(super) fn status(
    status: &Status,
    received_at_ms: i64,
    limits: &Limits,
) -> Result<(), Rejection> {
    let Some(kind) = &status.kind else {
        return Err(Rejection::new(
            RejectReason::UnknownStatusType,
            "status carries no birth, heartbeat, death or attributes",
        ));
    };
    // Zero means "not stamped" (a Last Will is composed at connect time).
    if status.time_unix_ms != 0 {
        check_time(status.time_unix_ms, received_at_ms, limits, || {
            "status".to_string()
        })?;
    }
    if let status::Kind::Birth(birth) = kind {
        if birth.firmware_version.len() > MAX_FIRMWARE_VERSION_LEN {
            return Err(invalid(format!(
                "firmware_version of {} bytes is longer than {MAX_FIRMWARE_VERSION_LEN}",
                birth.firmware_version.len()
            )));
        }
        if birth.children.len() > MAX_BIRTH_CHILDREN {
            return Err(invalid(format!(
                "birth lists {} children, more than {MAX_BIRTH_CHILDREN}",
                birth.children.len()
            )));
        }
        if let Some(child) = birth.children.iter().find(|c| !is_valid_id(c)) {
            return Err(invalid(format!("child {child:?} is not a valid device id")));
        }
        if let Some(l) = &birth.location
            && let Err(e) = citytel_availability::Location::new(l.latitude, l.longitude)
        {
            return Err(invalid(e.to_string()));
        }
    }
    if let status::Kind::Attributes(attributes) = kind {
        self::attributes(&attributes.attributes, received_at_ms, limits)?;
    }
    if let Some(gw) = &status.gateway_id
        && !is_valid_id(gw)
    {
        return Err(invalid(format!(
            "gateway_id {gw:?} is not a valid device id"
        )));
    }
    Ok(())
}

/// An attributes status: at most [`MAX_ATTRIBUTES_PER_MESSAGE`] values, each name a metric name
/// given once, values and datatypes within their lengths, no time beyond the accepted future
/// (one would pin the value: the newest wins). Old times are accepted: they only lose to newer
/// values.
fn attributes(
    attributes: &[Attribute],
    received_at_ms: i64,
    limits: &Limits,
) -> Result<(), Rejection> {
    if attributes.is_empty() {
        return Err(invalid("attributes status has no attributes"));
    }
    if attributes.len() > MAX_ATTRIBUTES_PER_MESSAGE {
        return Err(invalid(format!(
            "attributes status has {} attributes, more than {MAX_ATTRIBUTES_PER_MESSAGE}",
            attributes.len()
        )));
    }
    let mut seen = HashSet::with_capacity(attributes.len());
    for a in attributes {
        let name = &a.name;
        if name.len() > MAX_METRIC_NAME_LEN || !is_valid_id(name) {
            return Err(invalid(format!(
                "attribute name {name:?} is not 1 to 64 characters of [A-Za-z0-9._-]"
            )));
        }
        if !seen.insert(name.as_str()) {
            return Err(invalid(format!("attribute {name:?} appears twice")));
        }
        if a.value.len() > MAX_ATTRIBUTE_VALUE_LEN {
            return Err(invalid(format!(
                "attribute {name:?} has a value of {} bytes, more than {MAX_ATTRIBUTE_VALUE_LEN}",
                a.value.len()
            )));
        }
        if a.datatype.len() > MAX_ATTRIBUTE_DATATYPE_LEN {
            return Err(invalid(format!(
                "attribute {name:?} has a datatype of {} bytes, more than {MAX_ATTRIBUTE_DATATYPE_LEN}",
                a.datatype.len()
            )));
        }
        let lead = a.time_unix_ms.saturating_sub(received_at_ms);
        if lead > limits.max_future_ms {
            return Err(Rejection::new(
                RejectReason::TimestampInFuture,
                format!(
                    "attribute {name:?} is stamped {lead} ms after its receive time (limit {} ms)",
                    limits.max_future_ms
                ),
            ));
        }
    }
    Ok(())
}
