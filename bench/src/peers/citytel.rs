//! citytel itself, driven through its command line and its gRPC API like an operator would.
//!
//! - Import: `citytel import FILE --data-dir DIR` (the `citytel` binary next to this one), timed
//!   from spawn to exit; the command flushes and compacts before it exits. Its peak RSS is the
//!   larger of `VmHWM` polled from `/proc/PID/status` every 20 ms and, when it rose during the
//!   import, `getrusage(RUSAGE_CHILDREN)`'s `ru_maxrss` (exact, but a maximum over every child
//!   this harness has reaped so far).
//! - Disk: the files under the data dir after the import.
//! - Restart to ready: from spawning `citytel serve` on the imported dir until the gRPC health
//!   check answers SERVING for `citytel.v1.QueryService`.
//! - Queries over gRPC on one channel: (a) `QueryRange`, (b) `QuerySeries` with a 5-minute AVG
//!   step and AVG across the cabinets, (c) `ListLatest` of every device, every page (the pages'
//!   round trips summed). Each call is timed until the decoded response is in hand.
//! - API keys: the service runs without them (`api.authentication = false`) unless
//!   [`Citytel::use_key`] gave one; then keys are required and every query carries it (see
//!   [`super::auth`], which creates the keys with `citytel keys create`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{Aggregation, DeviceSelector, QueryRangeRequest, QuerySeriesRequest};
use citytel_testkit::health::{self, Probe};
use citytel_testkit::process::ChildGuard;
use citytel_testkit::wait::Wait;
use nix::sys::resource::{UsageWho, getrusage};
use tonic::service::interceptor::InterceptedService;

use crate::queries::Bearer;
use tonic::transport::{Channel, Endpoint};

use super::{Imported, System, check_count};
use crate::dataset::{Dataset, QUERY_DEVICE, QUERY_MEASUREMENT, QUERY_METRIC, QUERY_STEP};
use crate::measure::{self, DiskUsage};
use crate::process;

/// HTTP/2 flow-control window of the query client (stream and connection).
const WINDOW_BYTES: u32 = 8 << 20;
/// How long `citytel serve` may take to become ready before the harness gives up.
const READY_LIMIT: Duration = Duration::from_secs(120);

/// The query client, with its key if any.
type Client = QueryServiceClient<InterceptedService<Channel, Bearer>>;

/// citytel under test: the binary, its data dir and, once restarted, the running service.
pub struct Citytel {
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    client: Option<Client>,
    server: Option<ChildGuard>,
    resolution: Option<String>,
    /// The API key queries carry; `None`: the service runs without keys.
    key: Option<String>,
}

impl System for Citytel {
    const NAME: &'static str = "citytel";

    async fn start(dir: &Path) -> Result<Self> {
        Ok(Citytel {
            bin: process::sibling_binary("citytel")?,
            dir: dir.to_path_buf(),
            data: dir.join("data"),
            client: None,
            server: None,
            resolution: None,
            key: None,
        })
    }

