//! Deduplication of readings on (device, boot id, sequence number).
//!
//! Each device keeps a [`SeqSet`] for each of its most recent boots, so a redelivered message, a
//! device's replay after reconnect or a WAL replay never stores a reading twice.

use std::sync::Arc;

use crate::hash::Map;
use citytel_availability::SeqSet;

/// A device's remembered boots: (boot id, sequence numbers seen), oldest first.
pub type Boots = Vec<(u64, SeqSet)>;

/// Boots remembered per device; a reading from an older, forgotten boot is stored again.
pub const BOOTS_PER_DEVICE: usize = 8;

/// The sequence numbers seen per device and boot.
#[derive(Debug, Default)]
pub struct Dedup {
    devices: Map<Arc<str>, Boots>,
}

impl Dedup {
    /// Records (device, boot, seq); returns false if it was seen before.
    pub fn insert(&mut self, device: &Arc<str>, boot: u64, seq: u64) -> bool {
        let boots = match self.devices.get_mut(device) {
            Some(b) => b,
            None => self.devices.entry(device.clone()).or_default(),
        };
        boots_entry(boots, boot).insert(seq)
    }

    /// Every device's remembered boots, for snapshots.
    pub fn export(&self) -> Vec<(Arc<str>, Boots)> {
        self.devices
            .iter()
            .map(|(d, boots)| (d.clone(), boots.clone()))
            .collect()
    }

    /// Restores a device's boots from a snapshot.
    pub fn restore(&mut self, device: Arc<str>, boots: Boots) {
        self.devices.insert(device, boots);
    }

    /// Every remembered boot of a device with its sequence numbers.
    pub fn boots(&self, device: &str) -> &[(u64, SeqSet)] {
        self.devices.get(device).map_or(&[], Vec::as_slice)
    }

    /// The sequence numbers stored for a device's boot.
    pub fn seqs(&self, device: &str, boot: u64) -> Option<&SeqSet> {
        self.devices
            .get(device)?
            .iter()
            .find(|(b, _)| *b == boot)
            .map(|(_, s)| s)
    }
}

fn boots_entry(boots: &mut Vec<(u64, SeqSet)>, boot: u64) -> &mut SeqSet {
    // The current boot is almost always the last one.
    let i = match boots.iter().rposition(|(b, _)| *b == boot) {
        Some(i) => i,
        None => {
            if boots.len() == BOOTS_PER_DEVICE {
                boots.remove(0);
            }
            // Most devices keep one boot for a long time: room for one, not the four a first
            // push reserves.
            boots.reserve_exact(1);
            boots.push((boot, SeqSet::default()));
            boots.len() - 1
        }
    };
    &mut boots[i].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seq_in_another_boot_is_new() {
        let mut d = Dedup::default();
        let dev: Arc<str> = "cab-1".into();
        assert!(d.insert(&dev, 1, 5));
        assert!(!d.insert(&dev, 1, 5));
        assert!(d.insert(&dev, 2, 5));
        assert!(!d.insert(&dev, 1, 5), "older boots are still remembered");
        assert_eq!(d.seqs("cab-1", 1).map(SeqSet::count), Some(1));
    }

    #[test]
    fn only_recent_boots_are_kept() {
        let mut d = Dedup::default();
        let dev: Arc<str> = "cab-1".into();
        for boot in 0..=BOOTS_PER_DEVICE as u64 {
            d.insert(&dev, boot, 1);
        }
        assert!(d.seqs("cab-1", 0).is_none());
        assert!(d.seqs("cab-1", 1).is_some());
    }
}
