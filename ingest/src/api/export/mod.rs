//! `ExportSeries`: a file (CSV or Parquet) of the series a caller sees, streamed in chunks.
//!
//! The request is checked first (its errors are the RPC's status). Then the export runs in the
//! [`Reads`] pool like any heavy read, within the request's deadline: under the state lock it
//! resolves the devices and metrics the caller sees ([`Visible`]) and the licence of its
//! organisation; then, device by device, it captures the device's series (briefly under the
//! lock) and reads them without it, window by window, writing rows into the encoder, whose bytes
//! go out in chunks over a bounded channel ([`sink`]). A window holds about
//! [`WINDOW_POINTS`] points: each series is first read at a step of one day (from the hourly
//! rollups, cheap) to learn which days hold how many points, so empty stretches of a long range
//! cost nothing and a dense day is never read with a month. Memory is bounded by one window, the
//! encoder's batch (one row group for Parquet) and the chunks in flight, whatever the export's
//! size.
//!
//! Rows are ordered by device, then metric, then time; their columns are described in [`rows`].
//! With a step, each row is one bucket (aligned to multiples of the step since the Unix epoch,
//! empty ones omitted) and its value the aggregate, computed exactly as `QuerySeries` computes
//! it. An error after the first chunk ends the stream with that status: a client keeps a file
//! only when the stream ended OK.
//!
//! - [`rows`]: the columns, units and RFC 3339 times.
//! - [`csv_file`] and [`parquet_file`]: the two encoders.
//! - [`sink`]: the chunks and their backpressure.

mod csv_file;
mod parquet_file;
pub(crate) mod rows;
mod sink;

use std::sync::Arc;

use citytel_proto::v1;
use citytel_storage::engine::keys::DAY_MS;
use citytel_storage::series::SeriesReader;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::convert::aggregation;
use super::error::ApiError;
use super::reads::{Deadline, Reads};
use super::watch::Answers;
use crate::db::Database;
use crate::query::{self, Aggregation, Selector, Visible};
use crate::state::access::Caller;
use rows::{EARLIEST_MS, LATEST_MS, SeriesInfo, rfc3339_ms, unit};
use sink::{CHUNKS_IN_FLIGHT, ChunkSink};

/// About how many points one read of a series holds.
const WINDOW_POINTS: u64 = 500_000;

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Parquet,
}

/// A checked `ExportSeriesRequest`.
#[derive(Debug, Clone)]
pub(crate) struct Export {
    selector: Selector,
    metrics: Vec<String>,
    start_ms: i64,
    end_ms: i64,
    step: Option<(i64, Aggregation)>,
    format: Format,
}

impl Export {
    /// Checks a request.
    pub(crate) fn from_request(req: v1::ExportSeriesRequest) -> Result<Self, ApiError> {
        let invalid = |m: String| Err(ApiError::InvalidArgument(m));
        let format = match v1::ExportFormat::try_from(req.format) {
            Ok(v1::ExportFormat::Csv) => Format::Csv,
            Ok(v1::ExportFormat::Parquet) => Format::Parquet,
            _ => {
                return invalid("format must be EXPORT_FORMAT_CSV or EXPORT_FORMAT_PARQUET".into());
            }
        };
        if req.end_unix_ms <= req.start_unix_ms {
            return invalid(format!(
                "end_unix_ms ({}) must be greater than start_unix_ms ({})",
                req.end_unix_ms, req.start_unix_ms
            ));
        }
        if req.start_unix_ms < EARLIEST_MS || req.end_unix_ms > LATEST_MS {
            return invalid(format!(
                "the range must lie between {EARLIEST_MS} (1970) and {LATEST_MS} (year 10000)"
            ));
        }
        let step = match (req.step_ms, aggregation(req.aggregation, "aggregation")?) {
            (0, None) => None,
            (0, Some(_)) => return invalid("aggregation needs step_ms > 0".into()),
            (step, _) if step < 0 => return invalid("step_ms must not be negative".into()),
            (_, None) => return invalid("step_ms > 0 needs an aggregation".into()),
            (step, Some(agg)) => Some((step, agg)),
        };
        Ok(Export {
            selector: req.devices.unwrap_or_default().into(),
            metrics: req.metrics,
            start_ms: req.start_unix_ms,
            end_ms: req.end_unix_ms,
            step,
            format,
        })
    }
}

