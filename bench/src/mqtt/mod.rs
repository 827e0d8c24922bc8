//! `citytel-bench mqtt`: end-to-end ingest over MQTT at QoS 1, against the ceiling of a
//! broker-based pipeline measured in the same run.
//!
//! With `--tls`, two more: the Mosquitto ceiling and citytel's endpoint with the devices'
//! connections over TLS ([`certs`]), so the cost of TLS shows against plain TCP in the same run.
//! With `--mqtt5`, one more: the endpoint with the devices speaking MQTT 5, against 3.1.1 in
//! the same run. With `--sparkplug`, one more: the endpoint with Sparkplug B edge nodes
//! publishing DDATA, against citytel's own format in the same run. With `--alert-rules [N]`, one more: the endpoint with N alert rules against the endpoint
//! without, and the time from the devices' deadlines to Alertmanager ([`alerting`]).
//!
//! Three paths, each with every batch size, `--runs` times, interleaved (ceiling, endpoint,
//! broker, ceiling, ...) so the machine's noise spreads over all of them: the Mosquitto ceiling
//! ([`subscriber`], a do-nothing consumer), citytel's device endpoint, and Mosquitto feeding
//! citytel's broker source ([`measure`]). Every measurement starts its processes fresh
//! (the testkit's Mosquitto with the shipped configuration, [`citytel`], the load generator of
//! [`generator`]) in a throwaway directory and stops them when it ends, on error too (their
//! guards stop them when dropped). While the load runs, [`sampler`] records what arrived and the
//! CPU time of each process. [`report`] takes medians, ratios against the ceiling and the
//! targets.

mod alerting;
mod certs;
mod citytel;
mod generator;
mod measure;
mod report;
mod sampler;
mod subscriber;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use generator::LoadSpec;
use measure::{Measurement, PathKind, Setup};
use report::{Report, Row, RunInfo};

