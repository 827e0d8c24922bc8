//! `firmware-sim dataset`: writes a deterministic reference dataset to a file or stdout.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use citytel_firmware_sim::dataset::{
    DatasetConfig, DatasetFormat, DatasetProgress, DatasetSummary, default_start_ms, write_dataset,
};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

/// Write a reference dataset: every device's readings over a simulated span, as InfluxDB line
/// protocol or citytel protobuf records.
///
/// The output depends only on the options (seed and start included): the same options always
/// give the same bytes. A progress bar goes to stderr and a summary to stdout (to stderr when the
/// dataset itself goes to stdout). A file is written under a temporary name and renamed when
/// complete.
#[derive(Debug, Args)]
pub(crate) struct DatasetArgs {
    /// Output file, or `-` for stdout.
    #[arg(long, short = 'o', env = "FIRMWARE_SIM_OUT", value_name = "FILE")]
    out: PathBuf,

    /// Output format [default: from the extension of --out, .lp or .pb].
    #[arg(long, env = "FIRMWARE_SIM_FORMAT", value_name = "FORMAT")]
    format: Option<FormatArg>,

    /// Seed of every random choice (metric values, outage plan, boot ids).
    #[arg(
        long,
        env = "FIRMWARE_SIM_SEED",
        value_name = "N",
        default_value_t = 42
    )]
    seed: u64,

    /// First timestamp, RFC 3339 in UTC (e.g. 2026-01-05T00:00:00Z, or just 2026-01-05)
    /// [default: yesterday 00:00 UTC].
    #[arg(long, env = "FIRMWARE_SIM_START", value_name = "TIME", value_parser = parse_start)]
    start: Option<i64>,

    /// Simulated span, e.g. 24h or 90m.
    #[arg(
        long,
        env = "FIRMWARE_SIM_DURATION",
        value_name = "DURATION",
        default_value = "24h",
        value_parser = humantime::parse_duration
    )]
    duration: Duration,

    /// Time between two readings of a device (whole milliseconds).
    #[arg(
        long,
        env = "FIRMWARE_SIM_INTERVAL",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    interval: Duration,

    /// Fibre street cabinets (cab-0001...).
    #[arg(
        long,
        env = "FIRMWARE_SIM_CABINETS",
        value_name = "N",
        default_value_t = 300
    )]
    cabinets: u32,

    /// 5G small cells (cell-0001...).
    #[arg(
        long,
        env = "FIRMWARE_SIM_SMALL_CELLS",
        value_name = "N",
        default_value_t = 300
    )]
    small_cells: u32,

    /// Environmental sensors (sen-0001...).
    #[arg(
        long,
        env = "FIRMWARE_SIM_SENSORS",
        value_name = "N",
        default_value_t = 400
    )]
    sensors: u32,

    /// Sites the devices are spread over, round-robin (site-01...).
    #[arg(
        long,
        env = "FIRMWARE_SIM_SITES",
        value_name = "N",
        default_value_t = 20
    )]
    sites: u32,

    /// Share of devices with 1 to 3 outages (0 to 1).
    #[arg(
        long,
        env = "FIRMWARE_SIM_OUTAGE_FRACTION",
        value_name = "FRACTION",
        default_value_t = 0.15
    )]
    outage_fraction: f64,

    /// Readings per protobuf record (ignored for line protocol).
    #[arg(
        long,
        env = "FIRMWARE_SIM_BATCH",
        value_name = "N",
        default_value_t = 60
    )]
    batch: u32,
}

/// The `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// InfluxDB line protocol.
    Lp,
    /// Length-delimited citytel.v1.DatasetRecord messages.
    Proto,
}