/// What the file says about itself: the licence of the caller's organisation and what the
/// values are (CSV comment lines, Parquet key-value metadata).
#[derive(Debug, Clone)]
pub(crate) struct Header {
    organisation: String,
    licence: String,
    start_ms: i64,
    end_ms: i64,
    step: Option<(i64, Aggregation)>,
}

impl Header {
    /// The (key, value) pairs, in order; the licence and the organisation are left out when
    /// empty (no organisation, or one without a licence).
    pub(crate) fn describe(&self) -> Vec<(&'static str, String)> {
        let (mut start, mut end) = (String::new(), String::new());
        rfc3339_ms(self.start_ms, &mut start);
        rfc3339_ms(self.end_ms, &mut end);
        let values = match self.step {
            None => "raw points".to_string(),
            Some((step, agg)) => format!(
                "{} of each {step} ms bucket, at the bucket's start",
                agg.as_str()
            ),
        };
        [
            ("licence", self.licence.clone()),
            ("organisation", self.organisation.clone()),
            ("values", values),
            ("from", start),
            ("to", format!("{end} (excluded)")),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

/// One of the two encoders.
enum Encoder {
    Csv(csv_file::CsvEncoder),
    Parquet(Box<parquet_file::ParquetEncoder>),
}

impl Encoder {
    fn new(format: Format, sink: ChunkSink, header: &Header) -> Result<Self, String> {
        Ok(match format {
            Format::Csv => {
                Encoder::Csv(csv_file::CsvEncoder::new(sink, header).map_err(|e| e.to_string())?)
            }
            Format::Parquet => Encoder::Parquet(Box::new(
                parquet_file::ParquetEncoder::new(sink, header).map_err(|e| e.to_string())?,
            )),
        })
    }

    fn write(&mut self, s: &SeriesInfo, times: &[i64], values: &[f64]) -> Result<(), String> {
        match self {
            Encoder::Csv(e) => e.write(s, times, values).map_err(|e| e.to_string()),
            Encoder::Parquet(e) => e.write(s, times, values).map_err(|e| e.to_string()),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Encoder::Csv(e) => e.finish().map_err(|e| e.to_string()),
            Encoder::Parquet(e) => e.finish().map_err(|e| e.to_string()),
        }
    }
}

/// Starts an export for `caller` and returns its stream of chunks.
pub(crate) fn start(
    db: Arc<Database>,
    reads: &Reads,
    deadline: Deadline,
    caller: Caller,
    export: Export,
) -> Answers<v1::ExportChunk> {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let reads = reads.clone();
    let sink_tx = tx.clone();
    // Ends when the export does: by its deadline at the latest.
    tokio::spawn(async move {
        let work = move |deadline: &Deadline| run(&db, &caller, &export, sink_tx, deadline);
        if let Err(status) = reads.run(deadline, work).await {
            let _ = tx.send(Err(status)).await;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// Writes the export into `tx`, on a blocking thread of the read pool.
fn run(
    db: &Database,
    caller: &Caller,
    export: &Export,
    tx: mpsc::Sender<sink::Chunk>,
    deadline: &Deadline,
) -> Result<(), ApiError> {
    let (devices, header) = plan(db, caller, export)?;
    let failed = |e: String| {
        if deadline.expired() {
            ApiError::DeadlineExceeded
        } else if tx.is_closed() {
            ApiError::Unavailable("the client stopped reading the export".into())
        } else {
            ApiError::Internal(format!("the export failed: {e}"))
        }
    };
    let sink = ChunkSink::new(tx.clone(), deadline.clone());
    let mut encoder = Encoder::new(export.format, sink, &header).map_err(&failed)?;
    for series in &devices {
        deadline.check()?;
        let capture = db.read().capture(
            series.iter().map(|s| (&s.device_id, &*s.metric)),
            export.start_ms,
            export.end_ms,
        );
        for s in series {
            let Some((days, _)) = capture.buckets(
                &s.device_id,
                &s.metric,
                export.start_ms,
                export.end_ms,
                DAY_MS,
            )?
            else {
                continue;
            };
            let days: Vec<(i64, u64)> = days.iter().map(|b| (b.start_ms, b.count)).collect();
            for (lo, hi) in windows(
                &days,
                export.start_ms,
                export.end_ms,
                export.step.map(|s| s.0),
            ) {
                deadline.check()?;
                let (times, values) = match export.step {
                    None => match capture.range(&s.device_id, &s.metric, lo, hi)? {
                        Some(p) => (p.times_ms, p.values),
                        None => continue,
                    },
                    Some((step, agg)) => {
                        match capture.buckets(&s.device_id, &s.metric, lo, hi, step)? {
                            Some((buckets, _)) => (
                                buckets.iter().map(|b| b.start_ms).collect(),
                                buckets.iter().map(|b| agg.of(b)).collect(),
                            ),
                            None => continue,
                        }
                    }
                };
                encoder.write(s, &times, &values).map_err(&failed)?;
            }
        }
    }
    encoder.finish().map_err(&failed)
}

/// Under the state lock: the series to export, grouped by device, and the file's header.
fn plan(
    db: &Database,
    caller: &Caller,
    export: &Export,
) -> Result<(Vec<Vec<SeriesInfo>>, Header), ApiError> {
    let state = db.read();
    let visible = Visible::of(&caller.scope, &state);
    let registry = state.registry();
    let mut devices = Vec::new();
    for id in query::select(registry, &export.selector, &visible)? {
        let Some(record) = registry.get(&id) else {
            continue;
        };
        let district = record.district.as_deref().map(str::to_string);
        let series: Vec<SeriesInfo> = record
            .metrics
            .iter()
            .filter(|m| export.metrics.is_empty() || export.metrics.iter().any(|w| *w == ***m))
            .filter(|m| visible.metric(m))
            .map(|m| SeriesInfo {
                device_id: record.device_id.clone(),
                site: record.site.clone(),
                kind: record.kind.clone(),
                district: district.clone(),
                metric: m.clone(),
                unit: unit(&record.kind, m),
            })
            .collect();
        if !series.is_empty() {
            devices.push(series);
        }
    }
    let org = state.access().org(&caller.org);
    let header = Header {
        organisation: org.map(|o| o.name.clone()).unwrap_or_default(),
        licence: org.map(|o| o.licence.clone()).unwrap_or_default(),
        start_ms: export.start_ms,
        end_ms: export.end_ms,
        step: export.step,
    };
    Ok((devices, header))
}

/// The windows `[lo, hi)` to read a series in, from its days with points (`(day start, count)`,
/// in order): consecutive days are read together up to about [`WINDOW_POINTS`] points, days
/// without points are skipped. With a step, a window ends on a multiple of it, so no bucket is
/// split between two windows.
fn windows(days: &[(i64, u64)], start_ms: i64, end_ms: i64, step: Option<i64>) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut from = start_ms;
    let mut i = 0;
    while i < days.len() {
        let lo = days[i].0.max(from);
        let (mut points, mut hi) = (0u64, lo);
        while i < days.len() && (points == 0 || points + days[i].1 <= WINDOW_POINTS) {
            points += days[i].1;
            hi = days[i].0.saturating_add(DAY_MS).min(end_ms);
            i += 1;
        }
        if let Some(step) = step {
            let r = hi.rem_euclid(step);
            if r != 0 {
                hi = hi.saturating_add(step - r).min(end_ms);
            }
            while i < days.len() && days[i].0.saturating_add(DAY_MS) <= hi {
                i += 1;
            }
        }
        if hi > lo {
            out.push((lo, hi));
        }
        from = hi;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;

    #[test]
    fn windows_skip_empty_days_and_gather_small_ones() {
        let days = [(0, 10), (DAY, 10), (5 * DAY, 10)];
        assert_eq!(windows(&days, 0, 10 * DAY, None), vec![(0, 6 * DAY)]);
        let dense = [(0, WINDOW_POINTS), (DAY, 1), (9 * DAY, 1)];
        assert_eq!(
            windows(&dense, DAY / 2, 10 * DAY, None),
            vec![(DAY / 2, DAY), (DAY, 10 * DAY)]
        );
    }

    #[test]
    fn windows_with_a_step_end_on_its_multiples() {
        let step = DAY * 3 / 2;
        let days = [(0, WINDOW_POINTS), (DAY, WINDOW_POINTS), (2 * DAY, 1)];
        let w = windows(&days, 0, 10 * DAY, Some(step));
        assert_eq!(w, vec![(0, step), (step, 2 * step)]);
        for (lo, hi) in &w[..1] {
            assert_eq!(hi % step, 0, "{lo}..{hi}");
        }
        assert_eq!(windows(&[], 0, DAY, Some(step)), vec![]);
    }
}
