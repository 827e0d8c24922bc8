//! Where an export's bytes go: a [`Write`] that cuts them into chunks of [`CHUNK_BYTES`] and
//! hands each to the response stream over a bounded channel. The encoder runs on a blocking
//! thread of the read pool; when the client reads slower than the file is made, the channel is
//! full and the encoder waits (the bound is the backpressure), at most until the request's
//! deadline. So an export holds at most [`CHUNKS_IN_FLIGHT`] chunks plus the encoder's own
//! buffers in memory, whatever its size.

use std::io::{self, Write};

use citytel_proto::v1;
use tokio::sync::mpsc;
use tonic::Status;

use crate::api::reads::Deadline;

/// Bytes per chunk of the response stream (the last one may be shorter).
pub(crate) const CHUNK_BYTES: usize = 256 << 10;
/// Chunks made but not yet sent to the client.
pub(crate) const CHUNKS_IN_FLIGHT: usize = 4;

/// What the response stream carries.
pub(crate) type Chunk = Result<v1::ExportChunk, Status>;

/// The bytes of an export, on their way to the client.
pub(crate) struct ChunkSink {
    buf: Vec<u8>,
    tx: mpsc::Sender<Chunk>,
    deadline: Deadline,
    runtime: tokio::runtime::Handle,
}

impl ChunkSink {
    /// A sink sending to `tx` until `deadline`; to be written from a blocking thread of the
    /// runtime that reads `tx`'s receiver.
    pub(crate) fn new(tx: mpsc::Sender<Chunk>, deadline: Deadline) -> Self {
        ChunkSink {
            buf: Vec::with_capacity(CHUNK_BYTES),
            tx,
            deadline,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Sends what is buffered, waiting for room in the channel until the deadline.
    fn send(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        let sent = self.tx.send(Ok(v1::ExportChunk { data }));
        match self
            .runtime
            .block_on(tokio::time::timeout_at(self.deadline.instant(), sent))
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client stopped reading the export",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the export ran past its deadline",
            )),
        }
    }

    /// Sends the last, partial chunk.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

impl Write for ChunkSink {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let take = (CHUNK_BYTES - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_BYTES {
                self.send()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks go out when full and at the end; a flush in between would only make more of them.
        Ok(())
    }
}
