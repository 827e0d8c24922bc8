//! Retention: deleting what each resolution no longer keeps. Before raw segments go, their
//! 1-minute rollups are materialized where they were not, so minute-level history outlives the
//! raw points.

use super::keys::{self, Record};
use super::store::{ChunkStore, Level, Write};
use super::{EngineConfig, EngineError, rollup, segment};

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
    let raw_cut = cutoff_day(now_ms, config.retention_raw);
    let minute_cut = cutoff_day(now_ms, config.retention_minute);
    let hour_cut = cutoff_day(now_ms, config.retention_hour);
    let Some(oldest_cut) = [raw_cut, minute_cut, hour_cut].into_iter().flatten().max() else {
        return Ok(stats);
    };
    let mut writes: Vec<Write> = Vec::new();
    for series in 0..series_count {
        let lo = keys::key(series, i64::MIN, 0, Record::Raw);
        let hi = keys::key(series, oldest_cut, u32::MAX, Record::Minute);
        let mut raw_pending: Option<(i64, u32, fjall::Slice)> = None;
        for item in store.chunks.range(lo..=hi) {
            let (key, value) = item.into_inner()?;
            let Some((_, day, seq, record)) = keys::parse(&key) else {
                continue;
            };
            let expired = |cut: Option<i64>| cut.is_some_and(|c| day <= c);
            match record {
                Record::Raw if expired(raw_cut) => {
                    writes.push((keys::key(series, day, seq, Record::Raw), None));
                    stats.raw_deleted += 1;
                    raw_pending = Some((day, seq, value));
                }
                Record::Hour if expired(hour_cut) => {
                    writes.push((keys::key(series, day, seq, Record::Hour), None));
                    stats.hour_deleted += 1;
                }
                Record::Minute if expired(minute_cut) => {
                    writes.push((keys::key(series, day, seq, Record::Minute), None));
                    stats.minute_deleted += 1;
                }
                Record::Minute if &*value == rollup::NOT_MATERIALIZED => {
                    // The raw record of this segment comes just before its minute record.
                    if let Some((d, s, raw)) = raw_pending.take()
                        && (d, s) == (day, seq)
                    {
                        let (mut t, mut v) = (Vec::new(), Vec::new());
                        let h = segment::decode(&raw, &mut t, &mut v)?;
                        let res = Level::Minute.resolution_ms();
                        let mut m = Vec::new();
                        rollup::encode(
                            &rollup::summarize(&t, &v, res),
                            res,
                            (h.min_time_ms, h.max_time_ms),
                            &mut m,
                        );
                        writes.push((keys::key(series, day, seq, Record::Minute), Some(m)));
                        stats.minute_materialized += 1;
                    }
                }
                _ => {}
            }
        }
    }
    store.ingest(writes)?;
    store.persist()?;
    Ok(stats)
}
