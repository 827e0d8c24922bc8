//! Conversions from storage types to wire types.

use citytel_proto::v1;

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
