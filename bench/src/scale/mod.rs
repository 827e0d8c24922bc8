//! `citytel-bench scale`: what a city-sized fleet costs citytel on one node, at several sizes,
//! with VictoriaMetrics fed the same series as the peer in the same run.
//!
//! For each size N of `--devices`, one after the other and never two systems at once:
//! [`citytel`] registers N devices through the device endpoint with `firmware-sim load`, runs a
//! steady load of one reading per device per minute, and measures memory, the fleet-wide queries and
//! a graceful restart; then [`peer`] feeds VictoriaMetrics the same N x 5 series and the same
//! steady load and measures its memory. [`report`] prints one row per size and the growth
//! factor of every figure between consecutive sizes ([`figures`]), and writes the same as JSON.
//! Every process is stopped when its measurement ends (on error and Ctrl-C too), and each
//! size's throwaway directory is removed before the next size starts, unless `--keep`.

mod citytel;
mod figures;
mod peer;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use report::{Report, Row, RunInfo};

/// Options of `citytel-bench scale`.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Fleet sizes to measure, in this order (at least 50 devices each, one per connection).
    #[arg(long, value_delimiter = ',', default_value = "100000,300000")]
    devices: Vec<u32>,
    /// Seconds of steady load (one reading per device per minute) after the registration.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    steady_secs: u64,
    /// Counted calls of each query (after one uncounted warm-up); medians are reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Leave out the peer (VictoriaMetrics).
    #[arg(long)]
    no_peer: bool,
    /// The `citytel` binary [default: the one next to citytel-bench].
    #[arg(long, value_name = "PATH")]
    citytel: Option<PathBuf>,
    /// Keep the throwaway directories and logs (their path is printed).
    #[arg(long)]
    keep: bool,
    /// Where to write the results as JSON [default: bench-scale.json at the repository root].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// Runs the benchmark; fails (exit status 1) if a measurement failed, not if a target is missed.
pub async fn command(args: ScaleArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    if let Some(&small) = args.devices.iter().find(|&&n| n < citytel::CONNECTIONS) {
        bail!(
            "--devices {small}: every size needs at least {} devices, one per connection",
            citytel::CONNECTIONS
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::repo_file("bench-scale.json"));
    let setup = citytel::Setup {
        citytel: crate::mqtt::citytel::binary(args.citytel.clone())?,
        firmware_sim: crate::process::sibling_binary("firmware-sim")?,
        steady: Duration::from_secs(args.steady_secs),
        runs: usize::from(args.runs),
    };
    let work = tempfile::Builder::new()
        .prefix("citytel-bench-scale-")
        .tempdir()
        .context("creating a temporary directory")?;
    let mut rows = Vec::new();
    for &n in &args.devices {
        let dir = work.path().join(n.to_string());
        let t = Instant::now();
        let citytel = citytel::measure(&setup, n, &dir.join("citytel")).await;
        let vm = if args.no_peer {
            None
        } else {
            Some(peer::measure(n, setup.steady, &dir.join("victoriametrics")).await)
        };
        eprintln!("{n} devices: done in {:.0} s", t.elapsed().as_secs_f64());
        rows.push(Row::new(n, citytel, vm));
        if !args.keep {
            remove(&dir);
        }
    }
    let report = Report::new(
        rows,
        RunInfo {
            started_at,
            elapsed_s: t0.elapsed().as_secs_f64(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            connections: citytel::CONNECTIONS,
            steady_s: setup.steady.as_secs_f64(),
            runs: setup.runs,
        },
    );
    println!("{}", report.table());
    report.write_json(&out)?;
    eprintln!("wrote {}", out.display());
    if args.keep {
        let kept = work.keep();
        eprintln!("kept the directories and logs in {}", kept.display());
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Removes one size's directory (its processes have stopped), so the disk holds one at a time.
fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("warning: cannot remove {}: {e}", dir.display());
    }
}
