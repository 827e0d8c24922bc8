//! The next silence deadline of every device, in time order, so timeouts are applied globally
//! in the order they fall due, whatever the order events arrive or ticks run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::hash::Map;

/// Pending deadlines; a device has at most one current deadline (older heap entries are stale
/// and skipped).
#[derive(Debug, Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(i64, Arc<str>)>>,
    current: Map<Arc<str>, i64>,
}

impl Deadlines {
    /// Sets (or clears, with `None`) the deadline of `device`.
    pub fn set(&mut self, device: &Arc<str>, deadline: Option<i64>) {
        match deadline {
            Some(at) => {
                if self.current.insert(device.clone(), at) != Some(at) {
                    self.heap.push(Reverse((at, device.clone())));
                }
            }
            None => {
                self.current.remove(device);
            }
        }
    }

    /// The earliest deadline in the queue (possibly a stale one, which [`pop_due`](Self::pop_due)
    /// skips).
    pub fn next_at(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest deadline at or before `now_ms`.
    pub fn pop_due(&mut self, now_ms: i64) -> Option<(i64, Arc<str>)> {
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > now_ms {
                return None;
            }
            let Reverse((at, device)) = self.heap.pop()?;
            if self.current.get(&device) == Some(&at) {
                self.current.remove(&device);
                return Some((at, device));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_come_out_in_time_order_and_stale_ones_are_skipped() {
        let mut d = Deadlines::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        d.set(&a, Some(30));
        d.set(&b, Some(10));
        d.set(&a, Some(20));
        assert_eq!(d.pop_due(5), None);
        assert_eq!(d.pop_due(100), Some((10, b.clone())));
        assert_eq!(d.pop_due(100), Some((20, a.clone())));
        assert_eq!(d.pop_due(100), None, "the stale 30 of a is skipped");
        d.set(&b, Some(50));
        d.set(&b, None);
        assert_eq!(d.pop_due(100), None);
    }
}
