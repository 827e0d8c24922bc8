//! The engine's deadlines, in time order: periodic evaluations of availability and completeness
//! rules, absence checks, and alerts whose `for` or `keep_firing_for` runs out or whose
//! suppression or silence ends. An entry is only a reminder: when it comes due the engine checks
//! what it refers to and skips it if that changed (so stale entries need no removal).
//!
//! At one instant, evaluations come before absence checks, and those before alert deadlines;
//! within a class, by rule and target. The order is total, so the engine does the same work in
//! the same order live and on replay.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::episode::Target;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Evaluate a periodic rule (availability, completeness).
    Evaluate,
    /// Check whether a device's metric is still absent.
    Absence,
    /// An alert's `for` or `keep_firing_for` ran out.
    Alert,
    /// An alert's suppression or silence may have ended.
    Unmute,
}

/// One deadline.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Due {
    /// The instant; handled once the engine's time is past it.
    pub at: i64,
    /// What for.
    pub class: Class,
    /// The rule's slot.
    pub slot: u32,
    /// The target (`None` for an evaluation), or the device of an absence check.
    pub target: Option<Target>,
}

/// Deadlines in (time, class, slot, target) order.
#[derive(Debug, Default)]
pub struct Queue {
    heap: BinaryHeap<Reverse<Due>>,
}

impl Queue {
    /// Adds a deadline.
    pub fn push(&mut self, at: i64, class: Class, slot: u32, target: Option<Target>) {
        self.heap.push(Reverse(Due {
            at,
            class,
            slot,
            target,
        }));
    }

    /// The earliest deadline's instant.
    pub fn next_at(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse(d)| d.at)
    }

    /// Removes and returns the earliest deadline before `now` (strictly).
    pub fn pop_before(&mut self, now: i64) -> Option<Due> {
        if self.next_at()? >= now {
            return None;
        }
        self.heap.pop().map(|Reverse(d)| d)
    }

    /// Forgets every deadline (a new rule set reschedules what it needs).
    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// Number of entries, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// A device target.
pub fn device(id: &Arc<str>) -> Target {
    Target {
        kind: super::rule::TargetKind::Device,
        id: id.clone(),
    }
}
