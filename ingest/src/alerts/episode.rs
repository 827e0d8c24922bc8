//! One alert from the moment its condition holds until it is resolved: a small pure state
//! machine, told when its condition starts or stops holding and when its deadline passes, with
//! every time given to it.
//!
//! ```text
//!             holds                for passed                 stops holding
//!  (none) ───────────> Pending ─────────────────> Firing ──────────────────────> Resolved
//!                         │ stops holding          │  ^ holds again   (keep_firing_for = 0)
//!                         v                        v  │
//!                     (cancelled)              Clearing ── keep_firing_for passed ──> Resolved
//! ```
//!
//! An alert fires at `active_since + for` (stamped with that instant, whenever the engine
//! notices), and resolves when its condition stops holding, or, with `keep_firing_for`, that
//! long after it stopped holding unless it held again meanwhile. A condition that stops holding
//! exactly at the instant the alert would fire wins: the alert does not fire.

use std::sync::Arc;

use super::rule::TargetKind;

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// A device, site or district.
    pub kind: TargetKind,
    /// Its id or name.
    pub id: Arc<str>,
}

/// An alert's key: the rule (by its slot in the rule set) and the target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The rule's position in the current rule set.
    pub slot: u32,
    /// What it is about.
    pub target: Target,
}

/// Who acknowledged an alert, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Who: the caller's organisation and key, or the name they gave.
    pub by: String,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
}

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// Its id, unique for the data directory's lifetime.
    pub id: u64,
    /// When its condition started holding (pending since).
    pub active_since: i64,
    /// When it fired (the deadline-derived firing time; Alertmanager's `startsAt`).
    pub fired_at: Option<i64>,
    /// While firing: when its condition stopped holding (keep_firing_for running).
    pub clearing_since: Option<i64>,
    /// The value that made it hold last (threshold), or the figure (availability,
    /// completeness, in percent).
    pub value: Option<f64>,
    /// The sequence number of the notification that it fires, once one went out (it is not
    /// sent while the alert is suppressed or silenced).
    pub notified: Option<u64>,
    /// Its acknowledgement.
    pub ack: Option<Ack>,
}

/// What a step of an episode did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing visible.
    None,
    /// It fired at this instant.
    Fired(i64),
    /// It resolved at this instant.
    Resolved(i64),
    /// It was pending and its condition stopped holding: it is gone.
    Cancelled,
}

impl Episode {
    /// A new alert whose condition started holding at `at`; with no `for` it fires at once.
    pub fn start(id: u64, at: i64, for_ms: i64, value: Option<f64>) -> (Episode, Step) {
        let mut e = Episode {
            id,
            active_since: at,
            fired_at: None,
            clearing_since: None,
            value,
            notified: None,
            ack: None,
        };
        let step = if for_ms <= 0 {
            e.fired_at = Some(at);
            Step::Fired(at)
        } else {
            Step::None
        };
        (e, step)
    }

    /// Whether it is firing (clearing included).
    pub fn firing(&self) -> bool {
        self.fired_at.is_some()
    }

    /// The condition holds (again) at `at`.
    pub fn holds(&mut self, _at: i64) {
        self.clearing_since = None;
    }

    /// The condition stopped holding at `at`.
    pub fn stops(&mut self, at: i64, keep_firing_for_ms: i64) -> Step {
        match (self.fired_at, self.clearing_since) {
            (None, _) => Step::Cancelled,
            (Some(_), Some(_)) => Step::None,
            (Some(_), None) if keep_firing_for_ms > 0 => {
                self.clearing_since = Some(at);
                Step::None
            }
            (Some(_), None) => Step::Resolved(at),
        }
    }

    /// When it changes next by itself: pending until `for` passed, or clearing until
    /// `keep_firing_for` passed.
    pub fn deadline(&self, for_ms: i64, keep_firing_for_ms: i64) -> Option<i64> {
        match (self.fired_at, self.clearing_since) {
            (None, _) => Some(self.active_since.saturating_add(for_ms.max(0))),
            (Some(_), Some(since)) => Some(since.saturating_add(keep_firing_for_ms)),
            (Some(_), None) => None,
        }
    }

    /// Its deadline `at` passed.
    pub fn due(&mut self, at: i64, for_ms: i64, keep_firing_for_ms: i64) -> Step {
        if self.deadline(for_ms, keep_firing_for_ms) != Some(at) {
            return Step::None;
        }
        match self.fired_at {
            None => {
                self.fired_at = Some(at);
                Step::Fired(at)
            }
            Some(_) => Step::Resolved(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_fires_at_its_deadline_and_cancels_before_it() {
        let (mut e, step) = Episode::start(1, 100, 50, None);
        assert_eq!(step, Step::None);
        assert_eq!(e.deadline(50, 0), Some(150));
        assert_eq!(e.due(149, 50, 0), Step::None, "not its deadline");
        assert_eq!(e.due(150, 50, 0), Step::Fired(150));
        assert_eq!(e.deadline(50, 0), None);
        assert_eq!(e.stops(170, 0), Step::Resolved(170));

        let (mut e, _) = Episode::start(2, 100, 50, None);
        assert_eq!(e.stops(150, 0), Step::Cancelled);
    }

    #[test]
    fn keep_firing_for_bridges_gaps_and_resolves_after_it() {
        let (mut e, step) = Episode::start(1, 100, 0, None);
        assert_eq!(step, Step::Fired(100));
        assert_eq!(e.stops(200, 60), Step::None);
        assert_eq!(e.deadline(0, 60), Some(260));
        e.holds(250);
        assert_eq!(e.deadline(0, 60), None, "held again: still the same alert");
        assert_eq!(e.stops(300, 60), Step::None);
        assert_eq!(e.stops(310, 60), Step::None, "already clearing");
        assert_eq!(e.due(360, 0, 60), Step::Resolved(360));
    }
}
