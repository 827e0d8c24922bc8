//! A sink's durable cursor: the WAL position up to which its server has confirmed everything.
//!
//! File `{data_dir}/sinks/{name}/cursor`, 28 bytes, replaced atomically (temporary file, fsync,
//! rename, directory fsync):
//!
//! | size | field                                   |
//! |------|-----------------------------------------|
//! | 4    | magic `CTSC`                            |
//! | 4    | version, u32 LE, `1`                    |
//! | 8    | WAL segment, u64 LE                     |
//! | 8    | byte offset in the segment, u64 LE      |
//! | 4    | CRC-32 of the 24 bytes before, u32 LE   |
//!
//! A missing file means the sink never ran: it starts at the oldest WAL segment present. A file
//! that fails its checks is an error (the sink stops rather than guess where it was).

use std::io::Write;
use std::path::{Path, PathBuf};

use citytel_storage::wal::Position;

const MAGIC: [u8; 4] = *b"CTSC";
const VERSION: u32 = 1;
const LEN: usize = 28;

/// A cursor file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// Reading or writing failed.
    #[error("sink cursor {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is damaged or of an unknown version.
    #[error("sink cursor {path} is damaged or of an unknown version")]
    Damaged {
        /// The file.
        path: PathBuf,
    },
}

/// The cursor file of a sink whose state lives in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("cursor")
}

/// Encodes a cursor.
pub fn encode(position: Position) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4..8].copy_from_slice(&VERSION.to_le_bytes());
    out[8..16].copy_from_slice(&position.segment.to_le_bytes());
    out[16..24].copy_from_slice(&position.offset.to_le_bytes());
    let crc = crc32fast::hash(&out[..24]);
    out[24..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a cursor; `None` if the bytes are not a valid version 1 cursor.
pub fn decode(bytes: &[u8]) -> Option<Position> {
    if bytes.len() != LEN || bytes[..4] != MAGIC {
        return None;
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let crc = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    (version == VERSION && crc == crc32fast::hash(&bytes[..24])).then(|| Position {
        segment: u64_at(8),
        offset: u64_at(16),
    })
}

/// Loads the cursor of the sink in `dir`; `None` if it never ran.
pub fn load(dir: &Path) -> Result<Option<Position>, CursorError> {
    let path = path(dir);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes)
            .map(Some)
            .ok_or(CursorError::Damaged { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CursorError::Io { path, source }),
    }
}

/// Stores the cursor of the sink in `dir` durably.
pub fn store(dir: &Path, position: Position) -> Result<(), CursorError> {
    let target = path(dir);
    let io = |source| CursorError::Io {
        path: target.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join("cursor.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&encode(position)).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, &target).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let at = Position {
            segment: 7,
            offset: 1234,
        };
        store(dir.path(), at).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(at));
        let mut bytes = encode(at);
        bytes[10] ^= 1;
        assert_eq!(decode(&bytes), None);
        std::fs::write(path(dir.path()), &bytes[..20]).unwrap();
        assert!(matches!(load(dir.path()), Err(CursorError::Damaged { .. })));
    }
}
