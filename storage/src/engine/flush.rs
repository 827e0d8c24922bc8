//! Writing a frozen head to the store: one segment per series and day, with its rollups, as one
//! ingested table, then the new series.

use std::sync::Arc;

use super::keys::Record;
use super::memhead::Column;
use super::store::{ChunkStore, Level, Write};
use super::{EngineConfig, EngineError, FrozenHead, catalog, codec, keys, rollup, segment};

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
    /// Series, day and sequence of the segment.
    pub at: (u32, i64, u32),
    /// Raw segment.
    pub raw: Vec<u8>,
    /// 1-hour rollup.
    pub hour: Vec<u8>,
    /// 1-minute rollup or the not-materialized marker.
    pub minute: Vec<u8>,
    /// Points in the segment.
    pub points: u64,
}

/// Encodes sorted points of series `id` on `day` as segment `seq`, the raw values at pco
/// compression `level`.
pub fn encode_segment(
    (id, day, seq): (u32, i64, u32),
    times: &[i64],
    values: &[f64],
    config: &EngineConfig,
    level: usize,
) -> Encoded {
    let span = (
        times.first().copied().unwrap_or(day),
        times.last().copied().unwrap_or(day),
    );
    // One pass finds the values' decimal scale for the segment and both rollups.
    let scale = codec::decimal_scale(values);
    let raw = segment::encode(times, values, scale, level);
    let mut hour = Vec::new();
    let hours = rollup::summarize_scaled(times, values, scale, Level::Hour.resolution_ms());
    rollup::encode(&hours, Level::Hour.resolution_ms(), span, &mut hour);
    let minutes = rollup::summarize_scaled(times, values, scale, Level::Minute.resolution_ms());
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
        at: (id, day, seq),
        raw,
        hour,
        minute,
        points: times.len() as u64,
    }
}

impl Encoded {
    /// The segment's three records as writes; returns their size in bytes too.
    pub fn into_writes(self, out: &mut Vec<Write>) -> u64 {
        let bytes = (self.raw.len() + self.hour.len() + self.minute.len()) as u64;
        let (series, day, seq) = self.at;
        out.push((keys::key(series, day, seq, Record::Raw), Some(self.raw)));
        out.push((keys::key(series, day, seq, Record::Hour), Some(self.hour)));
        out.push((
            keys::key(series, day, seq, Record::Minute),
            Some(self.minute),
        ));
        bytes
    }
}

fn encode_column(
    store: &ChunkStore,
    id: u32,
    column: &Column,
    config: &EngineConfig,
) -> Result<Vec<Encoded>, EngineError> {
    let mut out = Vec::new();
    let times: Vec<i64> = column.points().iter().map(|p| p.time_ms).collect();
    let values: Vec<f64> = column.points().iter().map(|p| p.value).collect();
    let mut from = 0;
    while from < times.len() {
        let day = keys::day_of(times[from]);
        let to = from + times[from..].partition_point(|&t| t < day + keys::DAY_MS);
        let seq = store.next_seq(id, day)?;
        out.push(encode_segment(
            (id, day, seq),
            &times[from..to],
            &values[from..to],
            config,
            config.flush_level,
        ));
        from = to;
    }
    Ok(out)
}

/// Writes `frozen`: its segments as one ingested table, then the new series as another. The
/// caller writes its snapshot last: if the process dies before, the segments exist without the
/// snapshot that covers them, the WAL replay writes the same points again, and reads resolve the
/// copies (same timestamps, same values); the replay also assigns the new series the same ids.
pub fn flush(
    store: &Arc<ChunkStore>,
    frozen: &FrozenHead,
    config: &EngineConfig,
    threads: usize,
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
                    .unwrap_or_else(|_| Err(EngineError::Corrupt("flush thread panicked".into())))
            })
            .collect()
    });
    let mut stats = FlushStats::default();
    let mut writes = Vec::new();
    for part in encoded {
        for e in part? {
            let (series, day, seq) = e.at;
            if seq > 0 {
                stats.multi_segment_days.push((series, day));
            }
            stats.segments += 1;
            stats.points += e.points;
            stats.bytes += e.into_writes(&mut writes);
        }
    }
    store.ingest(writes)?;
    let series = frozen
        .new_series
        .iter()
        .map(|(id, device, metric)| {
            (
                id.to_be_bytes().to_vec(),
                Some(catalog::encode_name(device, metric)),
            )
        })
        .collect();
    store.ingest_into(&store.series, series)?;
    Ok(stats)
}
