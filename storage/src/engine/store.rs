//! The persistent side of the engine: an embedded fjall database (an LSM tree in pure Rust).
//!
//! | keyspace | key | value |
//! | --- | --- | --- |
//! | `chunks` | series, day, seq, record (see [`keys`]) | a [`super::segment`], or its 1-hour or 1-minute [`super::rollup`] |
//! | `series` | series id (u32 BE) | `device \0 metric` |
//!
//! Callers keep their own records in the same database as [`Table`]s (named keyspaces opened
//! with [`ChunkStore::open`]); the engine never reads them. One fjall database means one journal
//! and one [`ChunkStore::persist`] for everything.
//!
//! Segments and their rollups are written as bulk ingestions: sorted runs that become table
//! files directly, without passing through fjall's journal (they are already durable in
//! citytel's WAL, or re-runnable in an import), so every segment and its rollups land in one table
//! at once.

use std::path::Path;

use fjall::config::CompressionPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Slice};

use super::EngineError;
use super::cache::DecodedCache;
use super::keys::{self, Record};

/// Which rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One-minute buckets.
    Minute,
    /// One-hour buckets.
    Hour,
}

impl Level {
    /// Bucket width.
    pub fn resolution_ms(self) -> i64 {
        match self {
            Level::Minute => 60_000,
            Level::Hour => 3_600_000,
        }
    }

    /// The record holding this rollup.
    pub fn record(self) -> Record {
        match self {
            Level::Minute => Record::Minute,
            Level::Hour => Record::Hour,
        }
    }
}

/// One stored record of a series-day.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Day start.
    pub day: i64,
    /// Sequence within the day (write order).
    pub seq: u32,
    /// The value.
    pub value: Slice,
}

/// A record to ingest: its key and value, or `None` to delete it.
pub type Write = ([u8; keys::KEY_LEN], Option<Vec<u8>>);

/// Records and value bytes of one record type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordTotals {
    /// Records.
    pub records: u64,
    /// Bytes of their values.
    pub bytes: u64,
}

/// What the `chunks` keyspace holds ([`ChunkStore::chunk_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkStats {
    /// Raw segments.
    pub raw: RecordTotals,
    /// 1-hour rollups.
    pub hour: RecordTotals,
    /// 1-minute rollups.
    pub minute: RecordTotals,
    /// Points in the raw segments.
    pub points: u64,
}

/// A caller's keyspace in the engine's database: raw keys and values, written as fsynced tables
/// with [`ChunkStore::write_table`].
#[derive(Clone)]
pub struct Table {
    name: &'static str,
    keyspace: Keyspace,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("name", &self.name).finish()
    }
}

/// A key and its value, as read from a [`Table`].
pub type Entry = (Slice, Slice);

impl Table {
    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Slice>, EngineError> {
        Ok(self.keyspace.get(key)?)
    }

    /// Every record, in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Result<Entry, EngineError>> + '_ {
        self.keyspace
            .iter()
            .map(|item| item.into_inner().map_err(EngineError::from))
    }

    /// The records whose keys start with `prefix`, in key order.
    pub fn prefix(
        &self,
        prefix: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<Entry, EngineError>> + '_ {
        self.keyspace
            .prefix(prefix)
            .map(|item| item.into_inner().map_err(EngineError::from))
    }

    /// Whether the table holds no record.
    pub fn is_empty(&self) -> Result<bool, EngineError> {
        Ok(self.keyspace.is_empty()?)
    }
}

/// The fjall database: the engine's keyspaces and the callers' tables.
pub struct ChunkStore {
    db: Database,
    /// Decoded segments for repeated reads.
    pub decoded: DecodedCache,
    /// Segments and rollups.
    pub chunks: Keyspace,
    /// Series catalog.
    pub series: Keyspace,
    tables: Vec<Table>,
}

impl std::fmt::Debug for ChunkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkStore").finish_non_exhaustive()
    }
}

