//! Conversions from storage types to wire types.

use citytel_proto::v1;

use super::error::ApiError;
use crate::query::{Aggregation, Selector, SeriesAnswer};
use crate::state::DeviceView;
use crate::state::dead_letters::DeadLetter;
use crate::state::fleet::DeviceChange;
use crate::state::maintenance::{MaintenanceWindow, Target};
use crate::state::registry::DeviceRecord;
use citytel_availability::{Change, DeviceState, Outage, Reboot, Transition};
use citytel_storage::series::{LatestPoint, Points};

/// A device as the API shows it: its registry entry with its state, clock offset, completeness,
/// district, location (its own, else the provisioned one) and attributes.
pub(crate) fn device(view: &DeviceView<'_>) -> v1::Device {
    v1::Device {
        state: state_to_wire(view.state),
        state_since_unix_ms: view.since.map_or(0, |t| t.at_ms),
        state_cause: view
            .since
            .map(|t| t.cause.as_str().to_string())
            .unwrap_or_default(),
        clock_offset_ms: view.clock_offset.map(|c| c.offset_ms),
        completeness_percent: view.completeness.percent(),
        district: view.district.unwrap_or("").to_string(),
        location: view.location.map(|l| v1::Location {
            latitude: l.latitude,
            longitude: l.longitude,
        }),
        attributes: view
            .attributes
            .into_iter()
            .flatten()
            .map(|(name, a)| v1::Attribute {
                name: name.clone(),
                value: a.value.clone(),
                datatype: a.datatype.clone(),
                time_unix_ms: a.time_ms,
            })
            .collect(),
        ..registry_to_wire(view.record)
    }
}

fn registry_to_wire(r: &DeviceRecord) -> v1::Device {
    {
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
            ..v1::Device::default()
        }
    }
}

/// The wire value of a device state.
pub(crate) fn state_to_wire(s: DeviceState) -> i32 {
    use v1::DeviceState as W;
    (match s {
        DeviceState::Unknown => W::Unknown,
        DeviceState::Online => W::Online,
        DeviceState::Late => W::Late,
        DeviceState::Offline => W::Offline,
        DeviceState::Unreachable => W::Unreachable,
    }) as i32
}

/// The device state of a wire value; `None` for unspecified.
pub(crate) fn state_from_wire(value: i32) -> Result<Option<DeviceState>, ApiError> {
    use v1::DeviceState as W;
    Ok(match W::try_from(value) {
        Ok(W::Unspecified) => None,
        Ok(W::Unknown) => Some(DeviceState::Unknown),
        Ok(W::Online) => Some(DeviceState::Online),
        Ok(W::Late) => Some(DeviceState::Late),
        Ok(W::Offline) => Some(DeviceState::Offline),
        Ok(W::Unreachable) => Some(DeviceState::Unreachable),
        Err(_) => {
            return Err(ApiError::InvalidArgument(format!(
                "state has unknown value {value}"
            )));
        }
    })
}

/// A state transition on the wire.
pub(crate) fn transition_to_wire(device: &str, t: &Transition) -> v1::StateTransition {
    v1::StateTransition {
        device_id: device.to_string(),
        at_unix_ms: t.at_ms,
        from: state_to_wire(t.from),
        to: state_to_wire(t.to),
        cause: t.cause.as_str().to_string(),
        boot_id: t.boot_id,
    }
}

/// A reboot on the wire.
pub(crate) fn reboot_to_wire(device: &str, r: &Reboot) -> v1::Reboot {
    v1::Reboot {
        device_id: device.to_string(),
        at_unix_ms: r.at_ms,
        old_boot_id: r.old_boot_id,
        new_boot_id: r.new_boot_id,
    }
}

/// An outage on the wire.
pub(crate) fn outage_to_wire(device: &str, o: &Outage) -> v1::Outage {
    v1::Outage {
        device_id: device.to_string(),
        start_unix_ms: o.start_ms,
        end_unix_ms: o.end_ms,
        duration_ms: o.duration_ms,
        cause: o.cause.as_str().to_string(),
        open: o.open,
        began_before: o.began_before,
    }
}

/// A maintenance window on the wire.
pub(crate) fn maintenance_to_wire(w: &MaintenanceWindow) -> v1::MaintenanceWindow {
    use v1::maintenance_window::Target as T;
    v1::MaintenanceWindow {
        id: w.id,
        target: Some(match &w.target {
            Target::Device(d) => T::DeviceId(d.clone()),
            Target::Site(s) => T::Site(s.clone()),
        }),
        start_unix_ms: w.span.start_ms,
        end_unix_ms: w.span.end_ms,
        reason: w.reason.clone(),
    }
}

/// A device change on the wire.
pub(crate) fn change_to_wire(c: &DeviceChange) -> v1::FleetEvent {
    use v1::fleet_event::Event;
    v1::FleetEvent {
        event: Some(match &c.change {
            Change::Transition(t) => Event::Transition(transition_to_wire(&c.device, t)),
            Change::Reboot(r) => Event::Reboot(reboot_to_wire(&c.device, r)),
        }),
    }
}

/// A dead letter on the wire.
pub(crate) fn dead_letter_to_wire(d: &DeadLetter) -> v1::DeadLetter {
    v1::DeadLetter {
        received_at_unix_ms: d.received_at_ms,
        reason: d.reason.as_str().to_string(),
        topic: d.topic.clone(),
        detail: d.detail.clone(),
        payload: d.payload.to_vec(),
    }
}

/// A latest value on the wire.
pub(crate) fn latest_to_wire(l: LatestPoint) -> v1::LatestValue {
    v1::LatestValue {
        metric: l.metric.to_string(),
        time_unix_ms: l.point.time_ms,
        value: l.point.value,
    }
}

/// A `QueryRange` answer: timestamps as runs if `time_runs` (what the request asked for) and
/// that is smaller, else plain.
pub(crate) fn range_answer(p: Points, time_runs: bool) -> v1::QueryRangeResponse {
    use citytel_proto::compact::encode_times;
    let mut answer = v1::QueryRangeResponse {
        values: p.values,
        ..v1::QueryRangeResponse::default()
    };
    match time_runs.then(|| encode_times(&p.times_ms)).flatten() {
        Some(runs) => answer.time_runs = runs,
        None => answer.times_unix_ms = p.times_ms,
    }
    answer
}

impl From<v1::DeviceSelector> for Selector {
    fn from(s: v1::DeviceSelector) -> Self {
        Selector {
            device_ids: s.device_ids,
            kind: s.kind,
            site: s.site,
            district: s.district,
        }
    }
}

/// The aggregation of a wire enum value; `None` for unspecified.
pub(crate) fn aggregation(value: i32, field: &str) -> Result<Option<Aggregation>, ApiError> {
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
