//! One measurement: one path, one batch size, one run, every process started fresh.
//!
//! - **Ceiling**: Mosquitto + the do-nothing subscriber + the generator publishing to Mosquitto.
//!   Throughput is what reached the subscriber in the generator's window (never more than
//!   what Mosquitto acknowledged to the generator in it).
//! - **Endpoint**: `citytel serve` with its device endpoint + the generator publishing to it.
//!   A PUBACK comes after the WAL fsync, so the generator's acknowledged rate and its
//!   publish-to-PUBACK latency are durable throughput and publish-to-durable latency.
//! - **Ceiling over TLS**, **endpoint over TLS** (`--tls`): the same, with the generator's
//!   connections over TLS (a server certificate from the bench's own CA; no client
//!   certificates), to Mosquitto's TLS listener and to citytel's `mqtts` listener.
//! - **Broker**: Mosquitto + `citytel serve --broker-url` + the generator publishing to
//!   Mosquitto. Throughput is what citytel stored in the window (polled over gRPC); the
//!   generator's latency only reaches Mosquitto's PUBACK, so publish-to-durable is estimated
//!   from the cumulative curves instead (see [`lag_percentile`]).
//!
//! After the generator exits, the harness waits until everything acknowledged to it has
//! reached the subscriber or been stored by citytel, and reports what never did.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use citytel_testkit::mosquitto::{Listener, ListenerTls, MOSQUITTO, Mosquitto, MosquittoConfig};
use citytel_testkit::wait::Wait;
use serde::Serialize;

use super::alerting;
use super::citytel::{Citytel, Source, StoredReadings};
use super::generator::{Generator, LoadReport, LoadSpec};
use super::sampler::{self, Counter, Sampler, Series};
use super::subscriber::Subscriber;
use crate::process;

/// Which pipeline is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// Devices -> Mosquitto -> do-nothing subscriber.
    Ceiling,
    /// Devices -> citytel's device endpoint.
    Endpoint,
    /// Devices -> Mosquitto -> citytel's broker source.
    Broker,
    /// Devices -> Mosquitto's TLS listener -> do-nothing subscriber (`--tls`).
    CeilingTls,
    /// Devices -> citytel's device endpoint over TLS (`--tls`).
    EndpointTls,
    /// Devices -> citytel's device endpoint with alert rules (`--alert-rules`).
    EndpointRules,
    /// Devices speaking MQTT 5 -> citytel's device endpoint (`--mqtt5`).
    EndpointMqtt5,
    /// Sparkplug B edge nodes -> citytel's device endpoint (`--sparkplug`).
    EndpointSparkplug,
}

impl PathKind {
    /// The name in the table.
    pub fn label(self) -> &'static str {
        match self {
            PathKind::Ceiling => "Mosquitto ceiling (do-nothing subscriber)",
            PathKind::Endpoint => "citytel device endpoint",
            PathKind::Broker => "Mosquitto -> citytel broker source",
            PathKind::CeilingTls => "Mosquitto TLS ceiling (do-nothing subscriber)",
            PathKind::EndpointTls => "citytel device endpoint over TLS",
            PathKind::EndpointRules => "citytel device endpoint with alert rules",
            PathKind::EndpointMqtt5 => "citytel device endpoint, MQTT 5 devices",
            PathKind::EndpointSparkplug => "citytel device endpoint, Sparkplug B DDATA",
        }
    }

    /// Whether the generator connects over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, PathKind::CeilingTls | PathKind::EndpointTls)
    }

    /// The path a ratio is taken against: the ceiling of the same transport.
    pub fn ceiling(self) -> PathKind {
        if self.is_tls() {
            PathKind::CeilingTls
        } else {
            PathKind::Ceiling
        }
    }

    /// Whether this is a ceiling.
    pub fn is_ceiling(self) -> bool {
        matches!(self, PathKind::Ceiling | PathKind::CeilingTls)
    }
}

