//! Following the WAL as it grows: [`Tail`] reads intact records from a position onwards, across
//! segments, for readers other than start-up replay (sinks).
//!
//! A record the writer has only partly written yet looks like a torn tail; in the active (last)
//! segment the tail waits for it. In a segment that has a successor, damage cannot be a write in
//! progress: the rest of that segment is skipped and counted.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::record::{self, Frame};
use super::segment::{self, SEGMENT_HEADER_LEN};
use super::{Position, WalError, io, replay};

/// Bytes read from a segment at a time.
const READ_CHUNK: usize = 4 << 20;

/// A reader that follows the WAL in `dir` from a position.
pub struct Tail {
    dir: PathBuf,
    segment: u64,
    file: Option<File>,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` already returned.
    consumed: usize,
    /// Bytes skipped because segments were missing or damaged.
    skipped_bytes: u64,
}

impl Tail {
    /// A tail that returns records from `from` onwards. An offset inside the segment header
    /// means the segment's first record.
    pub fn new(dir: &Path, from: Position) -> Tail {
        Tail {
            dir: dir.to_path_buf(),
            segment: from.segment,
            file: None,
            buf_offset: from.offset.max(SEGMENT_HEADER_LEN),
            buf: Vec::new(),
            consumed: 0,
            skipped_bytes: 0,
        }
    }

    /// Where the next record would start.
    pub fn position(&self) -> Position {
        Position {
            segment: self.segment,
            offset: self.buf_offset + self.consumed as u64,
        }
    }

    /// Bytes skipped so far because segments were deleted or damaged.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped_bytes
    }

    /// The next intact record and its position, or `None` when no complete record follows yet.
    pub fn next_record(&mut self) -> Result<Option<(Position, &[u8])>, WalError> {
        loop {
            match record::decode(&self.buf[self.consumed..]) {
                Frame::Record(_, used) => {
                    let position = self.position();
                    let start = self.consumed;
                    self.consumed += used;
                    let payload = &self.buf[start + record::HEADER_LEN..start + used];
                    return Ok(Some((position, payload)));
                }
                Frame::End | Frame::Damaged(_) => {
                    if self.fill()? == 0 && !self.advance()? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Reads more of the current segment into the buffer; returns the bytes read.
    fn fill(&mut self) -> Result<usize, WalError> {
        if self.file.is_none() {
            let path = segment::path(&self.dir, self.segment);
            match File::open(&path) {
                Ok(mut file) => {
                    let at = self.position().offset;
                    file.seek(SeekFrom::Start(at)).map_err(io("seek", &path))?;
                    self.file = Some(file);
                    self.buf.clear();
                    self.buf_offset = at;
                    self.consumed = 0;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(io("open", &path)(e)),
            }
        }
        self.buf.drain(..self.consumed);
        self.buf_offset += self.consumed as u64;
        self.consumed = 0;
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let path = segment::path(&self.dir, self.segment);
        let read = match self.file.as_mut() {
            Some(file) => file
                .read(&mut self.buf[start..])
                .map_err(io("read", &path))?,
            None => 0,
        };
        self.buf.truncate(start + read);
        Ok(read)
    }

    /// At the end of the current segment's data: moves to the next segment if the current one
    /// is finished (a later one exists) or missing. Returns whether it moved.
    fn advance(&mut self) -> Result<bool, WalError> {
        let segments = replay::list_segments(&self.dir)?;
        let Some(&next) = segments.iter().find(|&&s| s > self.segment) else {
            return Ok(false);
        };
        let current_exists = segments.contains(&self.segment);
        let left = (self.buf.len() - self.consumed) as u64;
        if left > 0 {
            tracing::warn!(
                segment = self.segment,
                bytes = left,
                "damaged wal tail skipped by a reader"
            );
        }
        self.skipped_bytes += left;
        if !current_exists || next != self.segment + 1 {
            tracing::warn!(
                from = self.segment,
                to = next,
                "wal segments missing for a reader"
            );
        }
        self.segment = next;
        self.file = None;
        self.buf.clear();
        self.consumed = 0;
        self.buf_offset = SEGMENT_HEADER_LEN;
        Ok(true)
    }
}

/// Bytes of WAL records from `from` to the end of the log (segment headers included).
pub fn bytes_after(dir: &Path, from: Position) -> Result<u64, WalError> {
    let mut total = 0u64;
    for seq in replay::list_segments(dir)? {
        if seq < from.segment {
            continue;
        }
        let path = segment::path(dir, seq);
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io("stat", &path)(e)),
        };
        total += if seq == from.segment {
            len.saturating_sub(from.offset)
        } else {
            len
        };
    }
    Ok(total)
}

/// The first position of the oldest segment present (where a new reader starts).
pub fn oldest(dir: &Path) -> Result<Position, WalError> {
    let first = replay::list_segments(dir)?.first().copied().unwrap_or(0);
    Ok(Position {
        segment: first,
        offset: SEGMENT_HEADER_LEN,
    })
}

/// Sequence numbers of the segments present, ascending.
pub fn segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    replay::list_segments(dir)
}
