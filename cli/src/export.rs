//! `citytel export`: writes the series an API key may see to a CSV or Parquet file, through a
//! running service's `ExportSeries`. The file is written next to `--out` under a temporary name
//! and renamed once the stream ended OK, so a failed or interrupted export leaves no partial
//! file behind (with `--out -` it goes to standard output as it arrives).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use citytel_ingest::clock::system_now_ms;
use citytel_proto::v1;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use clap::{Args, ValueEnum};

use super::runtime;

/// `citytel export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The API key whose scope the export follows.
    #[arg(
        long,
        alias = "api-key",
        env = "CITYTEL_API_KEY",
        hide_env_values = true
    )]
    key: Option<String>,
    /// The service's gRPC address.
    #[arg(
        long,
        env = "CITYTEL_GRPC",
        default_value = "127.0.0.1:50051",
        value_name = "ADDR"
    )]
    grpc: String,
    /// Only devices of this kind.
    #[arg(long)]
    kind: Option<String>,
    /// Only devices at this site.
    #[arg(long)]
    site: Option<String>,
    /// Only devices in this district.
    #[arg(long)]
    district: Option<String>,
    /// Only this device (repeatable; not with --kind, --site or --district).
    #[arg(long = "device")]
    devices: Vec<String>,
    /// Only this metric (repeatable; default: every metric the key sees).
    #[arg(long = "metric")]
    metrics: Vec<String>,
    /// Start: an RFC 3339 time (2024-03-01T00:00:00Z), `now`, or a duration before now (24h, 7d).
    #[arg(long, default_value = "24h", value_name = "TIME")]
    from: String,
    /// End (excluded): as --from.
    #[arg(long, default_value = "now", value_name = "TIME")]
    to: String,
    /// Aggregate into buckets of this width (e.g. 5m, 1h); default: raw points.
    #[arg(long, value_parser = humantime::parse_duration)]
    step: Option<Duration>,
    /// The aggregation within a bucket (with --step).
    #[arg(long, value_enum, default_value_t = AggregationArg::Avg)]
    aggregation: AggregationArg,
    /// The file format.
    #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
    format: FormatArg,
    /// The file to write; `-` for standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Csv,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AggregationArg {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
}

impl AggregationArg {
    fn wire(self) -> v1::Aggregation {
        match self {
            AggregationArg::Avg => v1::Aggregation::Avg,
            AggregationArg::Min => v1::Aggregation::Min,
            AggregationArg::Max => v1::Aggregation::Max,
            AggregationArg::Sum => v1::Aggregation::Sum,
            AggregationArg::Count => v1::Aggregation::Count,
            AggregationArg::Last => v1::Aggregation::Last,
        }
    }
}

/// A time given on the command line, as ms since the Unix epoch, with `now_ms` for "now".
pub(crate) fn parse_time(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if text == "now" {
        return Ok(now_ms);
    }
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .context("times before 1970 cannot be exported")?
            .as_millis();
        return i64::try_from(ms).context("time out of range");
    }
    let ago = humantime::parse_duration(text.trim_start_matches('-')).with_context(|| {
        format!("{text:?} is neither an RFC 3339 time, `now`, nor a duration such as 24h")
    })?;
    Ok(now_ms.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX)))
}

impl ExportArgs {
    /// The request these options describe.
    fn request(&self, now_ms: i64) -> anyhow::Result<v1::ExportSeriesRequest> {
        let step_ms = self
            .step
            .map(|s| i64::try_from(s.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Ok(v1::ExportSeriesRequest {
            devices: Some(v1::DeviceSelector {
                device_ids: self.devices.clone(),
                kind: self.kind.clone().unwrap_or_default(),
                site: self.site.clone().unwrap_or_default(),
                district: self.district.clone().unwrap_or_default(),
            }),
            metrics: self.metrics.clone(),
            start_unix_ms: parse_time(&self.from, now_ms).context("--from")?,
            end_unix_ms: parse_time(&self.to, now_ms).context("--to")?,
            step_ms,
            aggregation: if step_ms > 0 {
                self.aggregation.wire() as i32
            } else {
                v1::Aggregation::Unspecified as i32
            },
            format: match self.format {
                FormatArg::Csv => v1::ExportFormat::Csv,
                FormatArg::Parquet => v1::ExportFormat::Parquet,
            } as i32,
        })
    }
}

/// Runs `citytel export`.
pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let request = args.request(system_now_ms())?;
    let key = args
        .key
        .clone()
        .context("an API key is required: --key or CITYTEL_API_KEY")?;
    let url = if args.grpc.contains("://") {
        args.grpc.clone()
    } else {
        format!("http://{}", args.grpc)
    };
    let to_stdout = args.out.as_os_str() == "-";
    let partial = partial_path(&args.out);
    let written = runtime()?.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url.clone())?
            .connect()
            .await
            .with_context(|| format!("connecting to citytel at {url}"))?;
        let header: tonic::metadata::MetadataValue<_> = format!("Bearer {key}")
            .parse()
            .context("the API key is not valid header text")?;
        let mut client =
            QueryServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
                r.metadata_mut().insert("authorization", header.clone());
                Ok(r)
            });
        let status = |s: tonic::Status| anyhow::anyhow!("{}: {}", s.code(), s.message());
        let mut stream = client
            .export_series(request)
            .await
            .map_err(status)?
            .into_inner();
        let mut out: Box<dyn Write> = if to_stdout {
            Box::new(std::io::stdout().lock())
        } else {
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(&partial)
                    .with_context(|| format!("creating {}", partial.display()))?,
            ))
        };
        let mut bytes = 0u64;
        while let Some(chunk) = stream.message().await.map_err(status)? {
            out.write_all(&chunk.data).context("writing the export")?;
            bytes += chunk.data.len() as u64;
        }
        out.flush().context("writing the export")?;
        anyhow::Ok(bytes)
    });
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            if !to_stdout {
                let _ = std::fs::remove_file(&partial);
            }
            return Err(e);
        }
    };
    if !to_stdout {
        std::fs::rename(&partial, &args.out)
            .with_context(|| format!("renaming {} to {}", partial.display(), args.out.display()))?;
        eprintln!("wrote {bytes} bytes to {}", args.out.display());
    }
    Ok(())
}

/// Where the file is written until it is complete.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_now_or_a_duration_ago() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("24h", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_time("-90m", now).unwrap(), now - 5_400_000);
        assert_eq!(
            parse_time("2024-03-01T00:00:00Z", now).unwrap(),
            1_709_251_200_000
        );
        assert!(parse_time("yesterday", now).is_err());
    }

    #[test]
    fn a_partial_file_sits_next_to_the_output() {
        assert_eq!(
            partial_path(Path::new("/tmp/x/air.parquet")),
            PathBuf::from("/tmp/x/air.parquet.partial")
        );
    }
}
