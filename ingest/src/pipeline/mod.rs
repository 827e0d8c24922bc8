//! The ingest pipeline every source feeds: admission, decoding, group commit, acknowledgement.
//!
//! A source (the device endpoint or the broker source) turns each MQTT PUBLISH into an
//! [`Inbound`] carrying an [`Ack`] handle and calls [`Pipeline::submit`]. Submission waits for
//! room in the in-flight byte budget (that wait is the backpressure that stops a source from
//! reading), decodes and validates on the caller's task, and queues the message for the
//! [`writer`]. The writer appends every queued message to the WAL, commits them together, applies
//! them to the database and only then fires their acks, in arrival order. Rejected messages take
//! the same path into the dead-letter store, so they are acknowledged too. The device endpoint
//! also queues [`ConnectionEvent`]s (a device's connection opened or closed) with
//! [`Pipeline::connection`]: they take the same queue, in order with the connection's messages,
//! into the WAL and the fleet tracker, and need no acknowledgement. The API submits
//! [`Command`]s with [`Pipeline::command`]: the writer commits and applies them in the same order
//! and answers with what they did, so every state change goes through the WAL.

pub(crate) mod durability;
pub(crate) mod writer;

use std::sync::Arc;

use bytes::Bytes;
use rumqttc::mqttbytes::QoS;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::clock::Clock;
use crate::decode::{self, Decoded, Limits, Rejection};
use crate::journal::Connection;
use crate::state::command::{Outcome, Submitted};
use crate::telemetry::metrics as m;

/// Fixed per-message cost charged to the budget on top of the payload, covering the topic and
/// bookkeeping.
const MESSAGE_OVERHEAD_BYTES: usize = 256;

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A device connected to citytel's MQTT endpoint.
    Endpoint,
    /// An external broker.
    Broker,
    /// A Last Will published by the endpoint for a connection that dropped.
    Will,
    /// A sink whose server refused a stored point.
    Sink,
}

impl Origin {
    /// Label value for metrics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Origin::Endpoint => "endpoint",
            Origin::Broker => "broker",
            Origin::Will => "will",
            Origin::Sink => "sink",
        }
    }
}

/// What a source must send back once a message is durable: the packet id and the QoS it came
/// with (QoS 1 is answered with PUBACK, QoS 2 with PUBREC), and whether it was stored as a dead
/// letter instead of accepted (an MQTT 5 acknowledgement says why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckToken {
    /// MQTT packet identifier.
    pub(crate) pkid: u16,
    /// QoS of the PUBLISH.
    pub(crate) qos: QoS,
    /// Why the message was dead-lettered; `None`: accepted.
    pub(crate) refused: Option<decode::RejectReason>,
}

impl AckToken {
    /// The acknowledgement of the PUBLISH with packet id `pkid` at `qos`, not (yet) refused.
    pub(crate) fn new(pkid: u16, qos: QoS) -> Self {
        AckToken {
            pkid,
            qos,
            refused: None,
        }
    }
}

/// The acknowledgement queue of one device connection: bounded, and when it is full the device
/// is not reading what citytel writes, so the connection is closed (`stalled` is cancelled)
/// rather than buffered.
#[derive(Debug)]
pub(crate) struct BoundedAcks {
    /// The queue the connection's write half drains.
    pub(crate) tx: mpsc::Sender<AckToken>,
    /// Cancelled when the queue overflows: the connection closes.
    pub(crate) stalled: tokio_util::sync::CancellationToken,
}

/// Where an acknowledgement goes.
#[derive(Debug)]
enum AckTo {
    /// A channel the source drains (the broker source, whose unacknowledged messages the
    /// broker's in-flight window bounds).
    Channel(mpsc::UnboundedSender<AckToken>),
    /// A device connection's bounded queue.
    Bounded(Arc<BoundedAcks>),
}

/// A message's share of the in-flight budget, taken before the message is built (see
/// [`Pipeline::admission`]); returned to the budget when dropped unused.
#[derive(Debug)]
pub(crate) struct Admission(OwnedSemaphorePermit);

/// Handle that acknowledges one message to its source.
#[derive(Debug)]
pub(crate) struct Ack {
    token: AckToken,
    to: AckTo,
}

