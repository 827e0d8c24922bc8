//! Why a message was refused. Every reason is counted and kept with the message in the dead-letter
//! store; the snake_case names are stable (they appear in metrics and the API).

use std::fmt;

/// The reason a message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The payload is not valid protobuf for its topic.
    Malformed,
    /// The payload is empty.
    EmptyPayload,
    /// The device in the topic is not the device in the payload.
    DeviceMismatch,
    /// The topic is not a citytel device topic.
    UnknownTopic,
    /// The payload is larger than the configured limit.
    Oversize,
    /// A value is NaN or infinite.
    NonFiniteValue,
    /// A timestamp is too far in the future.
    TimestampInFuture,
    /// A timestamp is older than the accepted past.
    TimestampTooOld,
    /// Accepting the message would exceed the series cardinality limit.
    TooManySeries,
    /// A status message carries no known type.
    UnknownStatusType,
    /// A field is missing or out of range (e.g. no readings, names and values differ in length).
    InvalidField,
    /// An InfluxDB-compatible sink refused the point (HTTP 400) after it was stored; the dead
    /// letter carries the line and the server's answer.
    SinkRejected,
    /// The message is from a device citytel does not know yet, and the registry already holds
    /// `ingest.max_devices` devices.
    TooManyDevices,
    /// The connection that sent it may not speak for the device or place it names (device
    /// authentication: another device's topics, a site or kind it is not provisioned with, a
    /// gateway's child it does not own).
    Unauthorized,
    /// A Sparkplug B message of an edge node or device without a current birth (data before
    /// its NBIRTH or DBIRTH, or after its death).
    SparkplugOutOfSession,
    /// A Sparkplug B data message names a metric (alias or name) its birth did not declare.
    SparkplugUnknownMetric,
    /// A Sparkplug B message that is ignored: an NDEATH of an older session (its bdSeq is not the
    /// current NBIRTH's), or a redelivery of a `seq` already received.
    SparkplugStale,
    /// Accepting the status's attributes would bring the device over its attribute limits
    /// (`ingest.max_attributes_per_device`, `ingest.max_attribute_bytes_per_device`).
    TooManyAttributes,
}

impl RejectReason {
    /// Every reason, in code order.
    pub const ALL: [RejectReason; 18] = [
        RejectReason::Malformed,
        RejectReason::EmptyPayload,
        RejectReason::DeviceMismatch,
        RejectReason::UnknownTopic,
        RejectReason::Oversize,
        RejectReason::NonFiniteValue,
        RejectReason::TimestampInFuture,
        RejectReason::TimestampTooOld,
        RejectReason::TooManySeries,
        RejectReason::UnknownStatusType,
        RejectReason::InvalidField,
        RejectReason::SinkRejected,
        RejectReason::TooManyDevices,
        RejectReason::Unauthorized,
        RejectReason::SparkplugOutOfSession,
        RejectReason::SparkplugUnknownMetric,
        RejectReason::SparkplugStale,
        RejectReason::TooManyAttributes,
    ];

    /// Stable snake_case name, used as a metric label and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::EmptyPayload => "empty_payload",
            RejectReason::DeviceMismatch => "device_mismatch",
            RejectReason::UnknownTopic => "unknown_topic",
            RejectReason::Oversize => "oversize",
            RejectReason::NonFiniteValue => "non_finite_value",
            RejectReason::TimestampInFuture => "timestamp_in_future",
            RejectReason::TimestampTooOld => "timestamp_too_old",
            RejectReason::TooManySeries => "too_many_series",
            RejectReason::UnknownStatusType => "unknown_status_type",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::SinkRejected => "sink_rejected",
            RejectReason::TooManyDevices => "too_many_devices",
            RejectReason::Unauthorized => "unauthorized",
            RejectReason::SparkplugOutOfSession => "sparkplug_out_of_session",
            RejectReason::SparkplugUnknownMetric => "sparkplug_unknown_metric",
            RejectReason::SparkplugStale => "sparkplug_stale",
            RejectReason::TooManyAttributes => "too_many_attributes",
        }
    }

    /// Stable one-byte code, used in the WAL.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The reason with the given [`code`](Self::code).
    pub fn from_code(code: u8) -> Option<RejectReason> {
        RejectReason::ALL
            .get(usize::from(code.checked_sub(1)?))
            .copied()
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected message's reason and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The counted reason.
    pub reason: RejectReason,
    /// What exactly was wrong, for the dead-letter store.
    pub detail: String,
}

impl Rejection {
    /// A rejection for `reason` with `detail`.
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}
