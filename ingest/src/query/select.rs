//! Resolving a device selector against the registry, within what the caller sees.

use std::sync::Arc;

use super::QueryError;
use super::visible::Visible;
use crate::state::registry::Registry;

/// Which devices a query covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    /// Explicit device ids (exclusive with kind, site and district).
    pub(crate) device_ids: Vec<String>,
    /// Kind filter; empty for any.
    pub(crate) kind: String,
    /// Site filter; empty for any.
    pub(crate) site: String,
    /// District filter (the district of the device's site); empty for any.
    pub(crate) district: String,
}

/// The selected devices that `visible` shows, ordered by id. An explicit id of a device the
/// caller does not see is an unknown device, exactly like an id nobody has heard of.
pub(crate) fn select(
    registry: &Registry,
    selector: &Selector,
    visible: &Visible,
) -> Result<Vec<Arc<str>>, QueryError> {
    if !selector.device_ids.is_empty() {
        if !selector.kind.is_empty() || !selector.site.is_empty() || !selector.district.is_empty() {
            return Err(QueryError::Invalid(
                "select devices either by device_ids or by kind, site and district, not both"
                    .into(),
            ));
        }
        let mut ids = Vec::with_capacity(selector.device_ids.len());
        for id in &selector.device_ids {
            let record = visible
                .get(registry, id)
                .ok_or_else(|| QueryError::UnknownDevice(id.clone()))?;
            ids.push(record.device_id.clone());
        }
        ids.sort();
        ids.dedup();
        return Ok(ids);
    }
    Ok(registry
        .iter_after(None)
        .filter(|d| selector.kind.is_empty() || *d.kind == *selector.kind)
        .filter(|d| selector.site.is_empty() || *d.site == *selector.site)
        .filter(|d| {
            selector.district.is_empty() || d.district.as_deref() == Some(&*selector.district)
        })
        .filter(|d| visible.device(d))
        .map(|d| d.device_id.clone())
        .collect())
}
