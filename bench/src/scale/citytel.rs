//! citytel at one fleet size: register N devices, a steady load, memory, the fleet-wide queries
//! and a graceful restart.
//!
//! `citytel serve` runs with its defaults (fsync before every PUBACK) on a fresh data dir, with
//! `ingest.max_series` and `ingest.max_devices` raised to ten times what the fleet needs (from a
//! configuration file, so nothing else changes), its device endpoint on a free port and no
//! device authentication (one generator publishes for many devices, as a gateway would).
//!
//! 1. **Registration**: `firmware-sim load --messages N`: each of the N devices publishes one
//!    1-reading message (5 metrics), 50 connections x 1000 in flight, as fast as acknowledged.
//!    Intake is the generator's acknowledged messages per second; the peak RSS is `VmHWM` right
//!    after.
//! 2. **Steady load**: the same devices at one reading per device per minute (`--rate N/60`)
//!    for `--steady-secs`; its publish-to-PUBACK p99. RSS is read right after.
//! 3. **Queries** ([`crate::queries::time_queries`]): `GetFleetSummary`, `ListDevices` pages of
//!    1,000 at the start, middle and end, and `ListLatest` of every device, page by page; one
//!    warm-up and `--runs` calls each, medians. `ListDevices` must list N devices.
//! 4. **Restart**: SIGINT, time until the process has exited (graceful shutdown), then start it
//!    again on the same data dir and time spawn to SERVING on the gRPC health check; the queries
//!    run again and must still find N devices.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use serde::Serialize;

use super::figures::{self, Memory};
use crate::mqtt::citytel::{Citytel, Source};
use crate::mqtt::generator::{Generator, LoadReport, LoadSpec};
use crate::queries::{QueryOptions, QueryTimings, time_queries};

/// Generator connections.
pub const CONNECTIONS: u32 = 50;
/// Unacknowledged messages per generator connection.
const INFLIGHT: u16 = 1000;
/// How long a graceful shutdown may take before the run gives up on it.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(300);

/// What to run.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `citytel`.
    pub citytel: PathBuf,
    /// `firmware-sim`.
    pub firmware_sim: PathBuf,
    /// Length of the steady load.
    pub steady: Duration,
    /// Counted calls of each query.
    pub runs: usize,
}

