//! Which devices the load generator publishes for, and over which connection.
//!
//! Devices are cabinets, small cells and sensors in turn (the kinds that report five metrics),
//! numbered per kind (`cab-00001`, `cell-00001`, `sen-00001`, ...), spread round-robin over the
//! sites and over the connections. Every run draws fresh boot ids, so readings of one run never
//! deduplicate against an earlier run's readings in the same ingester.

use citytel_proto::kind::Kind;

use crate::profile;

/// The kinds load devices have, in turn.
const KINDS: [Kind; 3] = [Kind::Cabinet, Kind::SmallCell, Kind::Sensor];

/// One device the generator publishes for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceSpec {
    /// The device id.
    pub(crate) device_id: String,
    /// Its kind.
    pub(crate) kind: Kind,
    /// Its site (`site-01`...).
    pub(crate) site: String,
    /// The boot id of this run.
    pub(crate) boot_id: u64,
}

/// `devices` devices over `sites` sites, dealt round-robin to `connections` connections (device
/// `i` goes to connection `i % connections`). `run_nonce` (e.g. the start time in nanoseconds)
/// makes the boot ids differ between runs.
pub(crate) fn plan(
    devices: u32,
    connections: u32,
    sites: u32,
    run_nonce: u64,
) -> Vec<Vec<DeviceSpec>> {
    let mut per_connection = vec![Vec::new(); connections as usize];
    for i in 0..devices {
        let kind = KINDS[i as usize % KINDS.len()];
        let number = i / KINDS.len() as u32 + 1;
        let device_id = format!("{}-{number:05}", profile::id_prefix(kind));
        let boot_id = match mix(run_nonce ^ mix(u64::from(i) + 1)) {
            0 => 1,
            id => id,
        };
        per_connection[(i % connections) as usize].push(DeviceSpec {
            device_id,
            kind,
            site: format!("site-{:02}", i % sites.max(1) + 1),
            boot_id,
        });
    }
    per_connection
}

/// The splitmix64 finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn devices_are_unique_and_spread_over_connections_and_sites() {
        let plan = plan(1000, 50, 10, 7);
        assert_eq!(plan.len(), 50);
        assert!(plan.iter().all(|c| c.len() == 20));
        let all: Vec<&DeviceSpec> = plan.iter().flatten().collect();
        let ids: HashSet<&str> = all.iter().map(|d| d.device_id.as_str()).collect();
        assert_eq!(ids.len(), 1000);
        let sites: HashSet<&str> = all.iter().map(|d| d.site.as_str()).collect();
        assert_eq!(sites.len(), 10);
        assert!(
            ids.contains("cab-00001") && ids.contains("cell-00333") && ids.contains("sen-00333")
        );
        assert!(all.iter().all(|d| d.boot_id != 0));
    }

    #[test]
    fn another_run_gets_other_boot_ids() {
        let a = plan(3, 1, 1, 1);
        let b = plan(3, 1, 1, 2);
        for (a, b) in a[0].iter().zip(&b[0]) {
            assert_eq!(a.device_id, b.device_id);
            assert_ne!(a.boot_id, b.boot_id);
        }
    }
}
