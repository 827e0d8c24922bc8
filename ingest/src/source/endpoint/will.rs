//! Publishing a connection's Last Will, at once or after its MQTT 5 Will Delay Interval.
//!
//! A delayed Will is published when the delay passes, when the session ends first (its Session
//! Expiry Interval is shorter, or another connection starts the client id afresh), or when
//! citytel shuts down; it is not published when the client comes back to its session in time
//! (MQTT 5, 3.1.3.2.2).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::mqttbytes::v4::LastWill;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::pipeline::{Inbound, Origin};
use crate::source::broker::submit::submit_sparkplug;
use crate::telemetry::metrics as m;
use citytel_proto::sparkplug::topic::is_sparkplug;

/// Submits `will` to the pipeline (a Sparkplug NDEATH through the Sparkplug host).
pub(crate) async fn publish(shared: &Shared, will: LastWill) {
    metrics::counter!(m::MESSAGES_RECEIVED_TOTAL, "source" => "will_fired").increment(1);
    let inbound = Inbound {
        topic: will.topic,
        payload: will.message,
        received_at_ms: shared.pipeline.now_ms(),
        origin: Origin::Will,
        ack: None,
        user_properties: None,
    };
    let submitted = match &shared.sparkplug {
        Some(sparkplug) if is_sparkplug(&inbound.topic) => {
            submit_sparkplug(&shared.pipeline, &sparkplug.host, inbound).await
        }
        _ => shared.pipeline.submit(inbound).await,
    };
    if submitted.is_err() {
        tracing::warn!("last will not stored: the pipeline is closed");
    }
}

/// A Last Will waiting for its delay.
#[derive(Debug)]
pub(crate) struct DelayedWill {
    /// Cancelled: the client came back, the Will is not published.
    cancel: CancellationToken,
    /// Cancelled: the session ended, the Will is published now.
    fire: CancellationToken,
    /// Cancelled once the Will is published or dropped.
    done: CancellationToken,
}

impl DelayedWill {
    /// Publishes `will` after `delay` unless the client comes back first.
    pub(crate) fn spawn(
        shared: Arc<Shared>,
        will: LastWill,
        delay: Duration,
        shutdown: CancellationToken,
    ) -> DelayedWill {
        let delayed = DelayedWill {
            cancel: CancellationToken::new(),
            fire: CancellationToken::new(),
            done: CancellationToken::new(),
        };
        let (cancel, fire) = (delayed.cancel.clone(), delayed.fire.clone());
        let done = delayed.done.clone().drop_guard();
        tokio::spawn(async move {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                _ = fire.cancelled() => {}
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(delay) => {}
            }
            publish(&shared, will).await;
            drop(done);
        });
        delayed
    }

    /// The client came back to its session: the Will is not published.
    pub(crate) fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The session ended: publishes the Will now and waits until it is queued.
    pub(crate) async fn fire_now(&self) {
        self.fire.cancel();
        self.done.cancelled().await;
    }
}
