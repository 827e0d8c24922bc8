//! The submitter hands each received PUBLISH to the pipeline, waiting when the in-flight budget
//! is exhausted (the broker's in-flight window then holds the rest), so that the task polling
//! the event loop never waits on the pipeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::Publish;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use citytel_proto::sparkplug::topic::is_sparkplug;
use parking_lot::Mutex;

use super::BrokerStats;
use crate::pipeline::{Ack, AckToken, Inbound, Origin, Pipeline, PipelineClosed};
use crate::sparkplug::{Host, Outcome};

/// Bytes of messages queued for the submitter beyond which QoS 0 messages are dropped.
pub(super) const QUEUE_BYTES: usize = 16 << 20;

/// Bytes queued between the poller and the submitter.
#[derive(Debug, Default)]
pub(super) struct QueuedBytes(AtomicUsize);

impl QueuedBytes {
    /// Counts `publish` in; `false` (and nothing counted) for a QoS 0 message that does not
    /// fit within [`QUEUE_BYTES`].
    pub(super) fn admit(&self, publish: &Publish) -> bool {
        let size = cost(publish);
        if publish.qos == QoS::AtMostOnce && self.0.load(Ordering::Relaxed) + size > QUEUE_BYTES {
            return false;
        }
        self.0.fetch_add(size, Ordering::Relaxed);
        true
    }

    fn release(&self, publish: &Publish) {
        self.0.fetch_sub(cost(publish), Ordering::Relaxed);
    }
}

fn cost(publish: &Publish) -> usize {
    publish.payload.len() + publish.topic.len() + 64
}

/// A PUBLISH as received, with the acknowledgement channel of the connection it came on.
pub(super) struct Received {
    /// The packet.
    pub(crate) publish: Publish,
    /// Where its acknowledgement goes once it is durable.
    pub(crate) acks: mpsc::UnboundedSender<AckToken>,
}

/// Submits received messages in arrival order until `stop` is cancelled, the receiving side
/// closes or the pipeline does. With a Sparkplug `host`, Sparkplug messages are submitted as the
/// citytel messages the host makes of them ([`submit_sparkplug`]).
pub(super) async fn submit_loop(
    mut raw: mpsc::UnboundedReceiver<Received>,
    queued: Arc<QueuedBytes>,
    pipeline: Pipeline,
    stats: Arc<BrokerStats>,
    stop: CancellationToken,
    host: Option<Arc<Mutex<Host>>>,
) {
    loop {
        let Received { publish, acks } = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = raw.recv() => match r { Some(r) => r, None => return },
        };
        queued.release(&publish);
        let ack = (publish.qos != QoS::AtMostOnce)
            .then(|| Ack::new(AckToken::new(publish.pkid, publish.qos), acks));
        let counted = ack.is_some();
        let inbound = Inbound {
            topic: publish.topic,
            payload: publish.payload,
            received_at_ms: pipeline.now_ms(),
            origin: Origin::Broker,
            ack,
            user_properties: None,
        };
        if counted {
            stats.submitted.fetch_add(1, Ordering::Relaxed);
        }
        let submitted = match &host {
            Some(host) if is_sparkplug(&inbound.topic) => {
                submit_sparkplug(&pipeline, host, inbound).await
            }
            _ => pipeline.submit(inbound).await,
        };
        if submitted.is_err() {
            tracing::error!("pipeline closed; broker source stops taking messages");
            return;
        }
    }
}

