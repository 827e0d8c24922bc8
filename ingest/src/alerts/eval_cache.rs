//! What the periodic rules evaluated at one instant share, so that forty rules over a hundred
//! thousand devices read the world once, not forty times: each device's state times over a
//! window (computed once however many availability rules read them), and each device's index
//! in the engine's per-device state (found once however many completeness rules read it).
//!
//! Both are kept by the position at which [`World::devices`] lists the device. They are only
//! valid while the world cannot change: the engine clears the cache once it has handled the
//! deadlines of one call (nothing is applied to the world in between).

use std::sync::Arc;

use citytel_availability::{Span, StateTimes};

use super::devices::Devices;
use super::world::World;

/// The shared reads of one round of evaluations.
#[derive(Debug, Default)]
pub struct EvalCache {
    /// Per window: per device position, its id and times.
    times: Vec<(Span, Vec<Option<(Arc<str>, StateTimes)>>)>,
    /// Per device position: its index in the engine's devices, if it has one.
    entries: Option<Vec<Option<u32>>>,
}

impl EvalCache {
    /// Forgets everything (the world may change from now on).
    pub fn clear(&mut self) {
        if !self.times.is_empty() || self.entries.is_some() {
            *self = EvalCache::default();
        }
    }

    /// The times of `device`, listed at `position`, over `window`: from the cache, or read
    /// from `world` and kept.
    pub fn times(
        &mut self,
        position: usize,
        device: &Arc<str>,
        window: Span,
        world: &dyn World,
    ) -> StateTimes {
        let i = match self.times.iter().position(|(w, _)| *w == window) {
            Some(i) => i,
            None => {
                self.times.push((window, Vec::new()));
                self.times.len() - 1
            }
        };
        let by_position = &mut self.times[i].1;
        if let Some(Some((id, times))) = by_position.get(position)
            && id == device
        {
            return *times;
        }
        let times = world.times(device, window);
        if by_position.len() <= position {
            by_position.resize(position + 1, None);
        }
        by_position[position] = Some((device.clone(), times));
        times
    }

    /// Per device position in `world`'s list, its index in `devices`.
    pub fn entries(&mut self, devices: &Devices, world: &dyn World) -> &[Option<u32>] {
        self.entries.get_or_insert_with(|| {
            let mut out = Vec::new();
            world.devices(&mut |d| out.push(devices.find(d.id)));
            out
        })
    }
}
