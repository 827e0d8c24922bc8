//! The result of `citytel-bench sink`: a table on stdout and the same as JSON.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::dataset::Dataset;

/// What the sink run measured.
#[derive(Debug, Clone, Copy)]
pub struct Delivered {
    /// Wall time until every value was confirmed and stored.
    pub seconds: f64,
    /// Requests confirmed.
    pub requests: u64,
    /// Failed requests (all classes).
    pub failures: u64,
}

/// The sink's target, as a share of the peer's own import rate.
const TARGET: f64 = 0.8;

/// Figures of one run.
#[derive(Debug, Serialize)]
pub struct SinkReport {
    started_at: String,
    hours: u32,
    values: u64,
    lines: u64,
    batch_size: usize,
    import_seconds: f64,
    import_values_per_s: f64,
    sink_seconds: f64,
    sink_values_per_s: f64,
    sink_requests: u64,
    sink_failed_requests: u64,
    ratio: f64,
    target: f64,
    notes: Vec<&'static str>,
}

impl SinkReport {
    /// The report of a run.
    pub fn new(
        started_at: String,
        ds: &Dataset,
        hours: u32,
        batch_size: usize,
        import_seconds: f64,
        sink: Delivered,
    ) -> Self {
        let import_values_per_s = ds.values as f64 / import_seconds;
        let sink_values_per_s = ds.values as f64 / sink.seconds;
        SinkReport {
            started_at,
            hours,
            values: ds.values,
            lines: ds.lines,
            batch_size,
            import_seconds,
            import_values_per_s,
            sink_seconds: sink.seconds,
            sink_values_per_s,
            sink_requests: sink.requests,
            sink_failed_requests: sink.failures,
            ratio: sink_values_per_s / import_values_per_s,
            target: TARGET,
            notes: vec![
                "import: line protocol POSTed to /write in ~16 MB requests, 4 in flight",
                "sink: citytel's InfluxDB sink reading its WAL, gzip'd /api/v2/write requests, max_in_flight of them at once",
                "both end when every request returned and vm_rows_added_to_storage_total reached the value count",
            ],
        }
    }

    /// The table.
    pub fn table(&self) -> String {
        let rate = |v: f64| format!("{:>12.0}", v);
        format!(
            "citytel sink vs VictoriaMetrics import ({} h, {} values, {} lines)\n\
             {:<40} {:>12} {:>10}\n\
             {:<40} {} {:>10.1}\n\
             {:<40} {} {:>10.1}\n\
             sink / import: {:.0}% (target >= {:.0}%){}",
            self.hours,
            self.values,
            self.lines,
            "",
            "values/s",
            "seconds",
            "VictoriaMetrics /write (its own import)",
            rate(self.import_values_per_s),
            self.import_seconds,
            "citytel sink, /api/v2/write",
            rate(self.sink_values_per_s),
            self.sink_seconds,
            self.ratio * 100.0,
            self.target * 100.0,
            if self.ratio >= self.target {
                ""
            } else {
                "  BELOW TARGET"
            },
        )
    }

    /// Writes the JSON.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).context("serializing the results")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}
