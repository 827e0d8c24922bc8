//! The systems under test, one module each, behind [`System`], and the one procedure that measures
//! any of them ([`measure_system`]).
//!
//! Each system is measured the same way, one after the other (never two at once on this 2-core
//! machine): start it, import the dataset (timed), let it flush and compact, take its size on
//! disk, make it ready for queries, then time queries (a), (b) and (c): one uncounted warm-up and
//! `runs` counted runs each, median reported. Every answer is checked against the dataset, so a
//! broken query cannot look fast. The system is stopped before the next one starts. A failure
//! ends that system's measurement only: what was measured so far is kept, with the error.

pub mod auth;
pub mod citytel;
pub mod influxdb;
pub mod victoriametrics;
mod write;

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::dataset::Dataset;
use crate::measure::{self, DiskUsage};

/// What an import reports besides its duration.
#[derive(Debug, Default, Clone, Copy)]
pub struct Imported {
    /// Peak resident set size of the importing process, when the system imports in its own
    /// process (citytel).
    pub peak_rss_bytes: Option<u64>,
}

/// A system under test.
pub trait System: Sized {
    /// Its name in the table and the JSON.
    const NAME: &'static str;

    /// Starts it (installing it first if needed) with its data under `dir`.
    async fn start(dir: &Path) -> Result<Self>;

    /// Imports the whole dataset; returns once every value has been accepted (each system
    /// documents what that means for it). Timed by the caller.
    async fn import(&mut self, ds: &Dataset) -> Result<Imported>;

    /// Flushes and compacts as far as the system goes, waits until its data dir stops changing,
    /// and returns what its files take.
    async fn disk_bytes(&mut self) -> Result<DiskUsage>;

    /// Makes the imported data queryable. For citytel this restarts the service on the imported
    /// directory and returns the time until it is ready; peers are already serving.
    async fn serve(&mut self) -> Result<Option<Duration>> {
        Ok(None)
    }

    /// Query (a): one device, one metric, raw points over the 24 h. Returns the round trip.
    async fn query_a(&mut self, ds: &Dataset) -> Result<Duration>;

    /// Query (b): 5-minute averages of one metric over all cabinets, averaged across devices.
    async fn query_b(&mut self, ds: &Dataset) -> Result<Duration>;

    /// Query (c): the latest value of every series.
    async fn query_c(&mut self, ds: &Dataset) -> Result<Duration>;

    /// How the system was set up, for the reader of the results.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// One system's figures (absent where the measurement did not get that far).
#[derive(Debug, Default, Clone, Serialize)]
pub struct SystemResult {
    /// Values imported per second.
    pub import_values_per_s: Option<f64>,
    /// Import wall time.
    pub import_seconds: Option<f64>,
    /// Bytes on disk after flush and compaction (holes of sparse files not counted).
    pub disk_bytes: Option<u64>,
    /// Sum of the file lengths, holes of sparse files included.
    pub disk_apparent_bytes: Option<u64>,
    /// `disk_bytes` / values.
    pub bytes_per_value: Option<f64>,
    /// Median latency of query (a), ms.
    pub query_a_ms: Option<f64>,
    /// Median latency of query (b), ms.
    pub query_b_ms: Option<f64>,
    /// Median latency of query (c), ms.
    pub query_c_ms: Option<f64>,
    /// Every counted run of query (a), ms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query_a_runs_ms: Vec<f64>,
    /// Every counted run of query (b), ms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query_b_runs_ms: Vec<f64>,
    /// Every counted run of query (c), ms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query_c_runs_ms: Vec<f64>,
    /// Peak RSS of the import process (citytel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_peak_rss_bytes: Option<u64>,
    /// Time from spawning the service on the imported store until it answers SERVING (citytel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_to_ready_ms: Option<f64>,
    /// How the system was set up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Why the measurement stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Measures system `S` on `ds` with its data under `dir`.
pub async fn measure_system<S: System>(dir: &Path, ds: &Dataset, runs: usize) -> SystemResult {
    let mut result = SystemResult::default();
    if let Err(e) = measure_into::<S>(&mut result, dir, ds, runs).await {
        eprintln!("{}: error: {e:#}", S::NAME);
        result.error = Some(format!("{e:#}"));
    }
    result
}

async fn measure_into<S: System>(
    r: &mut SystemResult,
    dir: &Path,
    ds: &Dataset,
    runs: usize,
) -> Result<()> {
    let name = S::NAME;
    std::fs::create_dir_all(dir)?;
    eprintln!("{name}: starting");
    let mut system = S::start(dir).await?;
    r.notes = system.notes();

    eprintln!("{name}: importing {} values...", ds.values);
    let t0 = std::time::Instant::now();
    let imported = system.import(ds).await?;
    let secs = t0.elapsed().as_secs_f64();
    r.import_seconds = Some(secs);
    r.import_values_per_s = Some(ds.values as f64 / secs);
    r.import_peak_rss_bytes = imported.peak_rss_bytes;
    eprintln!(
        "{name}: imported in {secs:.1} s: {:.2} M values/s",
        ds.values as f64 / secs / 1e6
    );

    eprintln!("{name}: flushing, compacting, measuring the data dir...");
    let usage = system.disk_bytes().await?;
    let bytes = usage.stored;
    r.disk_bytes = Some(bytes);
    r.disk_apparent_bytes = Some(usage.apparent);
    r.bytes_per_value = Some(bytes as f64 / ds.values as f64);
    eprintln!(
        "{name}: {bytes} bytes on disk: {:.3} bytes/value ({} bytes counting sparse holes)",
        bytes as f64 / ds.values as f64,
        usage.apparent
    );

    if let Some(ready) = system.serve().await? {
        r.restart_to_ready_ms = Some(ready.as_secs_f64() * 1e3);
        eprintln!(
            "{name}: restarted, ready in {:.0} ms",
            ready.as_secs_f64() * 1e3
        );
    }

    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let a = measure::repeat(runs, async || system.query_a(ds).await).await;
    let a = a.map_err(|e| e.context("query (a)"))?;
    eprintln!("{name}: (a) median {:.2} ms", a.median_ms);
    r.query_a_ms = Some(a.median_ms);
    r.query_a_runs_ms = a.runs_ms;

    let b = measure::repeat(runs, async || system.query_b(ds).await).await;
    let b = b.map_err(|e| e.context("query (b)"))?;
    eprintln!("{name}: (b) median {:.2} ms", b.median_ms);
    r.query_b_ms = Some(b.median_ms);
    r.query_b_runs_ms = b.runs_ms;

    let c = measure::repeat(runs, async || system.query_c(ds).await).await;
    let c = c.map_err(|e| e.context("query (c)"))?;
    eprintln!("{name}: (c) median {:.2} ms", c.median_ms);
    r.query_c_ms = Some(c.median_ms);
    r.query_c_runs_ms = c.runs_ms;

    r.notes = system.notes();
    eprintln!("{name}: stopping");
    drop(system);
    Ok(())
}

/// Fails unless `got` is within `[min, max]`: the plausibility check of an answer.
pub fn check_count(what: &str, got: u64, min: u64, max: u64) -> Result<()> {
    if got < min || got > max {
        if min == max {
            bail!("implausible answer: {what}: got {got}, expected {min}");
        }
        bail!("implausible answer: {what}: got {got}, expected {min} to {max}");
    }
    Ok(())
}
