//! Turns one chunk into a [`PointBatch`] and a tally, with line numbers relative to the chunk.
//! Pure and independent of every other chunk, so chunks can be processed on any thread.

use std::collections::HashSet;
use std::str;

use citytel_proto::topic::{self, Channel};
use citytel_proto::v1::DatasetRecord;
use prost::Message as _;

use super::lineproto::{Line, parse_into};
use super::mapping::{BatchBuilder, Mapped, Mapping, is_valid_metric_name, map_line};
use super::reader::{Chunk, Frame, record_len};
use super::summary::{BadLineReason, BadLineSample, Tally, sample_text};
use super::{BatchPoint, Format, ImportOptions, PointBatch};

/// What a chunk gave.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Its points.
    pub(super) batch: PointBatch,
    /// Its counts, line numbers relative to the chunk.
    pub(super) tally: Tally,
    /// In strict mode, the first bad line (relative line number); the batch then holds only the
    /// lines before it.
    pub(super) strict_error: Option<BadLineSample>,
}

/// Bytes of input per point, on the low side, by format: a line protocol line of a device with
/// five metrics is about 155 bytes (31 per point), a protobuf reading of five doubles about 50.
fn bytes_per_point(format: Format) -> usize {
    match format {
        Format::LineProtocol => 28,
        Format::DatasetProto => 9,
    }
}

/// Parses and maps `chunk`, filling `points` (a spent batch's vector, or a new one) with its
/// points.
pub(super) fn process(chunk: &Chunk, options: &ImportOptions, points: Vec<BatchPoint>) -> Outcome {
    let mut work = Work {
        options,
        batch: BatchBuilder::reusing(points, chunk.data.len() / bytes_per_point(options.format)),
        tally: Tally {
            bytes: chunk.data.len() as u64,
            ..Tally::default()
        },
        strict_error: None,
    };
    match options.format {
        Format::LineProtocol => work.line_protocol(&chunk.data),
        Format::DatasetProto => work.dataset(chunk),
    }
    Outcome {
        batch: work.batch.finish(),
        tally: work.tally,
        strict_error: work.strict_error,
    }
}

/// The state of one chunk's processing.
struct Work<'o> {
    options: &'o ImportOptions,
    batch: BatchBuilder,
    tally: Tally,
    strict_error: Option<BadLineSample>,
}