/// citytel's figures at one size (absent where the run did not get that far).
#[derive(Debug, Default, Clone, Serialize)]
pub struct CitytelFigures {
    /// RSS right after start, before any device, bytes.
    pub rss_empty_bytes: Option<u64>,
    /// Registration: acknowledged messages per second.
    pub intake_msg_per_s: Option<f64>,
    /// Registration: seconds from the first PUBLISH to the last PUBACK.
    pub registration_s: Option<f64>,
    /// Registration: publish-to-PUBACK p99, ms.
    pub registration_p99_ms: Option<f64>,
    /// `VmHWM` right after the registration, bytes.
    pub peak_rss_registration_bytes: Option<u64>,
    /// Steady load: the rate asked for, messages per second.
    pub steady_target_msg_per_s: Option<f64>,
    /// Steady load: acknowledged messages per second.
    pub steady_msg_per_s: Option<f64>,
    /// Steady load: publish-to-PUBACK median, ms.
    pub steady_p50_ms: Option<f64>,
    /// Steady load: publish-to-PUBACK p99, ms.
    pub steady_p99_ms: Option<f64>,
    /// RSS after the steady load, bytes.
    pub rss_after_bytes: Option<u64>,
    /// `VmHWM` after the steady load, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// `rss_after_bytes` per series.
    pub bytes_per_series: Option<f64>,
    /// `rss_after_bytes` per device.
    pub bytes_per_device: Option<f64>,
    /// GetFleetSummary median, ms.
    pub fleet_summary_ms: Option<f64>,
    /// Every counted GetFleetSummary call, ms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet_summary_runs_ms: Vec<f64>,
    /// SIGINT to exit, seconds.
    pub shutdown_s: Option<f64>,
    /// Spawn to SERVING on the same data dir, seconds.
    pub restart_to_serving_s: Option<f64>,
    /// RSS right after the restart (SERVING), bytes.
    pub rss_restarted_bytes: Option<u64>,
    /// The slowest of the `ListDevices` page medians (start, middle, end), ms.
    pub list_devices_page_ms: Option<f64>,
    /// `ListLatest` of every device, all pages, median, ms.
    pub list_latest_ms: Option<f64>,
    /// Pages of one `ListLatest` walk.
    pub list_latest_pages: Option<u64>,
    /// The largest `ListLatest` answer, encoded, bytes.
    pub list_latest_largest_bytes: Option<u64>,
    /// GetFleetSummary median after the restart, ms.
    pub fleet_summary_after_restart_ms: Option<f64>,
    /// `ListLatest` of every device after the restart, median, ms.
    pub list_latest_after_restart_ms: Option<f64>,
    /// Why the run stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Measures citytel with `devices` devices, its files under `dir`.
pub async fn measure(setup: &Setup, devices: u32, dir: &Path) -> CitytelFigures {
    let mut f = CitytelFigures::default();
    if let Err(e) = measure_into(&mut f, setup, devices, dir).await {
        eprintln!("citytel {devices}: error: {e:#}");
        f.error = Some(format!("{e:#}"));
    }
    f
}

async fn measure_into(
    f: &mut CitytelFigures,
    setup: &Setup,
    devices: u32,
    dir: &Path,
) -> Result<()> {
    let n = u64::from(devices);
    std::fs::create_dir_all(dir)?;
    let config = dir.join("citytel.toml");
    std::fs::write(&config, config_text(n)).context("writing citytel's configuration")?;
    let mut citytel = Citytel::start_with(&setup.citytel, dir, &Source::Endpoint, Some(&config))
        .await
        .context("starting citytel serve")?;
    let pid = citytel.guard.pid();
    f.rss_empty_bytes = Some(Memory::of(pid)?.rss_bytes);
    let port = citytel.mqtt_port.context("no device endpoint")?;
    let broker = format!("mqtt://127.0.0.1:{port}");

    eprintln!("citytel {devices}: registering {devices} devices...");
    let spec = load_spec(setup, devices, Some(n), None);
    let report = run_load(&spec, &broker, &dir.join("registration"), &mut citytel).await?;
    f.intake_msg_per_s = Some(report.messages_per_s);
    f.registration_s = Some(report.window.seconds);
    f.registration_p99_ms = Some(report.latency_ms.p99);
    f.peak_rss_registration_bytes = Some(Memory::of(pid)?.peak_bytes);
    eprintln!(
        "citytel {devices}: registered in {:.1} s: {:.0} msg/s, p99 {:.0} ms, peak RSS {}",
        report.window.seconds,
        report.messages_per_s,
        report.latency_ms.p99,
        mib(f.peak_rss_registration_bytes)
    );
    let rate = figures::steady_rate(n);
    f.steady_target_msg_per_s = Some(rate);
    eprintln!(
        "citytel {devices}: steady load, {rate:.1} msg/s for {} s...",
        setup.steady.as_secs_f64()
    );
    let spec = LoadSpec {
        duration: setup.steady,
        ..load_spec(setup, devices, None, Some(rate))
    };
    let report = run_load(&spec, &broker, &dir.join("steady"), &mut citytel).await?;
    f.steady_msg_per_s = Some(report.messages_per_s);
    f.steady_p50_ms = Some(report.latency_ms.p50);
    f.steady_p99_ms = Some(report.latency_ms.p99);
    let memory = Memory::of(pid)?;
    f.rss_after_bytes = Some(memory.rss_bytes);
    f.peak_rss_bytes = Some(memory.peak_bytes);
    f.bytes_per_series = figures::bytes_per(memory.rss_bytes, figures::series(n));
    f.bytes_per_device = figures::bytes_per(memory.rss_bytes, n);
    eprintln!(
        "citytel {devices}: steady {:.0} msg/s, p99 {:.1} ms; RSS {}",
        report.messages_per_s,
        report.latency_ms.p99,
        mib(f.rss_after_bytes)
    );

    eprintln!("citytel {devices}: timing the queries...");
    let queries = timed_queries(&citytel, setup, n).await?;
    f.fleet_summary_ms = Some(queries.fleet_summary.median_ms);
    f.fleet_summary_runs_ms = queries.fleet_summary.runs_ms.clone();
    f.list_devices_page_ms = Some(
        [
            &queries.devices_start,
            &queries.devices_middle,
            &queries.devices_end,
        ]
        .iter()
        .map(|t| t.median_ms)
        .fold(0.0, f64::max),
    );
    f.list_latest_ms = Some(queries.latest_all.median_ms);
    f.list_latest_pages = Some(queries.latest_pages);
    f.list_latest_largest_bytes = Some(queries.latest_largest_bytes as u64);
    eprintln!(
        "citytel {devices}: GetFleetSummary {:.1} ms, ListDevices page {:.1} ms, ListLatest {:.0} ms in {} pages",
        queries.fleet_summary.median_ms,
        f.list_devices_page_ms.unwrap_or_default(),
        queries.latest_all.median_ms,
        queries.latest_pages
    );

    let shutdown = graceful_stop(&mut citytel).await?;
    f.shutdown_s = Some(shutdown.as_secs_f64());
    drop(citytel);
    let t0 = Instant::now();
    let citytel = Citytel::start_with(&setup.citytel, dir, &Source::Endpoint, Some(&config))
        .await
        .context("restarting citytel serve")?;
    let ready = t0.elapsed();
    f.restart_to_serving_s = Some(ready.as_secs_f64());
    f.rss_restarted_bytes = Some(Memory::of(citytel.guard.pid())?.rss_bytes);
    eprintln!(
        "citytel {devices}: shutdown {:.2} s, restart to SERVING {:.2} s",
        shutdown.as_secs_f64(),
        ready.as_secs_f64()
    );
    let queries = timed_queries(&citytel, setup, n).await?;
    f.fleet_summary_after_restart_ms = Some(queries.fleet_summary.median_ms);
    f.list_latest_after_restart_ms = Some(queries.latest_all.median_ms);
    Ok(())
}

/// Times the fleet-wide queries of `citytel`, which must list `n` devices.
async fn timed_queries(citytel: &Citytel, setup: &Setup, n: u64) -> Result<QueryTimings> {
    let options = QueryOptions {
        runs: setup.runs,
        ..QueryOptions::default()
    };
    let queries = time_queries(&citytel.grpc_url, None, &options).await?;
    crate::peers::check_count("devices listed", queries.devices, n, n)?;
    Ok(queries)
}

/// The configuration file: room for ten times the fleet's devices and series.
fn config_text(devices: u64) -> String {
    let devices = devices.max(1_000) * 10;
    format!(
        "[ingest]\nmax_devices = {devices}\nmax_series = {}\n",
        figures::series(devices)
    )
}

fn load_spec(setup: &Setup, devices: u32, messages: Option<u64>, rate: Option<f64>) -> LoadSpec {
    LoadSpec {
        bin: setup.firmware_sim.clone(),
        connections: CONNECTIONS,
        devices,
        inflight: INFLIGHT,
        batch: 1,
        duration: Duration::ZERO,
        messages,
        rate,
        warmup: Duration::ZERO,
        tls_ca: None,
        mqtt5: false,
        sparkplug: false,
    }
}

/// Runs `firmware-sim load` to the end against `citytel`; fails unless every message was
/// acknowledged.
async fn run_load(
    spec: &LoadSpec,
    broker: &str,
    dir: &Path,
    citytel: &mut Citytel,
) -> Result<LoadReport> {
    std::fs::create_dir_all(dir)?;
    let generator = Generator::start(spec, broker, "scale-", dir)?;
    let report = generator
        .finish(|| Ok(citytel.guard.check_running()?))
        .await?;
    if report.unacked > 0 || !report.errors.is_empty() {
        bail!(
            "{} of {} messages unacknowledged: {}",
            report.unacked,
            report.published,
            report.errors.join("; ")
        );
    }
    Ok(report)
}

/// SIGINT, and the time until the process has exited (successfully).
async fn graceful_stop(citytel: &mut Citytel) -> Result<Duration> {
    let t0 = Instant::now();
    citytel.guard.signal(Signal::SIGINT)?;
    loop {
        if let Some(status) = citytel.guard.try_wait()? {
            let took = t0.elapsed();
            if !status.success() {
                bail!(
                    "citytel serve exited with {status} after SIGINT\n{}",
                    citytel.guard.log_tail()
                );
            }
            return Ok(took);
        }
        if t0.elapsed() > SHUTDOWN_LIMIT {
            bail!(
                "citytel serve still runs {} s after SIGINT",
                SHUTDOWN_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Bytes as MiB for progress lines.
pub fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_leaves_room_for_the_fleet() {
        assert_eq!(
            config_text(100_000),
            "[ingest]\nmax_devices = 1000000\nmax_series = 5000000\n"
        );
        assert_eq!(
            config_text(200),
            "[ingest]\nmax_devices = 10000\nmax_series = 50000\n"
        );
    }
}
