//! The compact form of `QueryRange` timestamps: runs of evenly spaced times ([`v1::TimeRun`]),
//! used only where they are smaller than the plain column. A series sampled every 10 s sends a
//! day's 8,640 timestamps as one run.

use std::borrow::Cow;

use crate::v1::{self, TimeRun};

/// `times` (ascending) as runs, or `None` when runs would not be smaller on the wire than one
/// 8-byte timestamp per point (a run costs about 16 bytes).
pub fn encode_times(times: &[i64]) -> Option<Vec<TimeRun>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < times.len() {
        let start = times[i];
        let step = times.get(i + 1).and_then(|next| next.checked_sub(start));
        let mut count = 1usize;
        if let Some(step) = step {
            count = 2;
            while i + count < times.len()
                && count < u32::MAX as usize
                && times[i + count].checked_sub(times[i + count - 1]) == Some(step)
            {
                count += 1;
            }
        }
        runs.push(TimeRun {
            start_unix_ms: start,
            step_ms: if count == 1 { 0 } else { step.unwrap_or(0) },
            count: count as u32,
        });
        if runs.len() * 2 >= times.len() {
            return None;
        }
        i += count;
    }
    Some(runs)
}

/// The timestamps the runs stand for, in order.
pub fn decode_times(runs: &[TimeRun]) -> Vec<i64> {
    let total = runs.iter().map(|r| r.count as usize).sum();
    let mut times = Vec::with_capacity(total);
    for run in runs {
        times.extend(
            (0..i64::from(run.count))
                .map(|i| run.start_unix_ms.wrapping_add(run.step_ms.wrapping_mul(i))),
        );
    }
    times
}

impl v1::QueryRangeResponse {
    /// The points' timestamps, whichever way the server sent them (`times_unix_ms` or
    /// `time_runs`).
    pub fn times(&self) -> Cow<'_, [i64]> {
        if self.time_runs.is_empty() {
            Cow::Borrowed(&self.times_unix_ms)
        } else {
            Cow::Owned(decode_times(&self.time_runs))
        }
    }
}

#[cfg(test)]
mod tests;