/// Submits what `host` makes of a Sparkplug message: its citytel messages in order, the last one
/// carrying the acknowledgement (the writer makes them durable in order, so the last one durable
/// means all are), or the message itself as a dead letter with the host's reason.
pub(crate) async fn submit_sparkplug(
    pipeline: &Pipeline,
    host: &Mutex<Host>,
    mut inbound: Inbound,
) -> Result<(), PipelineClosed> {
    let outcome = host
        .lock()
        .handle(&inbound.topic, &inbound.payload, inbound.received_at_ms);
    match outcome {
        Outcome::Rejected(rejection) => pipeline.submit_rejected(inbound, rejection).await,
        Outcome::Messages(messages) => {
            let count = messages.len();
            for (i, message) in messages.into_iter().enumerate() {
                let ack = if i + 1 == count {
                    inbound.ack.take()
                } else {
                    None
                };
                pipeline
                    .submit(Inbound {
                        topic: message.topic,
                        payload: message.payload.into(),
                        received_at_ms: inbound.received_at_ms,
                        origin: inbound.origin,
                        ack,
                        user_properties: None,
                    })
                    .await?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn publish(qos: QoS, bytes: usize) -> Publish {
        Publish::new("t", qos, Bytes::from(vec![0u8; bytes]))
    }

    #[test]
    fn qos0_beyond_the_queue_bound_is_dropped_and_qos1_never_is() {
        let queued = QueuedBytes::default();
        let big = publish(QoS::AtMostOnce, QUEUE_BYTES / 2);
        assert!(queued.admit(&big));
        assert!(!queued.admit(&publish(QoS::AtMostOnce, QUEUE_BYTES / 2)));
        assert!(queued.admit(&publish(QoS::AtLeastOnce, QUEUE_BYTES)));
        assert!(!queued.admit(&publish(QoS::AtMostOnce, 10)));
        queued.release(&publish(QoS::AtLeastOnce, QUEUE_BYTES));
        queued.release(&big);
        assert!(queued.admit(&publish(QoS::AtMostOnce, 10)));
    }

    fn sparkplug_inbound(
        topic: &str,
        payload: Vec<u8>,
        tx: &mpsc::UnboundedSender<AckToken>,
    ) -> Inbound {
        Inbound {
            topic: topic.into(),
            payload: payload.into(),
            received_at_ms: T0,
            origin: Origin::Broker,
            ack: Some(Ack::new(AckToken::new(7, QoS::AtLeastOnce), tx.clone())),
            user_properties: None,
        }
    }

    const T0: i64 = 1_700_000_000_000;

    #[tokio::test]
    async fn a_sparkplug_message_is_acknowledged_with_the_last_message_made_of_it() {
        use citytel_proto::sparkplug::pb::Payload;
        use citytel_proto::sparkplug::pb::payload::Metric;
        use citytel_proto::sparkplug::pb::payload::metric::Value;
        use prost::Message as _;

        let limits = crate::decode::Limits {
            max_payload_bytes: 1 << 20,
            max_readings_per_message: 100,
            max_future_ms: 60_000,
            max_past_ms: 86_400_000,
        };
        let (pipeline, mut queue) = Pipeline::new(limits, 1 << 20);
        let host = Mutex::new(Host::new(crate::sparkplug::HostSettings::default()));
        let (tx, _acks) = mpsc::unbounded_channel();
        let metric = |name: &str, datatype, value| Metric {
            name: Some(name.into()),
            datatype: Some(datatype),
            value: Some(value),
            ..Metric::default()
        };
        let nbirth = Payload {
            timestamp: Some(T0 as u64),
            seq: Some(0),
            metrics: vec![
                metric("bdSeq", 8, Value::LongValue(0)),
                metric("temp", 10, Value::DoubleValue(20.5)),
            ],
            ..Payload::default()
        };
        let inbound = sparkplug_inbound("spBv1.0/g/NBIRTH/e", nbirth.encode_to_vec(), &tx);
        submit_sparkplug(&pipeline, &host, inbound).await.unwrap();
        // A birth and a batch, in order; only the batch carries the acknowledgement.
        let mut got = Vec::new();
        while let Ok(queued) = queue.try_recv() {
            let envelope = queued.message().unwrap();
            assert!(envelope.verdict.is_ok(), "{:?}", envelope.verdict);
            got.push((
                envelope.inbound.topic.clone(),
                envelope.inbound.ack.is_some(),
            ));
        }
        assert_eq!(
            got,
            [
                ("citytel/v1/g/gateway/g.e/status".to_string(), false),
                ("citytel/v1/g/gateway/g.e/telemetry".to_string(), true),
            ]
        );

        // A refused message becomes a dead letter as it came, with its acknowledgement.
        let inbound = sparkplug_inbound("spBv1.0/g/NDATA/x", vec![0xff], &tx);
        submit_sparkplug(&pipeline, &host, inbound).await.unwrap();
        let queued = queue.try_recv().unwrap();
        let envelope = queued.message().unwrap();
        assert_eq!(envelope.inbound.topic, "spBv1.0/g/NDATA/x");
        assert!(envelope.inbound.ack.is_some());
        let rejection = envelope.verdict.as_ref().unwrap_err();
        assert_eq!(rejection.reason, crate::decode::RejectReason::Malformed);
    }
}
