//! The load generator: as many QoS 1 telemetry messages per second as a server acknowledges.
//!
//! Built for throughput, not realism (that is [`crate::fleet`]'s job). [`run`] plans the devices
//! ([`plan`]), pre-encodes one PUBLISH per device ([`template`]), opens every connection
//! ([`connection::connect`]), then runs one pipelined [`connection::Publisher`] task per
//! connection on a shared [`schedule`], each keeping its window of unacknowledged PUBLISHes full
//! and tracking their packet ids ([`packet_ids`]). It returns a [`LoadReport`]: rates over the
//! measured window, exact acknowledgement totals and publish-to-PUBACK latency percentiles.
//!
//! A message counts as acknowledged only when the PUBACK carrying its packet id arrives. Against
//! citytel's device endpoint that PUBACK comes after the WAL fsync, so the latency is
//! publish-to-durable; against a broker it is publish-to-broker.

mod connection;
mod error;
mod messages;
mod pace;
mod packet_ids;
mod plan;
mod report;
mod schedule;
mod sparkplug;
mod stream;
mod template;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::broker::BrokerAddr;
use crate::fleet::MAX_BATCH;
use connection::{Publisher, new_histogram};
use messages::Messages;
use schedule::{Counters, Schedule};
use sparkplug::SparkplugNode;
use template::Template;

pub use crate::broker::MqttVersion;
pub use error::LoadError;
pub use report::{Latency, LoadReport, Sample, Window};
pub use sparkplug::GROUP as SPARKPLUG_GROUP;
pub use stream::LoadTls;
pub use template::TemplateError;

/// How often the timeline (and the progress channel) is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The payload format the load publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadFormat {
    /// citytel's wire contract: `TelemetryBatch` on each device's telemetry topic.
    #[default]
    Citytel,
    /// Sparkplug B: each connection an edge node of group [`SPARKPLUG_GROUP`] (named after its
    /// client id), its births first, then DDATA of its devices (every metric by alias, per
    /// reading).
    Sparkplug,
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadConfig {
    /// The server: a broker or citytel's device endpoint.
    pub broker: BrokerAddr,
    /// Connect over TLS, with these files.
    pub tls: Option<LoadTls>,
    /// Connections, each with its own packet id space and window.
    pub connections: u32,
    /// Devices, dealt round-robin to the connections (at least one each).
    pub devices: u32,
    /// Sites the devices are spread over.
    pub sites: u32,
    /// Most unacknowledged PUBLISHes per connection (1 to 65535; with MQTT 5 also at most the
    /// server's Receive Maximum).
    pub inflight: u16,
    /// The MQTT version.
    pub mqtt_version: MqttVersion,
    /// The payload format.
    pub format: LoadFormat,
    /// Readings per message (1 to [`MAX_BATCH`]).
    pub batch: u32,
    /// How long to measure after the warm-up; ignored with `messages`.
    pub duration: Duration,
    /// Publish exactly this many messages after the warm-up, instead of for `duration`.
    pub messages: Option<u64>,
    /// Publish at most this many messages per second in all (split evenly over the
    /// connections), warm-up included; `None`: as fast as the server acknowledges.
    pub rate: Option<f64>,
    /// Time before the measured window, not counted.
    pub warmup: Duration,
    /// Client ids are this prefix and the connection number.
    pub client_id_prefix: String,
    /// Credentials for CONNECT.
    pub login: Option<(String, String)>,
    /// Seed of the metric models.
    pub seed: u64,
    /// Time to connect and get CONNACK.
    pub connect_timeout: Duration,
    /// How long to wait for the last PUBACKs after publishing stops.
    pub drain_timeout: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            broker: BrokerAddr::default(),
            tls: None,
            connections: 50,
            devices: 1000,
            sites: 10,
            inflight: 1000,
            mqtt_version: MqttVersion::V311,
            format: LoadFormat::Citytel,
            batch: 1,
            duration: Duration::from_secs(10),
            messages: None,
            rate: None,
            warmup: Duration::from_secs(2),
            client_id_prefix: "firmware-sim-load-".into(),
            login: None,
            seed: 42,
            connect_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

impl LoadConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |s: String| Err(LoadError::Config(s));
        if self.connections == 0 {
            return bad("--connections must be at least 1".into());
        }
        if self.devices < self.connections {
            return bad(format!(
                "--devices ({}) must be at least --connections ({}): every connection \
                 publishes for its own devices",
                self.devices, self.connections
            ));
        }
        if self.inflight == 0 {
            return bad("--inflight must be at least 1".into());
        }
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return bad(format!("--batch must be 1 to {MAX_BATCH}"));
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return bad(format!(
                "--rate must be a positive number of messages/s, not {rate}"
            ));
        }
        match self.messages {
            Some(0) => return bad("--messages must be at least 1".into()),
            Some(n) if n < u64::from(self.connections) => {
                return bad(format!(
                    "--messages ({n}) must be at least --connections ({})",
                    self.connections
                ));
            }
            None if self.duration.is_zero() => {
                return bad("--duration must be longer than 0".into());
            }
            _ => {}
        }
        Ok(())
    }
}

