//! What the engine may ask of the rest of the state while it evaluates: a device's current
//! state, its availability over a window, the devices there are, and maintenance windows. The
//! state implements it over its fleet, registry and maintenance windows; tests implement it
//! over plain data. Every answer depends only on what was applied before, so evaluation stays
//! deterministic.

use std::sync::Arc;

use citytel_availability::{DeviceState, Span, StateTimes};

/// A device as the engine sees it.
#[derive(Debug, Clone, Copy)]
pub struct DeviceRef<'a> {
    /// Its id.
    pub id: &'a Arc<str>,
    /// Its kind.
    pub kind: &'a Arc<str>,
    /// Its site.
    pub site: &'a Arc<str>,
    /// Its site's district, if one is configured.
    pub district: Option<&'a str>,
}

/// Read access to the rest of the state.
pub trait World {
    /// The device's current state (`Unknown` for a device never tracked).
    fn state(&self, device: &str) -> DeviceState;

    /// The device's state at `at_ms`, transitions at that instant included (`Unknown` before
    /// its history). A deadline is judged by it: the engine may handle a deadline only once
    /// later transitions have been applied (a writer tick applies every silence timeout up to
    /// its time before the engine's deadlines in between).
    fn state_at(&self, device: &str, at_ms: i64) -> DeviceState;

    /// When the device entered its current state, if it ever changed.
    fn since(&self, device: &str) -> Option<i64>;

    /// Time per state of the device over `window` (maintenance taken out, as in
    /// `GetAvailability`).
    fn times(&self, device: &str, window: Span) -> StateTimes;

    /// Calls `f` for every known device, in id order.
    fn devices(&self, f: &mut dyn FnMut(DeviceRef<'_>));

    /// The device, if known.
    fn device(&self, id: &str) -> Option<DeviceRef<'_>>;

    /// The district of `site`, if one is configured.
    fn district(&self, site: &str) -> Option<&str>;

    /// When the maintenance window covering `at_ms` ends, for `device` (with its site) or, with
    /// no device, for `site`; `None` outside maintenance.
    fn maintenance_until(
        &self,
        device: Option<&str>,
        site: Option<&str>,
        at_ms: i64,
    ) -> Option<i64>;
}
