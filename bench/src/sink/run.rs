//! The measurement: data, then the peer's own import, then the sink, each on a fresh
//! VictoriaMetrics (never both at once on the 2-core machine).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use citytel_firmware_sim::dataset::DatasetFormat;
use citytel_ingest::sink::influxdb;
use citytel_ingest::sink::stats::ErrorClass;
use citytel_testkit::wait::Wait;

use super::report::{Delivered, SinkReport};
use super::{SinkArgs, data};
use crate::dataset::Dataset;
use crate::peers::System;
use crate::peers::victoriametrics::VictoriaMetrics;

/// Longest a delivery may take before the run fails.
const LIMIT: Duration = Duration::from_secs(1800);

pub async fn run(args: SinkArgs) -> Result<ExitCode> {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let work = tempfile::Builder::new()
        .prefix("citytel-bench-sink-")
        .tempdir()
        .context("creating a temporary directory")?;
    let dir = work.path().to_path_buf();
    let hours = args.hours;
    eprintln!("generating {hours} h of the reference fleet as line protocol and protobuf...");
    let (lp, pb) = (dir.join("fleet.lp"), dir.join("fleet.pb"));
    let (lp2, pb2) = (lp.clone(), pb.clone());
    let (lp_summary, pb_summary) = tokio::task::spawn_blocking(move || -> Result<_> {
        Ok((
            data::write(&data::config(hours, DatasetFormat::LineProtocol), &lp2)?,
            data::write(&data::config(hours, DatasetFormat::Proto), &pb2)?,
        ))
    })
    .await??;
    if lp_summary.values != pb_summary.values {
        bail!("the two encodings hold different data");
    }
    let scan = lp.clone();
    let ds = tokio::task::spawn_blocking(move || Dataset::scan(&scan)).await??;
    eprintln!(
        "building a citytel WAL from {} messages...",
        pb_summary.records
    );
    let citytel_dir = dir.join("citytel");
    let (pb3, wal_dir) = (pb.clone(), citytel_dir.clone());
    let built = tokio::task::spawn_blocking(move || data::build_wal(&pb3, &wal_dir)).await??;
    if built.values != ds.values {
        bail!(
            "WAL holds {} values, the line protocol {}",
            built.values,
            ds.values
        );
    }
    eprintln!(
        "{} values in {} lines; WAL {} MB",
        ds.values,
        ds.lines,
        built.bytes >> 20
    );

    eprintln!("victoriametrics: import of the line protocol...");
    let import_s = {
        let vm_dir = dir.join("vm-import");
        std::fs::create_dir_all(&vm_dir)?;
        let mut vm = VictoriaMetrics::start(&vm_dir).await?;
        let t0 = Instant::now();
        vm.import(&ds).await?;
        t0.elapsed().as_secs_f64()
    };
    eprintln!("victoriametrics: sink delivering the WAL...");
    let sink = deliver(&dir.join("vm-sink"), &citytel_dir, &args, ds.values).await?;

    let report = SinkReport::new(started_at, &ds, hours, args.batch_size, import_s, sink);
    println!("{}", report.table());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::repo_file("bench-sink.json"));
    report.write_json(&out)?;
    eprintln!("wrote {}", out.display());
    if args.keep {
        eprintln!("kept the data dirs and logs in {}", work.keep().display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the sink on the WAL in `citytel_dir` against a fresh VictoriaMetrics in `vm_dir` and
/// times it until `values` values are confirmed and stored.
async fn deliver(
    vm_dir: &Path,
    citytel_dir: &Path,
    args: &SinkArgs,
    values: u64,
) -> Result<Delivered> {
    std::fs::create_dir_all(vm_dir)?;
    let mut vm = VictoriaMetrics::start(vm_dir).await?;
    let mut config = citytel_ingest::config::load_str(None, &[])
        .context("citytel's default configuration")?
        .sink
        .influxdb;
    config.enabled = true;
    config.url = vm.url();
    config.batch_size = args.batch_size;
    config.max_in_flight = args.max_in_flight;
    config.max_backlog_bytes = u64::MAX;
    let t0 = Instant::now();
    let sink = influxdb::start(influxdb::Options {
        config,
        data_dir: citytel_dir.to_path_buf(),
        dead_letters: Arc::new(|_| {}),
    })?;
    let stats = sink.stats();
    let mut wait =
        Wait::new("the sink delivering every value", LIMIT).every(Duration::from_millis(20));
    while stats.values_sent.load(Ordering::Relaxed) < values || vm.rows_added().await? < values {
        wait.retry().await?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    sink.shutdown().await?;
    let failures = ErrorClass::ALL.iter().map(|&c| stats.failures(c)).sum();
    Ok(Delivered {
        seconds,
        requests: stats.requests_ok.load(Ordering::Relaxed),
        failures,
    })
}