/// What one run found. Rates are over the generator's measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measurement {
    /// Readings per second delivered to the subscriber (ceiling) or made durable by citytel
    /// (on the endpoint paths, acknowledged to the generator, interpolated between citytel's
    /// write groups: [`LoadReport::acked_per_s`]).
    pub readings_per_s: Option<f64>,
    /// Readings per second the generator's server acknowledged, as the generator counts them:
    /// acknowledgements between the window's two instants.
    pub generator_readings_per_s: Option<f64>,
    /// CPU time of the process under test (citytel; Mosquitto for the ceiling) per reading, us.
    pub cpu_us_per_reading: Option<f64>,
    /// Mosquitto's CPU time per reading on the broker path, us.
    pub broker_cpu_us_per_reading: Option<f64>,
    /// The generator's CPU time per reading, us.
    pub generator_cpu_us_per_reading: Option<f64>,
    /// Publish-to-durable p99, ms: the generator's p99 on the endpoint path, the estimate from
    /// the cumulative curves on the broker path.
    pub durable_p99_ms: Option<f64>,
    /// The cumulative-curve estimate of publish-to-stored p99 (on both citytel paths, so the
    /// estimate can be checked against the exact figure of the endpoint path), ms.
    pub curve_p99_ms: Option<f64>,
    /// The generator's publish-to-PUBACK latency (to citytel or to Mosquitto), ms.
    pub generator_p50_ms: Option<f64>,
    /// Its 99th percentile, ms.
    pub generator_p99_ms: Option<f64>,
    /// Peak RSS of the process under test (citytel; Mosquitto for the ceiling), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Messages the generator published and had acknowledged.
    pub published: u64,
    /// Of those, acknowledged.
    pub acked: u64,
    /// Readings acknowledged to the generator that never reached the subscriber / citytel.
    pub missing_readings: Option<u64>,
    /// Seconds from the end of the window until everything acknowledged had arrived.
    pub settle_s: Option<f64>,
    /// Seconds from the first publish until the last reading was stored / delivered.
    pub first_publish_to_last_stored_s: Option<f64>,
    /// Alerts timed from their deadline to Alertmanager (`--alert-rules`).
    pub alerts_timed: Option<usize>,
    /// Median deadline-to-Alertmanager latency, ms.
    pub alert_p50_ms: Option<f64>,
    /// Its 99th percentile, ms.
    pub alert_p99_ms: Option<f64>,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

/// Everything a measurement needs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The load.
    pub load: LoadSpec,
    /// `citytel`.
    pub citytel: PathBuf,
    /// Longest wait for everything to arrive after the generator exits.
    pub settle_limit: Duration,
    /// Certificates of the TLS paths.
    pub tls: Option<super::certs::BenchCerts>,
    /// Alert rules of the rules path (`--alert-rules`); both endpoint paths then share its
    /// availability settings.
    pub alert_rules: Option<u32>,
}

/// Runs `path` once in a fresh directory `dir`.
pub async fn measure(setup: &Setup, path: PathKind, dir: &Path) -> Measurement {
    std::fs::create_dir_all(dir).ok();
    let result = match path {
        PathKind::Ceiling => ceiling(setup, dir, false).await,
        PathKind::Endpoint => endpoint(setup, dir, false).await,
        PathKind::Broker => broker(setup, dir).await,
        PathKind::CeilingTls => ceiling(setup, dir, true).await,
        PathKind::EndpointTls => endpoint(setup, dir, true).await,
        PathKind::EndpointRules => endpoint_with(setup, dir, false, setup.alert_rules).await,
        PathKind::EndpointMqtt5 => {
            let mut setup = setup.clone();
            setup.load.mqtt5 = true;
            endpoint(&setup, dir, false).await
        }
        PathKind::EndpointSparkplug => {
            let mut setup = setup.clone();
            setup.load.sparkplug = true;
            endpoint(&setup, dir, false).await
        }
    };
    result.unwrap_or_else(|e| Measurement {
        error: Some(format!("{e:#}")),
        ..Measurement::default()
    })
}

/// Installs Mosquitto if missing (apt-get, as root) and starts it with the shipped configuration
/// on a free port, with its config, persistence and log in `dir`; with `tls`, a TLS listener
/// (server certificate only) as its second.
async fn start_mosquitto(dir: &Path, tls: Option<&super::certs::BenchCerts>) -> Result<Mosquitto> {
    process::ensure_debian_package(Path::new(MOSQUITTO), "mosquitto")?;
    let mut config = MosquittoConfig::new(dir)
        .listener(Listener::free()?)
        .own_process_group(process::STOP_GRACE);
    if let Some(certs) = tls {
        config = config.listener(Listener::free_tls(ListenerTls {
            cafile: certs.ca.clone(),
            certfile: certs.server_cert.clone(),
            keyfile: certs.server_key.clone(),
            require_certificate: false,
        })?);
    }
    Ok(Mosquitto::launch(&config).await?)
}

