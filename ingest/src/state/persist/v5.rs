//! Snapshot layout 5: layout 4's snapshot ([`SnapshotV4`], unchanged), followed by the devices'
//! locations: for each device whose latest birth stated one, (device, latitude, longitude). A
//! device not listed has no location. Snapshots of layouts 1 to 4 still decode, with no
//! locations. A device's district is not stored: the registry places it again on restore, with
//! the districts configured then.

use std::collections::HashMap;

use citytel_availability::Location;
use serde::{Deserialize, Serialize};

use super::PersistError;
use super::v4::SnapshotV4;
use crate::state::snapshot::Snapshot;

/// The checkpoint snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SnapshotV5 {
    /// Everything layout 4 holds.
    base: SnapshotV4,
    /// (device, latitude, longitude), for the devices with a location.
    locations: Vec<(String, f64, f64)>,
}

impl From<&Snapshot> for SnapshotV5 {
    fn from(s: &Snapshot) -> Self {
        SnapshotV5 {
            base: SnapshotV4::from(s),
            locations: s
                .devices
                .iter()
                .filter_map(|d| {
                    let l = d.location?;
                    Some((d.device_id.to_string(), l.latitude, l.longitude))
                })
                .collect(),
        }
    }
}

impl SnapshotV5 {
    pub(super) fn into_domain(self) -> Result<Snapshot, PersistError> {
        let mut snapshot = self.base.into_domain()?;
        let mut located = HashMap::with_capacity(self.locations.len());
        for (device, latitude, longitude) in self.locations {
            let location = Location::new(latitude, longitude)
                .map_err(|_| PersistError::Invalid("device location"))?;
            located.insert(device, location);
        }
        for device in &mut snapshot.devices {
            device.location = located.remove(&*device.device_id);
        }
        if !located.is_empty() {
            return Err(PersistError::Invalid("location of an unknown device"));
        }
        Ok(snapshot)
    }
}
