//! The seam between the ingest path and a time-series backend: a write trait and a read trait.
//!
//! A backend that can only write implements only [`SeriesWriter`]. Points are identified by
//! (device, metric, timestamp); writing a point whose series and timestamp already exist replaces
//! its value (the last write wins, as in InfluxDB), and reads return points sorted by time.

use std::sync::Arc;

/// A point's coordinates and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Device timestamp, ms since the Unix epoch.
    pub time_ms: i64,
    /// The value.
    pub value: f64,
}

/// The latest point of one metric of a device.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestPoint {
    /// Metric name.
    pub metric: Arc<str>,
    /// The point with the greatest timestamp.
    pub point: Point,
}

/// Points of one series as parallel columns, sorted by time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    /// Timestamps, ascending, unique.
    pub times_ms: Vec<i64>,
    /// Values, one per timestamp.
    pub values: Vec<f64>,
}

/// The summary of the points of one series in one time bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Bucket start (inclusive), ms since the Unix epoch.
    pub start_ms: i64,
    /// Number of points.
    pub count: u64,
    /// Sum of the values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Timestamp of the last point.
    pub last_time_ms: i64,
    /// Value of the last point.
    pub last: f64,
}

impl Bucket {
    /// A bucket holding one point.
    pub fn of(start_ms: i64, p: Point) -> Self {
        Bucket {
            start_ms,
            count: 1,
            sum: p.value,
            min: p.value,
            max: p.value,
            last_time_ms: p.time_ms,
            last: p.value,
        }
    }

    /// Adds a point with a timestamp at or after every point already in the bucket.
    pub fn push(&mut self, p: Point) {
        self.count += 1;
        self.sum += p.value;
        self.min = self.min.min(p.value);
        self.max = self.max.max(p.value);
        if p.time_ms >= self.last_time_ms {
            self.last_time_ms = p.time_ms;
            self.last = p.value;
        }
    }

    /// Combines with the summary of later (or interleaved) points of the same bucket.
    pub fn merge(&mut self, other: &Bucket) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.last_time_ms >= self.last_time_ms {
            self.last_time_ms = other.last_time_ms;
            self.last = other.last;
        }
    }
}

/// The stored resolution a bucketed answer was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Raw points.
    Raw,
    /// One-minute rollups.
    Minute,
    /// One-hour rollups.
    Hour,
}

impl Resolution {
    /// `"raw"`, `"1m"` or `"1h"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::Minute => "1m",
            Resolution::Hour => "1h",
        }
    }
}

/// Start of the bucket of width `step_ms` (aligned to the Unix epoch) that holds `time_ms`.
pub fn bucket_start(time_ms: i64, step_ms: i64) -> i64 {
    time_ms.div_euclid(step_ms) * step_ms
}

/// Summarizes sorted points into buckets of `step_ms`.
pub fn bucketize(points: &Points, step_ms: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for (&time_ms, &value) in points.times_ms.iter().zip(&points.values) {
        let p = Point { time_ms, value };
        let start = bucket_start(time_ms, step_ms);
        match out.last_mut() {
            Some(b) if b.start_ms == start => b.push(p),
            _ => out.push(Bucket::of(start, p)),
        }
    }
    out
}

/// A read failed because stored data is unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored data is unreadable: {0}")]
pub struct ReadError(pub String);

/// Write side of a time-series backend.
pub trait SeriesWriter {
    /// Stores one point of the series (device, metric).
    fn write(&mut self, device: &Arc<str>, metric: &Arc<str>, point: Point);
}

/// Read side of a time-series backend.
pub trait SeriesReader {
    /// The latest point of every metric of `device`, sorted by metric name. Backfilled (older)
    /// points never replace a newer latest point.
    fn latest(&self, device: &str) -> Vec<LatestPoint>;

    /// The points of (device, metric) with `start_ms <= time < end_ms`, or `None` if the series
    /// does not exist.
    fn range(
        &self,
        device: &str,
        metric: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<Points>, ReadError>;

    /// Summaries of (device, metric) in epoch-aligned buckets of `step_ms` covering
    /// `start_ms <= time < end_ms` (empty buckets omitted), and the resolution they came from.
    /// Backends with rollups answer from them when the step allows; this default reads raw points.
    fn buckets(
        &self,
        device: &str,
        metric: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Option<(Vec<Bucket>, Resolution)>, ReadError> {
        Ok(self
            .range(device, metric, start_ms, end_ms)?
            .map(|points| (bucketize(&points, step_ms), Resolution::Raw)))
    }
}
