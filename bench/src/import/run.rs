//! The measurements of `citytel-bench import`: the parser over the file in memory, then the
//! import path on each thread count, each a warm-up run and `runs` counted ones.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use citytel_ingest::import::lineproto::{Line, parse_into};
use citytel_ingest::import::{
    Format, ImportError, ImportOptions, ImportSink, PointBatch, import_file,
};

use super::ImportArgs;
use super::report::{ImportReport, ImportRun, ParseRun};
use crate::dataset;

pub fn run(args: ImportArgs) -> Result<ExitCode> {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    if args.file == crate::default_dataset() {
        dataset::ensure(&args.file)?;
    }
    let threads: Vec<usize> = args.threads.iter().map(|&t| usize::from(t)).collect();
    let report = measure(&args.file, &threads, usize::from(args.runs), started_at)?;
    println!("{}", report.table());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::repo_file("bench-import.json"));
    report.write_json(&out)?;
    eprintln!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Measures `path`: the parser (line protocol only) and the import path on each of `threads`,
/// each `runs` times after a warm-up run.
pub fn measure(
    path: &Path,
    threads: &[usize],
    runs: usize,
    started_at: String,
) -> Result<ImportReport> {
    let format = Format::from_path(path).with_context(|| {
        format!(
            "{}: not a .lp, .txt, .line or .pb file, so its format is unknown",
            path.display()
        )
    })?;
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let parser = match format {
        Format::LineProtocol => {
            eprintln!("line protocol parser over {}...", path.display());
            let data =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let text = std::str::from_utf8(&data)
                .with_context(|| format!("{} is not UTF-8", path.display()))?;
            let counted = repeat(runs, || Ok(parse(text)))?;
            Some(counted)
        }
        Format::DatasetProto => None,
    };
    let mut imports = Vec::with_capacity(threads.len());
    for &t in threads {
        eprintln!("import path on {t} thread(s)...");
        imports.push(repeat(runs, || import(path, format, t))?);
    }
    Ok(ImportReport::new(
        started_at, path, format, bytes, runs, parser, imports,
    ))
}

/// One warm-up run of `f`, then `runs` counted ones.
fn repeat<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<Vec<T>> {
    f()?;
    (0..runs).map(|_| f()).collect()
}

/// Parses every line of `text`, reusing one [`Line`].
fn parse(text: &str) -> ParseRun {
    let started = Instant::now();
    let mut line = Line::default();
    let (mut lines, mut fields, mut bad_lines) = (0u64, 0u64, 0u64);
    for raw in text.split('\n') {
        match parse_into(raw, &mut line) {
            Ok(true) => {
                lines += 1;
                fields += line.fields.len() as u64;
            }
            Ok(false) => {}
            Err(_) => bad_lines += 1,
        }
    }
    ParseRun {
        seconds: started.elapsed().as_secs_f64(),
        lines,
        fields,
        bad_lines,
    }
}

/// Counts the points it is given, and stores nothing.
struct Counting(u64);

impl ImportSink for Counting {
    fn write(&mut self, batch: &PointBatch) -> Result<(), ImportError> {
        self.0 += batch.points.len() as u64;
        Ok(())
    }
}

/// Imports `path` on `threads` threads into a [`Counting`] sink.
fn import(path: &Path, format: Format, threads: usize) -> Result<ImportRun> {
    let options = ImportOptions {
        format,
        threads,
        ..ImportOptions::default()
    };
    let mut sink = Counting(0);
    let summary = import_file(path, &options, &mut sink, &|_| {})
        .with_context(|| format!("importing {}", path.display()))?;
    if sink.0 != summary.points {
        bail!(
            "the sink counted {} points, the import summary {}",
            sink.0,
            summary.points
        );
    }
    Ok(ImportRun {
        threads,
        seconds: summary.elapsed.as_secs_f64(),
        lines: summary.lines - summary.skipped_lines,
        points: sink.0,
        bad_lines: summary.bad_line_count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_file_is_parsed_and_imported_on_every_thread_count() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("small.lp");
        let mut text = String::from("# two fields per line, one bad line\n");
        for i in 0..1000 {
            text.push_str(&format!(
                "cabinet,device_id=cab-{:04},site=site-01 temperature_c={i}.5,power_w={i} {}\n",
                i % 7,
                1_700_000_000_000_000_000_i64 + i * 1_000_000_000
            ));
        }
        text.push_str("not line protocol\n");
        std::fs::write(&path, text)?;

        let report = measure(&path, &[1, 2], 1, "now".into())?;
        let parser = report
            .parser
            .as_ref()
            .context("a line protocol file is parsed")?;
        assert_eq!(
            (parser.lines, parser.fields, parser.bad_lines),
            (1000, 2000, 1)
        );
        assert_eq!(report.imports.len(), 2);
        for (import, threads) in report.imports.iter().zip([1, 2]) {
            assert_eq!(import.threads, threads);
            assert_eq!((import.points, import.bad_lines), (2000, 1));
        }
        let table = report.table();
        assert!(table.contains("import path, 2 threads"), "{table}");
        Ok(())
    }

    #[test]
    fn a_file_of_unknown_format_is_refused() {
        let err = measure(Path::new("/nonexistent/data.csv"), &[1], 1, "now".into());
        let err = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("format is unknown"), "{err}");
    }
}
