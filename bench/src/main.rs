//! `citytel-bench`: measures citytel against its peers on the same reference dataset.
//!
//! `citytel-bench peers` makes sure the dataset exists ([`dataset`]), then measures each system in
//! turn ([`peers`]: citytel, VictoriaMetrics, InfluxDB 1.x; the peers are installed from Debian's
//! packages when missing and run on loopback with throwaway data dirs, [`process`]), times
//! queries as medians of repeated runs ([`measure`]) and prints a table with the ratios
//! citytel/peer and the targets, writing the same as JSON ([`report`]).
//!
//! `citytel-bench sink` times citytel's InfluxDB sink delivering a WAL backlog to VictoriaMetrics
//! against VictoriaMetrics' own import of the same data ([`sink`]).
//!
//! `citytel-bench import` times reading a bulk import file without storage: the line protocol
//! parser, and the import path on 1 and 2 threads ([`import`]).
//!
//! `citytel-bench district-report` times district reports over a large fleet's hourly rollups
//! ([`district`]).
//!
//! `citytel-bench scale` registers fleets of 100k to 1M devices through the device endpoint and
//! measures intake, latency under a steady load, memory, restart and the fleet summary at each
//! size, with VictoriaMetrics fed the same series as the peer ([`scale`]).
//!
//! `citytel-bench queries` times the fleet-wide queries of a running citytel: the fleet summary,
//! device pages at any offset and every latest value, paged ([`queries`]).
//!
//! Progress goes to stderr, the table to stdout. Every process the harness starts is stopped at
//! the end, on error and on Ctrl-C/SIGTERM; the throwaway dirs are removed unless `--keep`.

mod dataset;
mod district;
mod import;
mod measure;
mod mqtt;
mod peers;
mod process;
mod queries;
mod report;
mod scale;
mod sink;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};

use crate::dataset::Dataset;
use crate::peers::citytel::Citytel;
use crate::peers::influxdb::InfluxDb;
use crate::peers::victoriametrics::VictoriaMetrics;
use crate::peers::{SystemResult, measure_system};
use crate::report::{Comparison, Report, RunInfo};

/// Benchmarks citytel against peer databases on the same reference dataset.
#[derive(Debug, Parser)]
#[command(name = "citytel-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import the reference dataset into citytel, VictoriaMetrics and InfluxDB 1.x and compare
    /// import rate, bytes per value on disk and query latency.
    Peers(PeersArgs),
    /// End-to-end ingest over MQTT at QoS 1: citytel's device endpoint and its broker source
    /// against the ceiling of Mosquitto with a do-nothing subscriber, in the same run.
    Mqtt(mqtt::MqttArgs),
    /// citytel's InfluxDB sink delivering a WAL backlog to VictoriaMetrics, against
    /// VictoriaMetrics' own import of the same data, in the same run.
    Sink(sink::SinkArgs),
    /// The parser and the import path of `citytel import` over a file, into a sink that only
    /// counts points: how fast citytel reads an import, with storage left out.
    Import(import::ImportArgs),
    /// District reports (ListDistrictReports, GetDistrictReport) over a period for a large fleet,
    /// answered from hourly rollups loaded in-process.
    DistrictReport(district::DistrictArgs),
    /// City scale: N devices (100k, 300k, 1M) registered through the device endpoint, then one
    /// reading per device per minute; intake, p99, memory, restart and fleet summary per size,
    /// their growth between sizes, and VictoriaMetrics fed the same series.
    Scale(scale::ScaleArgs),
    /// GetFleetSummary, ListDevices pages at the start, middle and end, and ListLatest of every
    /// device (paged) against a running citytel (`--grpc ADDR`), as medians.
    Queries(queries::QueriesArgs),
}

/// Options of `citytel-bench peers`.
#[derive(Debug, clap::Args)]
struct PeersArgs {
    /// The reference dataset (line protocol); generated with `firmware-sim dataset` when missing.
    #[arg(long, value_name = "PATH", default_value_os_t = default_dataset())]
    dataset: PathBuf,
    /// Counted runs per query (after one uncounted warm-up run); the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Systems to measure, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "citytel,victoriametrics,influxdb"
    )]
    systems: Vec<SystemName>,
    /// Keep the throwaway data dirs and logs (their path is printed).
    #[arg(long)]
    keep: bool,
    /// Where to write the results as JSON [default: bench-results.json at the repository root].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Also measure what API keys and scope filtering cost: citytel's queries served open, with
    /// an admin key and with a scoped key, interleaved over --auth-rounds rounds.
    #[arg(long)]
    auth: bool,
    /// Rounds of the three modes of --auth.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    auth_rounds: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SystemName {
    Citytel,
    Victoriametrics,
    Influxdb,
}

impl SystemName {
    fn name(self) -> &'static str {
        match self {
            SystemName::Citytel => report::CITYTEL,
            SystemName::Victoriametrics => report::VICTORIAMETRICS,
            SystemName::Influxdb => report::INFLUXDB,
        }
    }
}

