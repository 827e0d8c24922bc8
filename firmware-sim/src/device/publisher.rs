//! The publisher task: takes readings on schedule and publishes births, telemetry, heartbeats and
//! the final death.
//!
//! Composed messages wait in an outbox and are handed to rumqttc with non-blocking requests only
//! while fewer than [`REQUEST_CAPACITY`] requests are queued, so the task never blocks on rumqttc and
//! can always react to shutdown. Readings therefore keep their schedule while the broker is slow or
//! away; only a full outbox ([`OUTBOX_LIMIT`]) pauses sampling.
//!
//! The run has two phases. Reporting starts at the first connection and lasts until the configured
//! readings are taken and acknowledged, the deadline passes or shutdown is requested. The farewell
//! then publishes what is still buffered and a `Death{SHUTDOWN}`, waits (bounded by the drain
//! timeout) for every acknowledgement and requests a DISCONNECT.

use std::collections::VecDeque;
use std::sync::Arc;

use citytel_proto::topic::Channel;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::link::Link;
use super::message::Message;
use super::mqtt::{Client, ClientError};
use super::reporter::Reporter;
use super::settings::DeviceSettings;
use crate::progress::Counters;

/// Capacity of rumqttc's request channel, and the most requests the publisher keeps queued in it.
pub(crate) const REQUEST_CAPACITY: usize = 64;
/// Most messages waiting in the outbox before the device stops taking readings.
const OUTBOX_LIMIT: usize = 10_000;

/// The publisher could not hand a request to rumqttc: its event loop is gone.
#[derive(Debug, thiserror::Error)]
#[error("the MQTT event loop stopped taking requests")]
pub(crate) struct PublishError(#[from] ClientError);

/// How the publisher ended.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The reporters, for the device report.
    pub(crate) reporters: Vec<Reporter>,
    /// Whether a DISCONNECT was requested, which ends the connection task.
    pub(crate) disconnecting: bool,
}

/// Produces a device's publishes.
pub(crate) struct Publisher {
    client: Client,
    link: Arc<Link>,
    counters: Arc<Counters>,
    settings: Arc<DeviceSettings>,
    /// The device itself first, then any gateway children.
    reporters: Vec<Reporter>,
    outbox: VecDeque<Message>,
    connects_seen: u64,
    readings_taken: u64,
}

impl Publisher {
    /// A publisher for `reporters`, requesting through `client`.
    pub(crate) fn new(
        client: Client,
        link: Arc<Link>,
        counters: Arc<Counters>,
        settings: Arc<DeviceSettings>,
        reporters: Vec<Reporter>,
    ) -> Self {
        Publisher {
            client,
            link,
            counters,
            settings,
            reporters,
            outbox: VecDeque::new(),
            connects_seen: 0,
            readings_taken: 0,
        }
    }

