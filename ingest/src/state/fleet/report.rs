//! Availability answers, in two steps so that the state lock is held only briefly: under the
//! lock, [`Fleet::capture`] copies what a device's answer needs (the transitions around a time
//! range, its maintenance windows, its completeness); without it, [`group`] computes the
//! figures, checking a deadline between devices.

use std::sync::Arc;

use citytel_availability::{
    Completeness, DeviceAvailability, Maintenance, Outage, Span, Summary, Transition, availability,
};

use super::Fleet;
use crate::state::dedup::Dedup;

/// The availability of a group of devices over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupAvailability {
    /// Time per state and the figures, combined.
    pub summary: Summary,
    /// Every outage with its device, in no particular order.
    pub outages: Vec<(Arc<str>, Outage)>,
    /// Completeness over the data stored.
    pub completeness: Completeness,
}

/// What the availability answers of one device over windows within a range need, copied out
/// of the state.
#[derive(Debug, Clone)]
pub struct DeviceInputs {
    /// The device.
    pub device: Arc<str>,
    /// Its transitions that decide any window within the captured range.
    transitions: Vec<Transition>,
    /// Its maintenance windows.
    maintenance: Maintenance,
    /// Its completeness over the readings stored.
    pub completeness: Completeness,
}

impl DeviceInputs {
    /// The device's availability over `window` (within the captured range).
    pub fn availability(&self, window: Span) -> DeviceAvailability {
        availability(&self.transitions, &self.maintenance, window)
    }
}

/// The deadline of a request ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request ran past its deadline")]
pub struct Expired;

impl Fleet {
    /// One device's completeness over the readings stored.
    pub fn completeness(&self, dedup: &Dedup, device: &str) -> Completeness {
        let mut c = Completeness::default();
        for (boot, seqs) in dedup.boots(device) {
            c.merge(&Completeness::of_boot(
                seqs,
                self.last_produced(device, *boot),
            ));
        }
        c
    }

    /// Copies what `device`'s availability over any window within `range` needs.
    pub fn capture(
        &self,
        dedup: &Dedup,
        device: &Arc<str>,
        maintenance: Maintenance,
        range: Span,
    ) -> DeviceInputs {
        let all = self.transitions(device);
        // The transition in force at the start, those inside, and the first at or after the end
        // (which ends the last run).
        let lo = all
            .partition_point(|t| t.at_ms <= range.start_ms)
            .saturating_sub(1);
        let hi = (all.partition_point(|t| t.at_ms < range.end_ms) + 1).min(all.len());
        DeviceInputs {
            device: device.clone(),
            transitions: all[lo..hi.max(lo)].to_vec(),
            maintenance,
            completeness: self.completeness(dedup, device),
        }
    }
}

/// The combined availability of `devices` over `window`; stops with [`Expired`] when
/// `expired` says so (asked between devices).
pub fn group(
    devices: &[DeviceInputs],
    window: Span,
    expired: impl Fn() -> bool,
) -> Result<GroupAvailability, Expired> {
    let mut out = GroupAvailability::default();
    for d in devices {
        if expired() {
            return Err(Expired);
        }
        let a = d.availability(window);
        out.summary.merge(&a.summary);
        out.outages
            .extend(a.outages.into_iter().map(|o| (d.device.clone(), o)));
        out.completeness.merge(&d.completeness);
    }
    Ok(out)
}
