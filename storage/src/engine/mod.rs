//! citytel's embedded time-series engine.
//!
//! Points arrive in the [`memhead`] (sorted per-series columns, plus a latest-value index so
//! "latest" never touches disk). A flush freezes the head and writes it as compressed
//! [`segment`]s, one per series and day, with their [`rollup`]s, into the fjall [`store`]; the
//! WAL up to the flush can then be deleted. [`compact`] later merges a day's segments into one
//! (the best compression), and [`retention`] deletes what is older than each resolution keeps.
//! Reads ([`read`]) merge segments and heads so the last write of a timestamp wins, and answer
//! bucketed queries from rollups whenever the step and the data allow.
//!
//! Rollups: 1-hour rollups are kept for every segment. 1-minute rollups are materialized for a
//! segment when it holds at least `rollup_minute_min_points` points per minute on average over the minutes that hold points; for
//! sparser series (a 10 s sensor has 6 points a minute) they would cost almost as much disk as
//! the raw data and save little work, so 1-minute buckets are computed from the raw segment
//! while it exists, and materialized when retention deletes the raw data. On-disk layouts are in
//! `FORMAT.md` next to this file.

pub mod aggregate;
pub mod cache;
pub mod catalog;
pub mod codec;
pub mod compact;
pub mod flush;
pub mod keys;
pub mod memhead;
pub mod merge;
pub mod read;
pub mod retention;
pub mod rollup;
pub mod segment;
pub mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use catalog::Catalog;
use memhead::MemHead;
use store::ChunkStore;

use super::series::{LatestPoint, Point};

/// An engine failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The embedded database failed.
    #[error("storage engine: {0}")]
    Store(#[from] fjall::Error),
    /// A stored record is corrupt.
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    /// Stored data is unreadable, or a worker thread failed.
    #[error("storage engine: {0}")]
    Corrupt(String),
}

/// Engine settings (from `[storage]`).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Block cache of the embedded database, in bytes.
    pub cache_bytes: u64,
    /// Head points that trigger a flush.
    pub flush_points: u64,
    /// Average points per minute a segment needs for its 1-minute rollup to be materialized.
    pub rollup_minute_min_points: u32,
    /// How long raw points are kept (`None`: forever).
    pub retention_raw: Option<Duration>,
    /// How long 1-minute rollups are kept.
    pub retention_minute: Option<Duration>,
    /// How long 1-hour rollups are kept.
    pub retention_hour: Option<Duration>,
    /// How long after a day ends its segments are merged into one.
    pub compaction_delay: Duration,
    /// pco compression level of segments written by a flush (compaction always uses the
    /// default level).
    pub flush_level: usize,
    /// Memory for decoded segments kept for repeated queries, in bytes (0: none).
    pub decoded_cache_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cache_bytes: 64 << 20,
            flush_points: 4_000_000,
            rollup_minute_min_points: 20,
            retention_raw: Some(Duration::from_secs(30 * 86_400)),
            retention_minute: Some(Duration::from_secs(365 * 86_400)),
            retention_hour: None,
            compaction_delay: Duration::from_secs(3_600),
            flush_level: codec::DEFAULT_LEVEL,
            decoded_cache_bytes: 128 << 20,
        }
    }
}

/// A frozen head on its way to disk, with what must be persisted alongside it.
#[derive(Debug)]
pub struct FrozenHead {
    /// The points.
    pub head: Arc<MemHead>,
    /// Series created since the previous flush: (id, device, metric).
    pub new_series: Vec<(u32, Arc<str>, Arc<str>)>,
    /// Number of series known at the freeze.
    pub series_count: usize,
}

