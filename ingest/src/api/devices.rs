//! Device inventory and latest values: ListDevices, GetDevice, GetLatest, ListLatest. Each
//! answers only the devices and metrics the caller sees ([`Visible`]): a device outside its
//! scope is NOT_FOUND like an unknown one, and a metric outside it is left out of `metrics` and
//! of the latest values as if the device never reported it.

use citytel_proto::v1;

use super::convert::{device, latest_to_wire, state_from_wire};
use super::error::ApiError;
use crate::query::{self, Selector, Visible};
use crate::state::State;
use crate::state::registry::DeviceRecord;
use citytel_storage::series::LatestPoint;

/// Default and largest page of `ListDevices`.
const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;

/// An empty device id is an invalid argument.
pub(crate) fn require_device(id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::InvalidArgument("device_id is required".into()));
    }
    Ok(())
}

/// A device on the wire as the caller sees it: only its visible metrics.
fn visible_device(state: &State, record: &DeviceRecord, visible: &Visible) -> v1::Device {
    let mut d = device(&state.view(record));
    if !visible.every_metric() {
        d.metrics.retain(|m| visible.metric(m));
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

/// `ListDevices`.
pub(crate) fn list(
    state: &State,
    req: &v1::ListDevicesRequest,
    visible: &Visible,
) -> Result<v1::ListDevicesResponse, ApiError> {
    let page_size = match req.page_size as usize {
        0 => DEFAULT_PAGE,
        n if n > MAX_PAGE => {
            return Err(ApiError::InvalidArgument(format!(
                "page_size {n} exceeds the maximum of {MAX_PAGE}"
            )));
        }
        n => n,
    };
    let wanted_state = state_from_wire(req.state)?;
    let search = req.search.to_lowercase();
    let matches = |d: &&DeviceRecord| {
        (req.kind.is_empty() || *d.kind == *req.kind)
            && (req.site.is_empty() || *d.site == *req.site)
            && (search.is_empty() || d.device_id.to_lowercase().contains(&search))
            && wanted_state.is_none_or(|w| state.device_state(&d.device_id) == w)
            && visible.device(d)
    };
    let after = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
    let mut devices: Vec<v1::Device> = state
        .registry()
        .iter_after(after)
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
    let total = state.registry().iter_after(None).filter(matches).count();
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

/// `ListLatest`.
pub(crate) fn list_latest(
    state: &State,
    selector: Selector,
    visible: &Visible,
) -> Result<v1::ListLatestResponse, ApiError> {
    let devices = query::select(state.registry(), &selector, visible)?;
    Ok(v1::ListLatestResponse {
        devices: devices
            .into_iter()
            .map(|device| v1::DeviceLatest {
                values: visible_latest(state, &device, visible),
                device_id: device.to_string(),
            })
            .collect(),
    })
}