/// Options of `citytel-bench mqtt`.
#[derive(Debug, clap::Args)]
pub struct MqttArgs {
    /// Runs per path and batch size; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Readings per message, one set of measurements each.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    batches: Vec<u32>,
    /// Paths to measure.
    #[arg(long, value_delimiter = ',', default_value = "ceiling,endpoint,broker")]
    paths: Vec<PathKind>,
    /// Also measure the ceiling and the device endpoint with the devices connected over TLS
    /// (Mosquitto's TLS listener, citytel's mqtts listener).
    #[arg(long)]
    tls: bool,
    /// Measured time per run, after the warm-up.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load before the measured window, not counted.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Generator connections.
    #[arg(long, default_value_t = 50)]
    connections: u32,
    /// Generator devices, spread over the connections.
    #[arg(long, default_value_t = 1000)]
    devices: u32,
    /// Unacknowledged messages per generator connection.
    #[arg(long, default_value_t = 1000)]
    inflight: u16,
    /// Longest wait, after the generator ends, for everything acknowledged to it to arrive.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    settle_timeout: Duration,
    /// The `citytel` binary [default: the one next to citytel-bench].
    #[arg(long, value_name = "PATH")]
    citytel: Option<PathBuf>,
    /// Also measure citytel's device endpoint with this many alert rules of every kind in turn
    /// (100 when no number is given), against the endpoint without them in the same run, and
    /// time the alerts of the devices going offline once the load stops, from their deadline
    /// to a real Alertmanager (Debian's `prometheus-alertmanager`).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "100")]
    alert_rules: Option<u32>,
    /// Also measure citytel's device endpoint with the devices speaking MQTT 5, against the
    /// endpoint with 3.1.1 devices in the same run.
    #[arg(long)]
    mqtt5: bool,
    /// Also measure citytel's device endpoint with Sparkplug B edge nodes (each connection one,
    /// DDATA with every metric of each reading by alias), against the endpoint with citytel's
    /// own format at the same readings per message in the same run.
    #[arg(long)]
    sparkplug: bool,
    /// Keep the throwaway directories and logs (their path is printed).
    #[arg(long)]
    keep: bool,
    /// Where to write the results as JSON [default: bench-mqtt.json at the repository root].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// Runs the benchmark; fails (exit status 1) if a run failed, not if a target is missed.
pub async fn command(args: MqttArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let out = args.out.clone().unwrap_or_else(default_out);
    let setup = Setup {
        load: LoadSpec {
            bin: crate::process::sibling_binary("firmware-sim")?,
            connections: args.connections,
            devices: args.devices,
            inflight: args.inflight,
            batch: 1,
            duration: args.duration,
            warmup: args.warmup,
            tls_ca: None,
            mqtt5: false,
            sparkplug: false,
        },
        citytel: citytel::binary(args.citytel.clone())?,
        settle_limit: args.settle_timeout,
        tls: None,
        alert_rules: args.alert_rules,
    };
    // World-traversable, so Mosquitto can reach its persistence dir after dropping root.
    let work = tempfile::Builder::new()
        .prefix("citytel-bench-mqtt-")
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .context("creating a temporary directory")?;
    let mut paths = args.paths.clone();
    let mut setup = setup;
    if args.tls {
        paths.extend([PathKind::CeilingTls, PathKind::EndpointTls]);
        setup.tls = Some(certs::BenchCerts::make(&work.path().join("certs"))?);
    }
    if args.mqtt5 {
        if !paths.contains(&PathKind::Endpoint) {
            paths.push(PathKind::Endpoint);
        }
        paths.push(PathKind::EndpointMqtt5);
    }
    if args.sparkplug {
        if !paths.contains(&PathKind::Endpoint) {
            paths.push(PathKind::Endpoint);
        }
        paths.push(PathKind::EndpointSparkplug);
    }
    if args.alert_rules.is_some() {
        if !paths.contains(&PathKind::Endpoint) {
            paths.push(PathKind::Endpoint);
        }
        paths.push(PathKind::EndpointRules);
    }
    let paths = dedup(&paths);
    let mut rows = Vec::new();
    for &batch in &dedup(&args.batches) {
        let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); paths.len()];
        for run in 1..=args.runs {
            for (i, &path) in paths.iter().enumerate() {
                let setup = Setup {
                    load: LoadSpec {
                        batch,
                        ..setup.load.clone()
                    },
                    ..setup.clone()
                };
                let dir = work
                    .path()
                    .join(format!("{path:?}-batch{batch}-run{run}").to_lowercase());
                let t = Instant::now();
                let m = measure::measure(&setup, path, &dir).await;
                progress(path, batch, run, &m, t.elapsed());
                runs[i].push(m);
            }
        }
        for (path, runs) in paths.iter().zip(runs) {
            rows.push(Row::of(*path, batch, runs));
        }
    }
    let report = Report::new(
        rows,
        RunInfo {
            started_at,
            elapsed_s: t0.elapsed().as_secs_f64(),
            runs: usize::from(args.runs),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            connections: args.connections,
            devices: args.devices,
            inflight: args.inflight,
            duration_s: args.duration.as_secs_f64(),
            warmup_s: args.warmup.as_secs_f64(),
        },
    );
    println!("{}", report.table());
    report.write_json(&out)?;
    eprintln!("wrote {}", out.display());
    if args.keep {
        let kept = work.keep();
        eprintln!("kept the directories and logs in {}", kept.display());
    }
    let failed = report.rows.iter().any(|r| !r.errors.is_empty());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One line per measurement on stderr.
fn progress(path: PathKind, batch: u32, run: u16, m: &Measurement, took: Duration) {
    let figure = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v:.0}{unit}"));
    match &m.error {
        None => eprintln!(
            "{:<9} batch {batch:<3} run {run}: {} readings/s ({} acked by its server), CPU {} \
             us/reading, p99 {} (durable {}), {:.0} s",
            format!("{path:?}").to_lowercase(),
            figure(m.readings_per_s, ""),
            figure(m.generator_readings_per_s, ""),
            m.cpu_us_per_reading
                .map_or("-".into(), |v| format!("{v:.2}")),
            figure(m.generator_p99_ms, " ms"),
            figure(m.durable_p99_ms, " ms"),
            took.as_secs_f64()
        ),
        Some(e) => eprintln!(
            "{:<9} batch {batch:<3} run {run}: FAILED: {e}",
            format!("{path:?}").to_lowercase()
        ),
    }
}

fn dedup<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    for &item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// `bench-mqtt.json` at the repository root (this crate's parent directory, as built), or in the
/// current directory when the binary runs away from its source tree.
fn default_out() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match root.canonicalize() {
        Ok(root) if root.join("Cargo.toml").is_file() => root.join("bench-mqtt.json"),
        _ => PathBuf::from("bench-mqtt.json"),
    }
}
