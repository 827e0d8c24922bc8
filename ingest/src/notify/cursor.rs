//! A receiver's durable cursor: the sequence number of the first notification it has not had
//! confirmed.
//!
//! File `{data_dir}/alerts/{receiver}/cursor`, 20 bytes, replaced atomically (temporary file,
//! fsync, rename, directory fsync):
//!
//! | size | field                                   |
//! |------|-----------------------------------------|
//! | 4    | magic `CTAC`                            |
//! | 4    | version, u32 LE, `1`                    |
//! | 8    | next sequence number, u64 LE            |
//! | 4    | CRC-32 of the 16 bytes before, u32 LE   |
//!
//! A missing file means the receiver never confirmed anything: it starts at the oldest
//! notification kept. A file that fails its checks is an error (the receiver does not start
//! rather than guess, and resend or skip).

use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: [u8; 4] = *b"CTAC";
const VERSION: u32 = 1;
const LEN: usize = 20;

/// A cursor file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// Reading or writing failed.
    #[error("alert receiver cursor {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is damaged or of an unknown version.
    #[error("alert receiver cursor {path} is damaged or of an unknown version")]
    Damaged {
        /// The file.
        path: PathBuf,
    },
}

/// The directory of receiver `name`'s state under `data_dir`.
pub fn dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("alerts").join(name)
}

/// Encodes a cursor.
pub fn encode(next: u64) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4..8].copy_from_slice(&VERSION.to_le_bytes());
    out[8..16].copy_from_slice(&next.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a cursor; `None` if the bytes are not a valid version 1 cursor.
pub fn decode(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != LEN || bytes[..4] != MAGIC {
        return None;
    }
    let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let mut next = [0u8; 8];
    next.copy_from_slice(&bytes[8..16]);
    (version == VERSION && crc == crc32fast::hash(&bytes[..16])).then(|| u64::from_le_bytes(next))
}

/// Loads the cursor kept in `dir`; `None` if there is none.
pub fn load(dir: &Path) -> Result<Option<u64>, CursorError> {
    let path = dir.join("cursor");
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes)
            .map(Some)
            .ok_or(CursorError::Damaged { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CursorError::Io { path, source }),
    }
}

/// Stores the cursor in `dir` durably.
pub fn store(dir: &Path, next: u64) -> Result<(), CursorError> {
    let target = dir.join("cursor");
    let io = |source| CursorError::Io {
        path: target.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join("cursor.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&encode(next)).map_err(io)?;
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
        store(dir.path(), 42).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(42));
        let mut bytes = encode(42);
        bytes[9] ^= 1;
        assert_eq!(decode(&bytes), None);
        std::fs::write(dir.path().join("cursor"), &bytes[..10]).unwrap();
        assert!(matches!(load(dir.path()), Err(CursorError::Damaged { .. })));
    }
}
