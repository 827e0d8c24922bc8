//! WAL recovery from arbitrary segment files: written into a scratch directory, opened, replayed.
//!
//! The input is `[flags][segment 1 length, u16 LE][segment 1]...[last segment]`: `flags` gives
//! the number of segment files (1 to 4), whether their sequence numbers have a gap, and whether
//! each gets a valid header in front of its bytes (so most inputs reach the records). Asserted,
//! besides never panicking:
//! - open replays exactly the intact records an independent reading of `FORMAT.md` finds:
//!   records up to the first damaged one in each segment, none from a segment with a missing or
//!   bad header, and an error (with no repair) for a segment of an unknown version;
//! - a second open replays the same records and repairs nothing (only the gap, which it reports
//!   again);
//! - appends continue after the repaired tail: a record committed after recovery is replayed
//!   after the others by a third open.

#![no_main]

use std::path::Path;

use citytel_storage::wal::{self, FsyncPolicy, Wal, WalOptions};
use libfuzzer_sys::fuzz_target;

const MAGIC: &[u8; 4] = b"CTWL";
const OPTIONS: WalOptions = WalOptions {
    segment_bytes: 1 << 20,
    fsync: FsyncPolicy::Never,
};

/// The intact records of one segment per `FORMAT.md`, or `Err(())` for an unknown version.
fn expected_records(segment: &[u8]) -> Result<Vec<Vec<u8>>, ()> {
    if segment.len() < 8 || &segment[..4] != MAGIC {
        return Ok(Vec::new());
    }
    if segment[4..8] != 1u32.to_le_bytes() {
        return Err(());
    }
    let mut records = Vec::new();
    let mut rest = &segment[8..];
    while rest.len() >= 8 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len == 0 || len > wal::MAX_PAYLOAD_LEN {
            break;
        }
        let Some(payload) = rest.get(8..8 + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        rest = &rest[8 + len..];
    }
    Ok(records)
}

fn replay(dir: &Path) -> Result<(Vec<Vec<u8>>, wal::ReplayStats, Wal), wal::WalError> {
    let mut records = Vec::new();
    let (wal, stats) = Wal::open(dir, OPTIONS, 0, |_, payload| records.push(payload.to_vec()))?;
    Ok((records, stats, wal))
}

/// A directory on a memory-backed file system when there is one (recovery fsyncs).
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("a temporary directory")
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(flags & 3) + 1;
    let gap = flags & 4 != 0;
    let with_header = flags & 8 != 0;
    let mut segments = Vec::with_capacity(count);
    for i in 0..count {
        let bytes = if i + 1 == count {
            std::mem::take(&mut rest)
        } else {
            let Some((len, tail)) = rest.split_first_chunk::<2>() else {
                break;
            };
            let len = usize::from(u16::from_le_bytes(*len)).min(tail.len());
            let (bytes, tail) = tail.split_at(len);
            rest = tail;
            bytes
        };
        let mut segment = Vec::with_capacity(bytes.len() + 8);
        if with_header {
            segment.extend_from_slice(MAGIC);
            segment.extend_from_slice(&1u32.to_le_bytes());
        }
        segment.extend_from_slice(bytes);
        segments.push(segment);
    }

    let dir = scratch_dir();
    let wal_dir = dir.path().join("wal");
    std::fs::create_dir(&wal_dir).expect("create the wal directory");
    let mut seqs = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let seq = if gap && i > 0 {
            i as u64 + 2
        } else {
            i as u64 + 1
        };
        std::fs::write(wal::segment_path(&wal_dir, seq), segment).expect("write a segment");
        seqs.push(seq);
    }
    let gaps = u64::from(gap && segments.len() > 1);

    let expected: Result<Vec<Vec<u8>>, ()> = segments
        .iter()
        .map(|s| expected_records(s))
        .collect::<Result<Vec<_>, ()>>()
        .map(|per_segment| per_segment.concat());

    let first = replay(&wal_dir);
    let Ok(expected) = expected else {
        assert!(
            matches!(first, Err(wal::WalError::UnsupportedVersion { .. })),
            "a segment of an unknown version stops the open"
        );
        return;
    };
    let (records, stats, wal) = first.expect("recovery opens any segments of version 1");
    assert_eq!(records, expected, "the intact records, in order");
    assert_eq!(stats.records, expected.len() as u64);
    assert_eq!(stats.segments, segments.len() as u64);
    drop(wal);

    let (again, stats, mut wal) = replay(&wal_dir).expect("a repaired wal opens");
    assert_eq!(again, expected, "the second open sees the same records");
    assert_eq!(
        stats.corruptions, gaps,
        "the first open repaired everything"
    );
    assert_eq!(stats.truncated_bytes, 0);

    wal.append(b"after recovery").expect("append");
    wal.commit().expect("commit");
    drop(wal);
    let (third, stats, _wal) = replay(&wal_dir).expect("the wal opens after an append");
    assert_eq!(
        third.last().map(Vec::as_slice),
        Some(&b"after recovery"[..])
    );
    assert_eq!(third[..third.len() - 1], expected[..]);
    assert_eq!(stats.corruptions, gaps);
});