/// The generator's load, over TLS with the bench's CA when `tls`.
fn load_spec(setup: &Setup, tls: bool) -> Result<LoadSpec> {
    let mut load = setup.load.clone();
    if tls {
        let certs = setup
            .tls
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("a TLS path without certificates"))?;
        load.tls_ca = Some(certs.ca.clone());
    }
    Ok(load)
}

async fn ceiling(setup: &Setup, dir: &Path, tls: bool) -> Result<Measurement> {
    let batch = f64::from(setup.load.batch);
    let certs = if tls { setup.tls.as_ref() } else { None };
    let mut mosquitto = start_mosquitto(&dir.join("mosquitto"), certs).await?;
    let subscriber = Subscriber::start(mosquitto.port()).await?;
    let port = match tls {
        true => mosquitto.listener_port(1).unwrap_or_default(),
        false => mosquitto.port(),
    };
    let url = format!("mqtt://127.0.0.1:{port}");
    let generator = Generator::start(&load_spec(setup, tls)?, &url, "load-", dir)?;
    let pids = vec![mosquitto.pid(), generator.pid()];
    let sampler = Sampler::start(Counter::Atomic(subscriber.counter()), pids);
    let report = generator
        .finish(|| {
            mosquitto.check_running()?;
            subscriber.check_running()
        })
        .await?;
    let settled = settle(
        setup.settle_limit,
        async || {
            subscriber.check_running()?;
            Ok(subscriber.received() as f64 * batch)
        },
        report.acked as f64 * batch,
    )
    .await?;
    let rss = sampler::peak_rss_bytes(mosquitto.pid());
    let series = sampler.finish().await;
    let mut m = common(&report, settled);
    let delivered = window_delta(&series, &report, |s, t| s.counter_at(t)).map(|n| n * batch);
    m.readings_per_s = delivered
        .map(|r| r / report.window.seconds)
        .zip(m.generator_readings_per_s)
        .map(|(d, g)| d.min(g));
    m.cpu_us_per_reading = per_reading(&series, &report, 0, delivered);
    m.generator_cpu_us_per_reading = per_reading(&series, &report, 1, delivered);
    m.peak_rss_bytes = rss;
    Ok(m)
}

async fn endpoint(setup: &Setup, dir: &Path, tls: bool) -> Result<Measurement> {
    endpoint_with(setup, dir, tls, None).await
}