impl Ack {
    /// An ack that will deliver `token` to `tx`.
    pub(crate) fn new(token: AckToken, tx: mpsc::UnboundedSender<AckToken>) -> Self {
        Ack {
            token,
            to: AckTo::Channel(tx),
        }
    }

    /// An ack that will deliver `token` to a device connection's bounded queue.
    pub(crate) fn bounded(token: AckToken, acks: Arc<BoundedAcks>) -> Self {
        Ack {
            token,
            to: AckTo::Bounded(acks),
        }
    }

    /// The packet id and QoS this ack answers.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn token(&self) -> AckToken {
        self.token
    }

    /// The same acknowledgement, telling the source the message was dead-lettered for `reason`.
    pub(crate) fn refused(mut self, reason: decode::RejectReason) -> Self {
        self.token.refused = Some(reason);
        self
    }

    /// Sends the acknowledgement. If the source has gone away, the message will be redelivered
    /// and deduplicated, so there is nothing else to do; the same holds for a connection whose
    /// queue is full, which is closed instead.
    pub(crate) fn send(self) {
        match self.to {
            AckTo::Channel(tx) => {
                let _ = tx.send(self.token);
            }
            AckTo::Bounded(acks) => {
                if let Err(mpsc::error::TrySendError::Full(_)) = acks.tx.try_send(self.token) {
                    acks.stalled.cancel();
                }
            }
        }
    }
}

/// A message as received, before decoding.
#[derive(Debug)]
pub(crate) struct Inbound {
    /// MQTT topic.
    pub(crate) topic: String,
    /// Payload as received.
    pub(crate) payload: Bytes,
    /// Receive time, ms since the Unix epoch.
    pub(crate) received_at_ms: i64,
    /// Where it came from.
    pub(crate) origin: Origin,
    /// How to acknowledge it; `None` for QoS 0 and wills.
    pub(crate) ack: Option<Ack>,
    /// The MQTT 5 user properties of the PUBLISH, rendered (`"name"="value", ...`), kept in the
    /// detail of a dead letter made from it; `None` when it had none.
    pub(crate) user_properties: Option<Box<str>>,
}

impl Inbound {
    /// `rejection` with the message's user properties (if any) added to its detail.
    pub(crate) fn annotate(&self, mut rejection: Rejection) -> Rejection {
        if let Some(properties) = &self.user_properties {
            rejection.detail.push_str("; MQTT 5 user properties: ");
            rejection.detail.push_str(properties);
        }
        rejection
    }
}

/// A message on its way to the writer.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// The message.
    pub(crate) inbound: Inbound,
    /// The decoded message, or why it is rejected.
    pub(crate) verdict: Result<Decoded, Rejection>,
    /// Its share of the in-flight budget, returned when the envelope is dropped (after the ack).
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// A device's connection to the device endpoint opened or closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionEvent {
    /// The device's status topic, `citytel/v1/{site}/{kind}/{device_id}/status`.
    pub(crate) topic: String,
    /// When the endpoint saw it, ms since the Unix epoch, by the pipeline's clock.
    pub(crate) received_at_ms: i64,
    /// Opened, closed or lost.
    pub(crate) change: Connection,
}

/// A command on its way to the writer.
#[derive(Debug)]
pub(crate) struct CommandRequest {
    /// The encoded command, as it goes into the WAL.
    pub(crate) encoded: Vec<u8>,
    /// When it was submitted, ms since the Unix epoch, by the pipeline's clock.
    pub(crate) received_at_ms: i64,
    /// Where the writer sends what the command did, once it is durable and applied.
    pub(crate) reply: oneshot::Sender<Outcome>,
}

/// What the writer takes from the queue, in arrival order.
// Messages are nearly every item, so boxing the large variant would cost an allocation per
// message to save queue slots' bytes on the rare connection events and commands.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Queued {
    /// A message.
    Message(Envelope),
    /// A connection opened or closed.
    Connection {
        /// What happened.
        event: ConnectionEvent,
        /// Its share of the in-flight budget, returned once it is applied.
        _permit: OwnedSemaphorePermit,
    },
    /// A state change requested through the API.
    Command(CommandRequest),
}

impl Queued {
    /// The message, if this is one.
    pub(crate) fn message(&self) -> Option<&Envelope> {
        match self {
            Queued::Message(envelope) => Some(envelope),
            Queued::Connection { .. } | Queued::Command(_) => None,
        }
    }

