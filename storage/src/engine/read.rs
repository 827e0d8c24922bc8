//! Reading from the engine without holding the state lock.
//!
//! [`Engine::capture`] runs under the lock: it resolves series ids and copies the (small) head
//! points and latest values a query needs. The returned [`Capture`] then reads segments and
//! rollups from the store and merges them with the copies, while ingest carries on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::keys::{DAY_MS, Record, day_of};
use super::merge::merge;
use super::store::{ChunkStore, Level, Stored};
use super::{Engine, EngineError, aggregate, rollup, segment};
use crate::series::{
    Bucket, LatestPoint, Point, Points, ReadError, Resolution, SeriesReader, bucket_start,
    bucketize,
};

/// The records of one day of a series that a bucketed read uses.
#[derive(Default)]
struct DayRecords {
    /// Raw segments.
    raw: Vec<Stored>,
    /// Rollups at the level the step allows.
    rollups: Vec<Stored>,
    /// Whether segments exist (an hour rollup was seen), even if raw points expired.
    has_segments: bool,
}

/// What a query needs of one series, copied under the lock.
#[derive(Debug, Clone)]
struct Captured {
    id: u32,
    /// Head points in the query range: frozen head first, then the active head.
    head: Vec<Points>,
    latest: Option<Point>,
}

/// A consistent view of some series, readable without the state lock.
pub struct Capture {
    store: Arc<ChunkStore>,
    series: HashMap<Arc<str>, HashMap<Arc<str>, Captured>>,
}

impl Engine {
    /// Captures the series `(device, metric)` for reads of `[start_ms, end_ms)`. Series that do
    /// not exist are left out (reads of them answer `None`).
    pub fn capture<'a>(
        &self,
        wanted: impl IntoIterator<Item = (&'a Arc<str>, &'a str)>,
        start_ms: i64,
        end_ms: i64,
    ) -> Capture {
        let mut series: HashMap<Arc<str>, HashMap<Arc<str>, Captured>> = HashMap::new();
        for (device, metric) in wanted {
            let Some(id) = self.catalog.get(device, metric) else {
                continue;
            };
            let metric_name = self
                .catalog
                .name(id)
                .map(|(_, m)| m.clone())
                .unwrap_or_else(|| metric.into());
            let mut head = Vec::new();
            for h in [self.frozen.as_deref(), Some(&self.active)]
                .into_iter()
                .flatten()
            {
                if let Some(column) = h.column(id) {
                    head.push(column.range(start_ms, end_ms));
                }
            }
            let latest = self.latest.get(id as usize).copied().flatten();
            series
                .entry(device.clone())
                .or_default()
                .insert(metric_name, Captured { id, head, latest });
        }
        Capture {
            store: self.store.clone(),
            series,
        }
    }
}

impl From<EngineError> for ReadError {
    fn from(e: EngineError) -> Self {
        ReadError(e.to_string())
    }
}

impl Capture {
    fn get(&self, device: &str, metric: &str) -> Option<&Captured> {
        self.series.get(device)?.get(metric)
    }

    /// Raw points of a captured series in `[start_ms, end_ms)`.
    fn points(&self, c: &Captured, start_ms: i64, end_ms: i64) -> Result<Points, EngineError> {
        let mut runs = self.segment_points(c.id, start_ms, end_ms)?;
        runs.extend(c.head.iter().map(|h| slice(h, start_ms, end_ms)));
        Ok(merge(runs))
    }