    async fn import(&mut self, ds: &Dataset) -> Result<Imported> {
        let before_kib = children_max_rss_kib()?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("import")
            .arg(&ds.path)
            .arg("--data-dir")
            .arg(&self.data)
            .env("RUST_LOG", "warn");
        let log = self.dir.join("import.log");
        let mut child = process::spawn("citytel import", &mut cmd, &log, true)?;
        let mut stdout = child.take_stdout().context("no stdout")?;
        let summary = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let pid = child.pid();
        let t0 = Instant::now();
        let mut hwm_kib = 0;
        let mut reported = Instant::now();
        let status = loop {
            if let Some(kib) = vm_hwm_kib(pid) {
                hwm_kib = hwm_kib.max(kib);
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if reported.elapsed() >= Duration::from_secs(5) {
                reported = Instant::now();
                eprintln!(
                    "  importing into citytel... {:.0} s, peak RSS so far {:.0} MiB",
                    t0.elapsed().as_secs_f64(),
                    hwm_kib as f64 / 1024.0
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let summary = summary.join().unwrap_or_default();
        if !status.success() {
            bail!(
                "citytel import failed: {status}\n{summary}\n{}",
                child.log_tail()
            );
        }
        for line in summary.lines() {
            eprintln!("  | {line}");
        }
        let after_kib = children_max_rss_kib()?;
        let peak_kib = if after_kib > before_kib {
            hwm_kib.max(after_kib)
        } else {
            hwm_kib
        };
        Ok(Imported {
            peak_rss_bytes: Some(peak_kib * 1024),
        })
    }

    async fn disk_bytes(&mut self) -> Result<DiskUsage> {
        measure::dir_bytes(&self.data)
    }

    async fn serve(&mut self) -> Result<Option<Duration>> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data)
            .args([
                "--grpc-listen",
                "127.0.0.1:0",
                "--mqtt-listen",
                "127.0.0.1:0",
                "--set",
                "http.listen=127.0.0.1:0",
                "--set",
                "metrics.listen=127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn");
        match &self.key {
            None => cmd.args(["--set", "api.authentication=false"]),
            // Keys required, with a rate limit the harness never reaches (the check still runs).
            Some(_) => cmd.args([
                "--set",
                "api.authentication=true",
                "--set",
                "api.rate_limit_per_key=1000000",
                "--set",
                "api.rate_limit_burst=1000000",
            ]),
        };
        let t0 = Instant::now();
        let mut wait = Wait::new("citytel serve printing `grpc api`", READY_LIMIT)
            .every(Duration::from_millis(2));
        let mut server =
            process::spawn("citytel serve", &mut cmd, &self.dir.join("serve.log"), true)?;
        let banner = process::citytel_banner(&mut server, &mut wait).await?;
        let grpc = process::banner_value(&banner, ["grpc", "api"]).context("no gRPC address")?;
        let url = format!("http://{grpc}");
        let channel = wait_serving(&url, &mut server, t0).await?;
        let ready = t0.elapsed();
        let bearer = match &self.key {
            None => None,
            Some(key) => Some(format!("Bearer {key}").parse().context("key text")?),
        };
        self.client = Some(QueryServiceClient::with_interceptor(
            channel,
            Bearer::new(bearer),
        ));
        self.server = Some(server);
        Ok(Some(ready))
    }

    async fn query_a(&mut self, ds: &Dataset) -> Result<Duration> {
        let client = self.client()?;
        let request = QueryRangeRequest {
            device_id: QUERY_DEVICE.into(),
            metric: QUERY_METRIC.into(),
            start_unix_ms: ds.start_ms(),
            end_unix_ms: ds.end_ms_exclusive(),
            // A day of a 10 s series: its timestamps as one run.
            time_runs: true,
        };
        let t0 = Instant::now();
        let response = client.query_range(request).await?.into_inner();
        let (times, values) = (response.times(), &response.values);
        let elapsed = t0.elapsed();
        let n = ds.expected_a_points;
        check_count("raw points of one series", times.len() as u64, n, n)?;
        check_count("raw values of one series", values.len() as u64, n, n)?;
        Ok(elapsed)
    }

    async fn query_b(&mut self, ds: &Dataset) -> Result<Duration> {
        let client = self.client()?;
        let request = QuerySeriesRequest {
            devices: Some(DeviceSelector {
                kind: QUERY_MEASUREMENT.into(),
                ..DeviceSelector::default()
            }),
            metric: QUERY_METRIC.into(),
            start_unix_ms: ds.start_ms(),
            end_unix_ms: ds.end_ms_exclusive(),
            step_ms: QUERY_STEP.as_millis() as i64,
            aggregation: Aggregation::Avg as i32,
            across: Aggregation::Avg as i32,
        };
        let t0 = Instant::now();
        let response = client.query_series(request).await?.into_inner();
        let elapsed = t0.elapsed();
        check_count(
            "series of the cross-device average",
            response.series.len() as u64,
            1,
            1,
        )?;
        let points = response.series[0].values.len() as u64;
        let n = ds.expected_b_buckets;
        check_count("5-minute averages", points, n.saturating_sub(1), n + 1)?;
        self.resolution = Some(response.resolution);
        Ok(elapsed)
    }

    async fn query_c(&mut self, ds: &Dataset) -> Result<Duration> {
        let client = self.client()?;
        // Every page, at the server's default page size.
        let run = crate::queries::timing::latest_run(client, 0).await?;
        check_count(
            "devices with latest values",
            run.devices,
            ds.devices,
            ds.devices,
        )?;
        check_count("latest values", run.values, ds.series, ds.series)?;
        Ok(run.elapsed)
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = vec![
            "import: `citytel import` spawn to exit (includes its flush and compaction)".into(),
            "query latency: gRPC call until the decoded response is in hand".into(),
        ];
        if let Some(r) = &self.resolution {
            notes.push(format!("(b) answered from resolution {r:?}"));
        }
        notes
    }
}

impl Citytel {
    fn client(&mut self) -> Result<&mut Client> {
        self.client.as_mut().context("citytel serve is not running")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The `citytel` binary.
    pub fn binary(&self) -> &Path {
        &self.bin
    }

    /// Runs the next `serve` with keys required and every query carrying `key`; `None`: without
    /// keys.
    pub fn use_key(&mut self, key: Option<String>) {
        self.key = key;
    }

    /// Stops the running service (graceful), if any.
    pub fn stop(&mut self) {
        self.client = None;
        if let Some(mut server) = self.server.take() {
            let _ = server.stop_with(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(60));
        }
    }
}

/// Polls the health service at `url` until the query service is SERVING, within
/// [`READY_LIMIT`] of `t0`; returns the channel.
async fn wait_serving(url: &str, server: &mut ChildGuard, t0: Instant) -> Result<Channel> {
    // HTTP/2's default 64 KiB flow-control window makes the server wait for window updates in
    // the middle of a 140 KB answer; a client that fetches series sets a larger one, as
    // HTTP/1.1 clients of the peers have no such window at all.
    let endpoint = Endpoint::from_shared(url.to_string())
        .context("bad gRPC address")?
        .initial_stream_window_size(WINDOW_BYTES)
        .initial_connection_window_size(WINDOW_BYTES)
        .tcp_nodelay(true);
    let limit = READY_LIMIT.saturating_sub(t0.elapsed());
    let mut wait = Wait::new("citytel SERVING", limit).every(Duration::from_millis(5));
    loop {
        let last = match health::probe(&endpoint).await {
            Probe::Serving(channel) => return Ok(channel),
            Probe::NotYet(seen) => seen,
        };
        server.check_running()?;
        wait.retry()
            .await
            .with_context(|| format!("last: {last}"))?;
    }
}

/// `VmHWM` (peak RSS) of process `pid` in KiB, if it still runs.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The largest peak RSS of any child this process has reaped, in KiB.
fn children_max_rss_kib() -> Result<u64> {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage")?;
    Ok(u64::try_from(usage.max_rss()).unwrap_or(0))
}
