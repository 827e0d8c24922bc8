use std::sync::Arc;

use super::*;
use citytel_storage::model::Head;
use citytel_storage::series::{Point, SeriesWriter};

fn head() -> Head {
    let mut h = Head::default();
    let m: Arc<str> = "temp".into();
    for (dev, offset) in [("a", 0.0), ("b", 10.0)] {
        let d: Arc<str> = dev.into();
        // Points every 10 s for 3 minutes, value = seconds / 10 + offset.
        for i in 0..18 {
            h.write(
                &d,
                &m,
                Point {
                    time_ms: i * 10_000,
                    value: i as f64 + offset,
                },
            );
        }
    }
    h
}

fn query(step: Option<(i64, Aggregation)>, across: Option<Aggregation>) -> SeriesQuery {
    SeriesQuery {
        devices: vec!["a".into(), "b".into(), "missing".into()],
        metric: "temp".into(),
        start_ms: 0,
        end_ms: 180_000,
        step,
        across,
    }
}

#[test]
fn raw_queries_return_every_device_with_the_metric() {
    let answer = run(&head(), &query(None, None)).unwrap();
    assert_eq!(answer.resolution, Resolution::Raw);
    assert_eq!(answer.series.len(), 2);
    assert_eq!(answer.series[0].0.as_deref(), Some("a"));
    assert_eq!(answer.series[1].1.values[0], 10.0);
    assert_eq!(answer.series[0].1.times_ms.len(), 18);
}

#[test]
fn buckets_apply_each_aggregation() {
    let cases = [
        (Aggregation::Avg, [2.5, 8.5, 14.5]),
        (Aggregation::Min, [0.0, 6.0, 12.0]),
        (Aggregation::Max, [5.0, 11.0, 17.0]),
        (Aggregation::Sum, [15.0, 51.0, 87.0]),
        (Aggregation::Count, [6.0, 6.0, 6.0]),
        (Aggregation::Last, [5.0, 11.0, 17.0]),
    ];
    for (agg, want) in cases {
        let answer = run(&head(), &query(Some((60_000, agg)), None)).unwrap();
        let a = &answer.series[0].1;
        assert_eq!(a.times_ms, vec![0, 60_000, 120_000], "{agg:?}");
        assert_eq!(a.values, want.to_vec(), "{agg:?}");
    }
}

#[test]
fn cross_device_aggregates_combine_per_device_values() {
    let avg = run(
        &head(),
        &query(Some((60_000, Aggregation::Avg)), Some(Aggregation::Avg)),
    )
    .unwrap();
    assert_eq!(avg.series.len(), 1);
    assert_eq!(avg.series[0].0, None);
    assert_eq!(avg.series[0].1.values, vec![7.5, 13.5, 19.5]);
    let sum = run(
        &head(),
        &query(Some((60_000, Aggregation::Max)), Some(Aggregation::Sum)),
    )
    .unwrap();
    assert_eq!(sum.series[0].1.values, vec![20.0, 32.0, 44.0]);
    let min = run(
        &head(),
        &query(Some((60_000, Aggregation::Min)), Some(Aggregation::Min)),
    )
    .unwrap();
    assert_eq!(min.series[0].1.values, vec![0.0, 6.0, 12.0]);
}

#[test]
fn unaligned_ranges_cut_partial_buckets() {
    let mut q = query(Some((60_000, Aggregation::Count)), None);
    q.start_ms = 30_000;
    q.end_ms = 150_000;
    let a = &run(&head(), &q).unwrap().series[0].1;
    assert_eq!(a.times_ms, vec![0, 60_000, 120_000]);
    assert_eq!(a.values, vec![3.0, 6.0, 3.0]);
}

#[test]
fn invalid_queries_are_refused_with_a_reason() {
    let mut q = query(None, Some(Aggregation::Avg));
    assert!(q.validate().unwrap_err().to_string().contains("step_ms"));
    q = query(Some((0, Aggregation::Avg)), None);
    assert!(q.validate().is_err());
    q = query(Some((60_000, Aggregation::Avg)), Some(Aggregation::Last));
    assert!(q.validate().unwrap_err().to_string().contains("across"));
    q = query(Some((1, Aggregation::Avg)), None);
    q.end_ms = MAX_BUCKETS * 2;
    assert!(q.validate().unwrap_err().to_string().contains("buckets"));
    q = query(None, None);
    q.end_ms = q.start_ms;
    assert!(q.validate().is_err());
    assert!(
        query(Some((60_000, Aggregation::Avg)), Some(Aggregation::Avg))
            .validate()
            .is_ok()
    );
}
