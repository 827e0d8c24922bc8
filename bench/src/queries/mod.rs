//! `citytel-bench queries`: how long the fleet-wide queries of a running citytel take
//! (`GetFleetSummary`, `ListDevices` pages at the start, middle and end, `ListLatest` of every
//! device, paged), as medians of repeated runs. It starts nothing: point it at a citytel that
//! holds the fleet to measure (for example one `firmware-sim load --devices N` registered).
//!
//! [`timing`] measures and is what other benchmarks call ([`time_queries`]); this module parses
//! the options and prints the table.

pub mod bearer;
pub mod timing;

use std::process::ExitCode;

use anyhow::Result;

pub use bearer::Bearer;
pub use timing::{QueryOptions, QueryTimings, time_queries};

/// Options of `citytel-bench queries`.
#[derive(Debug, clap::Args)]
pub struct QueriesArgs {
    /// gRPC address of the running citytel (`host:port` or `http://host:port`).
    #[arg(long, value_name = "ADDR")]
    grpc: String,
    /// API key, sent as `authorization: Bearer <key>` (none: the service runs without keys).
    #[arg(
        long,
        value_name = "KEY",
        env = "CITYTEL_API_KEY",
        hide_env_values = true
    )]
    key: Option<String>,
    /// Counted runs of each query (after one uncounted warm-up run); the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Devices per `ListLatest` page (0: the server's default).
    #[arg(long, default_value_t = 10_000)]
    latest_page_size: u32,
}

/// Runs `citytel-bench queries`.
pub async fn command(args: QueriesArgs) -> Result<ExitCode> {
    let options = QueryOptions {
        runs: usize::from(args.runs),
        latest_page_size: args.latest_page_size,
    };
    eprintln!("timing queries against {} ...", args.grpc);
    let t = time_queries(&args.grpc, args.key.as_deref(), &options).await?;
    print!("{}", table(&t, options.runs));
    Ok(ExitCode::SUCCESS)
}

/// The results as a text table, one query per row, medians and the runs they are the median of.
pub fn table(t: &QueryTimings, runs: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "devices {}; medians of {runs} runs after a warm-up",
        t.devices
    );
    let _ = writeln!(out, "{:<44} {:>11}  runs (ms)", "query", "median ms");
    let rows = [
        ("GetFleetSummary", &t.fleet_summary),
        ("ListDevices page of 1000, start", &t.devices_start),
        ("ListDevices page of 1000, middle", &t.devices_middle),
        ("ListDevices page of 1000, end", &t.devices_end),
        ("ListLatest, every device (all pages)", &t.latest_all),
    ];
    for (name, timings) in rows {
        let runs: Vec<String> = timings
            .runs_ms
            .iter()
            .map(|ms| format!("{ms:.1}"))
            .collect();
        let _ = writeln!(
            out,
            "{name:<44} {:>11.2}  {}",
            timings.median_ms,
            runs.join(" ")
        );
    }
    let _ = writeln!(
        out,
        "ListLatest: {} values in {} pages, largest answer {:.2} MiB",
        t.latest_values,
        t.latest_pages,
        t.latest_largest_bytes as f64 / f64::from(1 << 20)
    );
    out
}
