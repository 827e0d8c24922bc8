//! One simulated device: a single MQTT connection (its own rumqttc `AsyncClient` and `EventLoop`,
//! in MQTT 3.1.1 or 5: [`mqtt`]) and, for a gateway, the sensors it reports for on their own
//! topics.
//!
//! A device runs as two tasks joined by a [`Link`]: the [`Connection`] task polls the event loop
//! (reconnecting with backoff) and tracks acknowledgements; the [`Publisher`] task takes readings
//! and publishes. The connection uses a persistent session (`clean_session = false`, or in MQTT 5
//! clean start 0 with an hour of session expiry) and sets a
//! `Death{CONNECTION_LOST}` Last Will at QoS 1; every CONNACK is followed by births. What the
//! device returns is its [`DeviceReport`]s, exact about which readings were acknowledged.

mod ack_tracker;
mod connection;
mod identity;
mod link;
mod message;
mod mqtt;
mod publisher;
mod reporter;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use citytel_proto::kind::Kind;
use citytel_proto::topic::Channel;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::progress::Counters;
use crate::report::DeviceReport;
use connection::Connection;
use identity::Identity;
use link::{Link, Tally};
use publisher::{Publisher, REQUEST_CAPACITY};
use reporter::Reporter;

pub(crate) use settings::{DeviceSettings, DeviceSpec};

/// Largest MQTT packet a device sends or accepts; a full batch of the largest allowed size fits.
pub(crate) const MAX_PACKET_BYTES: usize = 1 << 20;
/// How long the connection gets to write the DISCONNECT once the publisher requested it.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One simulated device, ready to run.
pub(crate) struct Device {
    spec: DeviceSpec,
    settings: Arc<DeviceSettings>,
    counters: Arc<Counters>,
}

impl Device {
    /// The device described by `spec`, counting into the fleet's `counters`.
    pub(crate) fn new(
        spec: DeviceSpec,
        settings: Arc<DeviceSettings>,
        counters: Arc<Counters>,
    ) -> Self {
        Device {
            spec,
            settings,
            counters,
        }
    }

    /// Runs the device until it is done or `shutdown` is cancelled, then sends its death and
    /// disconnects. Returns the device's report followed by its children's.
    pub(crate) async fn run(self, shutdown: CancellationToken) -> Vec<DeviceReport> {
        let device = self.reporter(&self.spec.device_id, self.spec.kind, None);
        let (client, eventloop) = mqtt::client(
            self.settings.mqtt_version,
            &self.connect_options(&device),
            REQUEST_CAPACITY,
        );
        let children = self
            .spec
            .children
            .iter()
            .map(|child_id| self.reporter(child_id, Kind::Sensor, Some(&self.spec.device_id)));
        let reporters: Vec<Reporter> = std::iter::once(device).chain(children).collect();

        let link = Arc::new(Link::new(reporters.len(), Arc::clone(&self.counters)));
        let stop_connection = CancellationToken::new();
        let mut connection = tokio::spawn(
            Connection::new(
                eventloop,
                Arc::clone(&link),
                Arc::clone(&self.counters),
                self.spec.device_id.clone(),
                self.spec.start_delay,
            )
            .run(stop_connection.clone()),
        );
        let finished = Publisher::new(
            client,
            Arc::clone(&link),
            Arc::clone(&self.counters),
            Arc::clone(&self.settings),
            reporters,
        )
        .run(shutdown)
        .await;

        if !finished.disconnecting {
            stop_connection.cancel();
        }
        let ended = match tokio::time::timeout(DISCONNECT_TIMEOUT, &mut connection).await {
            Ok(ended) => ended,
            Err(_) => {
                stop_connection.cancel();
                connection.await
            }
        };
        if let Err(error) = ended {
            tracing::error!(device = %self.spec.device_id, %error, "connection task failed");
            self.counters.error(error);
        }

        let tallies = link.take_tallies();
        finished
            .reporters
            .iter()
            .zip(tallies)
            .map(|(reporter, tally)| device_report(reporter, tally))
            .collect()
    }

    /// A freshly booted reporter for `device_id` at this device's site; the device itself lists
    /// its children.
    fn reporter(&self, device_id: &str, kind: Kind, gateway_id: Option<&str>) -> Reporter {
        let settings = &self.settings;
        let identity = Identity::new(
            device_id.to_string(),
            kind,
            self.spec.site.clone(),
            gateway_id.map(str::to_string),
            (settings.seed, settings.boot_epoch),
            settings.max_clock_skew_ms,
        );
        let children = if gateway_id.is_none() {
            self.spec.children.clone()
        } else {
            Vec::new()
        };
        let location = settings
            .city
            .then(|| crate::city::location(device_id, &self.spec.site));
        Reporter::new(identity, settings.seed, children).located(location)
    }

    /// How the device connects: its client id, the death as Last Will (at QoS 1).
    fn connect_options(&self, device: &Reporter) -> mqtt::ConnectOptions {
        let settings = &self.settings;
        mqtt::ConnectOptions {
            client_id: format!("{}{}", settings.client_id_prefix, self.spec.device_id),
            host: settings.broker.host.clone(),
            port: settings.broker.port,
            keepalive: settings.keepalive,
            inflight: settings.inflight,
            max_packet: MAX_PACKET_BYTES,
            will: (
                device.identity().topic(Channel::Status),
                device.last_will().encode_to_vec(),
            ),
        }
    }
}

/// The report of one reporter, from its acknowledgement tally.
fn device_report(reporter: &Reporter, tally: Tally) -> DeviceReport {
    let identity = reporter.identity();
    DeviceReport {
        device_id: identity.device_id.clone(),
        kind: identity.kind,
        site: identity.site.clone(),
        boot_id: identity.boot_id,
        gateway_id: identity.gateway_id.clone(),
        clock_skew_ms: identity.clock_skew_ms,
        metric_names: reporter.metric_names(),
        readings_published: tally.readings_published,
        readings_acked: tally.readings_acked,
        acked_readings: tally.acked,
    }
}