impl DatasetArgs {
    /// Writes the dataset, drawing a progress bar, and prints the summary.
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let to_stdout = self.out.as_os_str() == "-";
        let config = self.config(now_ms())?;
        config.validate()?;
        let bar = progress_bar(config.steps());
        let started = Instant::now();
        let summary = if to_stdout {
            let stdout = io::stdout().lock();
            generate(&config, stdout, &bar)?
        } else {
            write_file(&self.out, &config, &bar)?
        };
        bar.finish_and_clear();
        let text = summary_text(&summary, config.format, started.elapsed());
        if to_stdout {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
        Ok(())
    }

    /// The dataset configuration, with the default start computed from `now_ms`.
    fn config(&self, now_ms: i64) -> anyhow::Result<DatasetConfig> {
        let format = match (self.format, DatasetFormat::from_path(&self.out)) {
            (Some(FormatArg::Lp), _) => DatasetFormat::LineProtocol,
            (Some(FormatArg::Proto), _) => DatasetFormat::Proto,
            (None, Some(format)) => format,
            (None, None) => bail!(
                "cannot tell the format from {}: name it .lp or .pb, or pass --format lp|proto",
                self.out.display()
            ),
        };
        Ok(DatasetConfig {
            start_ms: self.start.unwrap_or_else(|| default_start_ms(now_ms)),
            duration: self.duration,
            interval: self.interval,
            seed: self.seed,
            cabinets: self.cabinets,
            small_cells: self.small_cells,
            sensors: self.sensors,
            sites: self.sites,
            outage_fraction: self.outage_fraction,
            format,
            batch: self.batch,
        })
    }
}

