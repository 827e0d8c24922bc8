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
    fn range(&self, device: &str, metric: &str, start_ms: i64, end_ms: i64) -> Option<Points>;
}
