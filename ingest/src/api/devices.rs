//! Device inventory and latest values: ListDevices, GetDevice, GetLatest, ListLatest. Each
//! answers only the devices and metrics the caller sees ([`Visible`]): a device outside its
//! scope is NOT_FOUND like an unknown one, and a metric outside it is left out of `metrics`, of
//! `attributes` (an attribute is a metric by name) and of the latest values as if the device
//! never reported it.

use citytel_proto::v1;

use super::convert::{device, latest_to_wire, state_from_wire};
use super::error::ApiError;
use crate::query::{self, Selector, Visible};
use crate::state::State;
use crate::state::registry::DeviceRecord;
use crate::state::summary;
use citytel_storage::series::LatestPoint;

/// Default page of `ListDevices` and `ListLatest`, in devices.
const DEFAULT_PAGE: usize = 1000;
/// Largest page of `ListDevices` and `ListLatest`, in devices.
const MAX_PAGE: usize = 10_000;
/// A `ListLatest` page ends once its devices take this much encoded (after at least one device),
/// so no answer comes near the 4 MiB message limit of gRPC clients whatever the page size and
/// however many metrics the devices have.
pub(crate) const LATEST_PAGE_BYTES: usize = 2 << 20;

/// The page size a request asks for: `0` is the default, more than [`MAX_PAGE`] is refused.
fn page_size(asked: u32) -> Result<usize, ApiError> {
    match asked as usize {
        0 => Ok(DEFAULT_PAGE),
        n if n > MAX_PAGE => Err(ApiError::InvalidArgument(format!(
            "page_size {n} exceeds the maximum of {MAX_PAGE}"
        ))),
        n => Ok(n),
    }
}

/// The device a page token continues after (`None`: from the start).
fn after(page_token: &str) -> Option<&str> {
    (!page_token.is_empty()).then_some(page_token)
}

/// An empty device id is an invalid argument.
pub(crate) fn require_device(id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::InvalidArgument("device_id is required".into()));
    }
    Ok(())
}

/// A device on the wire as the caller sees it: only its visible metrics, and only the
/// attributes named like a visible metric.
fn visible_device(state: &State, record: &DeviceRecord, visible: &Visible) -> v1::Device {
    let mut d = device(&state.view(record));
    if !visible.every_metric() {
        d.metrics.retain(|m| visible.metric(m));
        d.attributes.retain(|a| visible.metric(&a.name));
    }
    d
}

/// The latest values of `device` that the caller sees, on the wire.
fn visible_latest(state: &State, device: &str, visible: &Visible) -> Vec<v1::LatestValue> {
    let mut latest: Vec<LatestPoint> = state.latest(device);
    if !visible.every_metric() {
        latest.retain(|l| visible.metric(&l.metric));
    }
    latest.into_iter().map(latest_to_wire).collect()
}

/// `ListDevices`: a page found by seeking to the page token in the registry (the same cost at
/// any offset). `total` comes from the fleet counts when there is no `search` and the caller's
/// scope does not list device ids; otherwise it is a walk over every device.
pub(crate) fn list(
    state: &State,
    req: &v1::ListDevicesRequest,
    visible: &Visible,
) -> Result<v1::ListDevicesResponse, ApiError> {
    let page_size = page_size(req.page_size)?;
    let wanted_state = state_from_wire(req.state)?;
    let search = req.search.to_lowercase();
    let matches = |d: &&DeviceRecord| {
        (req.kind.is_empty() || *d.kind == *req.kind)
            && (req.site.is_empty() || *d.site == *req.site)
            && (req.district.is_empty() || d.district.as_deref() == Some(req.district.as_str()))
            && (search.is_empty() || d.device_id.to_lowercase().contains(&search))
            && wanted_state.is_none_or(|w| state.device_state(&d.device_id) == w)
            && visible.device(d)
    };
    let mut devices: Vec<v1::Device> = state
        .registry()
        .iter_after(after(&req.page_token))
        .filter(matches)
        .take(page_size + 1)
        .map(|r| visible_device(state, r, visible))
        .collect();
    let next_page_token = if devices.len() > page_size {
        devices.truncate(page_size);
        devices
            .last()
            .map(|d| d.device_id.clone())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let total = match state.fleet_counts() {
        // Without a search, the counts per cell and state answer: no walk over the fleet.
        Some(counts) if search.is_empty() && visible.by_cell() => counts
            .cells()
            .filter(|(cell, _)| {
                (req.kind.is_empty() || *cell.kind == *req.kind)
                    && (req.site.is_empty() || *cell.site == *req.site)
                    && (req.district.is_empty()
                        || cell.district.as_deref() == Some(req.district.as_str()))
                    && visible.cell(cell)
            })
            .map(|(_, n)| match wanted_state {
                Some(w) => n[summary::state_index(w)] as usize,
                None => n.iter().map(|&c| c as usize).sum(),
            })
            .sum(),
        _ => state.registry().iter_after(None).filter(matches).count(),
    };
    Ok(v1::ListDevicesResponse {
        devices,
        next_page_token,
        total: u32::try_from(total).unwrap_or(u32::MAX),
    })
}

/// `GetDevice`.
pub(crate) fn get(
    state: &State,
    id: String,
    visible: &Visible,
) -> Result<v1::GetDeviceResponse, ApiError> {
    require_device(&id)?;
    let record = visible
        .get(state.registry(), &id)
        .ok_or(ApiError::DeviceNotFound(id))?;
    Ok(v1::GetDeviceResponse {
        device: Some(visible_device(state, record, visible)),
    })
}

/// `GetLatest`.
pub(crate) fn latest(
    state: &State,
    id: String,
    visible: &Visible,
) -> Result<v1::GetLatestResponse, ApiError> {
    require_device(&id)?;
    if visible.get(state.registry(), &id).is_none() {
        return Err(ApiError::DeviceNotFound(id));
    }
    Ok(v1::GetLatestResponse {
        values: visible_latest(state, &id, visible),
        device_id: id,
    })
}

/// `ListLatest`: a page of at most `page_size` devices and about [`LATEST_PAGE_BYTES`], found by
/// seeking to the page token (see [`query::select_after`]), so every page costs the same.
pub(crate) fn list_latest(
    state: &State,
    req: &v1::ListLatestRequest,
    visible: &Visible,
) -> Result<v1::ListLatestResponse, ApiError> {
    use prost::Message;
    let page_size = page_size(req.page_size)?;
    let selector: Selector = req.devices.clone().unwrap_or_default().into();
    let selected =
        query::select_after(state.registry(), &selector, visible, after(&req.page_token))?;
    let mut devices: Vec<v1::DeviceLatest> = Vec::new();
    let mut bytes = 0;
    let mut more = false;
    for record in selected {
        if devices.len() >= page_size || bytes >= LATEST_PAGE_BYTES {
            more = true;
            break;
        }
        let entry = v1::DeviceLatest {
            values: visible_latest(state, &record.device_id, visible),
            device_id: record.device_id.to_string(),
        };
        // Tag, length and the message, as it is encoded in the answer.
        bytes += 1 + prost::length_delimiter_len(entry.encoded_len()) + entry.encoded_len();
        devices.push(entry);
    }
    let next_page_token = match devices.last() {
        Some(last) if more => last.device_id.clone(),
        _ => String::new(),
    };
    Ok(v1::ListLatestResponse {
        devices,
        next_page_token,
    })
}

#[cfg(test)]
mod tests;
