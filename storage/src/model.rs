//! The in-memory series store: per-series sorted columns plus the latest point.
//!
//! Appends in time order are a push; out-of-order points are inserted in place; a point with an
//! existing timestamp replaces the value. The latest point is kept per series, so "latest" never
//! scans.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::series::{LatestPoint, Point, Points, ReadError, SeriesReader, SeriesWriter};

#[derive(Debug, Default)]
struct Series {
    times: Vec<i64>,
    values: Vec<f64>,
}

impl Series {
    fn write(&mut self, p: Point) {
        match self.times.last() {
            None => self.push(p),
            Some(&last) if p.time_ms > last => self.push(p),
            Some(_) => match self.times.binary_search(&p.time_ms) {
                Ok(i) => self.values[i] = p.value,
                Err(i) => {
                    self.times.insert(i, p.time_ms);
                    self.values.insert(i, p.value);
                }
            },
        }
    }

    fn push(&mut self, p: Point) {
        self.times.push(p.time_ms);
        self.values.push(p.value);
    }

    fn latest(&self) -> Option<Point> {
        Some(Point {
            time_ms: *self.times.last()?,
            value: *self.values.last()?,
        })
    }
}

/// Every series in memory, grouped by device.
#[derive(Debug, Default)]
pub struct Head {
    devices: HashMap<Arc<str>, BTreeMap<Arc<str>, Series>>,
    points: u64,
}

impl Head {
    /// Number of points held.
    pub fn points(&self) -> u64 {
        self.points
    }
}

impl SeriesWriter for Head {
    fn write(&mut self, device: &Arc<str>, metric: &Arc<str>, point: Point) {
        let metrics = match self.devices.get_mut(device) {
            Some(m) => m,
            None => self.devices.entry(device.clone()).or_default(),
        };
        let series = match metrics.get_mut(metric) {
            Some(s) => s,
            None => metrics.entry(metric.clone()).or_default(),
        };
        let before = series.times.len();
        series.write(point);
        self.points += (series.times.len() - before) as u64;
    }
}

impl SeriesReader for Head {
    fn latest(&self, device: &str) -> Vec<LatestPoint> {
        let Some(metrics) = self.devices.get(device) else {
            return Vec::new();
        };
        metrics
            .iter()
            .filter_map(|(metric, s)| {
                Some(LatestPoint {
                    metric: metric.clone(),
                    point: s.latest()?,
                })
            })
            .collect()
    }

    fn range(
        &self,
        device: &str,
        metric: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<Points>, ReadError> {
        let Some(series) = self.devices.get(device).and_then(|m| m.get(metric)) else {
            return Ok(None);
        };
        let from = series.times.partition_point(|&t| t < start_ms);
        let to = series.times.partition_point(|&t| t < end_ms).max(from);
        Ok(Some(Points {
            times_ms: series.times[from..to].to_vec(),
            values: series.values[from..to].to_vec(),
        }))
    }
}
