//! An alert's labels (what identifies it, as Alertmanager sees it) and its fingerprint.
//!
//! Every alert carries `alertname` (the rule's name) and `severity`, the labels of what it is
//! about (`device`, `kind`, `site`, `district` for a device; `site` and `district`, or
//! `district`, for a group), and the rule's own labels. The fingerprint is FNV-1a (64 bits) of
//! the sorted label pairs, shown as 16 hex digits: the same labels always give the same
//! fingerprint, so it identifies an alert across restarts and in idempotency keys.

use std::collections::BTreeMap;

/// Label names and values, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Names the engine sets itself, which a rule's own labels may not use.
pub const RESERVED: [&str; 6] = [
    "alertname",
    "severity",
    "device",
    "kind",
    "site",
    "district",
];

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The fingerprint of a label set.
pub fn fingerprint(labels: &Labels) -> u64 {
    let mut hash = FNV_OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    };
    for (name, value) in labels {
        feed(name.as_bytes());
        feed(&[0xff]);
        feed(value.as_bytes());
        feed(&[0xff]);
    }
    hash
}

/// A fingerprint as 16 lowercase hex digits.
pub fn hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_depend_on_every_pair_and_nothing_else() {
        let a: Labels = [("alertname", "x"), ("device", "d1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.insert("device".into(), "d2".into());
        assert_ne!(fingerprint(&a), fingerprint(&b));
        // The separator keeps "ab"+"c" apart from "a"+"bc".
        let c: Labels = [("ab".to_string(), "c".to_string())].into();
        let d: Labels = [("a".to_string(), "bc".to_string())].into();
        assert_ne!(fingerprint(&c), fingerprint(&d));
        assert_eq!(hex(0xab), "00000000000000ab");
    }
}
