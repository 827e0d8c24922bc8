//! Timestamps as runs of evenly spaced times ([`v1::TimeRun`]), the compact form of
//! `QueryRange` answers: a series sampled every 10 s sends a day's 8,640 timestamps as one run.

use crate::v1::{self, TimeRun};

/// `times` (ascending) as runs, or `None` when runs would not be smaller on the wire than one
/// 8-byte timestamp per point (a run costs about 16 bytes).
pub fn encode(times: &[i64]) -> Option<Vec<TimeRun>> {
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
pub fn decode(runs: &[TimeRun]) -> Vec<i64> {
    let total = runs.iter().map(|r| r.count as usize).sum();
    let mut times = Vec::with_capacity(total);
    for run in runs {
        let mut t = run.start_unix_ms;
        for _ in 0..run.count {
            times.push(t);
            t = t.wrapping_add(run.step_ms);
        }
    }
    times
}

impl v1::QueryRangeResponse {
    /// The points' timestamps, whichever way the server sent them (`times_unix_ms` or
    /// `time_runs`).
    pub fn times(&self) -> Vec<i64> {
        if self.time_runs.is_empty() {
            self.times_unix_ms.clone()
        } else {
            decode(&self.time_runs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_regular_day_is_one_run() {
        let times: Vec<i64> = (0..8640).map(|i| 1_795_564_800_000 + i * 10_000).collect();
        let runs = encode(&times).expect("regular times encode as runs");
        assert_eq!(
            runs,
            vec![TimeRun {
                start_unix_ms: 1_795_564_800_000,
                step_ms: 10_000,
                count: 8640
            }]
        );
        assert_eq!(decode(&runs), times);
    }

    #[test]
    fn gaps_and_lone_points_start_new_runs() {
        let times = [0, 10, 20, 100, 110, 120, 130, 500, 510, 520, 530, 540];
        let runs = encode(&times).expect("three runs for twelve points");
        let shape: Vec<(i64, i64, u32)> = runs
            .iter()
            .map(|r| (r.start_unix_ms, r.step_ms, r.count))
            .collect();
        assert_eq!(shape, [(0, 10, 3), (100, 10, 4), (500, 10, 5)]);
        assert_eq!(decode(&runs), times);
    }

    #[test]
    fn irregular_times_stay_one_per_point() {
        assert_eq!(encode(&[0, 1, 3, 7, 15, 31, 63, 127]), None);
        assert_eq!(encode(&[42]), None, "a lone point is not worth a run");
        assert_eq!(encode(&[]), Some(vec![]));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let times = [
            i64::MIN,
            i64::MIN + 1,
            i64::MIN + 2,
            0,
            i64::MAX - 1,
            i64::MAX,
        ];
        if let Some(runs) = encode(&times) {
            assert_eq!(decode(&runs), times);
        }
    }

    #[test]
    fn a_response_reads_the_same_either_way() {
        let times: Vec<i64> = (0..100).map(|i| i * 1000).collect();
        let plain = v1::QueryRangeResponse {
            times_unix_ms: times.clone(),
            values: vec![1.0; 100],
            time_runs: vec![],
        };
        let compact = v1::QueryRangeResponse {
            times_unix_ms: vec![],
            values: vec![1.0; 100],
            time_runs: encode(&times).expect("runs"),
        };
        assert_eq!(plain.times(), times);
        assert_eq!(compact.times(), times);
    }

    proptest! {
        #[test]
        fn runs_round_trip(mut times in proptest::collection::vec(any::<i64>(), 0..200),
                           regular in 0usize..200, step in 1i64..100_000) {
            // Random times with a regular stretch, as real series have.
            times.extend((0..regular as i64).map(|i| i * step));
            times.sort_unstable();
            times.dedup();
            if let Some(runs) = encode(&times) {
                prop_assert!(runs.len() * 2 < times.len() || times.is_empty());
                prop_assert_eq!(decode(&runs), times);
            }
        }
    }
}
