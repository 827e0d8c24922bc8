//! Merging sorted runs of points where a timestamp may appear in several runs: the run written
//! last wins, which is how "the last write of a timestamp wins" holds across segments and heads.

use crate::series::Points;

/// Merges runs given oldest-written first. Each run must be sorted with unique timestamps.
pub fn merge(runs: Vec<Points>) -> Points {
    let mut runs: Vec<(usize, Points)> = runs
        .into_iter()
        .enumerate()
        .filter(|(_, r)| !r.times_ms.is_empty())
        .collect();
    match runs.len() {
        0 => return Points::default(),
        1 => return runs.pop().map(|(_, r)| r).unwrap_or_default(),
        _ => {}
    }
    // Common case: runs cover disjoint time ranges (days, successive flushes).
    runs.sort_by_key(|(_, r)| r.times_ms[0]);
    let disjoint = runs
        .windows(2)
        .all(|w| w[0].1.times_ms.last() < w[1].1.times_ms.first());
    if disjoint {
        let total = runs.iter().map(|(_, r)| r.times_ms.len()).sum();
        let mut out = Points {
            times_ms: Vec::with_capacity(total),
            values: Vec::with_capacity(total),
        };
        for (_, r) in runs {
            out.times_ms.extend_from_slice(&r.times_ms);
            out.values.extend_from_slice(&r.values);
        }
        return out;
    }
    let mut all: Vec<(i64, usize, f64)> = runs
        .iter()
        .flat_map(|(prio, r)| {
            r.times_ms
                .iter()
                .zip(&r.values)
                .map(move |(&t, &v)| (t, *prio, v))
        })
        .collect();
    all.sort_unstable_by_key(|&(t, prio, _)| (t, prio));
    let mut out = Points::default();
    for (t, _, v) in all {
        if out.times_ms.last() == Some(&t) {
            if let Some(last) = out.values.last_mut() {
                *last = v;
            }
        } else {
            out.times_ms.push(t);
            out.values.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Points {
        Points {
            times_ms: v.iter().map(|p| p.0).collect(),
            values: v.iter().map(|p| p.1).collect(),
        }
    }

    #[test]
    fn later_runs_win_on_equal_timestamps() {
        let got = merge(vec![
            pts(&[(1, 1.0), (3, 3.0)]),
            pts(&[(2, 20.0), (3, 30.0)]),
        ]);
        assert_eq!(got, pts(&[(1, 1.0), (2, 20.0), (3, 30.0)]));
    }

    #[test]
    fn disjoint_runs_are_concatenated_in_time_order() {
        let got = merge(vec![
            pts(&[(5, 5.0)]),
            pts(&[(1, 1.0), (2, 2.0)]),
            Points::default(),
        ]);
        assert_eq!(got, pts(&[(1, 1.0), (2, 2.0), (5, 5.0)]));
    }
}
