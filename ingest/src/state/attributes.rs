//! Devices' attributes: the latest descriptive text values a device reported (an `Attributes`
//! status, such as those the Sparkplug host makes of String, Text, UUID and DateTime metrics),
//! one per name, the newest by the value's own time (the later applied when equal).
//!
//! Bounded per device by [`AttributeLimits`]: the writer checks a status against them before it
//! is committed ([`Attributes::admit`]), so a refusal is in the WAL as a `too_many_attributes`
//! dead letter and a replay rebuilds the same values. Kept in the checkpoint snapshot (layout 6).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use citytel_proto::v1;

use crate::decode::{RejectReason, Rejection};

/// Default most attributes per device.
pub const DEFAULT_MAX_PER_DEVICE: u32 = 64;
/// Default most attribute bytes (names, values and datatypes) per device.
pub const DEFAULT_MAX_BYTES_PER_DEVICE: u64 = 16 * 1024;

/// One attribute's latest value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The value, as text.
    pub value: String,
    /// The type its source declared (e.g. `String`, `UUID`, `DateTime`); empty: plain text.
    pub datatype: String,
    /// When the value was taken, by the device's clock, ms since the Unix epoch.
    pub time_ms: i64,
}

/// A device's attributes, by name.
pub type DeviceAttributes = BTreeMap<String, Attribute>;

/// How many attributes, and how many bytes of them, a device may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeLimits {
    /// Most attributes (distinct names) per device.
    pub max_per_device: u32,
    /// Most bytes per device, counting each attribute's name, value and datatype.
    pub max_bytes_per_device: u64,
}

impl Default for AttributeLimits {
    fn default() -> Self {
        AttributeLimits {
            max_per_device: DEFAULT_MAX_PER_DEVICE,
            max_bytes_per_device: DEFAULT_MAX_BYTES_PER_DEVICE,
        }
    }
}

/// What statuses admitted earlier in a commit group (not yet applied) add: per device, the
/// largest size seen per attribute name.
pub(crate) type Pending = HashMap<String, HashMap<String, u64>>;

/// The bytes an attribute counts for.
fn size(name: &str, value: &str, datatype: &str) -> u64 {
    (name.len() + value.len() + datatype.len()) as u64
}

/// Every device's attributes.
#[derive(Debug, Default)]
pub struct Attributes {
    by_device: HashMap<Arc<str>, DeviceAttributes>,
}

impl Attributes {
    /// The attributes of `device`, if it has any.
    pub fn of(&self, device: &str) -> Option<&DeviceAttributes> {
        self.by_device.get(device)
    }

    /// Applies the values of an attributes status from `device` (a value stamped zero takes
    /// `default_time_ms`): each replaces the kept value of its name unless that one is newer.
    pub(crate) fn apply(
        &mut self,
        device: &Arc<str>,
        values: &[v1::Attribute],
        default_time_ms: i64,
    ) {
        if values.is_empty() {
            return;
        }
        let kept = self.by_device.entry(device.clone()).or_default();
        for v in values {
            let time_ms = if v.time_unix_ms == 0 {
                default_time_ms
            } else {
                v.time_unix_ms
            };
            if kept.get(&v.name).is_some_and(|old| old.time_ms > time_ms) {
                continue;
            }
            kept.insert(
                v.name.clone(),
                Attribute {
                    value: v.value.clone(),
                    datatype: v.datatype.clone(),
                    time_ms,
                },
            );
        }
    }

    /// Checks that applying `values` to `device` keeps it within `limits`, counting what
    /// `pending` holds for it (admitted earlier in the same group); an admitted status adds to
    /// `pending`. Sizes are counted as if every value were applied (the larger of the kept and
    /// the new value of a name), so whatever the times decide, the device stays within bounds.
    pub(crate) fn admit(
        &self,
        device: &str,
        values: &[v1::Attribute],
        limits: AttributeLimits,
        pending: &mut Pending,
    ) -> Result<(), Rejection> {
        let mut sizes: HashMap<&str, u64> = HashMap::new();
        if let Some(kept) = self.by_device.get(device) {
            for (name, a) in kept {
                sizes.insert(name, size(name, &a.value, &a.datatype));
            }
        }
        let before = pending.get(device);
        for (name, &n) in before.into_iter().flatten() {
            let s = sizes.entry(name).or_default();
            *s = (*s).max(n);
        }
        for v in values {
            let s = sizes.entry(&v.name).or_default();
            *s = (*s).max(size(&v.name, &v.value, &v.datatype));
        }
        let count = sizes.len() as u64;
        if count > u64::from(limits.max_per_device) {
            return Err(Rejection::new(
                RejectReason::TooManyAttributes,
                format!(
                    "device {device:?} would have {count} attributes, more than the limit of {}",
                    limits.max_per_device
                ),
            ));
        }
        let bytes: u64 = sizes.values().sum();
        if bytes > limits.max_bytes_per_device {
            return Err(Rejection::new(
                RejectReason::TooManyAttributes,
                format!(
                    "device {device:?} would have {bytes} bytes of attributes, more than the limit of {}",
                    limits.max_bytes_per_device
                ),
            ));
        }
        let mine = pending.entry(device.to_string()).or_default();
        for v in values {
            let s = mine.entry(v.name.clone()).or_default();
            *s = (*s).max(size(&v.name, &v.value, &v.datatype));
        }
        Ok(())
    }

