//! What one caller sees: the devices and metrics its API key's [`Scope`] lets it see, decided
//! here and nowhere else. Every handler asks a [`Visible`] (built once per request from the
//! caller's scope and the fleet's site-to-district mapping), and so does device selection
//! ([`super::select`]).
//!
//! A device outside the scope does not exist for the caller: lookups answer `None`, exactly as
//! for an unknown id, so handlers give the same NOT_FOUND. A metric outside it is a metric the
//! device does not have. A device's district is the registry's ([`DeviceRecord::district`]: the
//! polygon of `availability.districts_file` that holds its location, else its site's from
//! `availability.districts`); a device in no district is invisible to a scope that lists
//! districts. A site's district (for maintenance on a whole site) is the site mapping's.
//!
//! For the scope that sees everything (an admin's usually, and every caller without
//! authentication) each check returns at its first branch, so it costs next to nothing.

use std::sync::Arc;

use citytel_availability::Districts;

use crate::state::State;
use crate::state::access::Scope;
use crate::state::registry::{Cell, DeviceRecord, Registry};

/// The devices and metrics one caller sees.
#[derive(Debug, Clone)]
pub(crate) struct Visible {
    /// The caller's scope; `None` when it sees everything.
    scope: Option<Arc<Scope>>,
    /// Where sites are.
    districts: Arc<Districts>,
}

impl Visible {
    /// What `scope` sees, with `districts` placing sites.
    pub(crate) fn new(scope: &Scope, districts: Arc<Districts>) -> Self {
        Visible {
            scope: (!scope.is_everything()).then(|| Arc::new(scope.clone())),
            districts,
        }
    }

    /// What `scope` sees of `state`'s fleet.
    pub(crate) fn of(scope: &Scope, state: &State) -> Self {
        Self::new(scope, state.fleet().districts().clone())
    }

    /// Whether nothing is hidden.
    pub(crate) fn is_everything(&self) -> bool {
        self.scope.is_none()
    }

    /// The district of `site` from the site-to-district mapping, if configured.
    pub(crate) fn district(&self, site: &str) -> Option<&str> {
        self.districts.site(site).map(|d| &**d)
    }

    /// Whether the device with this id, kind, site and district is visible.
    pub(crate) fn sees(&self, id: &str, kind: &str, site: &str, district: Option<&str>) -> bool {
        match &self.scope {
            None => true,
            Some(scope) => scope.sees_device(id, kind, site, district),
        }
    }

    /// Whether a registered device is visible.
    pub(crate) fn device(&self, record: &DeviceRecord) -> bool {
        self.scope.is_none()
            || self.sees(
                &record.device_id,
                &record.kind,
                &record.site,
                record.district.as_deref(),
            )
    }

    /// Whether visibility is decided by a device's cell (kind, site, district) alone, the same
    /// for every device of a cell: true unless the scope lists device ids.
    pub(crate) fn by_cell(&self) -> bool {
        self.scope.as_ref().is_none_or(|s| s.devices.is_empty())
    }

    /// Whether the devices of `cell` are visible (meaningful when [`Visible::by_cell`]).
    pub(crate) fn cell(&self, cell: &Cell) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| s.sees_device("", &cell.kind, &cell.site, cell.district.as_deref()))
    }

    /// The record of a visible device; `None` for an unknown or invisible one alike.
    pub(crate) fn get<'r>(&self, registry: &'r Registry, id: &str) -> Option<&'r DeviceRecord> {
        registry.get(id).filter(|r| self.device(r))
    }

    /// Whether a metric (of a visible device) is visible.
    pub(crate) fn metric(&self, metric: &str) -> bool {
        self.scope.as_ref().is_none_or(|s| s.sees_metric(metric))
    }

    /// Whether every metric is visible (no metric filtering needed).
    pub(crate) fn every_metric(&self) -> bool {
        self.scope.as_ref().is_none_or(|s| s.metrics.is_none())
    }

    /// Whether at least one visible device is at `site` (a site without one does not exist for
    /// the caller).
    pub(crate) fn site(&self, registry: &Registry, site: &str) -> bool {
        registry
            .iter_after(None)
            .any(|d| *d.site == *site && self.device(d))
    }

    /// Whether the caller may set or delete a maintenance window on `site`: its scope covers the
    /// site as a whole (see [`Scope::covers_site`]), so the window changes nothing it cannot see.
    pub(crate) fn covers_site(&self, site: &str) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| s.covers_site(site, self.district(site)))
    }

    /// Whether the caller's scope covers `district` as a whole (see [`Scope::covers_district`]),
    /// so an alert about the district tells nothing it cannot see.
    pub(crate) fn covers_district(&self, district: &str) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| s.covers_district(district))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn districts() -> Arc<Districts> {
        let sites = [("site-n", "north"), ("site-s", "south")]
            .into_iter()
            .map(|(s, d)| (s.to_string(), d.to_string()))
            .collect();
        Arc::new(Districts::new(Default::default(), &sites))
    }

    #[test]
    fn districts_come_from_the_site_and_a_site_without_one_is_outside_a_district_scope() {
        let scope = Scope {
            districts: vec!["north".into()],
            kinds: vec!["sensor".into()],
            metrics: Some(vec!["no2_ugm3".into()]),
            ..Scope::default()
        };
        let v = Visible::new(&scope, districts());
        assert!(v.sees("s-1", "sensor", "site-n", Some("north")));
        assert!(!v.sees("s-1", "sensor", "site-s", Some("south")));
        assert!(!v.sees("s-1", "sensor", "site-unmapped", None));
        assert!(!v.sees("c-1", "cabinet", "site-n", Some("north")));
        // A device's own district (its location's) decides, not its site's.
        assert!(v.sees("s-2", "sensor", "site-s", Some("north")));
        assert!(!v.sees("s-3", "sensor", "site-n", Some("south")));
        assert!(v.metric("no2_ugm3") && !v.metric("temperature_c"));
        assert!(!v.every_metric() && !v.is_everything());
        assert!(!v.covers_site("site-n"), "it lists kinds");
    }

    #[test]
    fn the_empty_scope_sees_everything() {
        let v = Visible::new(&Scope::default(), districts());
        assert!(v.is_everything() && v.every_metric());
        assert!(v.sees("x", "y", "z", None) && v.metric("m") && v.covers_site("z"));
        assert_eq!(v.district("site-s"), Some("south"));
    }
}
