//! Running a firmware-sim scenario against an in-process citytel on a manual clock, step by step,
//! so every receive time is exactly the scenario's time.
//!
//! [`Ingester`] is the real service (`service::start_with_clock`) on loopback port 0 with a data
//! directory of its own; [`ManualPacer`] moves the clock to each step, lets the devices publish
//! over real MQTT, and once they are acknowledged waits until citytel has also handled the Last
//! Wills of connections that dropped (those are not acknowledged to anyone). It can stop
//! citytel after one step and start it again, on the same data directory, at a later one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use citytel_firmware_sim::fleet::BrokerAddr;
use citytel_firmware_sim::scenario::{Pacer, Step};
use citytel_ingest::clock::Clock;
use citytel_ingest::service::{self, Running};
use citytel_proto::v1::GetDeviceRequest;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use tonic::transport::Channel;

use crate::scenario_expect::Restart;

/// How long a condition poll waits before the test fails.
const POLL_LIMIT: Duration = Duration::from_secs(20);

/// citytel running in this process.
pub struct Ingester {
    running: Option<Running>,
    /// Address of its MQTT device endpoint.
    pub mqtt: SocketAddr,
    /// Address of its gRPC API.
    pub grpc: SocketAddr,
}

impl Ingester {
    /// Starts citytel on `data_dir` with `clock`, endpoint and gRPC on loopback port 0, no
    /// dashboard or metrics endpoint, and the shipped availability defaults. The WAL is not fsynced: these tests are
    /// about availability, not durability across power loss.
    pub async fn start(data_dir: &Path, clock: Clock) -> Ingester {
        let overrides = [
            format!("storage.data_dir={:?}", data_dir.display().to_string()),
            "storage.fsync=\"never\"".to_string(),
            "endpoint.listen=\"127.0.0.1:0\"".to_string(),
            "grpc.listen=\"127.0.0.1:0\"".to_string(),
            "http.enabled=false".to_string(),
            "metrics.enabled=false".to_string(),
        ];
        let settings = citytel_ingest::config::load_str(None, &overrides)
            .expect("configuration")
            .validate()
            .expect("valid configuration");
        let running = service::start_with_clock(settings, clock)
            .await
            .expect("citytel starts");
        Ingester {
            mqtt: running.mqtt_addr.expect("the device endpoint runs"),
            grpc: running.grpc_addr,
            running: Some(running),
        }
    }

    /// A gRPC client.
    pub async fn client(&self) -> QueryServiceClient<Channel> {
        QueryServiceClient::connect(format!("http://{}", self.grpc))
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
    /// The restarts that happened.
    pub restarts: Vec<Restart>,
    /// Steps run.
    pub steps: u64,
}

impl ManualPacer {
    /// Starts citytel on `data_dir` with a manual clock at `start_ms`.
    pub async fn start(data_dir: &Path, start_ms: i64, planned: Option<PlannedRestart>) -> Self {
        let clock = Clock::manual(start_ms);
        let ingester = Ingester::start(data_dir, clock).await;
        let client = ingester.client().await;
        ManualPacer {
            clock,
            data_dir: data_dir.to_path_buf(),
            ingester,
            client,
            planned,
            stopped_at: None,
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
        let deadline = tokio::time::Instant::now() + POLL_LIMIT;
        loop {
            let seen = self
                .client
                .get_device(GetDeviceRequest {
                    device_id: device.to_string(),
                })
                .await
                .expect("GetDevice")
                .into_inner()
                .device
                .map_or(i64::MIN, |d| d.last_seen_unix_ms);
            if seen >= at_ms {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{device}: citytel never handled the Last Will sent at {at_ms}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Pacer for ManualPacer {
    fn broker(&self) -> BrokerAddr {
        BrokerAddr::new(
            self.ingester.mqtt.ip().to_string(),
            self.ingester.mqtt.port(),
        )
    }

    async fn until(&mut self, at_unix_ms: i64) {
        self.clock.set_ms(at_unix_ms);
        if let (Some(stopped_ms), Some(plan)) = (self.stopped_at, self.planned)
            && at_unix_ms >= plan.start_at_ms
        {
            self.ingester = Ingester::start(&self.data_dir, self.clock).await;
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
        if let Some(plan) = self.planned
            && self.stopped_at.is_none()
            && step.at_unix_ms >= plan.stop_after_ms
        {
            self.ingester.stop().await;
            self.stopped_at = Some(step.at_unix_ms);
        }
    }
}
