//! citytel under load: `citytel serve` with its defaults (fsync before every acknowledgement),
//! either running its device endpoint or consuming from a broker, and the gRPC view of what it
//! has stored.
//!
//! The only settings the harness passes are where to listen (port 0, printed at start; the
//! dashboard too, so nothing depends on port 8080 being free), the throwaway data directory,
//! the broker URL for the broker path, and `RUST_LOG=warn`. Readings stored are the sum of
//! `readings_total` over `ListDevices` (every page): distinct readings, after deduplication.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use citytel_proto::v1::ListDevicesRequest;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_testkit::health::{self, Probe};
use citytel_testkit::process::ChildGuard;
use citytel_testkit::wait::Wait;
use tonic::transport::{Channel, Endpoint};

use crate::process;

/// How long `citytel serve` may take to become ready.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// Devices per `ListDevices` page (the most the API allows).
const PAGE: u32 = 10_000;

/// Where citytel takes its messages from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Its own MQTT device endpoint.
    Endpoint,
    /// A broker at this `mqtt://` URL.
    Broker(String),
    /// Its own device endpoint, over TLS only (`mqtts`, with these certificates).
    EndpointTls(super::certs::BenchCerts),
}

/// Every simulated device connects from this one host, all at once: the per-address limits
/// meant for the field would throttle the load itself.
const LOADED_FROM_ONE_HOST: [&str; 6] = [
    "--set",
    "endpoint.max_connections_per_ip=1000000",
    "--set",
    "endpoint.connect_rate_per_ip=1000000.0",
    "--set",
    "endpoint.connect_burst_per_ip=1000000",
];

/// A running `citytel serve`.
pub struct Citytel {
    /// The process.
    pub guard: ChildGuard,
    /// The device endpoint's port, with [`Source::Endpoint`].
    pub mqtt_port: Option<u16>,
    /// The gRPC address, `http://127.0.0.1:PORT`.
    pub grpc_url: String,
}

impl Citytel {
    /// Starts `bin serve` on a fresh data dir under `dir` and waits until it is SERVING.
    pub async fn start(bin: &Path, dir: &Path, source: &Source) -> Result<Citytel> {
        Self::start_with(bin, dir, source, None).await
    }

    /// As [`start`](Self::start), reading the configuration file `config` too, when given.
    pub async fn start_with(
        bin: &Path,
        dir: &Path,
        source: &Source,
        config: Option<&Path>,
    ) -> Result<Citytel> {
        std::fs::create_dir_all(dir)?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve");
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd.arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--grpc-listen", "127.0.0.1:0"])
            .args(["--set", "http.listen=127.0.0.1:0"])
            .args(["--set", "metrics.listen=127.0.0.1:0"])
            .args(["--set", "api.authentication=false"])
            // The load generator publishes for many devices per connection, as a broker
            // client would: device authentication is not what is measured.
            .args(["--set", "endpoint.authentication=false"])
            .env("RUST_LOG", "warn");
        match source {
            Source::Endpoint => {
                // Every simulated device connects from this one host, all at once: the
                // per-address limits meant for the field would throttle the load itself.
                cmd.args(["--mqtt-listen", "127.0.0.1:0"])
                    .args(LOADED_FROM_ONE_HOST);
            }
            Source::Broker(url) => {
                cmd.args(["--broker-url", url]);
            }
            Source::EndpointTls(certs) => {
                let set = |key: &str, value: &std::path::Path| {
                    format!("{key}={:?}", value.display().to_string())
                };
                cmd.args(LOADED_FROM_ONE_HOST).args([
                    "--set".into(),
                    "endpoint.plain=false".to_string(),
                    "--set".into(),
                    "endpoint.tls.enabled=true".to_string(),
                    "--set".into(),
                    "endpoint.tls.listen=127.0.0.1:0".to_string(),
                    "--set".into(),
                    set("endpoint.tls.cert_file", &certs.server_cert),
                    "--set".into(),
                    set("endpoint.tls.key_file", &certs.server_key),
                ]);
            }
        }
        let t0 = Instant::now();
        let mut wait = Wait::new("citytel serve printing `grpc api`", READY_LIMIT)
            .every(Duration::from_millis(2));
        let mut guard = process::spawn("citytel serve", &mut cmd, &dir.join("serve.log"), true)?;
        let banner = process::citytel_banner(&mut guard, &mut wait).await?;
        let grpc = process::banner_value(&banner, ["grpc", "api"]).context("no gRPC address")?;
        let label = match source {
            Source::EndpointTls(_) => ["mqtts", "endpoint"],
            _ => ["mqtt", "endpoint"],
        };
        let mqtt_port = process::banner_value(&banner, label)
            .and_then(|url| url.rsplit(':').next()?.parse::<u16>().ok());
        if !matches!(source, Source::Broker(_)) && mqtt_port.is_none() {
            bail!("citytel serve printed no `mqtt endpoint` line before `grpc api`");
        }
        let grpc_url = format!("http://{grpc}");
        wait_serving(&grpc_url, &mut guard, t0).await?;
        Ok(Citytel {
            guard,
            mqtt_port,
            grpc_url,
        })
    }

    /// A client for the readings stored so far.
    pub async fn stored_readings(&self) -> Result<StoredReadings> {
        let channel = Endpoint::from_shared(self.grpc_url.clone())?
            .connect()
            .await
            .context("connecting to citytel's gRPC API")?;
        Ok(StoredReadings {
            client: QueryServiceClient::new(channel),
        })
    }
}

/// Reads how many readings citytel has stored.
#[derive(Clone)]
pub struct StoredReadings {
    client: QueryServiceClient<Channel>,
}

impl StoredReadings {
    /// The sum of `readings_total` over every device.
    pub async fn get(&mut self) -> Result<u64> {
        let mut total = 0;
        let mut page_token = String::new();
        loop {
            let request = ListDevicesRequest {
                page_size: PAGE,
                page_token: page_token.clone(),
                ..ListDevicesRequest::default()
            };
            let page = self.client.list_devices(request).await?.into_inner();
            total += page.devices.iter().map(|d| d.readings_total).sum::<u64>();
            if page.next_page_token.is_empty() {
                return Ok(total);
            }
            page_token = page.next_page_token;
        }
    }
}

/// The `citytel` binary: `explicit`, or the one next to this executable.
pub fn binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    match explicit {
        Some(path) if path.is_file() => Ok(path),
        Some(path) => bail!("{} is not a file", path.display()),
        None => crate::process::sibling_binary("citytel"),
    }
}

/// Polls the health service at `url` until the query service is SERVING, within [`READY_LIMIT`]
/// of `t0`.
async fn wait_serving(url: &str, server: &mut ChildGuard, t0: Instant) -> Result<()> {
    let endpoint = Endpoint::from_shared(url.to_string()).context("bad gRPC address")?;
    let limit = READY_LIMIT.saturating_sub(t0.elapsed());
    let mut wait = Wait::new("citytel SERVING", limit);
    loop {
        let last = match health::probe(&endpoint).await {
            Probe::Serving(_) => return Ok(()),
            Probe::NotYet(seen) => seen,
        };
        server.check_running()?;
        wait.retry()
            .await
            .with_context(|| format!("last: {last}"))?;
    }
}
