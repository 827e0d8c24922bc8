//! An edge node's `seq` (0 to 255, wrapping, one counter for the node and all its devices): which
//! number comes next, which ones were skipped and may still arrive, and which were seen already.

use std::collections::BTreeSet;

/// How far behind the expected number a repeated one counts as a duplicate (a redelivery)
/// rather than a jump ahead.
const DUPLICATE_WINDOW: u8 = 64;

/// What a message's `seq` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SeqCheck {
    /// The expected number.
    InOrder,
    /// A number skipped before, arriving late (reordered delivery).
    Late,
    /// Ahead of the expected number: the numbers between are missing.
    Gap,
    /// Seen already: a redelivery.
    Duplicate,
}

/// The `seq` counter of one edge node session.
#[derive(Debug, Clone, Default)]
pub(super) struct SeqTracker {
    /// The number the next message should carry.
    next: u8,
    /// Numbers skipped that have not arrived yet.
    missing: BTreeSet<u8>,
}

impl SeqTracker {
    /// A counter after a birth carrying `seq`.
    pub(super) fn after_birth(seq: u8) -> Self {
        SeqTracker {
            next: seq.wrapping_add(1),
            missing: BTreeSet::new(),
        }
    }

    /// Takes `seq` in and says what it was.
    pub(super) fn observe(&mut self, seq: u8) -> SeqCheck {
        if seq == self.next {
            self.next = seq.wrapping_add(1);
            return SeqCheck::InOrder;
        }
        if self.missing.remove(&seq) {
            return SeqCheck::Late;
        }
        let behind = self.next.wrapping_sub(seq);
        if behind <= DUPLICATE_WINDOW {
            return SeqCheck::Duplicate;
        }
        let mut skipped = self.next;
        while skipped != seq {
            self.missing.insert(skipped);
            skipped = skipped.wrapping_add(1);
        }
        self.next = seq.wrapping_add(1);
        SeqCheck::Gap
    }

    /// Whether skipped numbers are still awaited.
    pub(super) fn has_missing(&self) -> bool {
        !self.missing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_through_the_wrap() {
        let mut t = SeqTracker::after_birth(254);
        assert_eq!(t.observe(255), SeqCheck::InOrder);
        assert_eq!(t.observe(0), SeqCheck::InOrder);
        assert_eq!(t.observe(1), SeqCheck::InOrder);
        assert!(!t.has_missing());
    }

    #[test]
    fn a_gap_is_filled_by_late_arrivals_and_repeats_are_duplicates() {
        let mut t = SeqTracker::after_birth(0);
        assert_eq!(t.observe(1), SeqCheck::InOrder);
        assert_eq!(t.observe(4), SeqCheck::Gap);
        assert!(t.has_missing());
        assert_eq!(t.observe(3), SeqCheck::Late);
        assert_eq!(t.observe(2), SeqCheck::Late);
        assert!(!t.has_missing());
        assert_eq!(t.observe(4), SeqCheck::Duplicate);
        assert_eq!(t.observe(1), SeqCheck::Duplicate);
        assert_eq!(t.observe(5), SeqCheck::InOrder);
    }

    #[test]
    fn a_gap_across_the_wrap() {
        let mut t = SeqTracker::after_birth(250);
        assert_eq!(t.observe(2), SeqCheck::Gap);
        for s in [251, 252, 253, 254, 255, 0] {
            assert!(t.has_missing());
            assert_eq!(t.observe(s), SeqCheck::Late, "{s}");
        }
        assert_eq!(t.observe(1), SeqCheck::Late);
        assert!(!t.has_missing());
        assert_eq!(t.observe(3), SeqCheck::InOrder);
    }
}
