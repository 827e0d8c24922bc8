//! Conversions from storage types to wire types.

use citytel_proto::v1;

use super::error::ApiError;
use crate::query::{Aggregation, Selector, SeriesAnswer};
use crate::store::registry::DeviceRecord;
use crate::store::series::{LatestPoint, Points};

impl From<&DeviceRecord> for v1::Device {
    fn from(r: &DeviceRecord) -> Self {
        v1::Device {
            device_id: r.device_id.to_string(),
            kind: r.kind.to_string(),
            site: r.site.to_string(),
            first_seen_unix_ms: r.first_seen_ms,
            last_seen_unix_ms: r.last_seen_ms,
            firmware_version: r.firmware_version.clone(),
            boot_id: r.boot_id,
            gateway_id: r.gateway_id.as_deref().map(str::to_string),
            reporting_interval_ms: r.reporting_interval_ms,
            readings_total: r.readings_total,
            metrics: r.metrics.iter().map(|m| m.to_string()).collect(),
        }
    }
}

impl From<LatestPoint> for v1::LatestValue {
    fn from(l: LatestPoint) -> Self {
        v1::LatestValue {
            metric: l.metric.to_string(),
            time_unix_ms: l.point.time_ms,
            value: l.point.value,
        }
    }
}

impl From<Points> for v1::QueryRangeResponse {
    fn from(p: Points) -> Self {
        v1::QueryRangeResponse {
            times_unix_ms: p.times_ms,
            values: p.values,
        }
    }
}

impl From<v1::DeviceSelector> for Selector {
    fn from(s: v1::DeviceSelector) -> Self {
        Selector {
            device_ids: s.device_ids,
            kind: s.kind,
            site: s.site,
        }
    }
}

/// The aggregation of a wire enum value; `None` for unspecified.
pub fn aggregation(value: i32, field: &str) -> Result<Option<Aggregation>, ApiError> {
    use v1::Aggregation as W;
    match W::try_from(value) {
        Ok(W::Unspecified) => Ok(None),
        Ok(W::Avg) => Ok(Some(Aggregation::Avg)),
        Ok(W::Min) => Ok(Some(Aggregation::Min)),
        Ok(W::Max) => Ok(Some(Aggregation::Max)),
        Ok(W::Sum) => Ok(Some(Aggregation::Sum)),
        Ok(W::Count) => Ok(Some(Aggregation::Count)),
        Ok(W::Last) => Ok(Some(Aggregation::Last)),
        Err(_) => Err(ApiError::InvalidArgument(format!(
            "{field} has unknown value {value}"
        ))),
    }
}

impl From<SeriesAnswer> for v1::QuerySeriesResponse {
    fn from(a: SeriesAnswer) -> Self {
        v1::QuerySeriesResponse {
            series: a
                .series
                .into_iter()
                .map(|(device, points)| v1::Series {
                    device_id: device.map(|d| d.to_string()).unwrap_or_default(),
                    times_unix_ms: points.times_ms,
                    values: points.values,
                })
                .collect(),
            resolution: a.resolution.as_str().to_string(),
        }
    }
}
