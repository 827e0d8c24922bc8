//! Data completeness: the share of the readings a device produced that citytel stored, measured
//! from the per-boot sequence numbers.
//!
//! Within a boot, sequence numbers go up by one per reading, so the readings expected are those
//! from the lowest to the highest sequence number seen, extended to the last sequence number a
//! heartbeat reported when that is higher (readings produced but never delivered at the end of a
//! boot). Readings lost before the first one received in a boot cannot be seen. A device sums its
//! boots; a site sums its devices, so each device weighs by its number of readings.

use crate::seqset::SeqSet;

/// Readings received against readings expected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completeness {
    /// Distinct readings stored.
    pub received: u64,
    /// Readings the sequence numbers say were produced.
    pub expected: u64,
}

impl Completeness {
    /// The completeness of one boot: its stored sequence numbers, and the last sequence number
    /// the device reported producing in that boot (from a heartbeat), if any.
    pub fn of_boot(seqs: &SeqSet, last_produced: Option<u64>) -> Self {
        let Some((low, high)) = seqs.span() else {
            return Completeness::default();
        };
        let high = last_produced.map_or(high, |last| high.max(last));
        Completeness {
            received: seqs.count(),
            expected: (high - low).saturating_add(1),
        }
    }

    /// The readings missing.
    pub fn missing(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    /// Completeness in percent, `None` when no reading was expected.
    pub fn percent(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.received as f64 * 100.0 / self.expected as f64)
    }

    /// Adds `other` (another boot, or another device) into `self`.
    pub fn merge(&mut self, other: &Completeness) {
        self.received = self.received.saturating_add(other.received);
        self.expected = self.expected.saturating_add(other.expected);
    }
}

/// The sum of several boots' or devices' completeness.
pub fn combine<'a>(parts: impl IntoIterator<Item = &'a Completeness>) -> Completeness {
    parts
        .into_iter()
        .fold(Completeness::default(), |mut all, part| {
            all.merge(part);
            all
        })
}
