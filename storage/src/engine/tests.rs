//! The engine against the backend conformance suite and the in-memory model, across flushes and
//! compactions.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::conformance;
use crate::series::{Bucket, Points, ReadError, Resolution, SeriesReader, SeriesWriter};

/// An engine in a temporary directory that flushes every `flush_every` writes and can compact.
pub struct TestEngine {
    pub engine: Engine,
    _dir: tempfile::TempDir,
    writes: u64,
    flush_every: u64,
    dirty: Vec<(u32, i64)>,
}

impl TestEngine {
    pub fn new(flush_every: u64, config: EngineConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        TestEngine {
            engine: Engine::open(dir.path(), config, &[]).unwrap(),
            _dir: dir,
            writes: 0,
            flush_every,
            dirty: Vec::new(),
        }
    }

    pub fn flush(&mut self) {
        if let Some(frozen) = self.engine.freeze() {
            let stats =
                flush::flush(self.engine.store(), &frozen, self.engine.config(), 2).unwrap();
            self.dirty.extend(stats.multi_segment_days);
            self.engine.release_frozen(frozen.series_count);
            // As checkpoints do: the active head reuses the written head's memory.
            self.engine.recycle(frozen.head);
        }
    }

    pub fn compact(&mut self) {
        let days = std::mem::take(&mut self.dirty);
        compact::compact(self.engine.store(), self.engine.config(), &days, 2, false).unwrap();
    }
}

impl SeriesWriter for TestEngine {
    fn write(&mut self, device: &Arc<str>, metric: &Arc<str>, point: Point) {
        let id = self.engine.series_id(device, metric);
        self.engine.write(id, point);
        self.writes += 1;
        if self.flush_every > 0 && self.writes.is_multiple_of(self.flush_every) {
            self.flush();
        }
    }
}

impl SeriesReader for TestEngine {
    fn latest(&self, device: &str) -> Vec<LatestPoint> {
        self.engine.latest(device)
    }

