//! The fleet counts: how many devices are in each state per [`Cell`] (kind, site and district),
//! and the devices needing attention in the order `GetFleetSummary` lists them, kept as the
//! state changes so that a summary of a million devices reads a few thousand cells instead of
//! every device.
//!
//! They follow the registry at once (a device that appears or changes its cell is moved with its
//! current state, see [`Registry::take_moved`]) and the fleet's transitions at the end of every
//! change of the state (each applied entry, each silence sweep, the restart mark, before a
//! checkpoint takes the transitions), so between two changes they are exact. A restore at
//! start-up marks them stale; the first change after it recounts every device once.
//!
//! A device the fleet has never tracked counts as `Unknown`, as in the summary's full walk.

use std::collections::BTreeSet;
use std::sync::Arc;

use citytel_availability::{Change, DeviceState, Transition};

use super::State;
use super::fleet::Fleet;
use super::registry::{Cell, Registry};
use crate::hash::Map;

/// Position of a state in [`Counts`].
pub fn state_index(state: DeviceState) -> usize {
    match state {
        DeviceState::Unknown => 0,
        DeviceState::Online => 1,
        DeviceState::Late => 2,
        DeviceState::Offline => 3,
        DeviceState::Unreachable => 4,
    }
}

/// Devices per state, in [`state_index`] order.
pub type Counts = [u32; 5];

/// Where a device in a state needing attention ranks: offline first, then unreachable, then
/// late; `None` for the other states.
pub fn attention_rank(state: DeviceState) -> Option<u8> {
    match state {
        DeviceState::Offline => Some(0),
        DeviceState::Unreachable => Some(1),
        DeviceState::Late => Some(2),
        _ => None,
    }
}

/// The counts per cell and the attention order.
#[derive(Debug, Default)]
pub struct FleetCounts {
    cells: Map<Cell, Counts>,
    /// (rank, since, device) of every device needing attention, in the summary's order.
    attention: BTreeSet<(u8, i64, Arc<str>)>,
    /// The key in `attention` of each device in it.
    ranked: Map<Arc<str>, (u8, i64)>,
    /// Whether a restore left them behind the state (recounted at the next change).
    stale: bool,
}

impl FleetCounts {
    /// Every cell with at least one device, and its counts.
    pub fn cells(&self) -> impl Iterator<Item = (&Cell, &Counts)> {
        self.cells.iter()
    }

    /// The devices needing attention, most urgent first: offline, unreachable, then late, each
    /// longest first (the time it entered the state), then by id.
    pub fn attention(&self) -> impl Iterator<Item = &Arc<str>> {
        self.attention.iter().map(|(_, _, d)| d)
    }

    fn add(&mut self, cell: &Cell, state: DeviceState) {
        match self.cells.get_mut(cell) {
            Some(c) => c[state_index(state)] += 1,
            None => {
                let mut c = Counts::default();
                c[state_index(state)] = 1;
                self.cells.insert(cell.clone(), c);
            }
        }
    }

    fn remove(&mut self, cell: &Cell, state: DeviceState) {
        if let Some(c) = self.cells.get_mut(cell) {
            let slot = &mut c[state_index(state)];
            *slot = slot.saturating_sub(1);
            if c.iter().all(|&n| n == 0) {
                self.cells.remove(cell);
            }
        }
    }

    /// Puts `device` in the attention order for `state` since `since_ms` (out of it for a state
    /// that needs none).
    fn rank(&mut self, device: &Arc<str>, state: DeviceState, since_ms: Option<i64>) {
        if let Some((rank, since)) = self.ranked.remove(device) {
            self.attention.remove(&(rank, since, device.clone()));
        }
        if let Some(rank) = attention_rank(state) {
            let since = since_ms.unwrap_or(i64::MIN);
            self.attention.insert((rank, since, device.clone()));
            self.ranked.insert(device.clone(), (rank, since));
        }
    }

    /// Applies a transition of `device`, counted in `cell` (one lookup of the cell; the
    /// attention order is only touched when the device enters, leaves or stays in it).
    fn transition(&mut self, cell: &Cell, device: &Arc<str>, t: &Transition) {
        match self.cells.get_mut(cell) {
            Some(c) if c[state_index(t.from)] > 0 => {
                c[state_index(t.from)] -= 1;
                c[state_index(t.to)] += 1;
            }
            _ => {
                self.remove(cell, t.from);
                self.add(cell, t.to);
            }
        }
        if attention_rank(t.from).is_some() || attention_rank(t.to).is_some() {
            self.rank(device, t.to, Some(t.at_ms));
        }
    }

    /// Every device counted afresh.
    fn recount(registry: &Registry, fleet: &Fleet) -> Self {
        let mut counts = FleetCounts::default();
        for record in registry.iter_after(None) {
            let (state, last) = fleet
                .state(&record.device_id)
                .unwrap_or((DeviceState::Unknown, None));
            counts.add(&record.cell(), state);
            counts.rank(&record.device_id, state, last.map(|t| t.at_ms));
        }
        counts
    }
}

impl State {
    /// The fleet counts, when they are current (`None` between a restore and the first change
    /// after it).
    pub fn fleet_counts(&self) -> Option<&FleetCounts> {
        (!self.counts.stale).then_some(&self.counts)
    }

    /// Moves the devices that appeared or changed their cell in the registry, with the state the
    /// counts know them in (the fleet's, since every earlier transition has been fed).
    pub(super) fn count_moves(&mut self) {
        if self.counts.stale {
            self.registry.take_moved();
            return;
        }
        let moved: Vec<_> = self.registry.take_moved().collect();
        // A device that moved twice (a new site, then a location in another district) is
        // counted where its first move found it, and goes where it is now.
        let mut seen = std::collections::HashSet::new();
        for m in &moved {
            if moved.len() > 1 && !seen.insert(&m.device) {
                continue;
            }
            let Some(record) = self.registry.get(&m.device) else {
                continue;
            };
            let (state, last) = self
                .fleet
                .state(&m.device)
                .unwrap_or((DeviceState::Unknown, None));
            if let Some(from) = &m.from {
                self.counts.remove(from, state);
            } else {
                self.counts.rank(&m.device, state, last.map(|t| t.at_ms));
            }
            self.counts.add(&record.cell(), state);
        }
    }

    /// Feeds the counts the transitions the fleet recorded since they were last fed (recounting
    /// every device instead when they are stale).
    pub(super) fn count_transitions(&mut self) {
        let total = self.fleet.unflushed_len();
        if self.counts.stale || self.counts_fed > total {
            self.registry.take_moved();
            self.counts = FleetCounts::recount(&self.registry, &self.fleet);
            self.counts_fed = total;
            return;
        }
        for change in self.fleet.unflushed_from(self.counts_fed) {
            let Change::Transition(t) = &change.change else {
                continue;
            };
            // Only registered devices are counted (the fleet tracks no other).
            if let Some(record) = self.registry.get(&change.device) {
                self.counts.transition(&record.cell(), &change.device, t);
            }
        }
        self.counts_fed = total;
    }

    /// Marks the counts stale (after a restore).
    pub(super) fn counts_stale(&mut self) {
        self.counts.stale = true;
    }
}

#[cfg(test)]
mod tests;
