//! `citytel-bench district-report`: how long `ListDistrictReports` (every district's report) and
//! `GetDistrictReport` (one district) take over a period of `--days` for `--devices` devices.
//!
//! The data is loaded in-process through the bulk loader `citytel import` uses (no file): a
//! third of the devices are cabinets (`power_w`), a third small cells (`connected_ues`,
//! `throughput_mbps`), a third sensors (`no2_ugm3`, `pm25_ugm3`), spread over `--sites` sites
//! dealt round-robin to `--districts` districts, one reading per metric per hour over the report
//! period and the previous one of the same length (the trend reads it). Then `citytel serve`
//! runs on the data dir and each report is asked for `--runs` times after one warm-up; the
//! medians go to stdout. Every answer is checked (every district, every device counted), so a
//! broken report cannot look fast.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use citytel_ingest::db::Database;
use citytel_ingest::db::bulk::BulkLoader;
use citytel_ingest::import::{BatchPoint, DeviceKey, ImportSink, PointBatch};
use citytel_proto::v1::report_service_client::ReportServiceClient;
use citytel_proto::v1::{GetDistrictReportRequest, ListDistrictReportsRequest};
use citytel_testkit::wait::Wait;

use crate::measure::{Timings, repeat};
use crate::process;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Options of `citytel-bench district-report`.
#[derive(Debug, clap::Args)]
pub struct DistrictArgs {
    /// Devices: a third each cabinets, small cells and sensors.
    #[arg(long, default_value_t = 100_000)]
    devices: u32,
    /// Days of the report period (the previous period of the same length is loaded too).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    days: u32,
    /// Sites, dealt round-robin to the districts.
    #[arg(long, default_value_t = 100)]
    sites: u32,
    /// Districts.
    #[arg(long, default_value_t = 5)]
    districts: u32,
    /// Counted runs of each report (after one uncounted warm-up run); the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Keep the throwaway data dir and logs (their path is printed).
    #[arg(long)]
    keep: bool,
}

fn district_of(site: u32, districts: u32) -> String {
    format!("district-{:02}", site % districts + 1)
}

/// The `--set` options placing every site in its district.
fn district_settings(args: &DistrictArgs) -> Vec<String> {
    (0..args.sites)
        .map(|s| {
            format!(
                "availability.districts.site-{:03}=\"{}\"",
                s + 1,
                district_of(s, args.districts)
            )
        })
        .collect()
}

/// Loads the fleet's hourly readings over `[start, end)` into `data`.
fn load(args: &DistrictArgs, data: &std::path::Path, start: i64, end: i64) -> Result<u64> {
    let mut overrides = district_settings(args);
    overrides.push(format!("storage.data_dir={:?}", data.display().to_string()));
    let settings = citytel_ingest::config::load(None, &overrides)?.validate()?;
    let options = settings.store_options(citytel_ingest::clock::Clock::System);
    let (db, mut wal, _) = Database::open(data, &options).context("opening the data dir")?;
    let kinds = [
        ("cabinet", &["power_w"][..]),
        ("small_cell", &["connected_ues", "throughput_mbps"][..]),
        ("sensor", &["no2_ugm3", "pm25_ugm3"][..]),
    ];
    let metrics: Vec<String> = kinds
        .iter()
        .flat_map(|(_, m)| m.iter().map(|m| m.to_string()))
        .collect();
    let devices: Vec<DeviceKey> = (0..args.devices)
        .map(|i| {
            let (kind, _) = kinds[(i % 3) as usize];
            DeviceKey {
                device_id: format!("{kind}-{i:06}"),
                site: format!("site-{:03}", i % args.sites + 1),
                kind: kind.to_string(),
            }
        })
        .collect();
    let mut loader = BulkLoader::new(Arc::clone(&db), &mut wal, 2, end);
    let mut batch = PointBatch {
        devices,
        metrics,
        points: Vec::new(),
    };
    // One batch per day: every device's 24 hours (the registry is looked up once per batch).
    let mut points = 0u64;
    let mut day = start;
    while day < end {
        batch.points.clear();
        for i in 0..args.devices {
            let k = (i % 3) as usize;
            let first_metric = [0u32, 1, 3][k];
            for hour in (day..(day + DAY_MS).min(end)).step_by(HOUR_MS as usize) {
                // Values that vary by device and hour, within each metric's usual range.
                let wobble = ((i64::from(i) * 7 + hour / HOUR_MS * 13) % 50) as f64;
                for j in 0..kinds[k].1.len() {
                    batch.points.push(BatchPoint {
                        device: i,
                        metric: first_metric + j as u32,
                        time_ms: hour + i64::from(i % 3600) * 1000,
                        value: 10.0 + wobble,
                    });
                }
            }
        }
        points += batch.points.len() as u64;
        loader.write(&batch).context("bulk load")?;
        day += DAY_MS;
    }
    loader.finish().context("finishing the bulk load")?;
    Ok(points)
}

