//! What an import reports: counts, bad lines by reason with samples, and the per-chunk tally the
//! workers fill and the importer merges in file order.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::Format;

/// Longest line text kept in a [`BadLineSample`], in characters.
pub const SAMPLE_CHARS: usize = 200;

/// Why a line (or a protobuf record) was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BadLineReason {
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line is not valid line protocol.
    Syntax,
    /// The line has no timestamp.
    MissingTimestamp,
    /// The timestamp does not fit in milliseconds since the epoch.
    TimestampOutOfRange,
    /// The line has no device tag.
    MissingDeviceTag,
    /// The device id is not a valid citytel id.
    InvalidDeviceId,
    /// The site is not a valid citytel id.
    InvalidSite,
    /// The kind is not a valid citytel id.
    InvalidKind,
    /// A metric name is not a valid citytel id or is longer than 64 bytes.
    InvalidMetricName,
    /// A value is NaN or infinite.
    NonFiniteValue,
    /// A protobuf record does not decode, or its topic or batch is invalid.
    InvalidRecord,
    /// The file ends in the middle of a protobuf record.
    TruncatedRecord,
}

impl BadLineReason {
    /// A short snake_case name, e.g. `missing_timestamp`.
    pub fn as_str(self) -> &'static str {
        match self {
            BadLineReason::InvalidUtf8 => "invalid_utf8",
            BadLineReason::Syntax => "syntax",
            BadLineReason::MissingTimestamp => "missing_timestamp",
            BadLineReason::TimestampOutOfRange => "timestamp_out_of_range",
            BadLineReason::MissingDeviceTag => "missing_device_tag",
            BadLineReason::InvalidDeviceId => "invalid_device_id",
            BadLineReason::InvalidSite => "invalid_site",
            BadLineReason::InvalidKind => "invalid_kind",
            BadLineReason::InvalidMetricName => "invalid_metric_name",
            BadLineReason::NonFiniteValue => "non_finite_value",
            BadLineReason::InvalidRecord => "invalid_record",
            BadLineReason::TruncatedRecord => "truncated_record",
        }
    }
}

impl fmt::Display for BadLineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bad line, kept as an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLineSample {
    /// 1-based line number (record number for protobuf datasets).
    pub line: u64,
    /// What is wrong, e.g. `column 12: missing field value`.
    pub reason: String,
    /// The line, cut to [`SAMPLE_CHARS`] characters (with `…` when cut); for a protobuf record,
    /// its topic or a description of where it lies.
    pub text: String,
}

/// The bad lines of one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BadLines {
    /// How many lines had this reason.
    pub count: u64,
    /// The first few of them, in file order.
    pub samples: Vec<BadLineSample>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// The format the file was read as.
    pub format: Format,
    /// Bytes read.
    pub bytes: u64,
    /// Lines read, blank lines and comments included (records, for protobuf datasets).
    pub lines: u64,
    /// Blank lines and comments.
    pub skipped_lines: u64,
    /// Points handed to the sink.
    pub points: u64,
    /// Bad lines by reason, each with its first `max_error_samples` examples.
    pub bad_lines: BTreeMap<BadLineReason, BadLines>,
    /// String fields skipped (citytel stores numbers only).
    pub skipped_string_fields: u64,
    /// Lines whose timestamp had a sub-millisecond part, which was dropped.
    pub truncated_timestamps: u64,
    /// Wall-clock time of the import.
    pub elapsed: Duration,
}

impl ImportSummary {
    /// An empty summary for a file of `format`.
    pub fn new(format: Format) -> Self {
        ImportSummary {
            format,
            bytes: 0,
            lines: 0,
            skipped_lines: 0,
            points: 0,
            bad_lines: BTreeMap::new(),
            skipped_string_fields: 0,
            truncated_timestamps: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// Bad lines over all reasons.
    pub fn bad_line_count(&self) -> u64 {
        self.bad_lines.values().map(|b| b.count).sum()
    }

    /// Adds the tally of a chunk whose first line is line `first_line` (1-based), keeping at most
    /// `max_samples` samples per reason.
    pub(super) fn merge(&mut self, tally: Tally, first_line: u64, max_samples: usize) {
        self.bytes += tally.bytes;
        self.lines += tally.lines;
        self.skipped_lines += tally.skipped_lines;
        self.points += tally.points;
        self.skipped_string_fields += tally.skipped_string_fields;
        self.truncated_timestamps += tally.truncated_timestamps;
        for (reason, bad) in tally.bad_lines {
            let entry = self.bad_lines.entry(reason).or_default();
            entry.count += bad.count;
            let room = max_samples.saturating_sub(entry.samples.len());
            entry
                .samples
                .extend(bad.samples.into_iter().take(room).map(|mut sample| {
                    sample.line += first_line - 1;
                    sample
                }));
        }
    }
}

/// The counts of one chunk, with line numbers relative to the chunk (its first line is 1).
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) bytes: u64,
    pub(super) lines: u64,
    pub(super) skipped_lines: u64,
    pub(super) points: u64,
    pub(super) skipped_string_fields: u64,
    pub(super) truncated_timestamps: u64,
    pub(super) bad_lines: BTreeMap<BadLineReason, BadLines>,
}

impl Tally {
    /// Counts a bad line; builds its sample (reason and text, from `describe`) only while there
    /// is room for one.
    pub(super) fn bad_line(
        &mut self,
        reason: BadLineReason,
        line: u64,
        max_samples: usize,
        describe: impl FnOnce() -> (String, String),
    ) {
        let entry = self.bad_lines.entry(reason).or_default();
        entry.count += 1;
        if entry.samples.len() < max_samples {
            let (reason, text) = describe();
            entry.samples.push(BadLineSample { line, reason, text });
        }
    }
}

/// `text` cut to [`SAMPLE_CHARS`] characters, with `…` when cut.
pub(super) fn sample_text(text: &str) -> String {
    match text.char_indices().nth(SAMPLE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