    fn range(
        &self,
        device: &str,
        metric: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<Points>, ReadError> {
        let d: Arc<str> = device.into();
        self.engine
            .capture([(&d, metric)], start_ms, end_ms)
            .range(device, metric, start_ms, end_ms)
    }

    fn buckets(
        &self,
        device: &str,
        metric: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Option<(Vec<Bucket>, Resolution)>, ReadError> {
        let d: Arc<str> = device.into();
        self.engine
            .capture([(&d, metric)], start_ms, end_ms)
            .buckets(device, metric, start_ms, end_ms, step_ms)
    }
}

#[test]
fn the_engine_conforms_in_memory_flushed_and_in_between() {
    for flush_every in [0, 1, 2, 3] {
        conformance::check_all(|| TestEngine::new(flush_every, EngineConfig::default()));
    }
}

#[test]
fn points_survive_a_reopen_after_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let d: Arc<str> = "dev".into();
    let m: Arc<str> = "temp".into();
    {
        let mut e = Engine::open(dir.path(), EngineConfig::default(), &[]).unwrap();
        let id = e.series_id(&d, &m);
        for t in 0..100 {
            e.write(
                id,
                Point {
                    time_ms: t * 1000,
                    value: t as f64,
                },
            );
        }
        let frozen = e.freeze().unwrap();
        flush::flush(e.store(), &frozen, e.config(), 1).unwrap();
        e.release_frozen(frozen.series_count);
    }
    let e = Engine::open(dir.path(), EngineConfig::default(), &[]).unwrap();
    assert_eq!(e.catalog().get("dev", "temp"), Some(0));
    let got = e
        .capture([(&d, "temp")], 0, 1_000_000)
        .range("dev", "temp", 0, 1_000_000)
        .unwrap()
        .unwrap();
    assert_eq!(got.times_ms.len(), 100);
    assert_eq!(got.values[99], 99.0);
}

#[test]
fn the_active_head_grows_into_the_written_heads_memory() {
    let mut te = TestEngine::new(0, EngineConfig::default());
    let d: Arc<str> = "dev".into();
    let m: Arc<str> = "temp".into();
    let point = |t: i64| Point {
        time_ms: t * 1000,
        value: t as f64,
    };
    for t in 0..1000 {
        te.write(&d, &m, point(t));
    }
    te.flush();
    // Out of order within the new head too, so both ways a column grows are taken.
    for t in [2005, 2000, 2001, 2009, 2002, 2003, 2004, 2006, 2008, 2007] {
        te.write(&d, &m, point(t));
    }
    let id = te.engine.catalog().get("dev", "temp").unwrap();
    let frozen = te.engine.freeze().unwrap();
    let column = frozen.head.column(id).unwrap();
    let times: Vec<i64> = column.points().iter().map(|p| p.time_ms).collect();
    assert_eq!(times, (2000..2010).map(|t| t * 1000).collect::<Vec<_>>());
    let values: Vec<f64> = column.points().iter().map(|p| p.value).collect();
    let expected: Vec<f64> = (2000..2010).map(f64::from).collect();
    assert_eq!(values, expected);
    assert!(column.capacity() >= 1000, "the written head's memory");
    assert_eq!(frozen.head.points(), 10);
    flush::flush(te.engine.store(), &frozen, te.engine.config(), 1).unwrap();
    te.engine.release_frozen(frozen.series_count);
    let got = te
        .engine
        .capture([(&d, "temp")], 0, i64::MAX)
        .range("dev", "temp", 0, i64::MAX)
        .unwrap()
        .unwrap();
    assert_eq!(got.times_ms.len(), 1010);
}

#[test]
fn hour_steps_are_answered_from_rollups_and_match_raw() {
    let mut te = TestEngine::new(0, EngineConfig::default());
    let d: Arc<str> = "dev".into();
    let m: Arc<str> = "temp".into();
    // Two days of 10 s points, flushed in three parts and compacted.
    for i in 0..(2 * 8640) {
        te.write(
            &d,
            &m,
            Point {
                time_ms: i * 10_000,
                value: (i % 97) as f64 / 10.0,
            },
        );
        if i == 5000 || i == 12000 {
            te.flush();
        }
    }
    te.flush();
    te.compact();
    let (buckets, res) = te
        .buckets("dev", "temp", 0, 2 * keys::DAY_MS, 3_600_000)
        .unwrap()
        .unwrap();
    assert_eq!(res, Resolution::Hour);
    let raw = te
        .range("dev", "temp", 0, 2 * keys::DAY_MS)
        .unwrap()
        .unwrap();
    let want = crate::series::bucketize(&raw, 3_600_000);
    assert_eq!(buckets.len(), want.len());
    for (a, b) in buckets.iter().zip(&want) {
        assert_eq!(
            (a.start_ms, a.count, a.min, a.max, a.last),
            (b.start_ms, b.count, b.min, b.max, b.last)
        );
        assert!((a.sum - b.sum).abs() < 1e-6);
    }
    // Sparse 10 s data has no materialized minute rollups: minute steps read raw.
    let (_, res) = te
        .buckets("dev", "temp", 0, keys::DAY_MS, 300_000)
        .unwrap()
        .unwrap();
    assert_eq!(res, Resolution::Raw);
    // Unflushed points in a day make that day fall back to raw, still exact.
    te.write(
        &d,
        &m,
        Point {
            time_ms: 5,
            value: 1000.0,
        },
    );
    let (buckets, res) = te
        .buckets("dev", "temp", 0, keys::DAY_MS, 3_600_000)
        .unwrap()
        .unwrap();
    assert_eq!(res, Resolution::Raw);
    assert_eq!(buckets[0].max, 1000.0);
    assert_eq!(buckets[0].count, 361);
}

#[test]
fn dense_series_get_minute_rollups() {
    let mut te = TestEngine::new(0, EngineConfig::default());
    let d: Arc<str> = "dev".into();
    let m: Arc<str> = "temp".into();
    for i in 0..7200 {
        te.write(
            &d,
            &m,
            Point {
                time_ms: i * 1000,
                value: (i % 13) as f64,
            },
        );
    }
    te.flush();
    let (buckets, res) = te
        .buckets("dev", "temp", 0, 7_200_000, 300_000)
        .unwrap()
        .unwrap();
    assert_eq!(res, Resolution::Minute);
    assert_eq!(buckets.len(), 24);
    assert_eq!(buckets[0].count, 300);
}

#[test]
fn retention_materializes_minutes_before_dropping_raw() {
    let config = EngineConfig {
        retention_raw: Some(std::time::Duration::from_secs(86_400)),
        ..EngineConfig::default()
    };
    let mut te = TestEngine::new(0, config);
    let d: Arc<str> = "dev".into();
    let m: Arc<str> = "temp".into();
    for i in 0..8640 {
        te.write(
            &d,
            &m,
            Point {
                time_ms: i * 10_000,
                value: (i % 7) as f64,
            },
        );
    }
    te.flush();
    let now = 5 * keys::DAY_MS;
    let stats = retention::enforce(te.engine.store(), te.engine.config(), now, 1).unwrap();
    assert_eq!((stats.raw_deleted, stats.minute_materialized), (1, 1));
    assert!(
        te.range("dev", "temp", 0, keys::DAY_MS)
            .unwrap()
            .unwrap()
            .times_ms
            .is_empty()
    );
    let (buckets, res) = te
        .buckets("dev", "temp", 0, keys::DAY_MS, 600_000)
        .unwrap()
        .unwrap();
    assert_eq!(res, Resolution::Minute);
    assert_eq!(buckets.len(), 144);
    assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 8640);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Out-of-order writes, duplicates, flushes and compactions against a BTreeMap model.
    #[test]
    fn the_engine_matches_the_model(
        writes in proptest::collection::vec((0i64..3 * keys::DAY_MS, -1000i32..1000, any::<bool>()), 1..200),
        compact_at_end in any::<bool>(),
    ) {
        let mut te = TestEngine::new(0, EngineConfig::default());
        let d: Arc<str> = "dev".into();
        let m: Arc<str> = "temp".into();
        let mut model = std::collections::BTreeMap::new();
        for (t, v, flush) in &writes {
            let value = f64::from(*v) / 10.0;
            te.write(&d, &m, Point { time_ms: *t, value });
            model.insert(*t, value);
            if *flush {
                te.flush();
            }
        }
        if compact_at_end {
            te.flush();
            te.compact();
        }
        let got = te.range("dev", "temp", i64::MIN, i64::MAX).unwrap().unwrap();
        prop_assert_eq!(got.times_ms, model.keys().copied().collect::<Vec<_>>());
        prop_assert_eq!(got.values, model.values().copied().collect::<Vec<_>>());
        // Hour buckets (rollups where possible) agree with the model.
        let (buckets, _) = te.buckets("dev", "temp", 0, 3 * keys::DAY_MS, 3_600_000).unwrap().unwrap();
        let want = crate::series::bucketize(&Points {
            times_ms: model.keys().copied().collect(),
            values: model.values().copied().collect(),
        }, 3_600_000);
        prop_assert_eq!(buckets.len(), want.len());
        for (a, b) in buckets.iter().zip(&want) {
            prop_assert_eq!((a.start_ms, a.count, a.min, a.max, a.last), (b.start_ms, b.count, b.min, b.max, b.last));
            prop_assert!((a.sum - b.sum).abs() < 1e-6);
        }
        let (&lt, &lv) = model.last_key_value().unwrap();
        prop_assert_eq!(te.latest("dev")[0].point, Point { time_ms: lt, value: lv });
    }
}
