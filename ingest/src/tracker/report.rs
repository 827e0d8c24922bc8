//! Availability answers: per device, and rolled up per site or district.

use std::sync::Arc;

use super::{Target, Tracker};
use crate::availability::{
    Completeness, DeviceAvailability, Maintenance, Outage, Span, Summary, availability,
};
use crate::store::dedup::Dedup;

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

impl Tracker {
    /// The maintenance windows that apply to `device` at `site`.
    pub fn maintenance_for(&self, device: &str, site: &str) -> Maintenance {
        Maintenance::new(self.maintenance.iter().filter_map(|w| match &w.target {
            Target::Device(d) if d == device => Some(w.span),
            Target::Site(s) if s == site => Some(w.span),
            _ => None,
        }))
    }

    /// One device's availability over `window`.
    pub fn device_availability(
        &self,
        device: &str,
        site: &str,
        window: Span,
    ) -> DeviceAvailability {
        availability(
            self.transitions(device),
            &self.maintenance_for(device, site),
            window,
        )
    }

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

    /// The combined availability of `devices` (id and site) over `window`.
    pub fn group_availability<'a>(
        &self,
        dedup: &Dedup,
        devices: impl IntoIterator<Item = (&'a Arc<str>, &'a str)>,
        window: Span,
    ) -> GroupAvailability {
        let mut out = GroupAvailability::default();
        for (device, site) in devices {
            let a = self.device_availability(device, site, window);
            out.summary.merge(&a.summary);
            out.outages
                .extend(a.outages.into_iter().map(|o| (device.clone(), o)));
            out.completeness.merge(&self.completeness(dedup, device));
        }
        out
    }
}
