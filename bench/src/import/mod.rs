//! `citytel-bench import`: how fast citytel reads a bulk import file, with storage left out.
//!
//! Two figures on the same file ([`run`]): the line protocol parser alone over every line of the
//! file, held in memory (line protocol files only), and the whole import path of `citytel
//! import` (chunking, parsing, mapping to points, on each `--threads` count) into a sink that
//! only counts the points. Each is run `--runs` times after one uncounted warm-up run; the
//! medians go to a table on stdout and to JSON ([`report`]). Storage is what `citytel-bench
//! peers` measures, with the same file.

mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

/// Options of `citytel-bench import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file to read: line protocol (`.lp`, `.txt`, `.line`) or a dataset of protobuf records
    /// (`.pb`). The reference dataset is generated with `firmware-sim dataset` when it is missing
    /// at the default path.
    #[arg(long, value_name = "PATH", default_value_os_t = crate::default_dataset())]
    file: PathBuf,
    /// Thread counts of the import path, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    threads: Vec<u16>,
    /// Counted runs of each measurement (after one uncounted warm-up run); the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Where to write the results as JSON [default: bench-import.json at the repository root].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// Runs `citytel-bench import` (on a blocking thread: it is all CPU and file reading).
pub async fn command(args: ImportArgs) -> Result<ExitCode> {
    tokio::task::spawn_blocking(move || run::run(args))
        .await
        .context("the import benchmark panicked")?
}