/// Writes the dataset to `path.partial` and renames it to `path` once complete. Paths that exist
/// and are not regular files (`/dev/null`, a FIFO) are written in place.
fn write_file(
    path: &Path,
    config: &DatasetConfig,
    bar: &ProgressBar,
) -> anyhow::Result<DatasetSummary> {
    let in_place = fs::metadata(path).is_ok_and(|m| !m.is_file());
    let target = if in_place {
        path.to_path_buf()
    } else {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        PathBuf::from(partial)
    };
    let file =
        File::create(&target).with_context(|| format!("cannot create {}", target.display()))?;
    let summary = generate(config, &file, bar)
        .with_context(|| format!("cannot write {}", target.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", target.display()))?;
    if !in_place {
        fs::rename(&target, path)
            .with_context(|| format!("cannot rename {} to {}", target.display(), path.display()))?;
    }
    Ok(summary)
}

fn generate(
    config: &DatasetConfig,
    out: impl Write,
    bar: &ProgressBar,
) -> anyhow::Result<DatasetSummary> {
    let mut progress = |p: DatasetProgress| {
        // Formatting the simulated time every step would cost more than the step.
        if p.steps_done.is_multiple_of(64) || p.steps_done == p.steps_total {
            bar.set_position(p.steps_done);
            bar.set_message(format_ms(p.time_ms));
        }
    };
    Ok(write_dataset(config, out, &mut progress)?)
}

fn progress_bar(steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {percent:>3}% simulated {msg} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The summary, one `label value` line per fact.
fn summary_text(summary: &DatasetSummary, format: DatasetFormat, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = |n: u64| {
        if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        }
    };
    let units = match format {
        DatasetFormat::LineProtocol => format!("lines       {}", summary.readings),
        DatasetFormat::Proto => format!(
            "records     {} ({} readings)",
            summary.records, summary.readings
        ),
    };
    format!(
        "devices     {} ({} with outages, {} outages)\n\
         {units}\n\
         values      {}\n\
         bytes       {} ({:.1} MB/s)\n\
         elapsed     {}\n\
         start       {}\n\
         end         {}",
        summary.devices,
        summary.devices_with_outages,
        summary.outages,
        summary.values,
        summary.bytes,
        rate(summary.bytes) / 1e6,
        humantime::format_duration(Duration::from_millis(elapsed.as_millis() as u64)),
        format_ms(summary.start_ms),
        format_ms(summary.end_ms),
    )
}

/// Parses `--start`: RFC 3339 in UTC, or a bare date meaning its midnight.
fn parse_start(text: &str) -> Result<i64, String> {
    let full = if text.len() == "2026-01-05".len() {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    let time = humantime::parse_rfc3339(&full)
        .map_err(|e| format!("{e} (expected e.g. 2026-01-05T00:00:00Z)"))?;
    let since = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "must not be before 1970".to_string())?;
    i64::try_from(since.as_millis()).map_err(|_| "too far in the future".to_string())
}

/// A Unix millisecond timestamp as RFC 3339.
fn format_ms(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: DatasetArgs,
    }

    fn parse(args: &[&str]) -> Result<DatasetArgs, clap::Error> {
        let argv = std::iter::once("dataset").chain(args.iter().copied());
        Wrapper::try_parse_from(argv).map(|w| w.args)
    }

    /// 2026-01-05T13:14:15Z.
    const NOW_MS: i64 = 1_767_618_855_000;

    #[test]
    fn defaults_give_the_reference_dataset_of_yesterday() {
        let args = parse(&["--out=/tmp/x.lp"]).expect("arguments parse");
        let config = args.config(NOW_MS).expect("config");
        let yesterday = parse_start("2026-01-04").expect("date parses");
        assert_eq!(
            config,
            DatasetConfig::reference(yesterday, DatasetFormat::LineProtocol)
        );
    }

    #[test]
    fn the_format_comes_from_the_flag_or_the_extension() {
        let format = |args: &[&str]| parse(args).expect("parse").config(NOW_MS).map(|c| c.format);
        assert_eq!(format(&["-o", "a.pb"]).ok(), Some(DatasetFormat::Proto));
        assert_eq!(
            format(&["-o", "a.pb", "--format=lp"]).ok(),
            Some(DatasetFormat::LineProtocol)
        );
        assert_eq!(
            format(&["-o", "-", "--format=proto"]).ok(),
            Some(DatasetFormat::Proto)
        );
        let error = format(&["-o", "-"]).expect_err("stdout needs --format");
        assert!(error.to_string().contains("--format"), "{error}");
    }

    #[test]
    fn start_accepts_rfc3339_utc_and_dates() {
        assert_eq!(parse_start("1970-01-02T00:00:00Z"), Ok(86_400_000));
        assert_eq!(parse_start("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_start("1970-01-01T00:00:01.5Z"), Ok(1_500));
        assert!(parse_start("yesterday").is_err());
        let error = parse(&["-o", "a.lp", "--start=2026-13-01"]).expect_err("bad month");
        assert!(error.to_string().contains("--start"), "{error}");
    }

    #[test]
    fn summary_lists_counts_and_times() {
        let summary = DatasetSummary {
            devices: 3,
            devices_with_outages: 1,
            outages: 2,
            readings: 10,
            records: 4,
            values: 50,
            bytes: 2_000_000,
            start_ms: 0,
            end_ms: 3_600_000,
        };
        let text = summary_text(&summary, DatasetFormat::Proto, Duration::from_secs(2));
        assert!(
            text.contains("devices     3 (1 with outages, 2 outages)"),
            "{text}"
        );
        assert!(text.contains("records     4 (10 readings)"), "{text}");
        assert!(text.contains("bytes       2000000 (1.0 MB/s)"), "{text}");
        assert!(text.contains("end         1970-01-01T01:00:00Z"), "{text}");
    }

    #[test]
    fn writes_a_small_dataset_to_a_file() {
        let dir = std::env::temp_dir().join(format!("firmware-sim-dataset-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let out = dir.join("small.lp");
        let args = parse(&[
            "--out",
            out.to_str().expect("utf-8 path"),
            "--start=2026-01-05",
            "--duration=1m",
            "--cabinets=2",
            "--small-cells=1",
            "--sensors=1",
            "--outage-fraction=0",
        ])
        .expect("parse");
        args.run().expect("dataset written");
        let text = fs::read_to_string(&out).expect("read back");
        assert_eq!(text.lines().count(), 4 * 6);
        assert!(!dir.join("small.lp.partial").exists());
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