/// The endpoint path, with `rules` alert rules when given (and an Alertmanager for them).
async fn endpoint_with(
    setup: &Setup,
    dir: &Path,
    tls: bool,
    rules: Option<u32>,
) -> Result<Measurement> {
    let batch = f64::from(setup.load.batch);
    let source = match (tls, &setup.tls) {
        (true, Some(certs)) => Source::EndpointTls(certs.clone()),
        _ => Source::Endpoint,
    };
    std::fs::create_dir_all(dir)?;
    let (config, am) = match (setup.alert_rules, rules) {
        (_, Some(n)) => {
            let am = alerting::start_alertmanager(&dir.join("alertmanager")).await?;
            (Some(alerting::rules_config(n, &am.url())), Some(am))
        }
        (Some(_), None) => (Some(alerting::base_config()), None),
        (None, None) => (None, None),
    };
    // Sparkplug edge nodes need the host application on the endpoint.
    let config = match setup.load.sparkplug {
        true => Some(config.unwrap_or_default() + "\n[sparkplug]\nenabled = true\n"),
        false => config,
    };
    let config_path = dir.join("citytel.toml");
    if let Some(text) = &config {
        std::fs::write(&config_path, text)?;
    }
    let mut citytel = Citytel::start_with(
        &setup.citytel,
        &dir.join("citytel"),
        &source,
        config.as_ref().map(|_| config_path.as_path()),
    )
    .await?;
    let port = citytel.mqtt_port.unwrap_or_default();
    let mut stored = citytel.stored_readings().await?;
    let url = format!("mqtt://127.0.0.1:{port}");
    let generator = Generator::start(&load_spec(setup, tls)?, &url, "load-", dir)?;
    let pids = vec![citytel.guard.pid(), generator.pid()];
    let sampler = Sampler::start(Counter::Citytel(stored.clone()), pids);
    let report = generator
        .finish(|| Ok(citytel.guard.check_running()?))
        .await?;
    let settled = settle_stored(setup, &mut stored, report.acked as f64 * batch).await?;
    let rss = sampler::peak_rss_bytes(citytel.guard.pid());
    let series = sampler.finish().await;
    let mut m = common(&report, settled);
    let stored_in_window = window_delta(&series, &report, |s, t| s.counter_at(t));
    // Acknowledged readings (made durable) per second, not jumping by whole write groups.
    m.readings_per_s = report.acked_per_s().map(|n| n * batch);
    m.durable_p99_ms = Some(report.latency_ms.p99);
    m.cpu_us_per_reading = per_reading(&series, &report, 0, stored_in_window);
    m.generator_cpu_us_per_reading = per_reading(&series, &report, 1, stored_in_window);
    m.curve_p99_ms = lag_percentile(&report, &series, batch, 0.99);
    m.peak_rss_bytes = rss;
    if let Some(am) = &am {
        let latency = alerting::deadline_latency(am, setup.load.devices).await?;
        m.alerts_timed = Some(latency.alerts);
        m.alert_p50_ms = Some(latency.p50_ms);
        m.alert_p99_ms = Some(latency.p99_ms);
    }
    Ok(m)
}

async fn broker(setup: &Setup, dir: &Path) -> Result<Measurement> {
    let batch = f64::from(setup.load.batch);
    let mut mosquitto = start_mosquitto(&dir.join("mosquitto"), None).await?;
    let source = Source::Broker(mosquitto.url());
    let mut citytel = Citytel::start(&setup.citytel, &dir.join("citytel"), &source).await?;
    let mut stored = citytel.stored_readings().await?;
    let generator = Generator::start(&setup.load, &mosquitto.url(), "load-", dir)?;
    let pids = vec![citytel.guard.pid(), generator.pid(), mosquitto.pid()];
    let sampler = Sampler::start(Counter::Citytel(stored.clone()), pids);
    let report = generator
        .finish(|| {
            mosquitto.check_running()?;
            Ok(citytel.guard.check_running()?)
        })
        .await?;
    let settled = settle_stored(setup, &mut stored, report.acked as f64 * batch).await?;
    let rss = sampler::peak_rss_bytes(citytel.guard.pid());
    let series = sampler.finish().await;
    let mut m = common(&report, settled);
    let stored_in_window = window_delta(&series, &report, |s, t| s.counter_at(t));
    m.readings_per_s = stored_in_window.map(|r| r / report.window.seconds);
    m.cpu_us_per_reading = per_reading(&series, &report, 0, stored_in_window);
    m.generator_cpu_us_per_reading = per_reading(&series, &report, 1, stored_in_window);
    m.broker_cpu_us_per_reading = per_reading(&series, &report, 2, stored_in_window);
    m.curve_p99_ms = lag_percentile(&report, &series, batch, 0.99);
    m.durable_p99_ms = m.curve_p99_ms;
    m.peak_rss_bytes = rss;
    Ok(m)
}

/// How the wait after the generator ended went.
struct Settled {
    /// Readings that arrived in the end.
    arrived: f64,
    /// Readings acknowledged to the generator.
    target: f64,
    /// When the last one arrived (wall clock, ms), if all did.
    done_unix_ms: Option<f64>,
}

/// Polls `arrived` until it reaches `target` or `limit` passes.
async fn settle(
    limit: Duration,
    mut arrived: impl AsyncFnMut() -> Result<f64>,
    target: f64,
) -> Result<Settled> {
    let mut wait =
        Wait::new("every acknowledged reading arriving", limit).every(Duration::from_millis(50));
    loop {
        let now = arrived().await?;
        if now >= target {
            return Ok(Settled {
                arrived: now,
                target,
                done_unix_ms: Some(sampler::unix_ms()),
            });
        }
        if wait.retry().await.is_err() {
            return Ok(Settled {
                arrived: now,
                target,
                done_unix_ms: None,
            });
        }
    }
}

