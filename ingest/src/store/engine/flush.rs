//! Writing a frozen head to the store: one segment per series and day, with its rollups, in one
//! atomic batch that also carries the new series and whatever the caller adds (the snapshot),
//! then one fsync.

use std::sync::Arc;

use fjall::OwnedWriteBatch;

use super::memhead::Column;
use super::store::{ChunkStore, Level};
use super::{EngineConfig, EngineError, FrozenHead, catalog, keys, rollup, segment};

/// What a flush wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Segments written.
    pub segments: u64,
    /// Points written.
    pub points: u64,
    /// Bytes of segment and rollup values written.
    pub bytes: u64,
    /// Series-days that now have more than one segment (candidates for compaction).
    pub multi_segment_days: Vec<(u32, i64)>,
}

/// The encoded records of one segment.
pub struct Encoded {
    /// Segment key.
    pub key: [u8; keys::KEY_LEN],
    /// Raw segment.
    pub raw: Vec<u8>,
    /// 1-hour rollup.
    pub hour: Vec<u8>,
    /// 1-minute rollup or the not-materialized marker.
    pub minute: Vec<u8>,
    /// Points in the segment.
    pub points: u64,
}

/// Encodes sorted points of series `id` on `day` as segment `seq`.
pub fn encode_segment(
    id: u32,
    day: i64,
    seq: u32,
    times: &[i64],
    values: &[f64],
    config: &EngineConfig,
) -> Encoded {
    let span = (
        times.first().copied().unwrap_or(day),
        times.last().copied().unwrap_or(day),
    );
    let raw = segment::encode(times, values);
    let mut hour = Vec::new();
    let hours = rollup::summarize(times, values, Level::Hour.resolution_ms());
    rollup::encode(&hours, Level::Hour.resolution_ms(), span, &mut hour);
    let minutes = rollup::summarize(times, values, Level::Minute.resolution_ms());
    let dense = !minutes.is_empty()
        && times.len() as u64 >= u64::from(config.rollup_minute_min_points) * minutes.len() as u64;
    let minute = if dense {
        let mut m = Vec::new();
        rollup::encode(&minutes, Level::Minute.resolution_ms(), span, &mut m);
        m
    } else {
        rollup::NOT_MATERIALIZED.to_vec()
    };
    Encoded {
        key: keys::segment(id, day, seq),
        raw,
        hour,
        minute,
        points: times.len() as u64,
    }
}

/// Adds an encoded segment to a batch.
pub fn put(store: &ChunkStore, batch: &mut OwnedWriteBatch, e: Encoded) -> u64 {
    let bytes = (e.raw.len() + e.hour.len() + e.minute.len()) as u64;
    batch.insert(&store.raw, e.key.to_vec(), e.raw);
    batch.insert(&store.r1h, e.key.to_vec(), e.hour);
    batch.insert(&store.r1m, e.key.to_vec(), e.minute);
    bytes
}

fn encode_column(
    store: &ChunkStore,
    id: u32,
    column: &Column,
    config: &EngineConfig,
) -> Result<Vec<Encoded>, EngineError> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < column.times.len() {
        let day = keys::day_of(column.times[from]);
        let to = from + column.times[from..].partition_point(|&t| t < day + keys::DAY_MS);
        let seq = store.next_seq(id, day)?;
        out.push(encode_segment(
            id,
            day,
            seq,
            &column.times[from..to],
            &column.values[from..to],
            config,
        ));
        from = to;
    }
    Ok(out)
}

/// Writes `frozen` and persists. `extra` adds the caller's records (the state snapshot) to the
/// same atomic batch.
pub fn flush(
    store: &Arc<ChunkStore>,
    frozen: &FrozenHead,
    config: &EngineConfig,
    threads: usize,
    extra: impl FnOnce(&mut OwnedWriteBatch),
) -> Result<FlushStats, EngineError> {
    let columns: Vec<(u32, &Column)> = frozen.head.columns().collect();
    let threads = threads.clamp(1, 16);
    let per = columns.len().div_ceil(threads).max(1);
    let encoded: Vec<Result<Vec<Encoded>, EngineError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = columns
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for &(id, column) in part {
                        out.extend(encode_column(store, id, column, config)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(EngineError::Snapshot("flush thread panicked".into())))
            })
            .collect()
    });
    let mut batch = store.batch();
    let mut stats = FlushStats::default();
    for part in encoded {
        for e in part? {
            if let Some((series, day, seq)) = keys::parse(&e.key)
                && seq > 0
            {
                stats.multi_segment_days.push((series, day));
            }
            stats.segments += 1;
            stats.points += e.points;
            stats.bytes += put(store, &mut batch, e);
        }
    }
    for (id, device, metric) in &frozen.new_series {
        batch.insert(
            &store.series,
            id.to_be_bytes().to_vec(),
            catalog::encode_name(device, metric),
        );
    }
    extra(&mut batch);
    batch.commit()?;
    store.persist()?;
    Ok(stats)
}
