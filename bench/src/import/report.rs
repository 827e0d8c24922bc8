//! The result of `citytel-bench import`: a table on stdout and the same as JSON.

use std::path::Path;

use anyhow::{Context, Result};
use citytel_ingest::import::Format;
use serde::Serialize;

use crate::measure::median;

/// One run of the parser over the whole file.
#[derive(Debug, Clone, Copy)]
pub struct ParseRun {
    /// Wall time.
    pub seconds: f64,
    /// Lines parsed (blank lines and comments not counted).
    pub lines: u64,
    /// Fields in them.
    pub fields: u64,
    /// Lines that did not parse.
    pub bad_lines: u64,
}

/// One run of the import path.
#[derive(Debug, Clone, Copy)]
pub struct ImportRun {
    /// Worker threads.
    pub threads: usize,
    /// Wall time, as `citytel import` reports it.
    pub seconds: f64,
    /// Lines (or records) read, blank lines and comments not counted.
    pub lines: u64,
    /// Points handed to the sink.
    pub points: u64,
    /// Lines that did not map to points.
    pub bad_lines: u64,
}

/// The parser's figures: counts of the file, median time and rates.
#[derive(Debug, Serialize)]
pub struct ParserFigures {
    /// Lines parsed.
    pub lines: u64,
    /// Fields in them.
    pub fields: u64,
    /// Lines that did not parse.
    pub bad_lines: u64,
    /// Median wall time.
    pub seconds: f64,
    /// Every counted run's wall time, in the order they ran.
    pub runs_seconds: Vec<f64>,
    /// File bytes per second (median run), in MB.
    pub mb_per_s: f64,
    /// Lines per second (median run).
    pub lines_per_s: f64,
}

/// The import path's figures on one thread count.
#[derive(Debug, Serialize)]
pub struct ImportFigures {
    /// Worker threads.
    pub threads: usize,
    /// Lines (or records) read.
    pub lines: u64,
    /// Points handed to the sink.
    pub points: u64,
    /// Lines that did not map to points.
    pub bad_lines: u64,
    /// Median wall time.
    pub seconds: f64,
    /// Every counted run's wall time, in the order they ran.
    pub runs_seconds: Vec<f64>,
    /// File bytes per second (median run), in MB.
    pub mb_per_s: f64,
    /// Lines per second (median run).
    pub lines_per_s: f64,
    /// Points per second (median run).
    pub points_per_s: f64,
}

/// Figures of one `citytel-bench import`.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    started_at: String,
    file: String,
    format: &'static str,
    bytes: u64,
    runs: usize,
    warmup_runs: usize,
    /// The parser alone (line protocol files only).
    pub parser: Option<ParserFigures>,
    /// The import path, per thread count.
    pub imports: Vec<ImportFigures>,
    notes: Vec<&'static str>,
}

impl ImportReport {
    /// The report of the counted runs of one file.
    pub fn new(
        started_at: String,
        path: &Path,
        format: Format,
        bytes: u64,
        runs: usize,
        parser: Option<Vec<ParseRun>>,
        imports: Vec<Vec<ImportRun>>,
    ) -> ImportReport {
        let mb = bytes as f64 / 1e6;
        let parser = parser.and_then(|runs| {
            let first = *runs.first()?;
            let runs_seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
            let seconds = median(&runs_seconds);
            Some(ParserFigures {
                lines: first.lines,
                fields: first.fields,
                bad_lines: first.bad_lines,
                seconds,
                runs_seconds,
                mb_per_s: mb / seconds,
                lines_per_s: first.lines as f64 / seconds,
            })
        });
        let imports = imports
            .into_iter()
            .filter_map(|runs| {
                let first = *runs.first()?;
                let runs_seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
                let seconds = median(&runs_seconds);
                Some(ImportFigures {
                    threads: first.threads,
                    lines: first.lines,
                    points: first.points,
                    bad_lines: first.bad_lines,
                    seconds,
                    runs_seconds,
                    mb_per_s: mb / seconds,
                    lines_per_s: first.lines as f64 / seconds,
                    points_per_s: first.points as f64 / seconds,
                })
            })
            .collect();
        ImportReport {
            started_at,
            file: path.display().to_string(),
            format: format.as_str(),
            bytes,
            runs,
            warmup_runs: 1,
            parser,
            imports,
            notes: vec![
                "parser: citytel's line protocol parser over every line of the file, held in memory, one thread",
                "import path: `citytel import`'s reading, chunking, parsing and mapping into a sink that only counts points (no storage)",
                "medians of the counted runs, after one uncounted warm-up run",
            ],
        }
    }

    /// The table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "citytel import path on {} ({}, {:.1} MB; median of {} runs)\n{:<26} {:>9} {:>9} {:>11} {:>12} {:>10}\n",
            self.file,
            self.format,
            self.bytes as f64 / 1e6,
            self.runs,
            "",
            "seconds",
            "MB/s",
            "M lines/s",
            "M points/s",
            "bad lines",
        );
        if let Some(p) = &self.parser {
            out.push_str(&format!(
                "{:<26} {:>9.3} {:>9.1} {:>11.2} {:>12} {:>10}\n",
                "line protocol parser",
                p.seconds,
                p.mb_per_s,
                p.lines_per_s / 1e6,
                "-",
                p.bad_lines
            ));
        }
        for i in &self.imports {
            let what = match i.threads {
                1 => "import path, 1 thread".to_string(),
                n => format!("import path, {n} threads"),
            };
            out.push_str(&format!(
                "{:<26} {:>9.3} {:>9.1} {:>11.2} {:>12.2} {:>10}\n",
                what,
                i.seconds,
                i.mb_per_s,
                i.lines_per_s / 1e6,
                i.points_per_s / 1e6,
                i.bad_lines
            ));
        }
        out.trim_end().to_string()
    }

    /// Writes the JSON.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).context("serializing the results")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}
