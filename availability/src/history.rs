//! A device's availability over any window, computed from its stored [`Transition`]s: time per
//! state, the outage list and the [`Summary`] figures.
//!
//! Rules:
//! - The transitions are one device's, sorted by time. Before the first one the device is
//!   Unknown; after the last one it stays in that state until the end of the window, so callers
//!   pass windows that end no later than now.
//! - Maintenance time is taken out of every state and reported on its own.
//! - An outage is a maximal Offline interval, clipped to the window and trimmed of maintenance at
//!   either end: it starts at its first and ends at its last instant outside maintenance, and its
//!   duration leaves out maintenance inside it. An outage wholly inside maintenance is not one.
//!   Its cause is the cause of the transition into Offline. It is open when the device is still
//!   Offline at the end of the window, and began before the window when it was already Offline at
//!   its start; durations only count time inside the window.

use super::machine::Transition;
use super::maintenance::{Maintenance, Span};
use super::state::{Cause, DeviceState};
use super::summary::Summary;

/// A period the device was Offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// Its first instant inside the window and outside maintenance, ms.
    pub start_ms: i64,
    /// Its end inside the window outside maintenance (the end of the window when open), ms.
    pub end_ms: i64,
    /// Time Offline between start and end, outside maintenance, ms.
    pub duration_ms: i64,
    /// Why the device went Offline.
    pub cause: Cause,
    /// The device was already Offline when the window began.
    pub began_before: bool,
    /// The device was still Offline when the window ended.
    pub open: bool,
}

/// One device's availability over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAvailability {
    /// The window.
    pub window: Span,
    /// Time per state and the figures.
    pub summary: Summary,
    /// Outages, in time order.
    pub outages: Vec<Outage>,
}

/// A device's availability over `window`, from its `transitions` sorted by time.
pub fn availability(
    transitions: &[Transition],
    maintenance: &Maintenance,
    window: Span,
) -> DeviceAvailability {
    let mut summary = Summary {
        devices: 1,
        ..Summary::default()
    };
    let mut outages = Vec::new();
    for run in runs(transitions, window) {
        let clipped = Span::new(
            run.start_ms.max(window.start_ms),
            run.end_ms.min(window.end_ms),
        );
        if clipped.len_ms() == 0 {
            continue;
        }
        let maintenance_ms = maintenance.overlap_ms(clipped);
        let ms = clipped.len_ms() - maintenance_ms;
        summary.times.maintenance_ms += maintenance_ms;
        summary.times.add(run.state, ms);
        if let (DeviceState::Offline, Some(cause), Some(trimmed)) =
            (run.state, run.cause, maintenance.trim(clipped))
        {
            let outage = Outage {
                start_ms: trimmed.start_ms,
                end_ms: trimmed.end_ms,
                duration_ms: ms,
                cause,
                began_before: run.start_ms < window.start_ms,
                open: run.end_ms > window.end_ms,
            };
            summary.outages_started += u64::from(!outage.began_before);
            if !outage.open {
                summary.outages_ended += 1;
                summary.repair_ms += outage.duration_ms;
            }
            outages.push(outage);
        }
    }
    DeviceAvailability {
        window,
        summary,
        outages,
    }
}

/// A maximal interval in one state, with unclipped bounds.
struct Run {
    state: DeviceState,
    /// `i64::MIN` before the first transition.
    start_ms: i64,
    /// `i64::MAX` after the last transition.
    end_ms: i64,
    /// The cause of the transition into the state (`None` before the first transition).
    cause: Option<Cause>,
}

/// The runs that overlap `window`, plus at most one starting at or after its end.
fn runs(transitions: &[Transition], window: Span) -> Vec<Run> {
    let first = transitions.partition_point(|t| t.at_ms <= window.start_ms);
    let mut current = match first.checked_sub(1).map(|i| &transitions[i]) {
        Some(t) => Run::entered(t),
        None => Run {
            state: DeviceState::Unknown,
            start_ms: i64::MIN,
            end_ms: i64::MAX,
            cause: None,
        },
    };
    let mut runs = Vec::new();
    for t in &transitions[first..] {
        if t.to == current.state {
            continue;
        }
        current.end_ms = t.at_ms;
        runs.push(std::mem::replace(&mut current, Run::entered(t)));
        if t.at_ms >= window.end_ms {
            break;
        }
    }
    runs.push(current);
    runs
}

impl Run {
    /// The run `t` starts.
    fn entered(t: &Transition) -> Run {
        Run {
            state: t.to,
            start_ms: t.at_ms,
            end_ms: i64::MAX,
            cause: Some(t.cause),
        }
    }
}
