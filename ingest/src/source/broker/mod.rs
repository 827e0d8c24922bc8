//! The broker source: citytel as a client of an external MQTT broker (Mosquitto, EMQX, HiveMQ).
//!
//! Two tasks, so that the task that polls the rumqttc event loop never waits on the pipeline
//! (keep-alives keep flowing even while the pipeline is full):
//! - the **poller** drives the event loop, hands incoming PUBLISH packets to the submitter,
//!   subscribes again whenever the broker reports no session, and writes the manual
//!   acknowledgements (PUBACK) of the messages the writer has reported durable, in arrival
//!   order, a whole group commit per flush ([`acks`]);
//! - the **submitter** submits them to the pipeline, waiting when the in-flight budget is
//!   exhausted (the broker's in-flight window then holds the rest) ([`submit`]).
//!
//! The queue between the two is bounded in bytes ([`submit::QUEUE_BYTES`]): QoS 1 and 2 messages
//! are bounded by the broker's in-flight window (they are never dropped), but nothing bounds how
//! many QoS 0 messages a broker sends, so once the queue holds that many bytes further QoS 0
//! messages are dropped (at most once allows it), counted in
//! `citytel_broker_qos0_dropped_total`. While storage is paused (disk full) nothing is
//! acknowledged, so the broker's window fills and the source takes nothing more until it
//! resumes.
//!
//! The session is persistent (`clean_session = false`, a stable client id), so messages published
//! while citytel is down are kept by the broker and delivered on reconnect.
//!
//! With `sparkplug.enabled` the source is also a Sparkplug B host application ([`sparkplug`]):
//! it subscribes to `spBv1.0/#`, the submitter turns Sparkplug messages into citytel's own
//! through the shared [`crate::sparkplug::Host`] (the last of them carries the acknowledgement,
//! so a Sparkplug message is acknowledged once everything made of it is durable), and the
//! poller publishes the host's STATE and its rebirth requests.
//!
//! An `mqtts://` broker is reached over TLS (rumqttc's rustls transport, with citytel's own
//! client configuration on the ring provider): the broker's certificate is checked against
//! `broker.ca_file`, and citytel presents `broker.cert_file` when the broker asks for one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Packet, SubscribeReasonCode};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, NetworkOptions, TlsConfiguration,
    Transport,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::BrokerSettings;
use crate::pipeline::Pipeline;
use crate::telemetry::metrics as m;

mod acks;
pub(crate) mod sparkplug;
pub(crate) mod submit;

use acks::ConnectionAcks;
use sparkplug::{Control, SparkplugLink};
use submit::{Received, submit_loop};

/// Most unacknowledged QoS 1/2 messages rumqttc tracks for our own (rare) publishes.
const CLIENT_REQUEST_CAPACITY: usize = 4096;
/// How long shutdown waits for in-flight messages to be acknowledged to the broker.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnect backoff: from 200 ms, doubling up to 10 s, each wait plus up to as much again of
/// random jitter, reset by a successful connection.
fn backoff() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Counters of a broker source, shared with whoever wants to watch it.
#[derive(Debug, Default)]
pub struct BrokerStats {
    /// Messages handed to the pipeline.
    pub submitted: AtomicU64,
    /// Messages acknowledged to the broker.
    pub acked: AtomicU64,
    /// Successful connections (the first included).
    pub connections: AtomicU64,
    /// Connection errors that led to a reconnect.
    pub reconnects: AtomicU64,
    /// Times the broker had no session and citytel subscribed (the first time included).
    pub subscribes: AtomicU64,
}

/// The broker source task.
pub(crate) struct BrokerSource {
    settings: BrokerSettings,
    /// The TLS client configuration of an `mqtts://` broker.
    tls: Option<Arc<rustls::ClientConfig>>,
    pipeline: Pipeline,
    stats: Arc<BrokerStats>,
    ready: watch::Sender<bool>,
    /// The Sparkplug B host application, when enabled.
    sparkplug: Option<SparkplugLink>,
}

impl BrokerSource {
    /// A source consuming from the broker in `settings` into `pipeline`; fails when the TLS
    /// files of an `mqtts://` broker cannot be loaded.
    pub(crate) fn new(
        settings: BrokerSettings,
        pipeline: Pipeline,
    ) -> Result<Self, crate::net::tls::TlsError> {
        let tls = match settings.tls {
            true => Some(client_tls(&settings.config)?),
            false => None,
        };
        Ok(BrokerSource {
            sparkplug: settings.sparkplug.clone().map(SparkplugLink::new),
            settings,
            tls,
            pipeline,
            stats: Arc::default(),
            ready: watch::Sender::new(false),
        })
    }

    /// The source's counters.
    pub(crate) fn stats(&self) -> Arc<BrokerStats> {
        self.stats.clone()
    }

    /// Whether the source is connected and subscribed: true once the broker confirmed the
    /// subscription (or reported an existing session), false while disconnected.
    pub(crate) fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// The subscription filters, with the shared-subscription prefix when configured.
    pub(crate) fn filters(&self) -> Vec<String> {
        let share_group = self.settings.config.share_group.as_str();
        let mut filters: Vec<String> = citytel_proto::topic::SUBSCRIPTIONS
            .iter()
            .map(|f| match share_group {
                "" => (*f).to_string(),
                group => format!("$share/{group}/{f}"),
            })
            .collect();
        if let Some(link) = &self.sparkplug {
            filters.extend(link.filters(share_group));
        }
        filters
    }

