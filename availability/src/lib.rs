//! Device availability: the pure per-device state machine and everything computed from the
//! history it produces. No I/O and no clock here: every input carries its `now`, and a thin driver
//! elsewhere feeds events, schedules ticks and stores what comes out.
//!
//! ```text
//! Event + now ─> machine::DeviceMachine ─> Change (Transition | Reboot) ─> stored history
//!                      ^ policy::Policy (late/offline thresholds)               │
//!                                                                               v
//!        maintenance::Maintenance ─> history::availability ─> summary::Summary ─> roll_up (site, district)
//! seqset::SeqSet ─> completeness::Completeness ─> combine (device, site)
//! (device time, receive time) ─> offset::ClockEstimator ─> ClockOffset
//! ```
//!
//! - [`state`]: [`DeviceState`] and [`Cause`], the persisted vocabulary (stable codes and names).
//! - [`policy`]: [`Policy`], how long a device may stay silent before it is Late or Offline.
//! - [`machine`]: [`DeviceMachine`], the state machine, its [`Event`]s and [`Change`]s.
//! - [`maintenance`]: [`Maintenance`] windows, taken out of availability.
//! - [`history`]: [`availability`] of one device over a window, with its [`Outage`]s.
//! - [`summary`]: availability %, MTTR, MTBF and the time-weighted [`roll_up`].
//! - [`districts`]: [`Districts`], a device's district from its [`Location`] (point in polygon of
//!   a GeoJSON [`DistrictMap`]) or its site.
//! - [`completeness`]: [`Completeness`] from per-boot sequence numbers.
//! - [`seqset`]: [`SeqSet`], the sequence numbers of a boot that were stored, as ranges.
//! - [`offset`]: [`ClockEstimator`], a robust estimate of a device's clock offset.

pub mod completeness;
pub mod districts;
pub mod history;
pub mod machine;
pub mod maintenance;
pub mod offset;
pub mod policy;
pub mod seqset;
pub mod state;
pub mod summary;

#[cfg(test)]
mod tests;

pub use completeness::Completeness;
pub use districts::{DistrictMap, Districts, DistrictsError, Location};
pub use history::{DeviceAvailability, Outage, availability};
pub use machine::{Change, DeviceMachine, Event, Reboot, Snapshot, Transition};
pub use maintenance::{Maintenance, Span};
pub use offset::{ClockEstimator, ClockOffset};
pub use policy::{Policy, PolicyError, Timing};
pub use seqset::SeqSet;
pub use state::{Cause, DeviceState, UnknownName};
pub use summary::{StateTimes, Summary, roll_up};