impl ChunkStore {
    /// Opens (creating if needed) the store in `dir`, with `cache_bytes` of block cache,
    /// `decoded_bytes` of decoded-segment cache and the callers' `tables`.
    pub fn open(
        dir: &Path,
        cache_bytes: u64,
        decoded_bytes: u64,
        tables: &[&'static str],
    ) -> Result<ChunkStore, EngineError> {
        let db = Database::builder(dir)
            .cache_size(cache_bytes)
            // Durability is decided by citytel: checkpoints persist explicitly.
            .manual_journal_persist(true)
            .open()?;
        // Segment and rollup values are already compressed by pco.
        let chunks = || {
            KeyspaceCreateOptions::default()
                .data_block_compression_policy(CompressionPolicy::disabled())
                .manual_journal_persist(true)
        };
        let plain = || KeyspaceCreateOptions::default().manual_journal_persist(true);
        let tables = tables
            .iter()
            .map(|&name| {
                Ok(Table {
                    name,
                    keyspace: db.keyspace(name, plain)?,
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(ChunkStore {
            chunks: db.keyspace("chunks", chunks)?,
            series: db.keyspace("series", plain)?,
            tables,
            decoded: DecodedCache::new(decoded_bytes),
            db,
        })
    }

    /// Makes everything written durable (fsync). Ingested tables are fsynced as they are
    /// written; this covers fjall's journal.
    pub fn persist(&self) -> Result<(), EngineError> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// The caller's table `name`, as opened by [`open`](Self::open).
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Writes (`Some`) and deletes (`None`) records of `table` as one fsynced table file, without
    /// going through fjall's journal. Later writes of a key win over earlier ones.
    pub fn write_table(
        &self,
        table: &Table,
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), EngineError> {
        self.ingest_into(&table.keyspace, writes)
    }

    /// Writes and deletes chunk records as one table.
    pub fn ingest(&self, writes: Vec<Write>) -> Result<(), EngineError> {
        self.ingest_into(
            &self.chunks,
            writes.into_iter().map(|(k, v)| (k.to_vec(), v)).collect(),
        )
    }

    /// Writes (`Some`) and deletes (`None`) records of `keyspace` as one fsynced table, without
    /// going through fjall's journal. Later writes of a key win over earlier ones.
    pub(crate) fn ingest_into(
        &self,
        keyspace: &Keyspace,
        mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), EngineError> {
        if writes.is_empty() {
            return Ok(());
        }
        // A stable sort keeps equal keys in write order; keep the last of each.
        writes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut last: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(writes.len());
        for w in writes {
            match last.last_mut() {
                Some(prev) if prev.0 == w.0 => *prev = w,
                _ => last.push(w),
            }
        }
        let mut ingestion = keyspace.start_ingestion()?;
        for (key, value) in last {
            match value {
                Some(v) => ingestion.write(key, v)?,
                None => ingestion.write_tombstone(key)?,
            }
        }
        ingestion.finish()?;
        Ok(())
    }

    /// `record`s of `series` for days `from_day..=to_day`, in key order.
    pub fn scan(
        &self,
        series: u32,
        from_day: i64,
        to_day: i64,
        record: Record,
    ) -> Result<Vec<Stored>, EngineError> {
        let lo = keys::key(series, from_day, 0, Record::Raw);
        let hi = keys::key(series, to_day, u32::MAX, Record::Minute);
        let mut out = Vec::new();
        for item in self.chunks.range(lo..=hi) {
            let (key, value) = item.into_inner()?;
            if let Some((_, day, seq, r)) = keys::parse(&key)
                && r == record
            {
                out.push(Stored { day, seq, value });
            }
        }
        Ok(out)
    }

    /// Every record of `series` for days `from_day..=to_day`, in key order (per day and segment:
    /// raw, hour, minute).
    pub fn scan_all(
        &self,
        series: u32,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(Record, Stored)>, EngineError> {
        let lo = keys::key(series, from_day, 0, Record::Raw);
        let hi = keys::key(series, to_day, u32::MAX, Record::Minute);
        let mut out = Vec::new();
        for item in self.chunks.range(lo..=hi) {
            let (key, value) = item.into_inner()?;
            if let Some((_, day, seq, record)) = keys::parse(&key) {
                out.push((record, Stored { day, seq, value }));
            }
        }
        Ok(out)
    }

    /// The sequence number for a new segment of `series` on `day`.
    pub fn next_seq(&self, series: u32, day: i64) -> Result<u32, EngineError> {
        match self
            .chunks
            .prefix(keys::day_prefix(series, day))
            .next_back()
        {
            Some(item) => {
                let key = item.key()?;
                Ok(keys::parse(&key).map_or(0, |(_, _, seq, _)| seq + 1))
            }
            None => Ok(0),
        }
    }

    /// What the `chunks` keyspace holds, by record type (a full scan: for offline reports).
    pub fn chunk_stats(&self) -> Result<ChunkStats, EngineError> {
        let mut stats = ChunkStats::default();
        for item in self.chunks.iter() {
            let (key, value) = item.into_inner()?;
            let Some((_, _, _, record)) = keys::parse(&key) else {
                continue;
            };
            let slot = match record {
                Record::Raw => &mut stats.raw,
                Record::Hour => &mut stats.hour,
                Record::Minute => &mut stats.minute,
            };
            slot.records += 1;
            slot.bytes += value.len() as u64;
            if record == Record::Raw {
                let count = super::segment::header(&value).map_or(0, |(h, _)| h.count);
                stats.points += u64::from(count);
            }
        }
        Ok(stats)
    }

    /// Bytes the database occupies on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    /// Flushes memtables and compacts every keyspace fully, so the files on disk are the final
    /// form of the data (used after a bulk import).
    pub fn settle(&self) -> Result<(), EngineError> {
        let tables = self.tables.iter().map(|t| &t.keyspace);
        for ks in [&self.chunks, &self.series].into_iter().chain(tables) {
            ks.rotate_memtable_and_wait()?;
            ks.major_compact()?;
        }
        self.persist()
    }
}
