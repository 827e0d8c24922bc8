//! Running a firmware-sim scenario against an in-process citytel on a manual clock, step by step,
//! so every receive time is exactly the scenario's time.
//!
//! [`Ingester`] is the real service (`service::start`) on loopback port 0 with a data
//! directory of its own; [`ManualPacer`] moves the clock to each step, lets the devices publish
//! over real MQTT, and once they are acknowledged waits until citytel has also handled the Last
//! Wills of connections that dropped (those are not acknowledged to anyone). It can stop
//! citytel after one step and start it again, on the same data directory, at a later one.
//!
//! The devices connect to citytel's own device endpoint, which acknowledges a message only once
//! citytel has committed and applied it, or ([`ManualPacer::start_via_broker`]) to an external
//! broker that citytel consumes from. The broker acknowledges as soon as it has the message, so
//! there the pacer ends every step with a barrier: a heartbeat of a device of its own
//! ([`BARRIER_DEVICE`]) published after every acknowledgement of the step. The broker delivers
//! messages to citytel's subscription in the order it took them, and citytel applies them in
//! arrival order (one writer), so once the barrier's heartbeat is applied (its last-seen time is
//! the step's instant) so is everything the devices published before it. Only then does the
//! clock move: citytel stamps receive times when a message arrives from the broker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use citytel_firmware_sim::fleet::BrokerAddr;
use citytel_firmware_sim::scenario::{Pacer, Step};
use citytel_ingest::clock::Clock;
use citytel_ingest::service::{self, Running};
use citytel_proto::topic::{self, Channel as TopicChannel};
use citytel_proto::v1::alert_service_client::AlertServiceClient;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{GetDeviceRequest, Heartbeat, Status, status};
use citytel_testkit::health;
use citytel_testkit::wait::Wait;
use prost::Message as _;
use rumqttc::{AsyncClient, Event, MqttOptions, QoS};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::scenario_expect::Restart;

/// How long a condition poll waits before the test fails.
const POLL_LIMIT: Duration = Duration::from_secs(20);

/// The device id of the pacer's barrier heartbeats through a broker (site `pacer`, kind
/// `sensor`). It is not one of the scenario's devices.
pub const BARRIER_DEVICE: &str = "pacer-barrier";

/// citytel running in this process.
pub struct Ingester {
    running: Option<Running>,
    /// Address of its MQTT device endpoint (none when it consumes from a broker).
    pub mqtt: Option<SocketAddr>,
    /// Address of its gRPC API.
    pub grpc: SocketAddr,
    /// `mqtt://` URL of the broker it consumes from, if any.
    broker_url: Option<String>,
    /// Configuration text merged over the defaults (e.g. alert rules), if any.
    config: Option<String>,
}

impl Ingester {
    /// Starts citytel on `data_dir` with `clock`, endpoint and gRPC on loopback port 0, no
    /// dashboard or metrics endpoint, and the shipped availability defaults. The WAL is not fsynced: these tests are
    /// about availability, not durability across power loss.
    pub async fn start(data_dir: &Path, clock: Clock) -> Ingester {
        Self::start_with(data_dir, clock, None).await
    }

    /// As [`start`](Self::start), but consuming from the broker at `broker_url` (`mqtt://…`)
    /// instead of running the device endpoint, when one is given; returns once citytel is
    /// connected and subscribed (its health reports serving).
    pub async fn start_with(data_dir: &Path, clock: Clock, broker_url: Option<&str>) -> Ingester {
        Self::start_configured(data_dir, clock, broker_url, None).await
    }

    /// As [`start_with`](Self::start_with), with configuration text `config` (TOML, e.g. an
    /// `[alerts]` section with rules and receivers) merged over the defaults before the test's
    /// own settings.
    pub async fn start_configured(
        data_dir: &Path,
        clock: Clock,
        broker_url: Option<&str>,
        config: Option<&str>,
    ) -> Ingester {
        let mut overrides = vec![
            format!("storage.data_dir={:?}", data_dir.display().to_string()),
            "storage.fsync=\"never\"".to_string(),
            "endpoint.listen=\"127.0.0.1:0\"".to_string(),
            "grpc.listen=\"127.0.0.1:0\"".to_string(),
            "http.enabled=false".to_string(),
            "metrics.enabled=false".to_string(),
            "api.authentication=false".to_string(),
            // Scenario devices connect as `scenario-{id}`: device identity is not tested here.
            "endpoint.authentication=false".to_string(),
            // Every simulated device connects from loopback, and a scenario on the manual clock
            // reconnects faster than any real fleet: no per-address limits here.
            "endpoint.connect_rate_per_ip=100000.0".to_string(),
            "endpoint.connect_burst_per_ip=100000".to_string(),
        ];
        if let Some(url) = broker_url {
            overrides.push(format!("broker.url={url:?}"));
        }
        let file = config.map(|text| ("scenario configuration", text));
        let settings = citytel_ingest::config::load_str(file, &overrides)
            .expect("configuration")
            .validate()
            .expect("valid configuration");
        let running = service::start(settings, clock)
            .await
            .expect("citytel starts");
        let ingester = Ingester {
            mqtt: running.mqtt_addr,
            grpc: running.grpc_addr,
            running: Some(running),
            broker_url: broker_url.map(str::to_string),
            config: config.map(str::to_string),
        };
        match &ingester.broker_url {
            Some(_) => ingester.wait_serving().await,
            None => assert!(ingester.mqtt.is_some(), "the device endpoint runs"),
        }
        ingester
    }