    /// Every device's attributes, by device id (for the snapshot).
    pub fn export(&self) -> Vec<(Arc<str>, DeviceAttributes)> {
        let mut out: Vec<(Arc<str>, DeviceAttributes)> = self
            .by_device
            .iter()
            .map(|(d, a)| (d.clone(), a.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Restores a device's attributes from a snapshot.
    pub fn restore(&mut self, device: Arc<str>, attributes: DeviceAttributes) {
        if !attributes.is_empty() {
            self.by_device.insert(device, attributes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(name: &str, value: &str, time_unix_ms: i64) -> v1::Attribute {
        v1::Attribute {
            name: name.into(),
            value: value.into(),
            datatype: "String".into(),
            time_unix_ms,
        }
    }

    fn values(attributes: &Attributes, device: &str) -> Vec<(String, String, i64)> {
        attributes
            .of(device)
            .into_iter()
            .flatten()
            .map(|(n, a)| (n.clone(), a.value.clone(), a.time_ms))
            .collect()
    }

    #[test]
    fn the_newest_value_by_its_own_time_wins_and_a_tie_goes_to_the_later() {
        let mut attributes = Attributes::default();
        let dev: Arc<str> = "d".into();
        attributes.apply(
            &dev,
            &[value("mode", "auto", 20), value("serial", "x", 0)],
            5,
        );
        attributes.apply(&dev, &[value("mode", "manual", 10)], 30);
        assert_eq!(
            values(&attributes, "d"),
            [
                ("mode".into(), "auto".into(), 20),
                ("serial".into(), "x".into(), 5)
            ]
        );
        attributes.apply(&dev, &[value("mode", "off", 20)], 30);
        attributes.apply(&dev, &[value("serial", "y", 0)], 6);
        assert_eq!(
            values(&attributes, "d"),
            [
                ("mode".into(), "off".into(), 20),
                ("serial".into(), "y".into(), 6)
            ]
        );
        assert!(attributes.of("other").is_none());
    }

    #[test]
    fn a_status_beyond_the_count_or_bytes_of_a_device_is_refused_with_its_reason() {
        let limits = AttributeLimits {
            max_per_device: 2,
            max_bytes_per_device: 20,
        };
        let mut attributes = Attributes::default();
        let dev: Arc<str> = "d".into();
        let mut pending = Pending::new();
        // 1 + 3 + 6 = 10 bytes each.
        let a = [value("a", "one", 1)];
        attributes.admit("d", &a, limits, &mut pending).unwrap();
        attributes.apply(&dev, &a, 0);
        pending.clear();
        // A second name fits; a third does not, in the same group or after.
        let b = [value("b", "two", 1)];
        attributes.admit("d", &b, limits, &mut pending).unwrap();
        let c = [value("c", "333", 1)];
        let refused = attributes.admit("d", &c, limits, &mut pending).unwrap_err();
        assert_eq!(refused.reason, RejectReason::TooManyAttributes);
        assert!(refused.detail.contains("3 attributes"), "{refused}");
        // Replacing a kept name adds no count, but a longer value may pass the bytes.
        attributes.apply(&dev, &b, 0);
        pending.clear();
        attributes
            .admit("d", &[value("a", "ONE", 2)], limits, &mut pending)
            .unwrap();
        let refused = attributes
            .admit("d", &[value("a", "longer", 3)], limits, &mut pending)
            .unwrap_err();
        assert_eq!(refused.reason, RejectReason::TooManyAttributes);
        assert!(refused.detail.contains("23 bytes"), "{refused}");
        // Another device has bounds of its own.
        attributes.admit("e", &c, limits, &mut pending).unwrap();
    }
}