    /// The decoded message, if this is an accepted one.
    pub(crate) fn decoded(&self) -> Option<&Decoded> {
        self.message()?.verdict.as_ref().ok()
    }
}

/// The pipeline has shut down (the writer stopped); nothing more can be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ingest pipeline is closed")]
pub(crate) struct PipelineClosed;

/// Handle through which sources submit messages. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    limits: Arc<Limits>,
    clock: Clock,
}

impl Pipeline {
    /// A pipeline with an in-flight budget of `budget_bytes`, and the receiving end for the writer.
    #[cfg(test)]
    pub(crate) fn new(
        limits: Limits,
        budget_bytes: u64,
    ) -> (Pipeline, mpsc::UnboundedReceiver<Queued>) {
        Self::with_clock(limits, budget_bytes, Clock::System)
    }

    /// Like [`new`](Self::new), stamping receive times from `clock`.
    pub(crate) fn with_clock(
        limits: Limits,
        budget_bytes: u64,
        clock: Clock,
    ) -> (Pipeline, mpsc::UnboundedReceiver<Queued>) {
        let budget_bytes = usize::try_from(budget_bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        let (tx, rx) = mpsc::unbounded_channel();
        let pipeline = Pipeline {
            tx,
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
            limits: Arc::new(limits),
            clock,
        };
        (pipeline, rx)
    }

    /// Admits, decodes and queues one message. Waits while the in-flight budget is exhausted.
    pub(crate) async fn submit(&self, inbound: Inbound) -> Result<(), PipelineClosed> {
        let permit = self.admit(&inbound).await?;
        self.queue(inbound, permit)
    }

    /// The share of the in-flight budget of a message with a topic of `topic_bytes` and a
    /// payload of `payload_bytes`, waiting while the budget is exhausted: a source that must
    /// know whether there is room before it builds the message (to refuse it instead of waiting)
    /// takes it first, then hands it to [`submit_admitted`](Self::submit_admitted).
    pub(crate) async fn admission(
        &self,
        topic_bytes: usize,
        payload_bytes: usize,
    ) -> Result<Admission, PipelineClosed> {
        self.acquire(payload_bytes + topic_bytes)
            .await
            .map(Admission)
    }

    /// [`submit`](Self::submit) with the budget share already taken.
    pub(crate) fn submit_admitted(
        &self,
        inbound: Inbound,
        admission: Admission,
    ) -> Result<(), PipelineClosed> {
        self.queue(inbound, admission.0)
    }

    /// [`submit_admitted`](Self::submit_admitted), with `check` run on the decoded message: a
    /// message it refuses becomes a dead letter `unauthorized` (acknowledged once durable, like
    /// any rejected message). Returns whether `check` let it through.
    pub(crate) fn submit_checked_admitted(
        &self,
        inbound: Inbound,
        admission: Admission,
        check: impl FnOnce(&Decoded) -> Result<(), String>,
    ) -> Result<bool, PipelineClosed> {
        let permit = admission.0;
        let verdict = decode::decode(
            &inbound.topic,
            &inbound.payload,
            inbound.received_at_ms,
            &self.limits,
        );
        let (verdict, allowed) = match verdict {
            Ok(decoded) => match check(&decoded) {
                Ok(()) => (Ok(decoded), true),
                Err(why) => (
                    Err(Rejection::new(decode::RejectReason::Unauthorized, why)),
                    false,
                ),
            },
            Err(rejection) => (Err(rejection), true),
        };
        self.queue_verdict(inbound, verdict, permit)?;
        Ok(allowed)
    }

    /// Admits and queues a message already refused by its source (an oversize packet the
    /// device endpoint read past, keeping its first bytes): it becomes a dead letter with
    /// `rejection` and is acknowledged once that is durable, so the device stops resending it.
    pub(crate) async fn submit_rejected(
        &self,
        inbound: Inbound,
        rejection: Rejection,
    ) -> Result<(), PipelineClosed> {
        let permit = self.admit(&inbound).await?;
        self.queue_verdict(inbound, Err(rejection), permit)
    }

    async fn admit(&self, inbound: &Inbound) -> Result<OwnedSemaphorePermit, PipelineClosed> {
        self.acquire(inbound.payload.len() + inbound.topic.len())
            .await
    }

    /// Takes a message's share of the budget: `bytes` of topic and payload plus the overhead.
    async fn acquire(&self, bytes: usize) -> Result<OwnedSemaphorePermit, PipelineClosed> {
        let cost = (bytes + MESSAGE_OVERHEAD_BYTES).min(self.budget_bytes);
        self.budget
            .clone()
            .acquire_many_owned(u32::try_from(cost).unwrap_or(u32::MAX))
            .await
            .map_err(|_| PipelineClosed)
    }

    fn queue(&self, inbound: Inbound, permit: OwnedSemaphorePermit) -> Result<(), PipelineClosed> {
        let verdict = decode::decode(
            &inbound.topic,
            &inbound.payload,
            inbound.received_at_ms,
            &self.limits,
        );
        self.queue_verdict(inbound, verdict, permit)
    }

    fn queue_verdict(
        &self,
        inbound: Inbound,
        verdict: Result<Decoded, Rejection>,
        permit: OwnedSemaphorePermit,
    ) -> Result<(), PipelineClosed> {
        metrics::counter!(m::MESSAGES_RECEIVED_TOTAL, "source" => inbound.origin.as_str())
            .increment(1);
        let verdict = verdict.map_err(|rejection| inbound.annotate(rejection));
        self.tx
            .send(Queued::Message(Envelope {
                inbound,
                verdict,
                _permit: permit,
            }))
            .map_err(|_| PipelineClosed)
    }

    /// Queues a connection event behind everything submitted before it. Waits while the
    /// in-flight budget is exhausted, like [`submit`](Self::submit).
    pub(crate) async fn connection(&self, event: ConnectionEvent) -> Result<(), PipelineClosed> {
        let cost = (event.topic.len() + MESSAGE_OVERHEAD_BYTES).min(self.budget_bytes);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(u32::try_from(cost).unwrap_or(u32::MAX))
            .await
            .map_err(|_| PipelineClosed)?;
        self.tx
            .send(Queued::Connection {
                event,
                _permit: permit,
            })
            .map_err(|_| PipelineClosed)
    }

    /// Commits and applies a command through the writer, after everything queued before it;
    /// resolves with what it did once it is durable.
    pub(crate) async fn command(&self, command: &Submitted) -> Result<Outcome, PipelineClosed> {
        let (reply, answer) = oneshot::channel();
        let request = CommandRequest {
            encoded: crate::state::persist::encode_command(command),
            received_at_ms: self.clock.now_ms(),
            reply,
        };
        self.tx
            .send(Queued::Command(request))
            .map_err(|_| PipelineClosed)?;
        answer.await.map_err(|_| PipelineClosed)
    }

    /// Queues a message refused after it was stored (a point a sink's server rejected) as a dead
    /// letter with `reason`. It takes no share of the in-flight budget (a sink's refusals are
    /// bounded by its batches) and is never acknowledged to anyone.
    pub(crate) fn reject(
        &self,
        topic: String,
        payload: Bytes,
        rejection: Rejection,
    ) -> Result<(), PipelineClosed> {
        debug_assert!(rejection.reason == crate::decode::RejectReason::SinkRejected);
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(0)
            .map_err(|_| PipelineClosed)?;
        let inbound = Inbound {
            topic,
            payload,
            received_at_ms: self.clock.now_ms(),
            origin: Origin::Sink,
            ack: None,
            user_properties: None,
        };
        self.tx
            .send(Queued::Message(Envelope {
                inbound,
                verdict: Err(rejection),
                _permit: permit,
            }))
            .map_err(|_| PipelineClosed)
    }

    /// A probe of the bytes in flight (received, not yet acknowledged), for metrics.
    pub(crate) fn in_flight(&self) -> InFlight {
        InFlight {
            budget: self.budget.clone(),
            budget_bytes: self.budget_bytes,
        }
    }

    /// The current time by the pipeline's clock, for receive times.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Resolves once the writer has stopped.
    pub(crate) async fn closed(&self) {
        self.tx.closed().await
    }
}

/// Reads how much of a pipeline's in-flight budget is in use.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    budget: Arc<Semaphore>,
    budget_bytes: usize,
}

impl InFlight {
    /// Bytes received and not yet acknowledged (with the per-message overhead).
    pub(crate) fn bytes(&self) -> usize {
        self.budget_bytes
            .saturating_sub(self.budget.available_permits())
    }
}
