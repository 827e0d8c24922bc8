//! Entry points for the fuzz targets in `fuzz/` (compiled only with the `fuzzing` feature).
//!
//! The device endpoint and the decoder are crate-private; this module lends the fuzz targets
//! their stable entry points and nothing else: [`decode`] is the decoder the pipeline runs on
//! every message, and [`endpoint`] builds what one connection of the device endpoint runs
//! against (its configuration, a pipeline, the client-id registry), so that [`Endpoint::serve`]
//! drives the real connection code over any stream while the fuzz target plays the pipeline's
//! writer through [`Intake`]. Nothing here is a promise to other crates: it follows the
//! internals it wraps.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use citytel_proto::v1::{Status, TelemetryBatch};
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{EndpointConfig, IngestConfig};
use crate::decode::{self, Decoded, Rejection};
use crate::journal::Connection;
use crate::pipeline::{Ack, Origin, Pipeline, Queued};
use crate::source::endpoint::Shared;
use crate::source::endpoint::connection;
use crate::source::endpoint::identity::DeviceAuth;

/// A message that passed decoding and validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Readings from a device.
    Telemetry(TelemetryBatch),
    /// A birth, heartbeat or death.
    Status(Status),
}

impl From<Decoded> for Accepted {
    fn from(decoded: Decoded) -> Self {
        match decoded {
            Decoded::Telemetry(batch) => Accepted::Telemetry(batch),
            Decoded::Status(status) => Accepted::Status(status),
        }
    }
}

/// Decodes and validates a received message under the limits `ingest` sets, as the pipeline
/// does for every PUBLISH.
pub fn decode(
    topic: &str,
    payload: &[u8],
    received_at_ms: i64,
    ingest: &IngestConfig,
) -> Result<Accepted, Rejection> {
    decode::decode(topic, payload, received_at_ms, &ingest.limits()).map(Accepted::from)
}

/// Decodes a message without limits or time bounds, as WAL replay does.
pub fn decode_trusted(topic: &str, payload: &[u8]) -> Result<Accepted, Rejection> {
    decode::decode_trusted(topic, payload).map(Accepted::from)
}

/// The device endpoint's side of a connection: configuration, pipeline, client ids.
#[derive(Debug, Clone)]
pub struct Endpoint {
    shared: Arc<Shared>,
}

/// The pipeline's writer side: what the endpoint queued, in order.
#[derive(Debug)]
pub struct Intake {
    queue: mpsc::UnboundedReceiver<Queued>,
}

/// Builds an endpoint with `config`, validating under the limits of `ingest`, with an in-flight
/// budget of `budget_bytes` and receive times from `clock`.
pub fn endpoint(
    config: EndpointConfig,
    ingest: &IngestConfig,
    budget_bytes: u64,
    clock: Clock,
) -> (Endpoint, Intake) {
    let (pipeline, queue) = Pipeline::with_clock(ingest.limits(), budget_bytes, clock);
    let shared = Arc::new(Shared::with_auth(config, pipeline, DeviceAuth::Open));
    (Endpoint { shared }, Intake { queue })
}

impl Endpoint {
    /// Serves one connection over `stream` until it ends; returns the reason's metric label
    /// (`closed`, `client_disconnect`, `protocol_error`, ...).
    pub async fn serve<S>(&self, stream: S, shutdown: CancellationToken) -> &'static str
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let peer = SocketAddr::from(([127, 0, 0, 1], 1883));
        connection::serve(stream, peer, self.shared.clone(), shutdown, None)
            .await
            .label()
    }
}

/// Something the endpoint queued for the writer.
#[derive(Debug)]
pub enum Taken {
    /// A message.
    Message(Box<Message>),
    /// A device's connection opened (`opened`), ended with DISCONNECT (`closed`) or without
    /// (`lost`); `topic` is the device's status topic.
    Connection {
        /// The device's status topic.
        topic: String,
        /// `opened`, `closed` or `lost`.
        change: &'static str,
    },
}

/// A queued message. Dropping it without [`Message::ack`] is a message that never became
/// durable: it must never be acknowledged.
#[derive(Debug)]
pub struct Message {
    /// The PUBLISH's (or Last Will's) topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// Whether it is the connection's Last Will rather than a PUBLISH.
    pub will: bool,
    /// Whether decoding and validation accepted it.
    pub accepted: bool,
    /// The packet id and QoS (1 or 2) the acknowledgement answers; `None` for QoS 0 and wills.
    pub ack_for: Option<(u16, u8)>,
    ack: Option<Ack>,
    // The message's share of the in-flight budget, returned when this is dropped.
    _queued: Queued,
}

impl Message {
    /// Acknowledges the message to its connection, as the writer does after the commit.
    pub fn ack(mut self) {
        if let Some(ack) = self.ack.take() {
            ack.send();
        }
    }
}

impl Intake {
    /// The next queued item, waiting for one; `None` once every endpoint handle is gone.
    pub async fn take(&mut self) -> Option<Taken> {
        self.queue.recv().await.map(taken)
    }

    /// The next queued item, if one is waiting.
    pub fn try_take(&mut self) -> Option<Taken> {
        self.queue.try_recv().ok().map(taken)
    }
}

fn taken(mut queued: Queued) -> Taken {
    if let Queued::Connection { event, .. } = &queued {
        let change = match event.change {
            Connection::Opened => "opened",
            Connection::Closed => "closed",
            Connection::Lost => "lost",
        };
        return Taken::Connection {
            topic: event.topic.clone(),
            change,
        };
    }
    let Queued::Message(envelope) = &mut queued else {
        unreachable!("the endpoint queues only messages and connection events");
    };
    let ack = envelope.inbound.ack.take();
    let ack_for = ack.as_ref().map(|ack| {
        let qos = match ack.token().qos {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce => 1,
            QoS::ExactlyOnce => 2,
        };
        (ack.token().pkid, qos)
    });
    Taken::Message(Box::new(Message {
        topic: envelope.inbound.topic.clone(),
        payload: envelope.inbound.payload.clone(),
        will: envelope.inbound.origin == Origin::Will,
        accepted: envelope.verdict.is_ok(),
        ack_for,
        ack,
        _queued: queued,
    }))
}
