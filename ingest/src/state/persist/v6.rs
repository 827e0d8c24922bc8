//! Snapshot layout 6: layout 5's snapshot ([`SnapshotV5`], unchanged), followed by the devices'
//! attributes: for each device that has any, (device, [(name, value, datatype, time_ms)]), by
//! name. A device not listed has none. Snapshots of layouts 1 to 5 still decode, with no
//! attributes.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::PersistError;
use super::v5::SnapshotV5;
use crate::state::attributes::{Attribute, DeviceAttributes};
use crate::state::snapshot::Snapshot;

/// One attribute: (name, value, datatype, time_ms).
type AttributeV6 = (String, String, String, i64);

/// The checkpoint snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SnapshotV6 {
    /// Everything layout 5 holds.
    base: SnapshotV5,
    /// (device, its attributes), for the devices with any.
    attributes: Vec<(String, Vec<AttributeV6>)>,
}

impl From<&Snapshot> for SnapshotV6 {
    fn from(s: &Snapshot) -> Self {
        SnapshotV6 {
            base: SnapshotV5::from(s),
            attributes: s
                .attributes
                .iter()
                .map(|(device, attributes)| {
                    let list = attributes
                        .iter()
                        .map(|(name, a)| {
                            (name.clone(), a.value.clone(), a.datatype.clone(), a.time_ms)
                        })
                        .collect();
                    (device.to_string(), list)
                })
                .collect(),
        }
    }
}

impl SnapshotV6 {
    pub(super) fn into_domain(self) -> Result<Snapshot, PersistError> {
        let mut snapshot = self.base.into_domain()?;
        let known: HashSet<&str> = snapshot.devices.iter().map(|d| &*d.device_id).collect();
        let mut attributes = Vec::with_capacity(self.attributes.len());
        for (device, list) in self.attributes {
            if !known.contains(device.as_str()) {
                return Err(PersistError::Invalid("attributes of an unknown device"));
            }
            let mut kept = DeviceAttributes::new();
            for (name, value, datatype, time_ms) in list {
                let a = Attribute {
                    value,
                    datatype,
                    time_ms,
                };
                if kept.insert(name, a).is_some() {
                    return Err(PersistError::Invalid("attribute listed twice"));
                }
            }
            attributes.push((Arc::from(device), kept));
        }
        snapshot.attributes = attributes;
        Ok(snapshot)
    }
}
