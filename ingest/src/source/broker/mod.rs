//! The broker source: citytel as a client of an external MQTT broker (Mosquitto, EMQX, HiveMQ).
//!
//! Three tasks, so that nothing ever awaits a publish or an ack inside the task that polls the
//! rumqttc event loop (that deadlocks):
//! - the **poller** drives the event loop (keep-alives keep flowing even while the pipeline is
//!   full), hands incoming PUBLISH packets to the submitter and subscribes again whenever the
//!   broker reports no session;
//! - the **submitter** decodes and submits them to the pipeline, waiting when the in-flight budget
//!   is exhausted (the broker's in-flight window then holds the rest);
//! - the **acker** sends the manual PUBACK of each message after the writer reports it durable,
//!   in arrival order.
//!
//! The session is persistent (`clean_session = false`, a stable client id), so messages published
//! while citytel is down are kept by the broker and delivered on reconnect.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Packet, Publish, SubscribeReasonCode};
use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::BrokerSettings;
use crate::pipeline::{Ack, AckToken, Inbound, Origin, Pipeline};
use crate::telemetry::metrics as m;

/// Most unacknowledged QoS 1/2 messages rumqttc tracks for our own (rare) publishes.
const CLIENT_REQUEST_CAPACITY: usize = 4096;
/// How long shutdown waits for in-flight messages to be acknowledged to the broker.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// First and largest reconnect backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

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
pub struct BrokerSource {
    settings: BrokerSettings,
    pipeline: Pipeline,
    stats: Arc<BrokerStats>,
    ready: watch::Sender<bool>,
}

impl BrokerSource {
    /// A source consuming from the broker in `settings` into `pipeline`.
    pub fn new(settings: BrokerSettings, pipeline: Pipeline) -> Self {
        BrokerSource {
            settings,
            pipeline,
            stats: Arc::default(),
            ready: watch::Sender::new(false),
        }
    }

    /// The source's counters.
    pub fn stats(&self) -> Arc<BrokerStats> {
        self.stats.clone()
    }

    /// Whether the source is connected and subscribed: true once the broker confirmed the
    /// subscription (or reported an existing session), false while disconnected.
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// The subscription filters, with the shared-subscription prefix when configured.
    pub fn filters(&self) -> Vec<String> {
        citytel_proto::topic::SUBSCRIPTIONS
            .iter()
            .map(|f| match self.settings.config.share_group.as_str() {
                "" => (*f).to_string(),
                group => format!("$share/{group}/{f}"),
            })
            .collect()
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
        options
    }

    /// Consumes until `shutdown` is cancelled or the pipeline closes; reconnects with backoff
    /// and jitter on any connection error.
    pub async fn run(self, shutdown: CancellationToken) {
        let (client, mut eventloop) = AsyncClient::new(self.options(), CLIENT_REQUEST_CAPACITY);
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);

        let (raw_tx, raw_rx) = mpsc::unbounded_channel::<Publish>();
        let (ack_tx, ack_rx) = mpsc::unbounded_channel::<AckToken>();
        let stop_intake = CancellationToken::new();
        let submitter = tokio::spawn(submit_loop(
            raw_rx,
            ack_tx,
            self.pipeline.clone(),
            self.stats.clone(),
            stop_intake.clone(),
        ));
        let acker = tokio::spawn(ack_loop(ack_rx, client.clone(), self.stats.clone()));

        let filters = self.filters();
        let mut backoff = BACKOFF_MIN;
        let address = format!("{}:{}", self.settings.host, self.settings.port);
        // Made once: futures built per event would register (and drop) a waiter for every
        // packet.
        let pipeline = self.pipeline.clone();
        let pipeline_closed = pipeline.closed();
        let cancelled = shutdown.cancelled();
        tokio::pin!(pipeline_closed, cancelled);
        loop {
            let event = tokio::select! {
                _ = &mut cancelled => break,
                _ = &mut pipeline_closed => break,
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let _ = raw_tx.send(publish);
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = BACKOFF_MIN;
                    self.stats.connections.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(broker = %address, session_present = ack.session_present, "connected to broker");
                    if ack.session_present {
                        self.ready.send_replace(true);
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
                    self.ready.send_replace(false);
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(m::BROKER_RECONNECTS_TOTAL).increment(1);
                    let wait = jittered(backoff);
                    tracing::warn!(broker = %address, error = %e, retry_in_ms = wait.as_millis() as u64, "broker connection failed");
                    tokio::select! {
                        _ = &mut cancelled => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }

        // Teardown: stop taking new messages, let the submitted ones be acknowledged (polling
        // so the acks actually leave), then disconnect.
        stop_intake.cancel();
        drop(raw_tx);
        let _ = submitter.await;
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while self.stats.acked.load(Ordering::Relaxed)
                < self.stats.submitted.load(Ordering::Relaxed)
            {
                if tokio::time::timeout(Duration::from_millis(50), eventloop.poll())
                    .await
                    .is_ok_and(|r| r.is_err())
                {
                    break;
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "shutdown: some messages were not acknowledged to the broker; it will redeliver them"
            );
        }
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while eventloop.poll().await.is_ok() {}
        })
        .await;
        acker.abort();
        tracing::info!("broker source stopped");
    }
}

fn jittered(base: Duration) -> Duration {
    let factor = rand::rng().random_range(0.5..1.5);
    base.mul_f64(factor)
}

async fn submit_loop(
    mut raw: mpsc::UnboundedReceiver<Publish>,
    ack_tx: mpsc::UnboundedSender<AckToken>,
    pipeline: Pipeline,
    stats: Arc<BrokerStats>,
    stop: CancellationToken,
) {
    loop {
        let publish = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            p = raw.recv() => match p { Some(p) => p, None => return },
        };
        let ack = (publish.qos != QoS::AtMostOnce).then(|| {
            Ack::new(
                AckToken {
                    pkid: publish.pkid,
                    qos: publish.qos,
                },
                ack_tx.clone(),
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

async fn ack_loop(
    mut acks: mpsc::UnboundedReceiver<AckToken>,
    client: AsyncClient,
    stats: Arc<BrokerStats>,
) {
    while let Some(token) = acks.recv().await {
        let mut publish = Publish::new("", token.qos, Vec::new());
        publish.pkid = token.pkid;
        if client.ack(&publish).await.is_err() {
            return;
        }
        stats.acked.fetch_add(1, Ordering::Relaxed);
    }
}
