//! A cache of decoded segments, so repeated queries over the same data (a dashboard refreshing,
//! a fleet-wide average) skip decompression. Segments are immutable under their key: a
//! compaction writes the merged segment under a new sequence number, so entries never go stale.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::EngineError;
use super::codec::{TimeColumn, ValueColumn};
use super::segment::{self, SegmentHeader};

/// (series, day, seq) of a segment.
pub type SegmentKey = (u32, i64, u32);

/// A decoded segment.
#[derive(Debug)]
pub struct Decoded {
    /// Its header.
    pub header: SegmentHeader,
    /// Its timestamps.
    pub times: TimeColumn,
    /// Its values.
    pub values: ValueColumn,
}

impl Decoded {
    fn bytes(&self) -> u64 {
        let times = match &self.times {
            TimeColumn::Runs(r) => r.len() * 24,
            TimeColumn::Explicit(t) => t.len() * 8,
        };
        (times + self.values.heap_bytes() + 64) as u64
    }
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<SegmentKey, Arc<Decoded>> for ByBytes {
    fn weight(&self, _key: &SegmentKey, value: &Arc<Decoded>) -> u64 {
        value.bytes()
    }
}

/// Decoded segments, bounded in bytes.
pub struct DecodedCache {
    cache: Option<Cache<SegmentKey, Arc<Decoded>, ByBytes>>,
}

impl std::fmt::Debug for DecodedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedCache").finish_non_exhaustive()
    }
}

impl DecodedCache {
    /// A cache of up to `bytes` (0 disables it).
    pub fn new(bytes: u64) -> Self {
        DecodedCache {
            cache: (bytes > 0).then(|| Cache::with_weighter(4096, bytes, ByBytes)),
        }
    }

    /// The decoded segment `key`, decoding `value` on a miss.
    pub fn get_or_decode(
        &self,
        key: SegmentKey,
        value: &[u8],
    ) -> Result<Arc<Decoded>, EngineError> {
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(hit);
        }
        let (header, times, values) = segment::decode_columns(value)?;
        let decoded = Arc::new(Decoded {
            header,
            times,
            values,
        });
        if let Some(c) = &self.cache {
            c.insert(key, decoded.clone());
        }
        Ok(decoded)
    }
}
