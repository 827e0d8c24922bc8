//! Which devices a fleet has: ids, sites, gateway children and connection stagger.
//!
//! Device ids are the kind's prefix and a 4-digit, 1-based number (`cab-0001`, `cell-0001`,
//! `sen-0001`, `gw-0001`); a gateway's children append `-sNN` (`gw-0003-s02`). Devices are
//! numbered cabinets first, then small cells, sensors and gateways, and dealt round-robin to sites
//! in that order.

use citytel_proto::kind::Kind;

use super::config::FleetConfig;
use crate::device::DeviceSpec;
use crate::profile;

/// The devices of a fleet, in report order.
pub(crate) fn plan(config: &FleetConfig) -> Vec<DeviceSpec> {
    let counts = [
        (Kind::Cabinet, config.cabinets),
        (Kind::SmallCell, config.small_cells),
        (Kind::Sensor, config.sensors),
        (Kind::Gateway, config.gateways),
    ];
    let mut specs = Vec::new();
    for (kind, count) in counts {
        for number in 1..=count {
            let index = specs.len();
            let device_id = device_id(kind, number);
            let children = match kind {
                Kind::Gateway => (1..=config.children_per_gateway)
                    .map(|child| child_id(&device_id, child))
                    .collect(),
                _ => Vec::new(),
            };
            specs.push(DeviceSpec {
                device_id,
                kind,
                site: site_name(index, config.sites),
                children,
                start_delay: config
                    .connect_stagger
                    .saturating_mul(u32::try_from(index).unwrap_or(u32::MAX)),
            });
        }
    }
    specs
}

/// The id of the `number`th (1-based) device of `kind`, e.g. `cell-0007`.
pub(crate) fn device_id(kind: Kind, number: u32) -> String {
    format!("{}-{number:04}", profile::id_prefix(kind))
}

/// The id of the `number`th (1-based) child of gateway `gateway_id`, e.g. `gw-0003-s02`.
pub(crate) fn child_id(gateway_id: &str, number: u32) -> String {
    format!("{gateway_id}-s{number:02}")
}

/// The site of the device at 0-based fleet position `index`, for a fleet over `sites` sites.
pub(crate) fn site_name(index: usize, sites: u32) -> String {
    let sites = usize::try_from(sites.max(1)).unwrap_or(usize::MAX);
    format!("site-{:02}", index % sites + 1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use citytel_proto::topic::is_valid_id;

    use super::*;

    #[test]
    fn ids_are_prefixed_and_numbered_from_one() {
        assert_eq!(device_id(Kind::Cabinet, 1), "cab-0001");
        assert_eq!(device_id(Kind::SmallCell, 42), "cell-0042");
        assert_eq!(device_id(Kind::Sensor, 9999), "sen-9999");
        assert_eq!(device_id(Kind::Gateway, 12_345), "gw-12345");
        assert_eq!(child_id("gw-0003", 2), "gw-0003-s02");
        assert_eq!(site_name(0, 10), "site-01");
        assert_eq!(site_name(10, 10), "site-01");
        assert_eq!(site_name(13, 10), "site-04");
    }

    #[test]
    fn plans_every_device_with_children_and_stagger() {
        let config = FleetConfig {
            cabinets: 2,
            small_cells: 1,
            sensors: 1,
            gateways: 2,
            children_per_gateway: 3,
            sites: 3,
            connect_stagger: Duration::from_millis(5),
            ..FleetConfig::default()
        };
        let specs = plan(&config);
        let ids: Vec<&str> = specs.iter().map(|s| s.device_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "cab-0001",
                "cab-0002",
                "cell-0001",
                "sen-0001",
                "gw-0001",
                "gw-0002"
            ]
        );
        let sites: Vec<&str> = specs.iter().map(|s| s.site.as_str()).collect();
        assert_eq!(
            sites,
            [
                "site-01", "site-02", "site-03", "site-01", "site-02", "site-03"
            ]
        );
        assert_eq!(
            specs[5].children,
            ["gw-0002-s01", "gw-0002-s02", "gw-0002-s03"]
        );
        assert!(specs[..4].iter().all(|s| s.children.is_empty()));
        assert_eq!(specs[5].start_delay, Duration::from_millis(25));
        assert_eq!(specs.len() as u64, config.connections());
        for spec in &specs {
            assert!(is_valid_id(&spec.device_id) && is_valid_id(&spec.site));
            assert!(spec.children.iter().all(|child| is_valid_id(child)));
        }
    }
}
