//! A key's scope: which devices and metrics exist for it. A device is in scope when it matches
//! every dimension that lists something (its district, site, kind, id); an empty list does not
//! restrict. `metrics`, when set, is the only metrics the key sees of those devices. The default
//! scope sees everything.

/// Which devices and metrics a key sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Districts (empty: any).
    pub districts: Vec<String>,
    /// Sites (empty: any).
    pub sites: Vec<String>,
    /// Device kinds (empty: any).
    pub kinds: Vec<String>,
    /// Device ids (empty: any).
    pub devices: Vec<String>,
    /// The metrics it sees; `None`: every metric.
    pub metrics: Option<Vec<String>>,
}

fn allows(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

impl Scope {
    /// Whether this scope sees everything.
    pub fn is_everything(&self) -> bool {
        *self == Scope::default()
    }

    /// Whether a device with this id, kind, site and district is in scope.
    pub fn sees_device(&self, id: &str, kind: &str, site: &str, district: Option<&str>) -> bool {
        allows(&self.devices, id)
            && allows(&self.kinds, kind)
            && allows(&self.sites, site)
            && (self.districts.is_empty() || district.is_some_and(|d| allows(&self.districts, d)))
    }

    /// Whether the scope covers `site` as a whole, with `district` the site's district: it
    /// selects devices by site and district only (no kinds, no device ids) and allows this site.
    /// Such a scope sees every device at the site, now and later, so a maintenance window on
    /// the site changes nothing outside it.
    pub fn covers_site(&self, site: &str, district: Option<&str>) -> bool {
        self.kinds.is_empty()
            && self.devices.is_empty()
            && allows(&self.sites, site)
            && (self.districts.is_empty() || district.is_some_and(|d| allows(&self.districts, d)))
    }

    /// Whether the scope covers `district` as a whole: it selects devices by district only (no
    /// kinds, device ids or sites) and allows this district.
    pub fn covers_district(&self, district: &str) -> bool {
        self.kinds.is_empty()
            && self.devices.is_empty()
            && self.sites.is_empty()
            && allows(&self.districts, district)
    }

    /// Whether the metric is in scope (of a device in scope).
    pub fn sees_metric(&self, metric: &str) -> bool {
        self.metrics
            .as_ref()
            .is_none_or(|m| m.iter().any(|v| v == metric))
    }
}
