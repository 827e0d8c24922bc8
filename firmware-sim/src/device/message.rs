//! A publish a device has composed: topic and encoded payload, plus what the report needs once the
//! broker acknowledges it.

use citytel_proto::v1::{Reading, Status, TelemetryBatch};
use prost::Message as _;

/// An encoded message on its way to the broker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    /// Index of the reporter (0: the device itself, then gateway children) it belongs to.
    pub(crate) reporter: usize,
    /// The topic it goes to.
    pub(crate) topic: String,
    /// The protobuf payload.
    pub(crate) payload: Vec<u8>,
    /// How many readings it carries.
    pub(crate) readings: u64,
    /// The readings it carries, when the fleet records acked readings; empty otherwise.
    pub(crate) recorded: Vec<Reading>,
    /// Whether it was written to the broker already (after the broker lost the session it is
    /// published again, but counts once).
    pub(crate) published: bool,
}

impl Message {
    /// A status message of reporter `reporter`, to `topic`.
    pub(crate) fn status(reporter: usize, topic: String, status: &Status) -> Self {
        Message {
            reporter,
            topic,
            payload: status.encode_to_vec(),
            readings: 0,
            recorded: Vec::new(),
            published: false,
        }
    }

    /// A telemetry message of reporter `reporter`, to `topic`, keeping its readings if `record`.
    pub(crate) fn telemetry(
        reporter: usize,
        topic: String,
        batch: TelemetryBatch,
        record: bool,
    ) -> Self {
        Message {
            reporter,
            topic,
            payload: batch.encode_to_vec(),
            readings: batch.readings.len() as u64,
            recorded: if record { batch.readings } else { Vec::new() },
            published: false,
        }
    }
}
