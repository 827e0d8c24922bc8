//! Reads a file in large chunks that end on a line (or record) boundary, so each chunk can be
//! parsed on its own.
//!
//! A line protocol chunk ends just after a `\n`; a dataset chunk ends after a whole
//! length-delimited record. The last chunk holds whatever is left: a final line without `\n`, or
//! a record cut short by the end of the file (which the worker reports). A line or record longer
//! than the chunk size makes the chunk grow until it fits. A record length that cannot be right
//! (not a varint, or over [`MAX_RECORD_BYTES`]) stops the reading: no later record can be found.

use std::io::{self, Read};

use super::Format;

/// Largest dataset record accepted, in bytes.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;

/// A piece of the file.
#[derive(Debug)]
pub(super) struct Chunk {
    /// The bytes.
    pub(super) data: Vec<u8>,
    /// Byte offset of the first byte in the file.
    pub(super) offset: u64,
}

/// Why reading stopped.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The file could not be read.
    Io(io::Error),
    /// A dataset record's length prefix is invalid at this file offset.
    Framing { offset: u64, reason: String },
}

/// Splits a byte stream into chunks.
pub(super) struct ChunkReader<R> {
    source: R,
    format: Format,
    chunk_size: usize,
    /// Bytes read past the end of the previous chunk.
    carry: Vec<u8>,
    /// File offset of `carry`'s first byte.
    offset: u64,
    eof: bool,
    /// A framing error to report once the chunk before it was handed out.
    failed: Option<ReadError>,
    /// Buffers of chunks that were processed, to read the next chunks into.
    spare: Vec<Vec<u8>>,
}

/// Spent buffers kept for reuse; the chunks in flight bound how many come back.
const MAX_SPARE: usize = 8;

impl<R: Read> ChunkReader<R> {
    /// A reader of `format` data producing chunks of about `chunk_size` bytes.
    pub(super) fn new(source: R, format: Format, chunk_size: usize) -> Self {
        ChunkReader {
            source,
            format,
            chunk_size: chunk_size.max(1),
            carry: Vec::new(),
            offset: 0,
            eof: false,
            failed: None,
            spare: Vec::new(),
        }
    }

    /// Takes back the buffer of a processed chunk, to read a later chunk into: its memory is
    /// in place already, where a new buffer would take fresh pages from the system.
    pub(super) fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < MAX_SPARE {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// The next chunk, `None` at the end of the data.
    pub(super) fn next_chunk(&mut self) -> Result<Option<Chunk>, ReadError> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        let mut data = match self.spare.pop() {
            Some(mut buffer) => {
                buffer.extend_from_slice(&self.carry);
                self.carry.clear();
                buffer
            }
            None => std::mem::take(&mut self.carry),
        };
        let mut want = self.chunk_size.max(data.len() + 1);
        loop {
            if !self.eof && data.len() < want {
                data.reserve(want - data.len());
                let missing = (want - data.len()) as u64;
                let read = (&mut self.source)
                    .take(missing)
                    .read_to_end(&mut data)
                    .map_err(ReadError::Io)?;
                self.eof = (read as u64) < missing;
            }
            if data.is_empty() {
                return Ok(None);
            }
            let cut = match self.boundary(&data) {
                Ok(cut) => cut,
                Err((at, reason)) => {
                    self.failed = Some(ReadError::Framing {
                        offset: self.offset + at as u64,
                        reason,
                    });
                    self.eof = true;
                    at
                }
            };
            if cut == 0 && self.failed.is_none() && !self.eof {
                // One line or record is longer than a chunk: read more.
                want = want.saturating_mul(2);
                continue;
            }
            let cut = if self.eof && self.failed.is_none() {
                data.len()
            } else {
                cut
            };
            if cut == 0 {
                return self.failed.take().map_or(Ok(None), Err);
            }
            self.carry.clear();
            if self.failed.is_none() {
                self.carry.extend_from_slice(&data[cut..]);
            }
            data.truncate(cut);
            let offset = self.offset;
            self.offset += cut as u64;
            return Ok(Some(Chunk { data, offset }));
        }
    }

    /// Where the complete lines or records in `data` end (0 if none is complete); for a dataset,
    /// the offset and reason of an invalid length prefix.
    fn boundary(&self, data: &[u8]) -> Result<usize, (usize, String)> {
        match self.format {
            Format::LineProtocol => Ok(memchr::memrchr(b'\n', data).map_or(0, |i| i + 1)),
            Format::DatasetProto => record_boundary(data),
        }
    }
}

/// The end of the last complete length-delimited record in `data`.
fn record_boundary(data: &[u8]) -> Result<usize, (usize, String)> {
    let mut pos = 0;
    loop {
        match record_len(&data[pos..]) {
            Frame::Complete { header, len } => {
                match pos.checked_add(header).and_then(|p| p.checked_add(len)) {
                    Some(end) if end <= data.len() => pos = end,
                    _ => return Ok(pos),
                }
            }
            Frame::Incomplete => return Ok(pos),
            Frame::Invalid(reason) => return Err((pos, reason)),
        }
    }
}

/// A record's length prefix.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame {
    /// A valid prefix of `header` bytes announcing a record of `len` bytes.
    Complete { header: usize, len: usize },
    /// The data ends inside the prefix.
    Incomplete,
    /// Not a usable length.
    Invalid(String),
}

/// Reads the varint length prefix at the start of `data`.
pub(super) fn record_len(data: &[u8]) -> Frame {
    let mut value: u64 = 0;
    for (i, &byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if value > MAX_RECORD_BYTES {
                return Frame::Invalid(format!(
                    "record length {value} exceeds the limit of {MAX_RECORD_BYTES} bytes"
                ));
            }
            return Frame::Complete {
                header: i + 1,
                len: usize::try_from(value).unwrap_or(usize::MAX),
            };
        }
    }
    if data.len() >= 10 {
        Frame::Invalid("record length is not a valid varint".to_string())
    } else {
        Frame::Incomplete
    }
}