    /// Points of the stored segments in range, one run per segment, in write order per day.
    fn segment_points(
        &self,
        id: u32,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Points>, EngineError> {
        let stored = self
            .store
            .scan(id, day_of(start_ms), day_of(end_ms - 1), Record::Raw)?;
        let mut runs = Vec::with_capacity(stored.len());
        for s in stored {
            let (h, _) = segment::header(&s.value)?;
            if h.max_time_ms < start_ms || h.min_time_ms >= end_ms {
                continue;
            }
            let d = self
                .store
                .decoded
                .get_or_decode((id, s.day, s.seq), &s.value)?;
            let mut times = Vec::with_capacity(h.count as usize);
            d.times.materialize(&mut times);
            let from = times.partition_point(|&t| t < start_ms);
            let to = times.partition_point(|&t| t < end_ms).max(from);
            times.truncate(to);
            times.drain(..from);
            let mut values = Vec::with_capacity(to - from);
            d.values.materialize_range(from..to, &mut values);
            runs.push(Points {
                times_ms: times,
                values,
            });
        }
        Ok(runs)
    }

    /// Buckets of one day answered from its rollup records, if they can answer exactly: every
    /// segment of the day has a rollup at this level (not the not-materialized marker), the
    /// segments do not overlap in time, and no head point falls in the day.
    fn day_from_rollups(
        &self,
        c: &Captured,
        day: i64,
        stored: &[Stored],
        resolution_ms: i64,
        (start_ms, end_ms): (i64, i64),
    ) -> Result<Option<Vec<Bucket>>, EngineError> {
        if c.head
            .iter()
            .any(|h| overlaps(h, day, day.saturating_add(DAY_MS)))
        {
            return Ok(None);
        }
        let mut blocks = Vec::with_capacity(stored.len());
        for s in stored {
            match rollup::decode_block(&s.value, resolution_ms)? {
                Some(block) => blocks.push(block),
                None => return Ok(None),
            }
        }
        blocks.sort_by_key(|b| b.min_time_ms);
        if blocks
            .windows(2)
            .any(|w| w[0].max_time_ms >= w[1].min_time_ms)
        {
            return Ok(None);
        }
        let mut out: Vec<Bucket> = Vec::new();
        for block in blocks {
            for b in block.buckets {
                if b.start_ms < start_ms || b.start_ms >= end_ms {
                    continue;
                }
                match out.iter_mut().rev().find(|x| x.start_ms == b.start_ms) {
                    Some(existing) => existing.merge(&b),
                    None => out.push(b),
                }
            }
        }
        out.sort_by_key(|b| b.start_ms);
        Ok(Some(out))
    }

    fn buckets_of(
        &self,
        c: &Captured,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<(Vec<Bucket>, Resolution), EngineError> {
        let level = if step_ms % Level::Hour.resolution_ms() == 0 {
            Some(Level::Hour)
        } else if step_ms % Level::Minute.resolution_ms() == 0 {
            Some(Level::Minute)
        } else {
            None
        };
        let aligned = level
            .is_some_and(|l| start_ms % l.resolution_ms() == 0 && end_ms % l.resolution_ms() == 0);
        // One scan gives every record of the range; a day holds data if it has segments (their
        // hour rollups outlive expired raw points) or head points.
        let (first_day, last_day) = (day_of(start_ms), day_of(end_ms - 1));
        let mut days: BTreeMap<i64, DayRecords> = BTreeMap::new();
        for (record, s) in self.store.scan_all(c.id, first_day, last_day)? {
            let day = days.entry(s.day).or_default();
            match record {
                Record::Raw => day.raw.push(s),
                r if Some(r) == level.map(Level::record) => day.rollups.push(s),
                Record::Hour => day.has_segments = true,
                Record::Minute => {}
            }
        }
        days.retain(|_, d| d.has_segments || !d.rollups.is_empty() || !d.raw.is_empty());
        for h in &c.head {
            for &t in &h.times_ms {
                days.entry(day_of(t)).or_default();
            }
        }
        let mut fine: Vec<Bucket> = Vec::new();
        let mut used_raw = false;
        for (day, records) in days {
            let day_end = day.saturating_add(DAY_MS);
            let (lo, hi) = (start_ms.max(day), end_ms.min(day_end));
            let whole = lo == day && hi == day_end;
            let from_rollups = match level {
                Some(l) if (whole || aligned) && !records.rollups.is_empty() => {
                    self.day_from_rollups(c, day, &records.rollups, l.resolution_ms(), (lo, hi))?
                }
                _ => None,
            };
            match from_rollups {
                Some(b) => append(&mut fine, b),
                None => {
                    used_raw = true;
                    append(
                        &mut fine,
                        self.day_from_raw(c, &records.raw, (lo, hi), step_ms)?,
                    );
                }
            }
        }
        // Into buckets of `step_ms`, merged in place (raw buckets already are).
        let mut out = fine;
        let mut kept = 0;
        for i in 0..out.len() {
            let mut b = out[i];
            b.start_ms = bucket_start(b.start_ms, step_ms);
            if kept > 0 && out[kept - 1].start_ms == b.start_ms {
                out[kept - 1].merge(&b);
            } else {
                out[kept] = b;
                kept += 1;
            }
        }
        out.truncate(kept);
        let resolution = match (used_raw, level) {
            (false, Some(Level::Minute)) => Resolution::Minute,
            (false, Some(Level::Hour)) => Resolution::Hour,
            _ => Resolution::Raw,
        };
        Ok((out, resolution))
    }

    /// Buckets of `step_ms` over `[lo, hi)` within one day, from raw points. When the day's
    /// segments do not overlap in time and no head point falls in the range, each segment is
    /// aggregated straight from its compressed columns; otherwise the points are merged (the last
    /// write of a timestamp wins) and summarized.
    fn day_from_raw(
        &self,
        c: &Captured,
        stored: &[Stored],
        (lo, hi): (i64, i64),
        step_ms: i64,
    ) -> Result<Vec<Bucket>, EngineError> {
        if !c.head.iter().any(|h| overlaps(h, lo, hi)) {
            let mut decoded = Vec::with_capacity(stored.len());
            for s in stored {
                let (h, _) = segment::header(&s.value)?;
                if h.max_time_ms >= lo && h.min_time_ms < hi {
                    decoded.push(
                        self.store
                            .decoded
                            .get_or_decode((c.id, s.day, s.seq), &s.value)?,
                    );
                }
            }
            decoded.sort_by_key(|d| d.header.min_time_ms);
            if decoded
                .windows(2)
                .all(|w| w[0].header.max_time_ms < w[1].header.min_time_ms)
            {
                if let [only] = decoded.as_slice() {
                    return Ok(aggregate::aggregate(
                        &only.times,
                        &only.values,
                        lo,
                        hi,
                        step_ms,
                    ));
                }
                let mut out: Vec<Bucket> = Vec::new();
                for d in &decoded {
                    for b in aggregate::aggregate(&d.times, &d.values, lo, hi, step_ms) {
                        match out.last_mut() {
                            Some(last) if last.start_ms == b.start_ms => last.merge(&b),
                            _ => out.push(b),
                        }
                    }
                }
                return Ok(out);
            }
        }
        Ok(bucketize(&self.points(c, lo, hi)?, step_ms))
    }
}

/// Appends `more` to `all`, moving it when `all` is empty (one day: no copy).
fn append(all: &mut Vec<Bucket>, more: Vec<Bucket>) {
    if all.is_empty() {
        *all = more;
    } else {
        all.extend(more);
    }
}

fn slice(p: &Points, start_ms: i64, end_ms: i64) -> Points {
    let from = p.times_ms.partition_point(|&t| t < start_ms);
    let to = p.times_ms.partition_point(|&t| t < end_ms).max(from);
    Points {
        times_ms: p.times_ms[from..to].to_vec(),
        values: p.values[from..to].to_vec(),
    }
}

fn overlaps(p: &Points, start_ms: i64, end_ms: i64) -> bool {
    let from = p.times_ms.partition_point(|&t| t < start_ms);
    from < p.times_ms.len() && p.times_ms[from] < end_ms
}

impl SeriesReader for Capture {
    fn latest(&self, device: &str) -> Vec<LatestPoint> {
        let mut out: Vec<LatestPoint> = self
            .series
            .get(device)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(metric, c)| {
                Some(LatestPoint {
                    metric: metric.clone(),
                    point: c.latest?,
                })
            })
            .collect();
        out.sort_by(|a, b| a.metric.cmp(&b.metric));
        out
    }

    fn range(
        &self,
        device: &str,
        metric: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<Points>, ReadError> {
        let Some(c) = self.get(device, metric) else {
            return Ok(None);
        };
        if end_ms <= start_ms {
            return Ok(Some(Points::default()));
        }
        Ok(Some(self.points(c, start_ms, end_ms)?))
    }

    fn buckets(
        &self,
        device: &str,
        metric: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Option<(Vec<Bucket>, Resolution)>, ReadError> {
        let Some(c) = self.get(device, metric) else {
            return Ok(None);
        };
        if end_ms <= start_ms {
            return Ok(Some((Vec::new(), Resolution::Raw)));
        }
        Ok(Some(self.buckets_of(c, start_ms, end_ms, step_ms)?))
    }
}
