//! `citytel-bench sink`: how fast citytel's InfluxDB sink delivers a WAL backlog to
//! VictoriaMetrics, against VictoriaMetrics' own import of the same data, in the same run.
//!
//! One dataset configuration is generated twice ([`data`]): as line protocol for the peer's own
//! import (POSTed to `/write` exactly as `citytel-bench peers` does) and as protobuf telemetry
//! messages, which are appended to a citytel WAL as the writer would have stored them. Then, each
//! on a fresh VictoriaMetrics: (1) the import is timed until every request returned and
//! `vm_rows_added_to_storage_total` reached the value count; (2) the sink is started in-process
//! on the WAL and timed the same way, until it has had every value confirmed and the counter
//! reached the value count. The figure is values per second; the target is 80% of the import.

mod data;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

/// Options of `citytel-bench sink`.
#[derive(Debug, clap::Args)]
pub struct SinkArgs {
    /// Hours of the reference fleet (1,000 devices, 5 metrics, every 10 s) to send; 24 is the
    /// whole reference dataset (~42M values).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=24))]
    hours: u32,
    /// Points per sink request (`sink.influxdb.batch_size`).
    #[arg(long, default_value_t = 10_000)]
    batch_size: usize,
    /// Requests in flight (`sink.influxdb.max_in_flight`).
    #[arg(long, default_value_t = 8)]
    max_in_flight: usize,
    /// Keep the throwaway data dirs and logs (their path is printed).
    #[arg(long)]
    keep: bool,
    /// Where to write the results as JSON [default: bench-sink.json at the repository root].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// Runs `citytel-bench sink`.
pub async fn command(args: SinkArgs) -> Result<ExitCode> {
    run::run(args).await
}
