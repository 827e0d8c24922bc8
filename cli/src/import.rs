//! `citytel import FILE`: load InfluxDB line protocol or a dataset file into the data directory.
//!
//! The service must not be running on the same data directory (the directory lock says so). The
//! import writes straight into the engine, checkpointing as it goes, then compacts, so the data
//! is in its final, compressed form when the command returns.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::ConfigArgs;
use citytel_ingest::clock::system_now_ms as now_ms;
use citytel_ingest::db::Database;
use citytel_ingest::db::bulk::BulkLoader;
use citytel_ingest::import::{self, Format, ImportOptions, ImportSummary, Precision};

/// pco level of the intermediate segments an import writes before its final compaction.
const IMPORT_FLUSH_LEVEL: usize = 2;

/// Options of `citytel import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The file: line protocol (.lp, .txt, .line) or a protobuf dataset (.pb).
    file: PathBuf,
    #[command(flatten)]
    config: ConfigArgs,
    /// File format, when the extension does not tell: lp or proto.
    #[arg(long)]
    format: Option<Format>,
    /// Line protocol tag holding the device id.
    #[arg(long, default_value = "device_id")]
    device_tag: String,
    /// Site of line protocol lines without a `site` tag.
    #[arg(long, default_value = "unknown")]
    default_site: String,
    /// Unit of line protocol timestamps: ns, us, ms or s.
    #[arg(long, default_value = "ns")]
    precision: Precision,
    /// Parser threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Stop at the first bad line instead of skipping and counting it.
    #[arg(long)]
    strict: bool,
    /// Points held in memory before a checkpoint (more means fewer, larger segments).
    #[arg(long, default_value_t = 16_000_000)]
    head_points: u64,
}

pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let mut config = args.config.load().context("loading configuration")?;
    config.storage.head_max_points = args.head_points;
    let settings = config.validate().context("validating configuration")?;
    settings.log.init();
    let format = match args.format {
        Some(f) => f,
        None => Format::from_path(&args.file).with_context(|| {
            format!(
                "cannot tell the format of {} from its extension; pass --format lp or --format proto",
                args.file.display()
            )
        })?,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let options = ImportOptions {
        format,
        device_tag: args.device_tag.clone(),
        default_site: args.default_site.clone(),
        precision: args.precision,
        threads,
        strict: args.strict,
        ..ImportOptions::default()
    };
    let data_dir = &settings.storage.data_dir;
    let mut store_options = settings.store_options(citytel_ingest::clock::Clock::System);
    // Every day the import touches is rewritten at the full level at the end.
    store_options.engine.flush_level = IMPORT_FLUSH_LEVEL;
    let (db, mut wal, _) = Database::open(data_dir, &store_options)
        .with_context(|| format!("opening {}", data_dir.display()))?;

    let started = Instant::now();
    let bar = ProgressBar::new(std::fs::metadata(&args.file).map_or(0, |m| m.len()));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut loader = BulkLoader::new(db.clone(), &mut wal, threads, now_ms());
    let summary = import::import_file(&args.file, &options, &mut loader, &|p| {
        bar.set_position(p.bytes_done);
        bar.set_message(format!("{} points", p.points));
    });
    bar.finish_and_clear();
    let summary = summary.with_context(|| format!("importing {}", args.file.display()))?;
    eprintln!("compacting...");
    loader.finish().context("writing the imported data")?;
    // Closing the store lets it delete the files compaction replaced.
    drop(db);
    let elapsed = started.elapsed();
    let disk = dir_bytes(data_dir);
    print_summary(&summary, elapsed, disk, data_dir);
    Ok(())
}

fn print_summary(
    s: &ImportSummary,
    elapsed: std::time::Duration,
    disk: u64,
    dir: &std::path::Path,
) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!("imported {} into {}", s.format, dir.display());
    println!("  lines      {}", s.lines);
    println!("  points     {}", s.points);
    println!("  bad lines  {}", s.bad_line_count());
    for (reason, bad) in &s.bad_lines {
        println!("    {:<24} {}", reason.as_str(), bad.count);
        for sample in &bad.samples {
            println!("      line {}: {}", sample.line, sample.text);
        }
    }
    if s.skipped_string_fields > 0 {
        println!("  string fields skipped   {}", s.skipped_string_fields);
    }
    if s.truncated_timestamps > 0 {
        println!("  timestamps cut to ms    {}", s.truncated_timestamps);
    }
    println!(
        "  elapsed    {:.2} s (parse {:.2} s)",
        secs,
        s.elapsed.as_secs_f64()
    );
    println!("  rate       {:.0} values/s", s.points as f64 / secs);
    println!(
        "  on disk    {} bytes ({:.3} bytes/value)",
        disk,
        disk as f64 / (s.points.max(1)) as f64
    );
}

/// Disk space the files under `dir` occupy (allocated blocks, so preallocated but unwritten
/// space in a journal does not count).
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}
