//! Compaction: merging the segments of a series-day into one. Fewer, larger segments compress
//! better (a whole day of one series in one pco chunk) and are faster to read. The merge keeps
//! the last write of every timestamp; the merged segment takes the highest sequence number of
//! the ones it replaces, so later flushes still sort after it.

use super::flush::{encode_segment, put};
use super::merge::merge;
use super::store::ChunkStore;
use super::{EngineConfig, EngineError, keys, segment};
use crate::store::series::Points;

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Series-days merged.
    pub merged_days: u64,
    /// Segments replaced.
    pub segments_in: u64,
}

/// Merges the segments of each given (series, day) that has more than one.
pub fn compact(
    store: &ChunkStore,
    config: &EngineConfig,
    days: &[(u32, i64)],
) -> Result<CompactStats, EngineError> {
    let mut stats = CompactStats::default();
    let mut batch = store.batch();
    let mut pending = 0usize;
    for &(series, day) in days {
        let stored = store.scan(&store.raw, series, day, day)?;
        if stored.len() < 2 {
            continue;
        }
        let mut runs = Vec::with_capacity(stored.len());
        for s in &stored {
            let mut p = Points::default();
            segment::decode(&s.value, &mut p.times_ms, &mut p.values)?;
            runs.push(p);
        }
        let merged = merge(runs);
        let keep = stored.iter().map(|s| s.seq).max().unwrap_or(0);
        for s in stored.iter().filter(|s| s.seq != keep) {
            let key = keys::segment(series, day, s.seq).to_vec();
            batch.remove(&store.raw, key.clone());
            batch.remove(&store.r1h, key.clone());
            batch.remove(&store.r1m, key);
        }
        if !merged.times_ms.is_empty() {
            let e = encode_segment(series, day, keep, &merged.times_ms, &merged.values, config);
            put(store, &mut batch, e);
        }
        stats.merged_days += 1;
        stats.segments_in += stored.len() as u64;
        pending += stored.len();
        if pending >= 4096 {
            std::mem::replace(&mut batch, store.batch()).commit()?;
            pending = 0;
        }
    }
    batch.commit()?;
    store.persist()?;
    Ok(stats)
}