/// The engine's in-memory state and its store.
pub struct Engine {
    store: Arc<ChunkStore>,
    catalog: Catalog,
    active: MemHead,
    frozen: Option<Arc<MemHead>>,
    latest: Vec<Option<Point>>,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("series", &self.catalog.len())
            .field("head_points", &self.active.points())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the engine in `dir`, loading the series catalog; `tables` are the caller's own
    /// keyspaces in the same database (see [`store::Table`]).
    pub fn open(
        dir: &Path,
        config: EngineConfig,
        tables: &[&'static str],
    ) -> Result<Engine, EngineError> {
        let store = Arc::new(ChunkStore::open(
            dir,
            config.cache_bytes,
            config.decoded_cache_bytes,
            tables,
        )?);
        let mut catalog = Catalog::default();
        for item in store.series.iter() {
            let (key, value) = item.into_inner()?;
            let id = key
                .as_ref()
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| EngineError::Corrupt("bad series key".into()))?;
            let (device, metric) = catalog::decode_name(&value)
                .ok_or_else(|| EngineError::Corrupt(format!("bad series name of id {id}")))?;
            if !catalog.restore(id, device, metric) {
                return Err(EngineError::Corrupt(format!(
                    "series ids are not dense at {id}"
                )));
            }
        }
        let latest = vec![None; catalog.len()];
        Ok(Engine {
            store,
            catalog,
            active: MemHead::default(),
            frozen: None,
            latest,
            config,
        })
    }

    /// The store, shared with readers and maintenance.
    pub fn store(&self) -> &Arc<ChunkStore> {
        &self.store
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The series catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The id of (device, metric), creating the series if new.
    pub fn series_id(&mut self, device: &Arc<str>, metric: &Arc<str>) -> u32 {
        let id = self.catalog.id(device, metric);
        if id as usize >= self.latest.len() {
            self.latest.resize(id as usize + 1, None);
        }
        id
    }

    /// Stores a point of series `id` (from [`series_id`](Self::series_id)). The latest value
    /// only moves forward in time.
    pub fn write(&mut self, id: u32, p: Point) {
        self.active.write(id, p);
        if let Some(slot) = self.latest.get_mut(id as usize) {
            match slot {
                Some(l) if l.time_ms > p.time_ms => {}
                _ => *slot = Some(p),
            }
        }
    }

    /// Restores the latest value of a series (from a snapshot).
    pub fn restore_latest(&mut self, id: u32, p: Point) {
        if let Some(slot) = self.latest.get_mut(id as usize) {
            *slot = Some(p);
        }
    }

    /// The latest point of series `id`, if it has one.
    pub fn latest_point(&self, id: u32) -> Option<Point> {
        self.latest.get(id as usize).copied().flatten()
    }

    /// Every known latest value, for snapshots.
    pub fn latest_values(&self) -> impl Iterator<Item = (u32, Point)> + '_ {
        self.latest
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (i as u32, p)))
    }

    /// The latest point of every metric of `device`, sorted by metric name.
    pub fn latest(&self, device: &str) -> Vec<LatestPoint> {
        let mut out: Vec<LatestPoint> = self
            .catalog
            .device_series(device)
            .filter_map(|(metric, id)| {
                Some(LatestPoint {
                    metric: metric.clone(),
                    point: (*self.latest.get(id as usize)?)?,
                })
            })
            .collect();
        out.sort_by(|a, b| a.metric.cmp(&b.metric));
        out
    }

    /// Points in the active head.
    pub fn head_points(&self) -> u64 {
        self.active.points()
    }

    /// Whether the head is due for a flush.
    pub fn needs_flush(&self) -> bool {
        self.active.points() >= self.config.flush_points
    }

    /// Whether a frozen head is still being written.
    pub fn is_flushing(&self) -> bool {
        self.frozen.is_some()
    }

    /// Freezes the active head for a flush; `None` if a flush is already running. Reads keep
    /// seeing the frozen points until [`release_frozen`](Self::release_frozen).
    pub fn freeze(&mut self) -> Option<FrozenHead> {
        if self.frozen.is_some() {
            return None;
        }
        let new_series: Vec<(u32, Arc<str>, Arc<str>)> = self
            .catalog
            .unpersisted()
            .map(|(id, (d, m))| (id, d.clone(), m.clone()))
            .collect();
        let head = Arc::new(std::mem::take(&mut self.active));
        self.frozen = Some(head.clone());
        Some(FrozenHead {
            head,
            new_series,
            series_count: self.catalog.len(),
        })
    }

    /// Called once a frozen head is durable in the store.
    pub fn release_frozen(&mut self, series_count: usize) {
        self.frozen = None;
        self.catalog.mark_persisted(series_count);
    }

    /// Takes back a released frozen head: once nothing else refers to it, the active head
    /// reuses its memory as it grows.
    pub fn recycle(&mut self, head: Arc<MemHead>) {
        if let Ok(head) = Arc::try_unwrap(head) {
            self.active.adopt_spares(head);
        }
    }
}

#[cfg(test)]
mod tests;
