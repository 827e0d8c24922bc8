//! The same assertions for every series backend. Each backend's test module calls
//! [`check_all`] with a constructor.

// Test support: a failed assertion is the report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::series::{Point, Points, SeriesReader, SeriesWriter};

fn p(time_ms: i64, value: f64) -> Point {
    Point { time_ms, value }
}

fn ids() -> (Arc<str>, Arc<str>, Arc<str>) {
    ("dev-1".into(), "temp".into(), "hum".into())
}

/// Runs every conformance check against fresh backends from `new`; the engine's tests call it
/// too.
pub fn check_all<B: SeriesWriter + SeriesReader>(new: impl Fn() -> B) {
    reads_back_sorted_points_in_half_open_ranges(new());
    out_of_order_points_are_read_back_sorted(new());
    the_last_write_of_a_timestamp_wins(new());
    backfill_does_not_move_latest(new());
    unknown_series_are_none(new());
}

fn reads_back_sorted_points_in_half_open_ranges(mut b: impl SeriesWriter + SeriesReader) {
    let (dev, temp, _) = ids();
    for t in 0..10 {
        b.write(&dev, &temp, p(t * 10, t as f64));
    }
    let got = b.range("dev-1", "temp", 20, 50).unwrap().unwrap();
    assert_eq!(got.times_ms, vec![20, 30, 40]);
    assert_eq!(got.values, vec![2.0, 3.0, 4.0]);
    assert_eq!(
        b.range("dev-1", "temp", 50, 50).unwrap().unwrap(),
        Points::default()
    );
    assert_eq!(
        b.range("dev-1", "temp", 60, 20).unwrap().unwrap(),
        Points::default()
    );
}

fn out_of_order_points_are_read_back_sorted(mut b: impl SeriesWriter + SeriesReader) {
    let (dev, temp, _) = ids();
    for t in [50, 10, 40, 20, 30] {
        b.write(&dev, &temp, p(t, t as f64));
    }
    let got = b
        .range("dev-1", "temp", i64::MIN, i64::MAX)
        .unwrap()
        .unwrap();
    assert_eq!(got.times_ms, vec![10, 20, 30, 40, 50]);
    assert_eq!(got.values, vec![10.0, 20.0, 30.0, 40.0, 50.0]);
}

fn the_last_write_of_a_timestamp_wins(mut b: impl SeriesWriter + SeriesReader) {
    let (dev, temp, _) = ids();
    b.write(&dev, &temp, p(10, 1.0));
    b.write(&dev, &temp, p(20, 2.0));
    b.write(&dev, &temp, p(10, 3.0));
    let got = b.range("dev-1", "temp", 0, 100).unwrap().unwrap();
    assert_eq!((got.times_ms, got.values), (vec![10, 20], vec![3.0, 2.0]));
}

fn backfill_does_not_move_latest(mut b: impl SeriesWriter + SeriesReader) {
    let (dev, temp, hum) = ids();
    b.write(&dev, &temp, p(100, 1.0));
    b.write(&dev, &hum, p(50, 7.0));
    b.write(&dev, &temp, p(10, 9.0));
    let latest = b.latest("dev-1");
    assert_eq!(latest.len(), 2);
    assert_eq!((&*latest[0].metric, latest[0].point), ("hum", p(50, 7.0)));
    assert_eq!((&*latest[1].metric, latest[1].point), ("temp", p(100, 1.0)));
}

fn unknown_series_are_none(mut b: impl SeriesWriter + SeriesReader) {
    let (dev, temp, _) = ids();
    b.write(&dev, &temp, p(1, 1.0));
    assert!(b.range("dev-1", "nope", 0, 10).unwrap().is_none());
    assert!(b.range("dev-2", "temp", 0, 10).unwrap().is_none());
    assert!(b.latest("dev-2").is_empty());
}

/// Compares a backend with a `BTreeMap` model over arbitrary writes (for property tests).
pub fn matches_the_model(b: &mut (impl SeriesWriter + SeriesReader), writes: &[(i64, f64)]) {
    let (dev, temp, _) = ids();
    let mut model = BTreeMap::new();
    for &(t, v) in writes {
        b.write(&dev, &temp, p(t, v));
        model.insert(t, v);
    }
    let got = b
        .range("dev-1", "temp", i64::MIN, i64::MAX)
        .unwrap()
        .unwrap();
    let want_t: Vec<i64> = model.keys().copied().collect();
    let want_v: Vec<f64> = model.values().copied().collect();
    assert_eq!(got.times_ms, want_t);
    assert_eq!(got.values, want_v);
    let latest = b.latest("dev-1");
    let (&t, &v) = model.last_key_value().unwrap();
    assert_eq!(latest[0].point, p(t, v));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{check_all, matches_the_model};
    use crate::model::Head;

    #[test]
    fn head_conforms() {
        check_all(Head::default);
    }

    proptest! {
        #[test]
        fn head_matches_the_model(writes in proptest::collection::vec((0i64..500, -1e6f64..1e6), 1..300)) {
            matches_the_model(&mut Head::default(), &writes);
        }
    }
}
