//! The engine's per-device state, held by a dense index: which reading rules select the device
//! ([`DeviceRules`]), its recovery, its absence clocks per rule, and its readings counted per
//! bucket interval for completeness rules.
//!
//! A telemetry batch finds all of it with one lookup of the device id; the rules' state for the
//! device then sits together in small vectors sorted by rule slot ([`SlotVec`]), instead of one
//! map entry per rule and device, each found by hashing the device id again.

use std::sync::Arc;

use super::counts::Counts;
use super::ruleset::DeviceRules;
use super::{Absent, Recovery};
use crate::hash::Map;

/// Values by rule slot, in slot order: a device's per-rule state, for the few rules of a kind
/// that select it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotVec<T> {
    items: Vec<(u32, T)>,
}

impl<T> Default for SlotVec<T> {
    fn default() -> Self {
        SlotVec { items: Vec::new() }
    }
}

impl<T> SlotVec<T> {
    fn find(&self, slot: u32) -> Result<usize, usize> {
        self.items.binary_search_by_key(&slot, |(s, _)| *s)
    }

    /// The value of `slot`.
    pub fn get(&self, slot: u32) -> Option<&T> {
        self.find(slot).ok().map(|i| &self.items[i].1)
    }

    /// The value of `slot`, for updates.
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.find(slot).ok().map(|i| &mut self.items[i].1)
    }

    /// The value of `slot`, inserting `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, slot: u32, make: impl FnOnce() -> T) -> &mut T {
        let i = match self.find(slot) {
            Ok(i) => i,
            Err(i) => {
                self.items.insert(i, (slot, make()));
                i
            }
        };
        &mut self.items[i].1
    }

    /// Sets the value of `slot`.
    pub fn insert(&mut self, slot: u32, value: T) {
        match self.find(slot) {
            Ok(i) => self.items[i].1 = value,
            Err(i) => self.items.insert(i, (slot, value)),
        }
    }

    /// Removes the value of `slot`.
    pub fn remove(&mut self, slot: u32) -> Option<T> {
        self.find(slot).ok().map(|i| self.items.remove(i).1)
    }

    /// Keeps the values for which `keep` (given their slot) says so.
    pub fn retain(&mut self, mut keep: impl FnMut(u32, &mut T) -> bool) {
        self.items.retain_mut(|(s, v)| keep(*s, v));
    }

    /// (slot, value) pairs in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.items.iter().map(|(s, v)| (*s, v))
    }

    /// (slot, value) pairs in slot order, for updates.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.items.iter_mut().map(|(s, v)| (*s, v))
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Moves every value to the slot `map` gives it, dropping those it gives none (a new rule
    /// set; `map` keeps slot order, as rules keep their order in the file).
    pub fn remap(&mut self, map: impl Fn(u32) -> Option<u32>) {
        let items = std::mem::take(&mut self.items);
        self.items = items
            .into_iter()
            .filter_map(|(s, v)| Some((map(s)?, v)))
            .collect();
        self.items.sort_by_key(|(s, _)| *s);
    }
}

/// One device's state in the engine.
#[derive(Debug)]
pub struct DeviceEntry {
    /// Its id.
    pub id: Arc<str>,
    /// Which reading rules select it, once computed.
    pub rules: Option<DeviceRules>,
    /// Its recovery, for absence rules.
    pub recovery: Recovery,
    /// Its absence clocks, by absence rule.
    pub absence: SlotVec<Absent>,
    /// Its readings counted for completeness rules, by counter (bucket interval, see
    /// [`super::ruleset::Counter`]).
    pub counts: SlotVec<Counts>,
}

/// Every device the engine holds state for, by a dense index given on first use (never
/// reused: the registry never forgets a device either).
#[derive(Debug, Default)]
pub struct Devices {
    index: Map<Arc<str>, u32>,
    entries: Vec<DeviceEntry>,
}

impl Devices {
    /// The index of `id`, if it has an entry.
    pub fn find(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The entry of `id`, if it has one.
    pub fn get(&self, id: &str) -> Option<&DeviceEntry> {
        self.find(id).map(|i| &self.entries[i as usize])
    }

    /// The entry of `id`, for updates, if it has one.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut DeviceEntry> {
        let i = self.find(id)?;
        Some(&mut self.entries[i as usize])
    }

    /// The index of `id`, giving it an entry first if it has none.
    pub fn index_of(&mut self, id: &Arc<str>) -> u32 {
        if let Some(i) = self.find(id) {
            return i;
        }
        let i = u32::try_from(self.entries.len()).expect("fewer than 2^32 devices");
        self.entries.push(DeviceEntry {
            id: id.clone(),
            rules: None,
            recovery: Recovery::default(),
            absence: SlotVec::default(),
            counts: SlotVec::default(),
        });
        self.index.insert(id.clone(), i);
        i
    }

    /// The entry at index `i`.
    pub fn at(&self, i: u32) -> &DeviceEntry {
        &self.entries[i as usize]
    }

    /// The entry at index `i`, for updates.
    pub fn at_mut(&mut self, i: u32) -> &mut DeviceEntry {
        &mut self.entries[i as usize]
    }

    /// Every entry, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &DeviceEntry> {
        self.entries.iter()
    }

    /// Every entry, in index order, for updates.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut DeviceEntry> {
        self.entries.iter_mut()
    }

    /// Forgets which reading rules select each device (the rules changed).
    pub fn forget_rules(&mut self) {
        for e in &mut self.entries {
            e.rules = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_vec_keeps_slot_order_and_remaps() {
        let mut v = SlotVec::default();
        v.insert(7, "g");
        v.insert(2, "b");
        *v.get_or_insert_with(5, || "e") = "E";
        assert_eq!(
            v.get_or_insert_with(2, || "x"),
            &"b",
            "present: not replaced"
        );
        assert_eq!(
            v.iter().collect::<Vec<_>>(),
            [(2, &"b"), (5, &"E"), (7, &"g")]
        );
        assert_eq!(v.remove(5), Some("E"));
        assert_eq!(v.get(5), None);
        v.insert(7, "G");
        assert_eq!(v.get(7), Some(&"G"));
        // Slot 2 goes, 7 becomes 1.
        v.remap(|s| (s == 7).then_some(1));
        assert_eq!(v.iter().collect::<Vec<_>>(), [(1, &"G")]);
        v.insert(3, "c");
        v.retain(|s, _| s != 1);
        assert_eq!(v.iter().collect::<Vec<_>>(), [(3, &"c")]);
    }

    #[test]
    fn devices_get_dense_stable_indexes() {
        let mut d = Devices::default();
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        assert_eq!(d.index_of(&a), 0);
        assert_eq!(d.index_of(&b), 1);
        assert_eq!(d.index_of(&a), 0, "known: same index");
        assert_eq!(d.find("b"), Some(1));
        assert_eq!(d.find("c"), None);
        d.at_mut(1).recovery.down = true;
        assert!(d.get("b").is_some_and(|e| e.recovery.down));
        assert_eq!(d.iter().map(|e| &*e.id).collect::<Vec<_>>(), ["a", "b"]);
    }
}
