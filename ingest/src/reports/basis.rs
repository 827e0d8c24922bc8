//! What a figure rests on: how many devices, how many readings, and their share of the readings
//! those devices should have sent over the period.

use std::collections::BTreeSet;
use std::sync::Arc;

use citytel_availability::Span;
use citytel_proto::v1;

use super::{DeviceSeries, within};

/// Devices and readings behind a figure, accumulated.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    devices: BTreeSet<Arc<str>>,
    readings: u64,
    expected: u64,
}

impl Tally {
    /// Counts `series` over `span`: the device, its readings in the span, and what it should
    /// have sent.
    pub(crate) fn add(&mut self, series: &DeviceSeries, span: Span) {
        if self.devices.insert(series.device.id.clone()) {
            self.expected += series.device.expected(span);
        }
        self.readings += within(&series.buckets, span)
            .iter()
            .map(|b| b.count)
            .sum::<u64>();
    }

    /// Counts `received` readings of `expected`, of one device.
    pub(crate) fn add_counts(&mut self, device: &Arc<str>, received: u64, expected: u64) {
        if self.devices.insert(device.clone()) {
            self.expected += expected;
        }
        self.readings += received;
    }

    /// The wire form.
    pub(crate) fn to_wire(&self) -> v1::Basis {
        v1::Basis {
            devices: u32::try_from(self.devices.len()).unwrap_or(u32::MAX),
            readings: self.readings,
            readings_expected: self.expected,
            share_percent: share(self.readings, self.expected),
        }
    }
}

/// `part / whole` in percent; `None` when `whole` is 0.
pub(crate) fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// The basis of one series over `span`.
pub(crate) fn of_series(series: &DeviceSeries, span: Span) -> v1::Basis {
    let mut t = Tally::default();
    t.add(series, span);
    t.to_wire()
}
