//! Retention: deleting what each resolution no longer keeps. Before raw segments go, their
//! 1-minute rollups are materialized where they were not, so minute-level history outlives the
//! raw points.

use super::store::{ChunkStore, Level};
use super::{EngineConfig, EngineError, keys, rollup, segment};

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionStats {
    /// Raw segments deleted.
    pub raw_deleted: u64,
    /// 1-minute rollups materialized from raw before deletion.
    pub minute_materialized: u64,
    /// 1-minute rollups deleted.
    pub minute_deleted: u64,
    /// 1-hour rollups deleted.
    pub hour_deleted: u64,
}

fn cutoff_day(now_ms: i64, keep: Option<std::time::Duration>) -> Option<i64> {
    let keep = i64::try_from(keep?.as_millis()).unwrap_or(i64::MAX);
    // A day is deleted once all of it is older than the retention.
    Some(now_ms.saturating_sub(keep).div_euclid(keys::DAY_MS) * keys::DAY_MS - keys::DAY_MS)
}

/// Applies the retention of `config` as of `now_ms` to series `0..series_count`.
pub fn enforce(
    store: &ChunkStore,
    config: &EngineConfig,
    now_ms: i64,
    series_count: u32,
) -> Result<RetentionStats, EngineError> {
    let mut stats = RetentionStats::default();
    let mut batch = store.batch();
    let expired = |ks: &fjall::Keyspace, series: u32, cut: i64| {
        ks.range(keys::segment(series, i64::MIN, 0)..=keys::segment(series, cut, u32::MAX))
    };
    if let Some(cut) = cutoff_day(now_ms, config.retention_raw) {
        for item in (0..series_count).flat_map(|s| expired(&store.raw, s, cut)) {
            let (key, value) = item.into_inner()?;
            let Some((_, day, _)) = keys::parse(&key) else {
                continue;
            };
            if day > cut {
                continue;
            }
            let marker = store.r1m.get(&key)?;
            if marker.as_deref() == Some(rollup::NOT_MATERIALIZED) || marker.is_none() {
                let (mut t, mut v) = (Vec::new(), Vec::new());
                let h = segment::decode(&value, &mut t, &mut v)?;
                let res = Level::Minute.resolution_ms();
                let mut m = Vec::new();
                rollup::encode(
                    &rollup::summarize(&t, &v, res),
                    res,
                    (h.min_time_ms, h.max_time_ms),
                    &mut m,
                );
                batch.insert(&store.r1m, key.to_vec(), m);
                stats.minute_materialized += 1;
            }
            batch.remove(&store.raw, key.to_vec());
            stats.raw_deleted += 1;
        }
    }
    for (level, keep, count) in [
        (
            Level::Minute,
            config.retention_minute,
            &mut stats.minute_deleted,
        ),
        (Level::Hour, config.retention_hour, &mut stats.hour_deleted),
    ] {
        let Some(cut) = cutoff_day(now_ms, keep) else {
            continue;
        };
        let ks = store.rollups(level);
        for item in (0..series_count).flat_map(|s| expired(ks, s, cut)) {
            let key = item.key()?;
            batch.remove(ks, key.to_vec());
            *count += 1;
        }
    }
    batch.commit()?;
    store.persist()?;
    Ok(stats)
}
