//! Snapshot layout 3: layout 2's snapshot ([`SnapshotV2`], unchanged), followed by what the
//! devices' births told their state machines that layout 2 has no room for: for each device
//! whose latest birth said whether it connects intermittently, what it said. A device not listed
//! said nothing, and its kind's default applies. Snapshots of layout 2 still decode (through
//! [`super::v2`]), with nothing stated for any device.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::PersistError;
use super::v2::SnapshotV2;
use crate::state::snapshot::Snapshot;

/// The checkpoint snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SnapshotV3 {
    /// Everything layout 2 holds.
    base: SnapshotV2,
    /// (device, whether it connects intermittently), for the devices whose latest birth said.
    announced_intermittent: Vec<(String, bool)>,
}

impl From<&Snapshot> for SnapshotV3 {
    fn from(s: &Snapshot) -> Self {
        SnapshotV3 {
            base: SnapshotV2::from(s),
            announced_intermittent: s
                .fleet
                .machines
                .iter()
                .filter_map(|(device, _, m)| Some((device.to_string(), m.announced_intermittent?)))
                .collect(),
        }
    }
}

impl SnapshotV3 {
    pub(super) fn into_domain(self) -> Result<Snapshot, PersistError> {
        let mut snapshot = self.base.into_domain()?;
        let mut stated: HashMap<String, bool> = self.announced_intermittent.into_iter().collect();
        for (device, _, machine) in &mut snapshot.fleet.machines {
            machine.announced_intermittent = stated.remove(&**device);
        }
        if !stated.is_empty() {
            return Err(PersistError::Invalid(
                "intermittence of a device without a machine",
            ));
        }
        Ok(snapshot)
    }
}
