//! The tallies of the periodic rules due at one instant, computed together in one pass over
//! the devices on the first one's turn and taken by each rule on its own (see `periodic`).
//!
//! They are only valid while the world cannot change: the engine clears the cache once it has
//! handled the deadlines of one call (nothing is applied to the world in between, and the
//! rules due at one instant are all handled in the same call).

use super::periodic::Tally;

/// Tallies of rules due at one instant, by slot.
#[derive(Debug, Default)]
pub struct EvalCache {
    at: i64,
    tallies: Vec<(u32, Tally)>,
}

impl EvalCache {
    /// The tallies of the rules due at `at`.
    pub fn new(at: i64, tallies: Vec<(u32, Tally)>) -> EvalCache {
        EvalCache { at, tallies }
    }

    /// Takes the tally of rule `slot` at `at`, if it was computed.
    pub fn take(&mut self, at: i64, slot: u32) -> Option<Tally> {
        if self.at != at {
            return None;
        }
        let i = self.tallies.iter().position(|(s, _)| *s == slot)?;
        Some(self.tallies.swap_remove(i).1)
    }

    /// Forgets everything (the world may change from now on).
    pub fn clear(&mut self) {
        if !self.tallies.is_empty() {
            self.tallies = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_is_taken_once_and_only_at_its_instant() {
        let mut c = EvalCache::new(60, vec![(1, Tally::new()), (4, Tally::new())]);
        assert!(c.take(120, 1).is_none(), "another instant");
        assert!(c.take(60, 1).is_some());
        assert!(c.take(60, 1).is_none(), "taken");
        c.clear();
        assert!(c.take(60, 4).is_none(), "cleared");
    }
}