async fn settle_stored(setup: &Setup, stored: &mut StoredReadings, target: f64) -> Result<Settled> {
    settle(
        setup.settle_limit,
        async || Ok(stored.get().await? as f64),
        target,
    )
    .await
}

/// The figures every path shares.
fn common(report: &LoadReport, settled: Settled) -> Measurement {
    let mut error = None;
    if !report.errors.is_empty() {
        error = Some(format!("generator: {}", report.errors.join("; ")));
    } else if report.unacked > 0 {
        error = Some(format!(
            "generator: {} messages unacknowledged",
            report.unacked
        ));
    } else if settled.arrived < settled.target {
        error = Some(format!(
            "{} of {} acknowledged readings never arrived",
            settled.target - settled.arrived,
            settled.target
        ));
    }
    let first_publish = report
        .timeline
        .iter()
        .find(|s| s.published > 0)
        .map(|s| s.unix_ms);
    Measurement {
        generator_readings_per_s: Some(report.readings_per_s),
        generator_p50_ms: Some(report.latency_ms.p50),
        generator_p99_ms: Some(report.latency_ms.p99),
        published: report.published,
        acked: report.acked,
        missing_readings: Some((settled.target - settled.arrived).max(0.0) as u64),
        settle_s: settled
            .done_unix_ms
            .map(|t| ((t - report.window.end_unix_ms) / 1e3).max(0.0)),
        first_publish_to_last_stored_s: settled
            .done_unix_ms
            .zip(first_publish)
            .map(|(done, first)| (done - first) / 1e3),
        error,
        ..Measurement::default()
    }
}

/// `quantity(end) - quantity(start)` over the generator's window.
fn window_delta(
    series: &Series,
    report: &LoadReport,
    quantity: impl Fn(&Series, f64) -> Option<f64>,
) -> Option<f64> {
    let start = quantity(series, report.window.start_unix_ms)?;
    let end = quantity(series, report.window.end_unix_ms)?;
    Some(end - start)
}

/// CPU microseconds of process `i` in the window per reading of `readings`.
fn per_reading(
    series: &Series,
    report: &LoadReport,
    i: usize,
    readings: Option<f64>,
) -> Option<f64> {
    let cpu = window_delta(series, report, |s, t| s.cpu_at(i, t))?;
    let readings = readings.filter(|&r| r > 0.0)?;
    Some(cpu * 1e6 / readings)
}

/// Publish-to-stored latency at quantile `q`, estimated from two cumulative curves: readings
/// published by the generator over time (its timeline, every 100 ms) and readings citytel had
/// stored (polled every 200 ms). Assuming first in, first out, reading k was published when the
/// first curve reached k and stored when the second did; the lag between the two is taken for
/// 2,000 values of k evenly over the readings published in the window. Resolution: a few
/// hundred milliseconds. `None` if part of the window's readings were never stored.
pub fn lag_percentile(report: &LoadReport, series: &Series, batch: f64, q: f64) -> Option<f64> {
    let published: Vec<(f64, f64)> = report
        .timeline
        .iter()
        .map(|s| (s.unix_ms, s.published as f64 * batch))
        .collect();
    let from = sampler::at(&published, report.window.start_unix_ms)?;
    let to = sampler::at(&published, report.window.end_unix_ms)?;
    let by_count: Vec<(f64, f64)> = published.iter().map(|&(t, n)| (n, t)).collect();
    const STEPS: usize = 2000;
    let mut lags = Vec::with_capacity(STEPS);
    for i in 0..STEPS {
        let k = from + (to - from) * (i as f64 + 0.5) / STEPS as f64;
        let sent = sampler::inverse(&by_count, k)?;
        let stored = series.time_of(k)?;
        lags.push((stored - sent).max(0.0));
    }
    lags.sort_by(f64::total_cmp);
    let at = ((q * STEPS as f64).ceil() as usize).clamp(1, STEPS) - 1;
    Some(lags[at])
}
