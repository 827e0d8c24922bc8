//! Resolving a device selector against the registry, within what the caller sees.

use std::sync::Arc;

use super::QueryError;
use super::visible::Visible;
use crate::state::registry::{DeviceRecord, Registry};

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
    Ok(select_after(registry, selector, visible, None)?
        .map(|d| d.device_id.clone())
        .collect())
}

/// The selected devices that `visible` shows with an id greater than `after` (all if `None`),
/// ordered by id, lazily: a selection by kind, site and district seeks to `after` in the
/// registry and reads no further than the caller takes, so a page costs the same at any offset.
/// Explicit ids are all checked (an unknown one fails the whole selection, on every page).
pub(crate) fn select_after<'r>(
    registry: &'r Registry,
    selector: &'r Selector,
    visible: &'r Visible,
    after: Option<&'r str>,
) -> Result<Box<dyn Iterator<Item = &'r DeviceRecord> + 'r>, QueryError> {
    if !selector.device_ids.is_empty() {
        if !selector.kind.is_empty() || !selector.site.is_empty() || !selector.district.is_empty() {
            return Err(QueryError::Invalid(
                "select devices either by device_ids or by kind, site and district, not both"
                    .into(),
            ));
        }
        let mut records = Vec::with_capacity(selector.device_ids.len());
        for id in &selector.device_ids {
            let record = visible
                .get(registry, id)
                .ok_or_else(|| QueryError::UnknownDevice(id.clone()))?;
            records.push(record);
        }
        records.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        records.dedup_by(|a, b| a.device_id == b.device_id);
        let from = after.map_or(0, |a| records.partition_point(|r| *r.device_id <= *a));
        return Ok(Box::new(records.into_iter().skip(from)));
    }
    Ok(Box::new(
        registry
            .iter_after(after)
            .filter(|d| selector.kind.is_empty() || *d.kind == *selector.kind)
            .filter(|d| selector.site.is_empty() || *d.site == *selector.site)
            .filter(|d| {
                selector.district.is_empty() || d.district.as_deref() == Some(&*selector.district)
            })
            .filter(|d| visible.device(d)),
    ))
}