impl Work<'_> {
    fn line_protocol(&mut self, data: &[u8]) {
        let mapping = Mapping {
            device_tag: &self.options.device_tag,
            default_site: &self.options.default_site,
            precision: self.options.precision,
        };
        // Valid UTF-8 as a whole (the usual case) spares a check per line.
        let whole = str::from_utf8(data).ok();
        let mut line = Line::default();
        let mut start = 0;
        let mut number = 0;
        while start < data.len() {
            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
            number += 1;
            let raw = &data[start..end];
            let text = match whole {
                Some(whole) => Ok(&whole[start..end]),
                None => str::from_utf8(raw),
            };
            start = end + 1;
            let text = match text {
                Ok(text) => text,
                Err(error) => {
                    let column = error.valid_up_to() + 1;
                    let lossy = String::from_utf8_lossy(raw);
                    self.bad(BadLineReason::InvalidUtf8, number, || {
                        (
                            format!("column {column}: invalid UTF-8"),
                            sample_text(&lossy),
                        )
                    });
                    if self.strict_error.is_some() {
                        break;
                    }
                    continue;
                }
            };
            match parse_into(text, &mut line) {
                Ok(false) => self.tally.skipped_lines += 1,
                Ok(true) => match map_line(&line, &mapping, &mut self.batch) {
                    Ok(mapped) => self.count(mapped),
                    Err(error) => self.bad(error.reason(), number, || {
                        (error.to_string(), sample_text(text))
                    }),
                },
                Err(error) => self.bad(BadLineReason::Syntax, number, || {
                    (error.to_string(), sample_text(text))
                }),
            }
            if self.strict_error.is_some() {
                break;
            }
        }
        self.tally.lines = number;
    }

    fn dataset(&mut self, chunk: &Chunk) {
        let data = chunk.data.as_slice();
        let mut pos = 0;
        let mut number = 0;
        while pos < data.len() && self.strict_error.is_none() {
            number += 1;
            let offset = chunk.offset + pos as u64;
            let (header, len) = match record_len(&data[pos..]) {
                Frame::Complete { header, len } if pos + header + len <= data.len() => {
                    (header, len)
                }
                Frame::Invalid(reason) => {
                    // The reader stops before an invalid prefix; keep the worker safe anyway.
                    self.bad(BadLineReason::InvalidRecord, number, || {
                        (reason, format!("record at byte {offset}"))
                    });
                    break;
                }
                _ => {
                    self.bad(BadLineReason::TruncatedRecord, number, || {
                        (
                            "the file ends inside this record".to_string(),
                            format!("record at byte {offset}"),
                        )
                    });
                    break;
                }
            };
            let body = &data[pos + header..pos + header + len];
            pos += header + len;
            match DatasetRecord::decode(body) {
                Ok(record) => match map_record(&record, &mut self.batch) {
                    Ok(mapped) => self.count(mapped),
                    Err((reason, message)) => {
                        self.bad(reason, number, || (message, sample_text(&record.topic)))
                    }
                },
                Err(error) => self.bad(BadLineReason::InvalidRecord, number, || {
                    (
                        format!("not a DatasetRecord: {error}"),
                        format!("record at byte {offset}"),
                    )
                }),
            }
        }
        self.tally.lines = number;
    }

    fn count(&mut self, mapped: Mapped) {
        self.tally.points += mapped.points;
        self.tally.skipped_string_fields += mapped.skipped_string_fields;
        self.tally.truncated_timestamps += u64::from(mapped.truncated_timestamp);
    }

    /// Counts a bad line; in strict mode keeps it as the error that ends the import.
    fn bad(
        &mut self,
        reason: BadLineReason,
        line: u64,
        describe: impl FnOnce() -> (String, String),
    ) {
        if self.options.strict {
            let (reason, text) = describe();
            self.strict_error = Some(BadLineSample { line, reason, text });
            return;
        }
        self.tally
            .bad_line(reason, line, self.options.max_error_samples, describe);
    }
}

/// Maps a dataset record: all of its readings, or none and why.
fn map_record(
    record: &DatasetRecord,
    batch: &mut BatchBuilder,
) -> Result<Mapped, (BadLineReason, String)> {
    let invalid = |message: String| (BadLineReason::InvalidRecord, message);
    let topic = topic::parse(&record.topic).map_err(|e| invalid(e.to_string()))?;
    if topic.channel != Channel::Telemetry {
        return Err(invalid("not a telemetry topic".to_string()));
    }
    let telemetry = record
        .batch
        .as_ref()
        .ok_or_else(|| invalid("record without a batch".to_string()))?;
    if telemetry.device_id != topic.device_id {
        return Err(invalid(format!(
            "batch device id {:?} is not the topic's {:?}",
            telemetry.device_id, topic.device_id
        )));
    }
    let names = &telemetry.metric_names;
    if let Some(name) = names.iter().find(|n| !is_valid_metric_name(n)) {
        return Err((
            BadLineReason::InvalidMetricName,
            format!("invalid metric name {name:?}"),
        ));
    }
    if names.iter().collect::<HashSet<_>>().len() != names.len() {
        return Err(invalid("duplicate metric names".to_string()));
    }
    for reading in &telemetry.readings {
        if reading.values.len() != names.len() {
            return Err(invalid(format!(
                "reading {} has {} values for {} metrics",
                reading.seq,
                reading.values.len(),
                names.len()
            )));
        }
        if reading.values.iter().any(|v| !v.is_finite()) {
            return Err((
                BadLineReason::NonFiniteValue,
                format!("reading {} has a NaN or infinite value", reading.seq),
            ));
        }
    }
    let device = batch.device(topic.device_id, topic.site, topic.kind);
    let metrics: Vec<u32> = names.iter().map(|n| batch.metric(n)).collect();
    let mut mapped = Mapped::default();
    for reading in &telemetry.readings {
        for (&metric, &value) in metrics.iter().zip(&reading.values) {
            batch.push(BatchPoint {
                device,
                metric,
                time_ms: reading.time_unix_ms,
                value,
            });
            mapped.points += 1;
        }
    }
    Ok(mapped)
}