    /// Reports until done or `shutdown`, then says goodbye. A device that never connected ends at
    /// once.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) -> Finished {
        let device = self.device_id().to_string();
        let disconnecting = match self.report(&shutdown).await {
            Ok(false) => false,
            Ok(true) => match self.farewell().await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(%device, %error, "could not say goodbye");
                    self.counters.error(error);
                    false
                }
            },
            Err(error) => {
                tracing::warn!(%device, %error, "stopped publishing");
                self.counters.error(error);
                false
            }
        };
        Finished {
            reporters: self.reporters,
            disconnecting,
        }
    }

    /// The reporting phase. Returns whether the device ever connected.
    async fn report(&mut self, shutdown: &CancellationToken) -> Result<bool, PublishError> {
        let deadline = until(self.settings.deadline);
        tokio::pin!(deadline);
        while self.connects_seen == 0 {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(false),
                () = &mut deadline => return Ok(false),
                _ = self.link.changed() => self.absorb_news(),
            }
        }
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut sampling = true;
        loop {
            self.absorb_news();
            self.flush_outbox()?;
            if !sampling && self.outbox.is_empty() && self.link.is_idle() {
                return Ok(true);
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(true),
                () = &mut deadline => return Ok(true),
                _ = ticker.tick(), if sampling && self.outbox.len() < OUTBOX_LIMIT => {
                    sampling = self.sample();
                }
                _ = self.link.changed() => {}
            }
        }
    }

    /// The farewell phase: remaining readings, the death, the drain and the DISCONNECT request.
    async fn farewell(&mut self) -> Result<(), PublishError> {
        self.flush_batches();
        if let Some(device) = self.reporters.first() {
            let death = device.shutdown();
            let topic = device.identity().topic(Channel::Status);
            self.outbox.push_back(Message::status(0, topic, &death));
        }
        let deadline = Instant::now() + self.settings.drain_timeout;
        loop {
            self.absorb_news();
            self.flush_outbox()?;
            if self.outbox.is_empty() && self.link.is_idle() {
                break;
            }
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        device = %self.device_id(),
                        unsent = self.outbox.len() + self.link.queued(),
                        "gave up waiting for acknowledgements",
                    );
                    break;
                }
                _ = self.link.changed() => {}
            }
        }
        self.client.try_disconnect()?;
        Ok(())
    }

    /// Takes one reading per reporter. Returns whether to keep sampling.
    fn sample(&mut self) -> bool {
        let batch = self.settings.batch;
        for (index, reporter) in self.reporters.iter_mut().enumerate() {
            if let Some(readings) = reporter.take_reading(batch) {
                let topic = reporter.identity().topic(Channel::Telemetry);
                let message = Message::telemetry(index, topic, readings, self.settings.record);
                self.outbox.push_back(message);
            }
            if let (Some(every), Some(seq)) = (self.settings.heartbeat_every, reporter.last_seq())
                && seq % every == 0
            {
                let topic = reporter.identity().topic(Channel::Status);
                self.outbox
                    .push_back(Message::status(index, topic, &reporter.heartbeat()));
            }
        }
        self.readings_taken += 1;
        let more = self
            .settings
            .readings
            .is_none_or(|limit| self.readings_taken < limit);
        if !more {
            self.flush_batches();
        }
        more
    }

    /// Publishes the readings of partially filled batches.
    fn flush_batches(&mut self) {
        for (index, reporter) in self.reporters.iter_mut().enumerate() {
            if let Some(readings) = reporter.flush() {
                let topic = reporter.identity().topic(Channel::Telemetry);
                let message = Message::telemetry(index, topic, readings, self.settings.record);
                self.outbox.push_back(message);
            }
        }
    }

    /// Queues births after a new connection and messages a lost session took with it, ahead of
    /// everything else in the outbox.
    fn absorb_news(&mut self) {
        let news = self.link.news();
        for message in news.resend.into_iter().rev() {
            self.outbox.push_front(message);
        }
        if news.connects > self.connects_seen {
            self.connects_seen = news.connects;
            let interval_ms = self.settings.reporting_interval_ms();
            let heartbeat_ms = self.settings.heartbeat_interval_ms();
            for (index, reporter) in self.reporters.iter().enumerate().rev() {
                let birth = reporter.birth(interval_ms, heartbeat_ms);
                let topic = reporter.identity().topic(Channel::Status);
                self.outbox
                    .push_front(Message::status(index, topic, &birth));
            }
        }
    }

    /// Hands outbox messages to rumqttc while its request channel has room.
    fn flush_outbox(&mut self) -> Result<(), PublishError> {
        while self.link.queued() < REQUEST_CAPACITY {
            let Some(message) = self.outbox.pop_front() else {
                break;
            };
            let (client, qos) = (&self.client, self.settings.qos);
            let sent = self.link.submit(message, |message| {
                client.try_publish(message.topic.as_str(), qos, message.payload.clone())
            });
            if let Err((message, error)) = sent {
                self.outbox.push_front(message);
                return Err(error.into());
            }
        }
        Ok(())
    }

    fn device_id(&self) -> &str {
        self.reporters
            .first()
            .map_or("", |reporter| reporter.identity().device_id.as_str())
    }
}

/// Resolves at `deadline`, or never without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