    /// Waits until citytel reports its query service serving: with a broker, once it is
    /// connected and subscribed, so that it gets everything published from then on.
    async fn wait_serving(&self) {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", self.grpc))
            .expect("valid url");
        if let Err(e) = health::wait_serving(&endpoint, POLL_LIMIT).await {
            panic!("citytel never subscribed at the broker: {e}");
        }
    }

    /// QoS 1 messages citytel's broker source has taken from the broker and handed on to be
    /// stored (none without a broker or once stopped).
    pub fn broker_messages_taken(&self) -> Option<u64> {
        let stats = self.running.as_ref()?.broker_stats.as_ref()?;
        Some(stats.submitted.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// A gRPC client.
    pub async fn client(&self) -> QueryServiceClient<Channel> {
        QueryServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("gRPC connects")
    }

    /// An alert service client (the scenario's citytel requires no API key).
    pub async fn alerts(&self) -> AlertServiceClient<Channel> {
        AlertServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("gRPC connects")
    }

    /// Shuts citytel down gracefully (stop intake, drain, final checkpoint).
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
    }
}

/// Stop citytel after the step at `stop_after_ms` and start it again at the first step at or
/// after `start_at_ms`.
#[derive(Debug, Clone, Copy)]
pub struct PlannedRestart {
    /// The last step citytel sees before it stops.
    pub stop_after_ms: i64,
    /// When it comes back.
    pub start_at_ms: i64,
}

/// Paces a scenario on a manual clock against an [`Ingester`].
pub struct ManualPacer {
    clock: Clock,
    data_dir: PathBuf,
    /// The running citytel (stopped between a planned stop and restart).
    pub ingester: Ingester,
    client: QueryServiceClient<Channel>,
    planned: Option<PlannedRestart>,
    stopped_at: Option<i64>,
    /// The broker the devices publish to, when not citytel's endpoint, with the barrier.
    via: Option<(BrokerAddr, Barrier)>,
    /// The restarts that happened.
    pub restarts: Vec<Restart>,
    /// Steps run.
    pub steps: u64,
}

impl ManualPacer {
    /// Starts citytel on `data_dir` with a manual clock at `start_ms`; the devices will connect
    /// to its device endpoint.
    pub async fn start(data_dir: &Path, start_ms: i64, planned: Option<PlannedRestart>) -> Self {
        Self::start_configured(data_dir, start_ms, planned, None).await
    }

    /// As [`start`](Self::start), with configuration text `config` merged over the defaults
    /// (see [`Ingester::start_configured`]), kept for a planned restart.
    pub async fn start_configured(
        data_dir: &Path,
        start_ms: i64,
        planned: Option<PlannedRestart>,
        config: Option<&str>,
    ) -> Self {
        let clock = Clock::manual(start_ms);
        let ingester = Ingester::start_configured(data_dir, clock, None, config).await;
        Self::new(clock, data_dir, ingester, planned, None).await
    }

    /// The manual clock citytel runs on.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Starts citytel on `data_dir` with a manual clock at `start_ms`, consuming from the MQTT
    /// broker on 127.0.0.1:`broker_port`, which the devices will publish to. Returns once citytel
    /// is subscribed there.
    pub async fn start_via_broker(data_dir: &Path, start_ms: i64, broker_port: u16) -> Self {
        let clock = Clock::manual(start_ms);
        let url = format!("mqtt://127.0.0.1:{broker_port}");
        let ingester = Ingester::start_with(data_dir, clock, Some(&url)).await;
        let broker = BrokerAddr::new("127.0.0.1", broker_port);
        let barrier = Barrier::connect(&broker).await;
        Self::new(clock, data_dir, ingester, None, Some((broker, barrier))).await
    }

    async fn new(
        clock: Clock,
        data_dir: &Path,
        ingester: Ingester,
        planned: Option<PlannedRestart>,
        via: Option<(BrokerAddr, Barrier)>,
    ) -> Self {
        let client = ingester.client().await;
        ManualPacer {
            clock,
            data_dir: data_dir.to_path_buf(),
            ingester,
            client,
            planned,
            stopped_at: None,
            via,
            restarts: Vec::new(),
            steps: 0,
        }
    }

    /// A gRPC client of the current citytel.
    pub fn client(&self) -> QueryServiceClient<Channel> {
        self.client.clone()
    }

