//! The broker source as a Sparkplug B host application: the subscription to `spBv1.0/#`, the
//! primary host's STATE (a Will offline, online once connected, offline before a clean
//! disconnect, online again whenever the broker says it is offline), and rebirth requests.
//!
//! The [`Host`] is shared: the submitter feeds it every data message in arrival order, the poller
//! asks it for the rebirth requests that fell due and publishes them (QoS 0, as the specification
//! requires for commands).

use std::sync::Arc;

use parking_lot::Mutex;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{LastWill, Publish};
use rumqttc::{AsyncClient, MqttOptions};
use tokio_util::sync::CancellationToken;

use citytel_proto::sparkplug::topic::{self as sp_topic, SparkplugTopic};

use crate::sparkplug::state::HostState;
use crate::sparkplug::{Host, SparkplugSettings};

/// How often rebirth requests that fell due are looked for.
const REBIRTH_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// What the poller does with a Sparkplug message that carries no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Control {
    /// Not a control message: a data message for the submitter.
    Data,
    /// A STATE, a command: nothing to store; acknowledge it.
    Ignore,
    /// citytel's own STATE says it is offline: publish online again, then acknowledge it.
    Reassert,
}

/// The Sparkplug side of a broker source.
#[derive(Debug, Clone)]
pub(crate) struct SparkplugLink {
    host: Arc<Mutex<Host>>,
    host_id: Option<String>,
}

impl SparkplugLink {
    /// A link with a fresh host.
    pub(crate) fn new(settings: SparkplugSettings) -> Self {
        SparkplugLink {
            host: Arc::new(Mutex::new(Host::new(settings.host))),
            host_id: settings.host_id,
        }
    }

    /// The host, for the submitter.
    pub(super) fn host(&self) -> Arc<Mutex<Host>> {
        self.host.clone()
    }

    /// The filters to subscribe to (`spBv1.0/#`, with the shared-subscription prefix when one is
    /// configured; citytel's own STATE topic then on its own, unshared).
    pub(super) fn filters(&self, share_group: &str) -> Vec<String> {
        match share_group {
            "" => vec![sp_topic::SUBSCRIPTION.to_string()],
            group => {
                let mut filters = vec![format!("$share/{group}/{}", sp_topic::SUBSCRIPTION)];
                filters.extend(self.host_id.as_deref().map(sp_topic::state));
                filters
            }
        }
    }

    /// Sets the Will of the next connection: STATE offline at `timestamp`, QoS 1, retained.
    pub(super) fn set_will(&self, options: &mut MqttOptions, timestamp: i64) {
        if let Some(id) = &self.host_id {
            let offline = HostState {
                online: false,
                timestamp,
            };
            options.set_last_will(LastWill::new(
                sp_topic::state(id),
                offline.encode(),
                QoS::AtLeastOnce,
                true,
            ));
        }
    }

    /// Publishes citytel's STATE (QoS 1, retained), when it has a host id.
    pub(super) fn publish_state(&self, client: &AsyncClient, online: bool, timestamp: i64) {
        let Some(id) = &self.host_id else { return };
        let state = HostState { online, timestamp };
        if let Err(e) =
            client.try_publish(sp_topic::state(id), QoS::AtLeastOnce, true, state.encode())
        {
            tracing::error!(error = %e, online, "cannot queue the Sparkplug STATE");
        } else {
            tracing::info!(host_id = %id, online, timestamp, "Sparkplug STATE published");
        }
    }

    /// What a received message is to the poller.
    pub(super) fn classify(&self, publish: &Publish) -> Control {
        match sp_topic::parse(&publish.topic) {
            Ok(SparkplugTopic::State { host_id }) => {
                let ours = self.host_id.as_deref() == Some(host_id);
                let offline = HostState::decode(&publish.payload).is_none_or(|s| !s.online);
                if ours && offline {
                    Control::Reassert
                } else {
                    Control::Ignore
                }
            }
            Ok(SparkplugTopic::Node {
                kind: sp_topic::MessageType::NCmd | sp_topic::MessageType::DCmd,
                ..
            }) => Control::Ignore,
            _ => Control::Data,
        }
    }

    /// Publishes the rebirth requests as they fall due, by the pipeline's clock, until `stop`.
    pub(super) async fn request_rebirths_until(
        self,
        client: AsyncClient,
        pipeline: crate::pipeline::Pipeline,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(REBIRTH_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = pipeline.now_ms();
            let due = self.host.lock().next_deadline().is_some_and(|d| d <= now);
            if due {
                self.request_rebirths(&client, now);
            }
        }
    }

    /// Publishes the rebirth requests due at `now_ms` (QoS 0, not retained).
    fn request_rebirths(&self, client: &AsyncClient, now_ms: i64) {
        let due = self.host.lock().due(now_ms);
        for rebirth in due {
            metrics::counter!(crate::telemetry::metrics::SPARKPLUG_REBIRTHS_REQUESTED_TOTAL)
                .increment(1);
            tracing::info!(topic = %rebirth.topic, "requesting a Sparkplug rebirth");
            if let Err(e) =
                client.try_publish(rebirth.topic, QoS::AtMostOnce, false, rebirth.payload)
            {
                tracing::error!(error = %e, "cannot queue a rebirth request");
            }
        }
    }
}
