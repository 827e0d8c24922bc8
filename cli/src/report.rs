//! `citytel report`: district reports from a running service's `ReportService`, as CSV (one row
//! per district, for a spreadsheet) or JSON (every figure), on standard output or into a file.
//! What the figures mean is in docs/districts.md; the columns and fields are in
//! [`super::report_format`].

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use citytel_ingest::clock::system_now_ms;
use citytel_proto::v1;
use citytel_proto::v1::report_service_client::ReportServiceClient;
use clap::{ArgGroup, Args, ValueEnum};

use super::export::parse_time;
use super::remote::ServiceArgs;
use super::{report_format, runtime};

/// One hour, ms: report periods are whole hours.
const HOUR_MS: i64 = 3_600_000;

/// `citytel report`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["district", "all"])))]
pub struct ReportArgs {
    /// The district to report on.
    #[arg(long, value_name = "NAME")]
    district: Option<String>,
    /// Every district the key sees, ranked by connectivity.
    #[arg(long)]
    all: bool,
    /// Start: an RFC 3339 time on a whole hour (2026-11-01T00:00:00Z), or a duration before now
    /// (30d, 24h), rounded down to the hour.
    #[arg(long, default_value = "30d", value_name = "TIME")]
    from: String,
    /// End (excluded): as --from, or `now` (the current hour included, cut at now).
    #[arg(long, default_value = "now", value_name = "TIME")]
    to: String,
    /// The output format: csv (one row per district) or json (every figure).
    #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
    format: FormatArg,
    /// How many worst devices and sensors each report lists (JSON only; 1 to 100).
    #[arg(long, default_value_t = 5)]
    worst: u32,
    /// The file to write; `-` for standard output.
    #[arg(long, short = 'o', value_name = "FILE", default_value = "-")]
    out: PathBuf,
    #[command(flatten)]
    service: ServiceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Csv,
    Json,
}

/// A time on the command line as a period bound: RFC 3339 times are taken as given (the service
/// refuses one that is not a whole hour); `now` is the end of the current hour; durations before
/// now are rounded down to the hour.
fn period_bound(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if text == "now" {
        return Ok(now_ms.div_euclid(HOUR_MS) * HOUR_MS + HOUR_MS);
    }
    let ms = parse_time(text, now_ms)?;
    if humantime::parse_rfc3339_weak(text).is_ok() {
        return Ok(ms);
    }
    Ok(ms.div_euclid(HOUR_MS) * HOUR_MS)
}

/// Runs `citytel report`.
pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let now = system_now_ms();
    let start = period_bound(&args.from, now).context("--from")?;
    let end = period_bound(&args.to, now).context("--to")?;
    let reports = runtime()?.block_on(async {
        let mut client = ReportServiceClient::new(args.service.connect().await?);
        let status = |s: tonic::Status| anyhow::anyhow!("{}: {}", s.code(), s.message());
        let reports = match &args.district {
            Some(district) => client
                .get_district_report(v1::GetDistrictReportRequest {
                    district: district.clone(),
                    start_unix_ms: start,
                    end_unix_ms: end,
                    worst_limit: args.worst,
                })
                .await
                .map_err(status)?
                .into_inner()
                .report
                .into_iter()
                .collect(),
            None => {
                client
                    .list_district_reports(v1::ListDistrictReportsRequest {
                        start_unix_ms: start,
                        end_unix_ms: end,
                        worst_limit: args.worst,
                    })
                    .await
                    .map_err(status)?
                    .into_inner()
                    .reports
            }
        };
        anyhow::Ok(reports)
    })?;
    let bytes = match args.format {
        FormatArg::Csv => report_format::csv(&reports)?,
        FormatArg::Json => report_format::json_file(&reports)?,
    };
    if args.out.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes).context("writing the report")?;
        out.flush().context("writing the report")?;
    } else {
        std::fs::write(&args.out, &bytes)
            .with_context(|| format!("writing {}", args.out.display()))?;
        eprintln!(
            "wrote {} district report(s) to {}",
            reports.len(),
            args.out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_bounds_round_to_hours_and_given_times_are_kept() {
        let now = 1_700_000_000_000; // 22:13:20 UTC
        let hour = now - now % HOUR_MS;
        assert_eq!(period_bound("now", now).unwrap(), hour + HOUR_MS);
        assert_eq!(period_bound("24h", now).unwrap(), hour - 24 * HOUR_MS);
        assert_eq!(
            period_bound("2023-11-14T22:00:00Z", now).unwrap(),
            1_700_000_000_000 - 800_000
        );
        assert_eq!(
            period_bound("2023-11-14T22:13:20Z", now).unwrap(),
            now,
            "kept for the service to refuse"
        );
        assert!(period_bound("last month", now).is_err());
    }
}
