//! Reading every segment at start-up, repairing damage (see `FORMAT.md`, "Recovery").

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::record::{self, Frame};
use super::segment::{self, MAGIC, SEGMENT_HEADER_LEN, VERSION};
use super::{Position, WalError, io};
use crate::metrics as m;

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Intact records replayed.
    pub records: u64,
    /// Segment files read.
    pub segments: u64,
    /// Repairs made (each also counted in `citytel_wal_corruptions_total`).
    pub corruptions: u64,
    /// Bytes cut off damaged segments.
    pub truncated_bytes: u64,
    /// The last segment and its length after repair, if any segment exists.
    pub last_segment: Option<(u64, u64)>,
}

/// Lists segment sequence numbers in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        if let Some(seq) = entry.file_name().to_str().and_then(segment::parse_name) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Replays every segment in `dir` from `from_segment` on (older ones that a reader's hold
/// keeps are covered by the snapshot and are not applied again).
pub fn replay_dir(
    dir: &Path,
    from_segment: u64,
    mut on_record: impl FnMut(Position, &[u8]),
) -> Result<ReplayStats, WalError> {
    let mut stats = ReplayStats::default();
    let mut seqs = list_segments(dir)?;
    seqs.retain(|&seq| seq >= from_segment);
    let mut previous: Option<u64> = None;
    for seq in seqs {
        if let Some(prev) = previous
            && seq != prev + 1
        {
            corruption(&mut stats, dir, "missing wal segments", prev + 1);
        }
        previous = Some(seq);
        let len = replay_segment(dir, seq, &mut stats, &mut on_record)?;
        stats.segments += 1;
        stats.last_segment = Some((seq, len));
    }
    Ok(stats)
}

fn corruption(stats: &mut ReplayStats, dir: &Path, what: &str, segment: u64) {
    stats.corruptions += 1;
    metrics::counter!(m::WAL_CORRUPTIONS_TOTAL).increment(1);
    tracing::warn!(dir = %dir.display(), segment, problem = what, "wal repaired");
}

/// Replays one segment, repairing it if damaged. Returns its length afterwards.
fn replay_segment(
    dir: &Path,
    seq: u64,
    stats: &mut ReplayStats,
    on_record: &mut impl FnMut(Position, &[u8]),
) -> Result<u64, WalError> {
    let path = segment::path(dir, seq);
    let data = std::fs::read(&path).map_err(io("read", &path))?;
    let header_len = SEGMENT_HEADER_LEN as usize;
    if data.len() < header_len || data[..4] != MAGIC {
        corruption(stats, dir, "missing or bad segment header", seq);
        stats.truncated_bytes += data.len() as u64;
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io("open", &path))?;
        file.write_all(&segment::header())
            .map_err(io("write header", &path))?;
        file.sync_all().map_err(io("fsync", &path))?;
        return Ok(SEGMENT_HEADER_LEN);
    }
    let version = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    if version != VERSION {
        return Err(WalError::UnsupportedVersion {
            path,
            found: version,
        });
    }
    let mut offset = header_len;
    loop {
        match record::decode(&data[offset..]) {
            Frame::Record(payload, used) => {
                on_record(
                    Position {
                        segment: seq,
                        offset: offset as u64,
                    },
                    payload,
                );
                stats.records += 1;
                offset += used;
            }
            Frame::End => return Ok(offset as u64),
            Frame::Damaged(what) => {
                corruption(stats, dir, what, seq);
                stats.truncated_bytes += (data.len() - offset) as u64;
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io("open", &path))?;
                file.set_len(offset as u64).map_err(io("truncate", &path))?;
                file.sync_all().map_err(io("fsync", &path))?;
                return Ok(offset as u64);
            }
        }
    }
}
