//! Query planning over any [`SeriesReader`]: what a caller sees ([`visible`]), device selection
//! within it, step buckets, aggregation within a bucket and across devices.
//!
//! Semantics: buckets are aligned to multiples of the step since the Unix epoch and hold the
//! points with `start <= time < end`; empty buckets are omitted. With a cross-device aggregate,
//! each device's bucket is first reduced with the per-bucket aggregation, then the per-device
//! values of a bucket are combined (so "avg across, avg per bucket" is the mean of the devices'
//! means, each device weighing the same).

mod aggregate;
mod select;
pub(crate) mod visible;

use std::sync::Arc;

pub(crate) use aggregate::Aggregation;
pub(crate) use select::{Selector, select, select_after};
pub(crate) use visible::Visible;

use citytel_storage::series::{Points, ReadError, Resolution, SeriesReader};

/// Largest number of buckets one series may have in an answer.
pub(crate) const MAX_BUCKETS: i64 = 100_000;

/// A validated series query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesQuery {
    /// Devices, in the order of the answer.
    pub(crate) devices: Vec<Arc<str>>,
    /// The metric.
    pub(crate) metric: String,
    /// Range start (inclusive).
    pub(crate) start_ms: i64,
    /// Range end (exclusive).
    pub(crate) end_ms: i64,
    /// Bucketing: step and per-bucket aggregation; `None` for raw points.
    pub(crate) step: Option<(i64, Aggregation)>,
    /// Cross-device aggregation (requires a step).
    pub(crate) across: Option<Aggregation>,
}

/// Why a query is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueryError {
    /// A field is missing or out of range.
    #[error("{0}")]
    Invalid(String),
    /// A device in an explicit list is unknown.
    #[error("device {0:?} not found")]
    UnknownDevice(String),
}

impl SeriesQuery {
    /// Checks ranges and combinations.
    pub(crate) fn validate(&self) -> Result<(), QueryError> {
        let invalid = |m: String| Err(QueryError::Invalid(m));
        if self.metric.is_empty() {
            return invalid("metric is required".into());
        }
        if self.end_ms <= self.start_ms {
            return invalid(format!(
                "end_unix_ms ({}) must be greater than start_unix_ms ({})",
                self.end_ms, self.start_ms
            ));
        }
        match self.step {
            Some((step, _)) if step <= 0 => return invalid("step_ms must be positive".into()),
            Some((step, _)) if (self.end_ms - self.start_ms) / step > MAX_BUCKETS => {
                return invalid(format!(
                    "the range holds more than {MAX_BUCKETS} buckets of {step} ms; use a larger step"
                ));
            }
            _ => {}
        }
        if let Some(across) = self.across {
            if self.step.is_none() {
                return invalid("a cross-device aggregation needs step_ms > 0".into());
            }
            if !across.combines_across() {
                return invalid(format!(
                    "{across:?} cannot aggregate across devices; use AVG, SUM, MIN or MAX"
                ));
            }
        }
        Ok(())
    }
}

/// The answer: one series per device that has the metric (device `None` for a cross-device
/// aggregate) and the resolution it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesAnswer {
    /// The series.
    pub(crate) series: Vec<(Option<Arc<str>>, Points)>,
    /// Finest resolution used.
    pub(crate) resolution: Resolution,
}

/// Runs a validated query.
pub(crate) fn run(
    reader: &(impl SeriesReader + Sync),
    q: &SeriesQuery,
) -> Result<SeriesAnswer, ReadError> {
    let Some((step, aggregation)) = q.step else {
        let mut series = Vec::with_capacity(q.devices.len());
        for d in &q.devices {
            if let Some(points) = reader.range(d, &q.metric, q.start_ms, q.end_ms)? {
                series.push((Some(d.clone()), points));
            }
        }
        return Ok(SeriesAnswer {
            series,
            resolution: Resolution::Raw,
        });
    };
    let mut resolution = Resolution::Hour;
    let mut per_device = Vec::with_capacity(q.devices.len());
    for (device, found) in q.devices.iter().zip(buckets_per_device(reader, q, step)) {
        if let Some((buckets, res)) = found? {
            resolution = finer(resolution, res);
            per_device.push((device.clone(), aggregate::reduce(&buckets, aggregation)));
        }
    }
    if per_device.is_empty() {
        resolution = Resolution::Raw;
    }
    let series = match q.across {
        None => per_device.into_iter().map(|(d, p)| (Some(d), p)).collect(),
        Some(across) => {
            let combined = aggregate::across(per_device.iter().map(|(_, p)| p), across, step);
            if combined.times_ms.is_empty() {
                Vec::new()
            } else {
                vec![(None, combined)]
            }
        }
    };
    Ok(SeriesAnswer { series, resolution })
}

type Found = Result<Option<(Vec<citytel_storage::series::Bucket>, Resolution)>, ReadError>;

/// Each device's buckets, in device order; many devices are read on rayon's thread pool.
fn buckets_per_device(
    reader: &(impl SeriesReader + Sync),
    q: &SeriesQuery,
    step: i64,
) -> Vec<Found> {
    use rayon::prelude::*;
    let read = |device: &Arc<str>| reader.buckets(device, &q.metric, q.start_ms, q.end_ms, step);
    if q.devices.len() < PARALLEL_FROM {
        return q.devices.iter().map(read).collect();
    }
    q.devices.par_iter().map(read).collect()
}

/// Devices from which a bucketed query is spread over threads.
const PARALLEL_FROM: usize = 8;

fn finer(a: Resolution, b: Resolution) -> Resolution {
    let rank = |r| match r {
        Resolution::Raw => 0,
        Resolution::Minute => 1,
        Resolution::Hour => 2,
    };
    if rank(a) <= rank(b) { a } else { b }
}

#[cfg(test)]
mod tests;
