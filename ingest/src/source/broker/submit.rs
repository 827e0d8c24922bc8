//! The submitter hands each received PUBLISH to the pipeline, waiting when the in-flight budget
//! is exhausted (the broker's in-flight window then holds the rest), so that the task polling
//! the event loop never waits on the pipeline.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::Publish;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::BrokerStats;
use crate::pipeline::{Ack, AckToken, Inbound, Origin, Pipeline};

/// A PUBLISH as received, with the acknowledgement channel of the connection it came on.
pub(super) struct Received {
    /// The packet.
    pub(crate) publish: Publish,
    /// Where its acknowledgement goes once it is durable.
    pub(crate) acks: mpsc::UnboundedSender<AckToken>,
}

/// Submits received messages in arrival order until `stop` is cancelled, the receiving side
/// closes or the pipeline does.
pub(super) async fn submit_loop(
    mut raw: mpsc::UnboundedReceiver<Received>,
    pipeline: Pipeline,
    stats: Arc<BrokerStats>,
    stop: CancellationToken,
) {
    loop {
        let Received { publish, acks } = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = raw.recv() => match r { Some(r) => r, None => return },
        };
        let ack = (publish.qos != QoS::AtMostOnce).then(|| {
            Ack::new(
                AckToken {
                    pkid: publish.pkid,
                    qos: publish.qos,
                },
                acks,
            )
        });
        let counted = ack.is_some();
        let inbound = Inbound {
            topic: publish.topic,
            payload: publish.payload,
            received_at_ms: pipeline.now_ms(),
            origin: Origin::Broker,
            ack,
        };
        if counted {
            stats.submitted.fetch_add(1, Ordering::Relaxed);
        }
        if pipeline.submit(inbound).await.is_err() {
            tracing::error!("pipeline closed; broker source stops taking messages");
            return;
        }
    }
}