/// Runs `citytel-bench district-report`.
pub async fn command(args: DistrictArgs) -> Result<ExitCode> {
    let bin = process::sibling_binary("citytel")?;
    let tmp = tempfile::Builder::new()
        .prefix("citytel-bench-district-")
        .tempdir()?;
    let dir = tmp.path().to_path_buf();
    let data = dir.join("data");
    let now = citytel_ingest::clock::system_now_ms();
    let end = now.div_euclid(HOUR_MS) * HOUR_MS;
    let start = end - i64::from(args.days) * DAY_MS;
    eprintln!(
        "loading {} devices x {} days (and the previous {} days) of hourly readings...",
        args.devices, args.days, args.days
    );
    let t0 = Instant::now();
    let points = load(&args, &data, start - (end - start), end)?;
    let load_s = t0.elapsed().as_secs_f64();
    eprintln!("  {points} points in {load_s:.0} s");

    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--set",
            "http.enabled=false",
            "--set",
            "metrics.enabled=false",
            "--set",
            "api.authentication=false",
            "--set",
            "grpc.request_timeout=10m",
        ])
        .env("RUST_LOG", "warn");
    for s in district_settings(&args) {
        cmd.args(["--set", &s]);
    }
    let mut wait = Wait::new(
        "citytel serve printing `grpc api`",
        Duration::from_secs(300),
    )
    .every(Duration::from_millis(5));
    let mut server = process::spawn("citytel serve", &mut cmd, &dir.join("serve.log"), true)?;
    let banner = process::citytel_banner(&mut server, &mut wait).await?;
    let grpc = process::banner_value(&banner, ["grpc", "api"]).context("no gRPC address")?;
    let mut client = connect(&format!("http://{grpc}")).await?;

    let expected_districts = args.districts.min(args.sites) as usize;
    let all = repeat(usize::from(args.runs), async || {
        let t = Instant::now();
        let reports = client
            .list_district_reports(ListDistrictReportsRequest {
                start_unix_ms: start,
                end_unix_ms: end,
                worst_limit: 0,
            })
            .await?
            .into_inner()
            .reports;
        let elapsed = t.elapsed();
        ensure!(
            reports.len() == expected_districts,
            "{} reports",
            reports.len()
        );
        let energy_devices: u32 = reports
            .iter()
            .filter_map(|r| r.energy.as_ref()?.basis.map(|b| b.devices))
            .sum();
        ensure!(
            energy_devices == args.devices.div_ceil(3),
            "{energy_devices} cabinets counted"
        );
        Ok(elapsed)
    })
    .await
    .context("ListDistrictReports")?;
    let one = repeat(usize::from(args.runs), async || {
        let t = Instant::now();
        let report = client
            .get_district_report(GetDistrictReportRequest {
                district: district_of(0, args.districts),
                start_unix_ms: start,
                end_unix_ms: end,
                worst_limit: 0,
            })
            .await?
            .into_inner()
            .report;
        let elapsed = t.elapsed();
        let air = report.and_then(|r| r.air_quality).and_then(|a| a.no2);
        ensure!(
            air.and_then(|p| p.period_mean_ugm3?.value).is_some(),
            "no NO2 figure"
        );
        Ok(elapsed)
    })
    .await
    .context("GetDistrictReport")?;
    let _ = server.stop_with(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(60));

    print_table(&args, points, load_s, &all, &one);
    if args.keep {
        let kept = tmp.keep();
        eprintln!("kept {}", kept.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn connect(url: &str) -> Result<ReportServiceClient<tonic::transport::Channel>> {
    let mut wait = Wait::new(format!("connecting to {url}"), Duration::from_secs(60))
        .every(Duration::from_millis(20));
    loop {
        match ReportServiceClient::connect(url.to_string()).await {
            Ok(c) => return Ok(c.max_decoding_message_size(64 << 20)),
            Err(e) => wait.retry().await.with_context(|| e.to_string())?,
        }
    }
}

fn print_table(args: &DistrictArgs, points: u64, load_s: f64, all: &Timings, one: &Timings) {
    let target_ms = 200.0;
    println!(
        "district reports: {} devices, {} sites in {} districts, {} days (+{} previous), {} points loaded in {:.0} s",
        args.devices, args.sites, args.districts, args.days, args.days, points, load_s
    );
    println!("{:<40} {:>12} {:>12}", "report", "median ms", "target ms");
    println!(
        "{:<40} {:>12.1} {:>12.0}   ({:.2}x of the target; runs {:?})",
        "ListDistrictReports (every district)",
        all.median_ms,
        target_ms,
        all.median_ms / target_ms,
        all.runs_ms.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    println!(
        "{:<40} {:>12.1} {:>12}   (runs {:?})",
        "GetDistrictReport (one district)",
        one.median_ms,
        "-",
        one.runs_ms.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
}
