//! Bulk import of files: InfluxDB line protocol (a migration path for InfluxDB users) and
//! citytel's own dataset files (length-delimited `citytel.v1.DatasetRecord`s, as written by
//! `firmware-sim dataset`).
//!
//! This module reads, parses and maps; it hands [`PointBatch`]es to an [`ImportSink`], which
//! stores them. [`import_file`] reads the file in large chunks cut at line (or record)
//! boundaries, parses and maps the chunks on `threads` worker threads, and calls the sink on the
//! calling thread with the batches in file order. Bad lines are counted by reason with exact line
//! numbers and a few samples, or, in strict mode, stop the import.
//!
//! - [`lineproto`]: the line protocol parser and writer.
//! - [`mapping`]: how a line becomes a device, metrics and a time.
//! - [`summary`](ImportSummary): what an import reports.
//! - `reader`, `worker`, `run`: chunking, per-chunk processing and the parallel driver.

pub mod lineproto;
pub mod mapping;
mod reader;
mod run;
mod summary;
mod worker;

#[cfg(test)]
mod lineproto_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use mapping::Precision;
pub use reader::MAX_RECORD_BYTES;
pub use run::import_file;
pub use summary::{BadLineReason, BadLineSample, BadLines, ImportSummary, SAMPLE_CHARS};

/// Receives the imported points, batch by batch, in file order.
pub trait ImportSink {
    /// Stores `batch`. An error stops the import and is returned by [`import_file`]. The batch's
    /// vectors are reused for later chunks once this returns.
    fn write(&mut self, batch: &PointBatch) -> Result<(), ImportError>;
}

/// Identifies a device: its id, site and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKey {
    /// The device id, e.g. `cab-0001`.
    pub device_id: String,
    /// The site, e.g. `site-01`.
    pub site: String,
    /// The kind, e.g. `cabinet`.
    pub kind: String,
}

/// Points of one chunk of the file, with their devices and metrics listed once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointBatch {
    /// The devices the points refer to.
    pub devices: Vec<DeviceKey>,
    /// The metric names the points refer to.
    pub metrics: Vec<String>,
    /// The points, in file order.
    pub points: Vec<BatchPoint>,
}

/// One value of one metric of one device at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchPoint {
    /// Index into [`PointBatch::devices`].
    pub device: u32,
    /// Index into [`PointBatch::metrics`].
    pub metric: u32,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The value, always finite.
    pub value: f64,
}

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// InfluxDB line protocol.
    LineProtocol,
    /// Length-delimited `citytel.v1.DatasetRecord`s.
    DatasetProto,
}

impl Format {
    /// The format a file name implies: `.lp`, `.txt` and `.line` are line protocol, `.pb` a
    /// dataset; `None` for anything else.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "lp" | "txt" | "line" => Some(Format::LineProtocol),
            "pb" => Some(Format::DatasetProto),
            _ => None,
        }
    }

    /// The short name: `lp` or `proto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::LineProtocol => "lp",
            Format::DatasetProto => "proto",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    /// `lp` (or `line-protocol`) or `proto` (or `pb`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lp" | "line-protocol" => Ok(Format::LineProtocol),
            "proto" | "pb" => Ok(Format::DatasetProto),
            _ => Err(format!("unknown format {s:?} (expected lp or proto)")),
        }
    }
}

/// How to import a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The file format.
    pub format: Format,
    /// The tag holding the device id (line protocol).
    pub device_tag: String,
    /// The site of lines without a `site` tag (line protocol).
    pub default_site: String,
    /// The unit of line protocol timestamps.
    pub precision: Precision,
    /// Threads that parse and map (at least 1; 1 parses on the calling thread).
    pub threads: usize,
    /// Stop at the first bad line with [`ImportError::BadLine`], instead of counting it.
    pub strict: bool,
    /// Sample lines kept per bad-line reason.
    pub max_error_samples: usize,
    /// Bytes per chunk: the unit of parallel work (lines or records longer than this still
    /// work).
    pub chunk_size: usize,
}

impl Default for ImportOptions {
    /// Line protocol with nanosecond timestamps, device tag `device_id`, default site `unknown`,
    /// one thread per core, 20 samples per reason, 4 MiB chunks.
    fn default() -> Self {
        ImportOptions {
            format: Format::LineProtocol,
            device_tag: "device_id".to_string(),
            default_site: "unknown".to_string(),
            precision: Precision::Nanoseconds,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            strict: false,
            max_error_samples: 20,
            chunk_size: 4 << 20,
        }
    }
}

impl ImportOptions {
    /// Checks the options that could make every line bad or the import impossible.
    pub fn validate(&self) -> Result<(), ImportError> {
        if self.device_tag.is_empty() {
            return Err(ImportError::Options(
                "the device tag must not be empty".into(),
            ));
        }
        if !citytel_proto::topic::is_valid_id(&self.default_site) {
            return Err(ImportError::Options(format!(
                "default site {:?} is not a valid id ([A-Za-z0-9._-], 1 to 128 bytes)",
                self.default_site
            )));
        }
        if self.threads == 0 || self.chunk_size == 0 {
            return Err(ImportError::Options(
                "threads and chunk size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Where an import is, reported after each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressUpdate {
    /// Bytes parsed and handed to the sink.
    pub bytes_done: u64,
    /// Size of the file.
    pub bytes_total: u64,
    /// Lines (or records) done.
    pub lines: u64,
    /// Points handed to the sink.
    pub points: u64,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Strict mode: a bad line (or record, for datasets).
    #[error("{}:{line}: {reason}: {text}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line (or record) number.
        line: u64,
        /// What is wrong.
        reason: String,
        /// The line, cut to [`SAMPLE_CHARS`] characters.
        text: String,
    },
    /// A dataset record's length prefix is invalid, so no later record can be found.
    #[error("{}: record {record} at byte {offset}: {reason}; the rest of the file cannot be read", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based record number.
        record: u64,
        /// Byte offset of the record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The options are invalid.
    #[error("invalid import options: {0}")]
    Options(String),
    /// The sink failed.
    #[error("storing imported points failed: {0}")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A worker thread panicked (a bug).
    #[error("an import worker thread panicked")]
    WorkerPanicked,
}

impl ImportError {
    /// Wraps a sink's own error.
    pub fn sink(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ImportError::Sink(error.into())
    }
}
