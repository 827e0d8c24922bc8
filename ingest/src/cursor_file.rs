//! A durable cursor file: the small record a consumer of citytel's data (a sink, an alert
//! receiver) keeps of how far its server has confirmed, replaced atomically (temporary file,
//! fsync, rename, directory fsync) so a crash leaves the old cursor or the new one, never half.
//!
//! File `{dir}/cursor`, framed the same way for every consumer:
//!
//! | size | field                                        |
//! |------|----------------------------------------------|
//! | 4    | magic, one per consumer (`CTSC`, `CTAC`)      |
//! | 4    | version, u32 LE, `1`                         |
//! | n    | the consumer's payload (fixed length)        |
//! | 4    | CRC-32 of everything before, u32 LE          |
//!
//! A missing file means the consumer never confirmed anything. A file that fails its checks is
//! an error: the consumer does not start rather than guess, and resend or skip.

use std::io::Write;
use std::path::{Path, PathBuf};

const VERSION: u32 = 1;

/// A cursor file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// Reading or writing failed.
    #[error("{what} cursor {path}: {source}")]
    Io {
        /// Whose cursor it is ("sink", "alert receiver").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is damaged or of an unknown version.
    #[error("{what} cursor {path} is damaged or of an unknown version")]
    Damaged {
        /// Whose cursor it is.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
}

/// One kind of cursor: its magic, payload length and name in errors.
#[derive(Debug, Clone, Copy)]
pub struct CursorKind {
    /// The file's first four bytes.
    pub magic: [u8; 4],
    /// Bytes of payload.
    pub payload_len: usize,
    /// Whose cursor it is, for errors.
    pub what: &'static str,
}

impl CursorKind {
    /// The cursor file in `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join("cursor")
    }

    /// The file's bytes for `payload` (of `payload_len` bytes).
    pub fn encode(&self, payload: &[u8]) -> Vec<u8> {
        debug_assert_eq!(payload.len(), self.payload_len);
        let mut out = Vec::with_capacity(12 + payload.len());
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The payload of a file's bytes; `None` if they are not a valid version 1 cursor of this
    /// kind.
    pub fn decode<'b>(&self, bytes: &'b [u8]) -> Option<&'b [u8]> {
        let body_len = 8 + self.payload_len;
        if bytes.len() != body_len + 4 || bytes[..4] != self.magic {
            return None;
        }
        let version = u32::from_le_bytes(bytes[4..8].try_into().ok()?);
        let crc = u32::from_le_bytes(bytes[body_len..].try_into().ok()?);
        (version == VERSION && crc == crc32fast::hash(&bytes[..body_len]))
            .then(|| &bytes[8..body_len])
    }

    /// The payload of the cursor in `dir`; `None` if there is none.
    pub fn load(&self, dir: &Path) -> Result<Option<Vec<u8>>, CursorError> {
        let path = self.path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                self.decode(&bytes)
                    .map(|p| Some(p.to_vec()))
                    .ok_or(CursorError::Damaged {
                        what: self.what,
                        path,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CursorError::Io {
                what: self.what,
                path,
                source,
            }),
        }
    }

    /// Stores `payload` as the cursor in `dir`, durably (creating `dir` if needed).
    pub fn store(&self, dir: &Path, payload: &[u8]) -> Result<(), CursorError> {
        let target = self.path(dir);
        let io = |source| CursorError::Io {
            what: self.what,
            path: target.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join("cursor.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&self.encode(payload)).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &target).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }
}

/// The little-endian u64 at `at` of `bytes`.
pub fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: CursorKind = CursorKind {
        magic: *b"CTXX",
        payload_len: 8,
        what: "test",
    };

    #[test]
    fn cursors_round_trip_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(KIND.load(dir.path()).unwrap(), None);
        KIND.store(dir.path(), &42u64.to_le_bytes()).unwrap();
        assert_eq!(
            KIND.load(dir.path()).unwrap(),
            Some(42u64.to_le_bytes().to_vec())
        );
        let bytes = KIND.encode(&42u64.to_le_bytes());
        assert_eq!(bytes.len(), 20);
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 1;
            assert_eq!(KIND.decode(&damaged), None, "byte {i} flipped");
        }
        let other = CursorKind {
            magic: *b"CTYY",
            ..KIND
        };
        assert_eq!(other.decode(&bytes), None, "another kind's magic");
        std::fs::write(KIND.path(dir.path()), &bytes[..10]).unwrap();
        let err = KIND.load(dir.path()).unwrap_err();
        assert!(matches!(err, CursorError::Damaged { .. }));
        assert!(err.to_string().starts_with("test cursor "), "{err}");
    }
}
