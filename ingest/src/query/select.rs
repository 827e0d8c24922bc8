//! Resolving a device selector against the registry.

use std::sync::Arc;

use super::QueryError;
use crate::state::registry::Registry;

/// Which devices a query covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    /// Explicit device ids (exclusive with kind and site).
    pub(crate) device_ids: Vec<String>,
    /// Kind filter; empty for any.
    pub(crate) kind: String,
    /// Site filter; empty for any.
    pub(crate) site: String,
}

/// The selected devices, ordered by id.
pub(crate) fn select(
    registry: &Registry,
    selector: &Selector,
) -> Result<Vec<Arc<str>>, QueryError> {
    if !selector.device_ids.is_empty() {
        if !selector.kind.is_empty() || !selector.site.is_empty() {
            return Err(QueryError::Invalid(
                "select devices either by device_ids or by kind and site, not both".into(),
            ));
        }
        let mut ids = Vec::with_capacity(selector.device_ids.len());
        for id in &selector.device_ids {
            let record = registry
                .get(id)
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
        .map(|d| d.device_id.clone())
        .collect())
}