    /// Waits until citytel has handled the Last Will `device`'s dropped connection sent at
    /// `at_ms`: the will is the only message of the device at that instant, so its last-seen
    /// time reaches `at_ms` exactly then (a will need not change the state: a device already
    /// offline by silence stays offline).
    async fn wait_for_will(&mut self, device: &str, at_ms: i64) {
        self.wait_seen(device, at_ms, "the Last Will").await;
    }

    /// Waits until citytel's last-seen time of `device` reaches `at_ms`; `what` names the
    /// message awaited, for the failure message.
    async fn wait_seen(&mut self, device: &str, at_ms: i64, what: &str) {
        let mut wait = Wait::new(
            format!("{device}: citytel handling {what} sent at {at_ms}"),
            POLL_LIMIT,
        )
        .every(Duration::from_millis(2));
        loop {
            let seen = match self
                .client
                .get_device(GetDeviceRequest {
                    device_id: device.to_string(),
                })
                .await
            {
                Ok(answer) => answer
                    .into_inner()
                    .device
                    .map_or(i64::MIN, |d| d.last_seen_unix_ms),
                // Not heard of yet.
                Err(status) if status.code() == tonic::Code::NotFound => i64::MIN,
                Err(status) => panic!("GetDevice {device}: {status}"),
            };
            if seen >= at_ms {
                return;
            }
            if let Err(e) = wait.retry().await {
                panic!("{e}");
            }
        }
    }
}

impl Pacer for ManualPacer {
    fn broker(&self) -> BrokerAddr {
        if let Some((broker, _)) = &self.via {
            return broker.clone();
        }
        let endpoint = self.ingester.mqtt.expect("the device endpoint runs");
        BrokerAddr::new(endpoint.ip().to_string(), endpoint.port())
    }

    async fn until(&mut self, at_unix_ms: i64) {
        self.clock.set_ms(at_unix_ms);
        if let (Some(stopped_ms), Some(plan)) = (self.stopped_at, self.planned)
            && at_unix_ms >= plan.start_at_ms
        {
            let url = self.ingester.broker_url.clone();
            let config = self.ingester.config.clone();
            self.ingester = Ingester::start_configured(
                &self.data_dir,
                self.clock,
                url.as_deref(),
                config.as_deref(),
            )
            .await;
            self.client = self.ingester.client().await;
            self.restarts.push(Restart {
                stopped_ms,
                started_ms: at_unix_ms,
            });
            self.stopped_at = None;
            self.planned = None;
        }
    }

    async fn settled(&mut self, step: &Step) {
        self.steps += 1;
        for device in &step.last_wills {
            self.wait_for_will(device, step.at_unix_ms).await;
        }
        if let Some((_, barrier)) = &self.via {
            barrier.publish(step.at_unix_ms).await;
            self.wait_seen(BARRIER_DEVICE, step.at_unix_ms, "the barrier")
                .await;
        }
        if let Some(plan) = self.planned
            && self.stopped_at.is_none()
            && step.at_unix_ms >= plan.stop_after_ms
        {
            self.ingester.stop().await;
            self.stopped_at = Some(step.at_unix_ms);
        }
    }
}

/// The pacer's own MQTT connection to the broker, publishing [`BARRIER_DEVICE`]'s heartbeats.
struct Barrier {
    client: AsyncClient,
    task: JoinHandle<()>,
}

impl Barrier {
    /// Connects to `broker`; returns once the broker accepted the connection.
    async fn connect(broker: &BrokerAddr) -> Barrier {
        let mut options =
            MqttOptions::new("scenario-pacer-barrier", broker.host.clone(), broker.port);
        options
            .set_clean_session(true)
            .set_keep_alive(Duration::from_secs(60));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut connected_tx = Some(connected_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        if let Some(tx) = connected_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    // The pacer then waits for a heartbeat that never comes and fails the test.
                    Err(error) => {
                        eprintln!("the pacer's barrier connection failed: {error}");
                        return;
                    }
                }
            }
        });
        tokio::time::timeout(POLL_LIMIT, connected_rx)
            .await
            .expect("the broker accepts the barrier connection in time")
            .expect("the barrier connection");
        Barrier { client, task }
    }

    /// Publishes a heartbeat of [`BARRIER_DEVICE`] stamped `at_ms`, at QoS 1.
    async fn publish(&self, at_ms: i64) {
        let heartbeat = Status {
            device_id: BARRIER_DEVICE.to_string(),
            boot_id: 1,
            time_unix_ms: at_ms,
            gateway_id: None,
            kind: Some(status::Kind::Heartbeat(Heartbeat {
                last_seq: None,
                uptime_s: None,
            })),
        };
        let topic = topic::build("pacer", "sensor", BARRIER_DEVICE, TopicChannel::Status);
        self.client
            .publish(topic, QoS::AtLeastOnce, false, heartbeat.encode_to_vec())
            .await
            .expect("queue the barrier heartbeat");
    }
}

impl Drop for Barrier {
    fn drop(&mut self) {
        self.task.abort();
    }
}
