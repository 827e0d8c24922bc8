//! Compaction: merging the segments of a series-day into one. Fewer, larger segments compress
//! better (a whole day of one series in one pco chunk) and are faster to read. The merge keeps
//! the last write of every timestamp; the merged segment takes the sequence number after the
//! highest it replaces, so later flushes still sort after it and no key is ever reused. The merged records and the
//! deletions of the old ones are ingested as one table, so a crash leaves a day either as it was
//! or merged.

use super::flush::encode_segment;
use super::keys::Record;
use super::merge::merge;
use super::store::ChunkStore;
use super::{EngineConfig, EngineError, codec, keys, segment};
use crate::series::Points;

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Series-days merged.
    pub merged_days: u64,
    /// Segments replaced.
    pub segments_in: u64,
}

/// Merges the segments of each given (series, day) that has more than one, on up to `threads`
/// threads. With `rewrite_single`, days with a single segment are re-encoded too (after an
/// import wrote them at a fast compression level).
pub fn compact(
    store: &ChunkStore,
    config: &EngineConfig,
    days: &[(u32, i64)],
    threads: usize,
    rewrite_single: bool,
) -> Result<CompactStats, EngineError> {
    let per = days.len().div_ceil(threads.clamp(1, 16)).max(1);
    let parts: Vec<Result<CompactStats, EngineError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = days
            .chunks(per)
            .map(|part| scope.spawn(move || compact_part(store, config, part, rewrite_single)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(EngineError::Corrupt("compaction thread panicked".into()))
                })
            })
            .collect()
    });
    let mut stats = CompactStats::default();
    for part in parts {
        let p = part?;
        stats.merged_days += p.merged_days;
        stats.segments_in += p.segments_in;
    }
    store.persist()?;
    Ok(stats)
}

fn compact_part(
    store: &ChunkStore,
    config: &EngineConfig,
    days: &[(u32, i64)],
    rewrite_single: bool,
) -> Result<CompactStats, EngineError> {
    let mut stats = CompactStats::default();
    let mut writes = Vec::new();
    for &(series, day) in days {
        let stored = store.scan(series, day, day, Record::Raw)?;
        if stored.is_empty() || (stored.len() < 2 && !rewrite_single) {
            continue;
        }
        let mut runs = Vec::with_capacity(stored.len());
        for s in &stored {
            let mut p = Points::default();
            segment::decode(&s.value, &mut p.times_ms, &mut p.values)?;
            runs.push(p);
        }
        let merged = merge(runs);
        // A new sequence number: segment keys are never reused, so decoded-segment caches
        // never hold a stale copy.
        let keep = stored.iter().map(|s| s.seq).max().unwrap_or(0) + 1;
        for s in &stored {
            for record in [Record::Raw, Record::Hour, Record::Minute] {
                writes.push((keys::key(series, day, s.seq, record), None));
            }
        }
        if !merged.times_ms.is_empty() {
            encode_segment(
                (series, day, keep),
                &merged.times_ms,
                &merged.values,
                config,
                codec::DEFAULT_LEVEL,
            )
            .into_writes(&mut writes);
        }
        stats.merged_days += 1;
        stats.segments_in += stored.len() as u64;
        if writes.len() >= 64 * 1024 {
            store.ingest(std::mem::take(&mut writes))?;
        }
    }
    store.ingest(writes)?;
    Ok(stats)
}