/// Runs the load described by `config` until done (or `shutdown`, which ends publishing early
/// and drains). `progress`, if given, receives the cumulative counts every 100 ms.
pub async fn run(
    config: LoadConfig,
    shutdown: CancellationToken,
    progress: Option<watch::Sender<Sample>>,
) -> Result<LoadReport, LoadError> {
    config.validate()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now_ms = now.as_millis() as i64;
    let plan = plan::plan(
        config.devices,
        config.connections,
        config.sites,
        now.as_nanos() as u64,
    );
    let mut templates = Vec::with_capacity(plan.len());
    for (i, devices) in plan.iter().enumerate() {
        let batch = config.batch as usize;
        let messages = match config.format {
            LoadFormat::Citytel => Messages::citytel(
                devices
                    .iter()
                    .map(|d| Template::new(d, batch, config.seed, now_ms, config.mqtt_version))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            LoadFormat::Sparkplug => Messages::Sparkplug(SparkplugNode::new(
                &format!("{}{i}", config.client_id_prefix),
                devices,
                batch,
                config.seed,
                now_ms,
                config.mqtt_version,
            )),
        };
        templates.push(messages);
    }

    let tls = config
        .tls
        .as_ref()
        .map(stream::TlsClient::new)
        .transpose()?;
    let mut connecting = JoinSet::new();
    for i in 0..config.connections {
        let broker = config.broker.clone();
        let tls = tls.clone();
        let client_id = format!("{}{i}", config.client_id_prefix);
        let login = config.login.clone();
        let limit = config.connect_timeout;
        let version = config.mqtt_version;
        connecting.spawn(async move {
            let login = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
            let connected =
                connection::connect(&broker, tls.as_ref(), client_id, login, limit, version).await;
            (i, connected)
        });
    }
    let mut streams = Vec::with_capacity(config.connections as usize);
    while let Some(joined) = connecting.join_next().await {
        let (i, stream) = joined.map_err(|e| LoadError::Io(e.to_string()))?;
        streams.push((i, stream?));
    }
    streams.sort_by_key(|(i, _)| *i);

    let schedule = Arc::new(Schedule::starting_now(
        config.warmup,
        config.messages.is_none().then_some(config.duration),
        config.drain_timeout,
    ));
    let counters = Arc::new(Counters::default());
    let mut tasks = JoinSet::new();
    for ((i, stream), templates) in streams.into_iter().zip(templates) {
        let quota = config.messages.map(|n| {
            let conns = u64::from(config.connections);
            n / conns + u64::from(u64::from(i) < n % conns)
        });
        let pace = config
            .rate
            .map(|rate| pace::Pace::share(rate, config.connections, i));
        let publisher = Publisher::new(stream, templates, config.inflight, quota, pace);
        tasks.spawn(publisher.run(schedule.clone(), counters.clone(), shutdown.clone()));
    }

    let sampling = CancellationToken::new();
    let sampler = tokio::spawn(sample(
        schedule.clone(),
        counters.clone(),
        progress,
        sampling.clone(),
    ));
    let mut stats = Vec::with_capacity(config.connections as usize);
    while let Some(joined) = tasks.join_next().await {
        stats.push(joined.map_err(|e| LoadError::Io(format!("publisher task failed: {e}")))?);
    }
    sampling.cancel();
    let timeline = sampler
        .await
        .map_err(|e| LoadError::Io(format!("sampler task failed: {e}")))?;

    let mut latency = new_histogram();
    let mut errors = Vec::new();
    let (mut published, mut acked, mut unacked, mut unexpected) = (0, 0, 0, 0);
    let (mut window_acked, mut counted_acked, mut last_ack_us) = (0, 0, 0);
    for (i, s) in stats.iter().enumerate() {
        let _ = latency.add(&s.latency_us);
        published += s.published;
        acked += s.acked;
        unacked += s.unacked;
        unexpected += s.unexpected_acks;
        window_acked += s.window_acked;
        counted_acked += s.counted_acked;
        last_ack_us = last_ack_us.max(s.last_counted_ack_us);
        if let Some(e) = &s.error {
            errors.push(format!("connection {i}: {e}"));
        }
    }
    let start_us = schedule.warmup_end_us();
    let (end_us, window_messages) = match schedule.end_us() {
        Some(end) => (end, window_acked),
        None => (last_ack_us.max(start_us), counted_acked),
    };
    let seconds = (end_us - start_us) as f64 / 1e6;
    let per_s = |n: u64| {
        if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        }
    };
    Ok(LoadReport {
        broker: config.broker.to_string(),
        connections: config.connections,
        devices: config.devices,
        batch: config.batch,
        inflight: config.inflight,
        qos: 1,
        warmup_s: config.warmup.as_secs_f64(),
        window: Window {
            start_unix_ms: schedule.unix_us_at(start_us) as f64 / 1e3,
            end_unix_ms: schedule.unix_us_at(end_us) as f64 / 1e3,
            seconds,
        },
        messages_per_s: per_s(window_messages),
        readings_per_s: per_s(window_messages) * f64::from(config.batch),
        window_messages,
        published,
        acked,
        unacked,
        unexpected_acks: unexpected,
        readings_acked: acked * u64::from(config.batch),
        latency_ms: Latency::of(&latency),
        errors,
        timeline,
    })
}

/// Samples the counters every [`SAMPLE_EVERY`] until `done`; returns the timeline.
async fn sample(
    schedule: Arc<Schedule>,
    counters: Arc<Counters>,
    progress: Option<watch::Sender<Sample>>,
    done: CancellationToken,
) -> Vec<Sample> {
    let mut timeline = Vec::new();
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            _ = ticker.tick() => false,
            () = done.cancelled() => true,
        };
        let at = Sample {
            unix_ms: schedule.unix_us_at(schedule.elapsed_us()) as f64 / 1e3,
            published: counters.published.load(Ordering::Relaxed),
            acked: counters.acked.load(Ordering::Relaxed),
        };
        timeline.push(at);
        if let Some(p) = &progress {
            let _ = p.send(at);
        }
        if stop {
            return timeline;
        }
    }
}