    fn options(&self) -> MqttOptions {
        let c = &self.settings.config;
        let mut options = MqttOptions::new(&c.client_id, &self.settings.host, self.settings.port);
        options
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_keep_alive(c.keep_alive.max(Duration::from_secs(1)))
            .set_max_packet_size(c.max_packet_bytes, c.max_packet_bytes);
        if let (Some(user), Some(pass)) = (&c.username, &c.password) {
            options.set_credentials(user, pass);
        }
        if let Some(tls) = &self.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        options
    }

    /// Consumes until `shutdown` is cancelled or the pipeline closes; reconnects with backoff
    /// and jitter on any connection error.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let (client, mut eventloop) = AsyncClient::new(self.options(), CLIENT_REQUEST_CAPACITY);
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);

        // The STATE timestamp of the current connection: in its Will and its online message.
        let mut state_ts = self.pipeline.now_ms();
        if let Some(link) = &self.sparkplug {
            link.set_will(&mut eventloop.mqtt_options, state_ts);
        }
        // Rebirth requests go out from a task of their own: a timer in the poller's select would
        // cancel the event loop's poll, which is not cancel-safe while it connects.
        let stop_rebirths = CancellationToken::new();
        let rebirths = self.sparkplug.clone().map(|link| {
            tokio::spawn(link.request_rebirths_until(
                client.clone(),
                self.pipeline.clone(),
                stop_rebirths.clone(),
            ))
        });

        let (raw_tx, raw_rx) = mpsc::unbounded_channel::<Received>();
        let queued = Arc::new(submit::QueuedBytes::default());
        let stop_intake = CancellationToken::new();
        let submitter = tokio::spawn(submit_loop(
            raw_rx,
            queued.clone(),
            self.pipeline.clone(),
            self.stats.clone(),
            stop_intake.clone(),
            self.sparkplug.as_ref().map(SparkplugLink::host),
        ));

        let filters = self.filters();
        let mut backoff = backoff();
        let address = format!("{}:{}", self.settings.host, self.settings.port);
        // The acknowledgement channel of the current connection; none while disconnected.
        let mut acks: Option<ConnectionAcks> = None;
        // Made once: futures built per event would register (and drop) a waiter for every
        // packet.
        let pipeline = self.pipeline.clone();
        let pipeline_closed = pipeline.closed();
        let cancelled = shutdown.cancelled();
        tokio::pin!(pipeline_closed, cancelled);
        loop {
            // Acknowledgements go first: the broker's in-flight window is what they free.
            let step = tokio::select! {
                biased;
                _ = &mut cancelled => break,
                _ = &mut pipeline_closed => break,
                true = next_acks(&mut acks) => Step::Acks,
                event = eventloop.poll() => Step::Event(event),
            };
            let event = match step {
                Step::Acks => match self.write_acks(acks.as_mut(), &mut eventloop).await {
                    Ok(()) => continue,
                    Err(e) => {
                        eventloop.clean();
                        Err(e)
                    }
                },
                Step::Event(event) => event,
            };
            match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let control = match &self.sparkplug {
                        Some(link)
                            if citytel_proto::sparkplug::topic::is_sparkplug(&publish.topic) =>
                        {
                            link.classify(&publish)
                        }
                        _ => Control::Data,
                    };
                    if control != Control::Data {
                        // Nothing of it is stored: acknowledged at once.
                        if control == Control::Reassert
                            && let Some(link) = &self.sparkplug
                        {
                            tracing::warn!(
                                "the broker reports this Sparkplug host offline; publishing online again"
                            );
                            link.publish_state(&client, true, state_ts);
                        }
                        if publish.qos != QoS::AtMostOnce
                            && let Some(tx) = acks.as_ref().and_then(ConnectionAcks::sender)
                        {
                            let _ =
                                tx.send(crate::pipeline::AckToken::new(publish.pkid, publish.qos));
                        }
                        continue;
                    }
                    match acks.as_ref().and_then(ConnectionAcks::sender) {
                        Some(acks) => {
                            if queued.admit(&publish) {
                                let _ = raw_tx.send(Received { publish, acks });
                            } else {
                                metrics::counter!(m::BROKER_QOS0_DROPPED_TOTAL).increment(1);
                            }
                        }
                        // rumqttc reports the CONNACK before any PUBLISH of a connection.
                        None => tracing::warn!(
                            topic = %publish.topic,
                            "PUBLISH outside a connection dropped; the broker will redeliver it"
                        ),
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = self::backoff();
                    acks = Some(ConnectionAcks::new());
                    self.stats.connections.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(broker = %address, session_present = ack.session_present, "connected to broker");
                    if ack.session_present {
                        self.ready.send_replace(true);
                        // A session made while Sparkplug was off holds no spBv1.0 subscription;
                        // subscribing again replaces an existing one, so it is harmless.
                        if let Some(link) = &self.sparkplug {
                            let topics = link
                                .filters(&self.settings.config.share_group)
                                .into_iter()
                                .map(|f| rumqttc::SubscribeFilter::new(f, QoS::AtLeastOnce));
                            if let Err(e) = client.try_subscribe_many(topics) {
                                tracing::error!(error = %e, "cannot queue the Sparkplug subscription");
                            }
                        }
                    } else {
                        self.stats.subscribes.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!(m::BROKER_RESUBSCRIBES_TOTAL).increment(1);
                        let topics = filters
                            .iter()
                            .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                        if let Err(e) = client.try_subscribe_many(topics) {
                            tracing::error!(error = %e, "cannot queue subscribe request");
                        } else {
                            tracing::info!(?filters, "subscribing");
                        }
                    }
                    // After the subscription (requests go out in order), as the specification
                    // requires: online, with the timestamp of this connection's Will.
                    if let Some(link) = &self.sparkplug {
                        link.publish_state(&client, true, state_ts);
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(suback))) => {
                    if suback.return_codes.contains(&SubscribeReasonCode::Failure) {
                        tracing::error!(codes = ?suback.return_codes, "broker refused a subscription");
                    } else {
                        tracing::info!("subscribed");
                        self.ready.send_replace(true);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    // Acknowledgements still on their way belong to the lost connection: the
                    // broker redelivers those messages and the pipeline deduplicates them.
                    acks = None;
                    self.ready.send_replace(false);
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(m::BROKER_RECONNECTS_TOTAL).increment(1);
                    let wait = backoff.next().unwrap_or(Duration::from_secs(10));
                    if let Some(link) = &self.sparkplug {
                        state_ts = self.pipeline.now_ms().max(state_ts + 1);
                        link.set_will(&mut eventloop.mqtt_options, state_ts);
                    }
                    tracing::warn!(broker = %address, error = %e, retry_in_ms = wait.as_millis() as u64, "broker connection failed");
                    tokio::select! {
                        _ = &mut cancelled => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }

        // Teardown: stop taking new messages, let the submitted ones be acknowledged (polling
        // so that the connection stays up), then disconnect.
        stop_rebirths.cancel();
        if let Some(task) = rebirths {
            let _ = task.await;
        }
        stop_intake.cancel();
        drop(raw_tx);
        let _ = submitter.await;
        if let Some(mut open) = acks.take() {
            open.close();
            let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
                loop {
                    tokio::select! {
                        more = open.ready() => {
                            if !more {
                                return;
                            }
                            if let Err(e) = self.write_acks(Some(&mut open), &mut eventloop).await {
                                tracing::warn!(error = %e, "shutdown: cannot acknowledge to the broker");
                                return;
                            }
                        }
                        polled = eventloop.poll() => if polled.is_err() { return },
                    }
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    "shutdown: some messages were not acknowledged to the broker; it will redeliver them"
                );
            }
        }
        if let Some(link) = &self.sparkplug {
            // Offline before a clean disconnect, as the specification requires.
            link.publish_state(&client, false, state_ts);
        }
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while eventloop.poll().await.is_ok() {}
        })
        .await;
        tracing::info!("broker source stopped");
    }

    /// Writes the acknowledgements [`next_acks`] found ready to the connection they belong to.
    async fn write_acks(
        &self,
        open: Option<&mut ConnectionAcks>,
        eventloop: &mut EventLoop,
    ) -> Result<(), ConnectionError> {
        if let Some(open) = open {
            let written = open.write(eventloop).await?;
            self.stats
                .acked
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The TLS client configuration for an `mqtts://` broker: its certificate checked against
/// `broker.ca_file`, citytel's `broker.cert_file` and `key_file` presented when set.
fn client_tls(
    config: &crate::config::BrokerConfig,
) -> Result<Arc<rustls::ClientConfig>, crate::net::tls::TlsError> {
    use crate::net::tls::{TlsError, read_certs};
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject as _;
    let rustls_error = |e: rustls::Error| TlsError::Rustls(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs("broker CA file", &config.ca_file)? {
        roots.add(cert).map_err(rustls_error)?;
    }
    let provider = crate::net::tls::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_error)?
        .with_root_certificates(roots);
    let config = if config.cert_file.as_os_str().is_empty() {
        builder.with_no_client_auth()
    } else {
        let certs = read_certs("broker client certificate", &config.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&config.key_file).map_err(|e| TlsError::File {
            what: "broker client key",
            path: config.key_file.clone(),
            message: e.to_string(),
        })?;
        builder
            .with_client_auth_cert(certs, key)
            .map_err(rustls_error)?
    };
    Ok(Arc::new(config))
}

/// What woke the poller.
enum Step {
    /// Acknowledgements are ready to be written.
    Acks,
    /// The event loop produced an event or an error.
    Event(Result<Event, ConnectionError>),
}

/// Waits until the current connection has acknowledgements ready; never while disconnected.
async fn next_acks(acks: &mut Option<ConnectionAcks>) -> bool {
    match acks {
        Some(open) => open.ready().await,
        None => std::future::pending().await,
    }
}