fn default_dataset() -> PathBuf {
    std::env::temp_dir().join("citytel-ref.lp")
}

/// `bench-results.json` at the repository root (this crate's parent directory, as built), or in
/// the current directory when the binary runs away from its source tree.
fn default_out() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match root.canonicalize() {
        Ok(root) if root.join("Cargo.toml").is_file() => root.join("bench-results.json"),
        _ => PathBuf::from("bench-results.json"),
    }
}

/// `name` at the repository root (as built), or in the current directory when the binary runs
/// away from its source tree.
fn repo_file(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match root.canonicalize() {
        Ok(root) if root.join("Cargo.toml").is_file() => root.join(name),
        _ => PathBuf::from(name),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `peers` times one query after another: on a single-threaded runtime the task that sends a
    // query also reads its answer, so no hand-off between the harness's own threads (a wake-up
    // of another CPU) lands in the timed path, for any system. File reading runs on its own
    // blocking thread either way, as is all of `import`. The load generators of `mqtt` and `sink`
    // need every core.
    let mut builder = match cli.command {
        Command::Peers(_)
        | Command::Import(_)
        | Command::DistrictReport(_)
        | Command::Queries(_) => tokio::runtime::Builder::new_current_thread(),
        Command::Mqtt(_) | Command::Sink(_) | Command::Scale(_) => {
            tokio::runtime::Builder::new_multi_thread()
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("citytel-bench: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(cli) => r,
            signal = stop_signal() => Err(anyhow!("interrupted by {signal}; stopped every server it had started")),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("citytel-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Peers(args) => peers_command(args).await,
        Command::Mqtt(args) => mqtt::command(args).await,
        Command::Sink(args) => sink::command(args).await,
        Command::Import(args) => import::command(args).await,
        Command::DistrictReport(args) => district::command(args).await,
        Command::Scale(args) => scale::command(args).await,
        Command::Queries(args) => queries::command(args).await,
    }
}

async fn peers_command(args: PeersArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let out = args.out.clone().unwrap_or_else(default_out);
    let runs = usize::from(args.runs);

    let path = args.dataset.clone();
    tokio::task::spawn_blocking(move || dataset::ensure(&path))
        .await
        .context("dataset generation panicked")??;
    eprintln!("reading {}...", args.dataset.display());
    let scan_t0 = Instant::now();
    let path = args.dataset.clone();
    let ds = tokio::task::spawn_blocking(move || Dataset::scan(&path))
        .await
        .context("dataset scan panicked")??;
    eprintln!(
        "dataset: {} lines, {} values, {} series, {} devices, {} .. {} (read in {:.1} s)",
        ds.lines,
        ds.values,
        ds.series,
        ds.devices,
        ds.start,
        ds.end,
        scan_t0.elapsed().as_secs_f64()
    );

    let work = tempfile::Builder::new()
        .prefix("citytel-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let mut systems: BTreeMap<String, SystemResult> = BTreeMap::new();
    let mut auth = None;
    let mut auth_error = None;
    let mut seen = Vec::new();
    for &system in &args.systems {
        if seen.contains(&system) {
            continue;
        }
        seen.push(system);
        let dir = work.path().join(system.name());
        let t = Instant::now();
        let result = match system {
            SystemName::Citytel => measure_system::<Citytel>(&dir, &ds, runs).await,
            SystemName::Victoriametrics => measure_system::<VictoriaMetrics>(&dir, &ds, runs).await,
            SystemName::Influxdb => measure_system::<InfluxDb>(&dir, &ds, runs).await,
        };
        eprintln!(
            "{}: done in {:.0} s",
            system.name(),
            t.elapsed().as_secs_f64()
        );
        let imported = result.error.is_none();
        systems.insert(system.name().to_string(), result);
        if system == SystemName::Citytel && args.auth && imported {
            let rounds = usize::from(args.auth_rounds);
            match peers::auth::measure(&dir, &ds, runs, rounds).await {
                Ok(a) => auth = Some(a),
                Err(e) => {
                    eprintln!("citytel --auth: error: {e:#}");
                    auth_error = Some(format!("{e:#}"));
                }
            }
        }
    }

    let mut failed: Vec<String> = systems
        .iter()
        .filter(|(_, r)| r.error.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    if auth_error.is_some() {
        failed.push("citytel --auth".into());
    }
    let report = Report {
        dataset: ds,
        comparison: Comparison::of(&systems),
        systems,
        auth,
        run: RunInfo {
            started_at,
            elapsed_s: t0.elapsed().as_secs_f64(),
            runs,
            warmup_runs: 1,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
    };
    println!("{}", report.table());
    if let Some(a) = &report.auth {
        println!("{}", a.table());
    }
    report.write_json(&out)?;
    eprintln!("wrote {}", out.display());
    if args.keep {
        let kept = work.keep();
        eprintln!("kept the data dirs and logs in {}", kept.display());
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("citytel-bench: failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// Resolves on Ctrl-C or SIGTERM, with the signal's name.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
