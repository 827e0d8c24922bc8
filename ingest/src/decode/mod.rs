//! Decoding and validation: turns a received MQTT message into a [`Decoded`] protobuf message or a
//! [`Rejection`] with a [`RejectReason`].
//!
//! This is the only place that decides whether input is acceptable. It is pure (the receive time
//! is an argument), so every rule is unit-tested without sockets. [`decode`] applies every rule to
//! fresh input; [`decode_trusted`] only decodes, for WAL replay of messages that were accepted
//! before (the limits in force then may differ from today's).

mod reject;
mod validate;

use citytel_proto::topic::{self, Channel};
use citytel_proto::v1::{Status, TelemetryBatch};
use prost::Message;

pub use reject::{RejectReason, Rejection};
pub(crate) use validate::Limits;

/// A message that passed decoding (and, for [`decode`], validation).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    /// Readings from a device.
    Telemetry(TelemetryBatch),
    /// A birth, heartbeat or death.
    Status(Status),
}

/// Decodes and validates a freshly received message.
pub(crate) fn decode(
    topic: &str,
    payload: &[u8],
    received_at_ms: i64,
    limits: &Limits,
) -> Result<Decoded, Rejection> {
    if payload.is_empty() {
        return Err(Rejection::new(
            RejectReason::EmptyPayload,
            "payload is empty",
        ));
    }
    if payload.len() > limits.max_payload_bytes {
        return Err(Rejection::new(
            RejectReason::Oversize,
            format!(
                "payload of {} bytes exceeds the limit of {} bytes",
                payload.len(),
                limits.max_payload_bytes
            ),
        ));
    }
    let decoded = decode_trusted(topic, payload)?;
    match &decoded {
        Decoded::Telemetry(batch) => validate::telemetry(batch, received_at_ms, limits)?,
        Decoded::Status(status) => validate::status(status, received_at_ms, limits)?,
    }
    Ok(decoded)
}

/// Decodes a message and checks the topic/payload identity, without limits or time bounds.
pub(crate) fn decode_trusted(topic: &str, payload: &[u8]) -> Result<Decoded, Rejection> {
    let parsed = topic::parse(topic)
        .map_err(|e| Rejection::new(RejectReason::UnknownTopic, e.to_string()))?;
    let (device_id, decoded) = match parsed.channel {
        Channel::Telemetry => {
            let batch = TelemetryBatch::decode(payload).map_err(|e| {
                Rejection::new(
                    RejectReason::Malformed,
                    format!("not a TelemetryBatch: {e}"),
                )
            })?;
            (batch.device_id.clone(), Decoded::Telemetry(batch))
        }
        Channel::Status => {
            let status = Status::decode(payload).map_err(|e| {
                Rejection::new(RejectReason::Malformed, format!("not a Status: {e}"))
            })?;
            (status.device_id.clone(), Decoded::Status(status))
        }
    };
    if device_id != parsed.device_id {
        return Err(Rejection::new(
            RejectReason::DeviceMismatch,
            format!(
                "topic names device {:?} but the payload names {:?}",
                parsed.device_id, device_id
            ),
        ));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests;
