//! Device inventory and latest values: ListDevices, GetDevice, GetLatest, ListLatest.

use citytel_proto::v1;

use super::convert::{device, latest_to_wire, state_from_wire};
use super::error::ApiError;
use crate::query::{self, Selector};
use crate::state::State;
use crate::state::registry::DeviceRecord;

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

/// `ListDevices`.
pub(crate) fn list(
    state: &State,
    req: &v1::ListDevicesRequest,
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
    };
    let after = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
    let mut devices: Vec<v1::Device> = state
        .registry()
        .iter_after(after)
        .filter(matches)
        .take(page_size + 1)
        .map(|r| device(&state.view(r)))
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
pub(crate) fn get(state: &State, id: String) -> Result<v1::GetDeviceResponse, ApiError> {
    require_device(&id)?;
    let view = state.device(&id).ok_or(ApiError::DeviceNotFound(id))?;
    Ok(v1::GetDeviceResponse {
        device: Some(device(&view)),
    })
}

/// `GetLatest`.
pub(crate) fn latest(state: &State, id: String) -> Result<v1::GetLatestResponse, ApiError> {
    require_device(&id)?;
    if state.registry().get(&id).is_none() {
        return Err(ApiError::DeviceNotFound(id));
    }
    let values = state.latest(&id).into_iter().map(latest_to_wire).collect();
    Ok(v1::GetLatestResponse {
        device_id: id,
        values,
    })
}

/// `ListLatest`.
pub(crate) fn list_latest(
    state: &State,
    selector: Selector,
) -> Result<v1::ListLatestResponse, ApiError> {
    let devices = query::select(state.registry(), &selector)?;
    Ok(v1::ListLatestResponse {
        devices: devices
            .into_iter()
            .map(|device| v1::DeviceLatest {
                values: state
                    .latest(&device)
                    .into_iter()
                    .map(latest_to_wire)
                    .collect(),
                device_id: device.to_string(),
            })
            .collect(),
    })
}
