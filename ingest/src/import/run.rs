//! The import driver: reads chunks on the calling thread, parses and maps them on worker threads,
//! and hands the results to the sink in file order.
//!
//! Chunk `n` goes to worker `n % threads` and comes back on that worker's result channel, so
//! reading results round-robin restores file order without a reorder buffer. At most two chunks
//! per worker are in flight, which bounds memory to about `2 * threads * chunk_size` plus their
//! batches. Line numbers in results are relative to their chunk; the driver adds the count of
//! lines before the chunk, which it knows exactly because it merges results in order.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use super::reader::{Chunk, ChunkReader, ReadError};
use super::worker::{Outcome, process};
use super::{BatchPoint, ImportError, ImportOptions, ImportSink, ImportSummary, ProgressUpdate};

/// Chunks in flight per worker.
const IN_FLIGHT_PER_WORKER: usize = 2;

/// Imports the file at `path` into `sink`, calling `progress` after every chunk.
///
/// Returns the summary, or the first error: the file cannot be read, a dataset record's length
/// is corrupt, the sink fails, or (with `options.strict`) a line is bad. Batches of the lines
/// before such an error have been handed to the sink.
pub fn import_file(
    path: &Path,
    options: &ImportOptions,
    sink: &mut impl ImportSink,
    progress: &dyn Fn(ProgressUpdate),
) -> Result<ImportSummary, ImportError> {
    options.validate()?;
    let started = Instant::now();
    let io_error = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let bytes_total = file.metadata().map_err(io_error)?.len();
    let mut reader = ChunkReader::new(file, options.format, options.chunk_size);
    let mut merger = Merger {
        path,
        options,
        sink,
        progress,
        bytes_total,
        summary: ImportSummary::new(options.format),
    };

    let stopped = if options.threads <= 1 {
        sequential(&mut reader, &mut merger)
    } else {
        parallel(&mut reader, &mut merger)
    };
    if let Some(error) = stopped? {
        return Err(match error {
            ReadError::Io(source) => io_error(source),
            ReadError::Framing { offset, reason } => ImportError::Corrupt {
                path: path.to_path_buf(),
                record: merger.summary.lines + 1,
                offset,
                reason,
            },
        });
    }
    let mut summary = merger.summary;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Everything on the calling thread; returns the read error that ended the file early, if any.
fn sequential(
    reader: &mut ChunkReader<File>,
    merger: &mut Merger<'_, impl ImportSink>,
) -> Result<Option<ReadError>, ImportError> {
    // The vector of the last merged batch, for the next chunk to fill.
    let mut points = Vec::new();
    loop {
        match reader.next_chunk() {
            Ok(Some(chunk)) => {
                let outcome = process(&chunk, merger.options, std::mem::take(&mut points));
                points = merger.merge(outcome)?;
                reader.recycle(chunk.data);
            }
            Ok(None) => return Ok(None),
            Err(error) => return Ok(Some(error)),
        }
    }
}

/// Reads and merges on the calling thread, processes on `options.threads` workers.
fn parallel(
    reader: &mut ChunkReader<File>,
    merger: &mut Merger<'_, impl ImportSink>,
) -> Result<Option<ReadError>, ImportError> {
    let options = merger.options;
    let threads = options.threads;
    thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(threads);
        let mut from_workers = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for _ in 0..threads {
            // A chunk goes out with a spent batch's vector to fill; its outcome comes back with
            // the chunk's buffer, for the reader to reuse.
            let (chunk_tx, chunk_rx) = mpsc::channel::<(Chunk, Vec<BatchPoint>)>();
            let (outcome_tx, outcome_rx) = mpsc::channel::<(Outcome, Vec<u8>)>();
            handles.push(scope.spawn(move || {
                for (chunk, points) in chunk_rx {
                    let outcome = process(&chunk, options, points);
                    if outcome_tx.send((outcome, chunk.data)).is_err() {
                        break;
                    }
                }
            }));
            to_workers.push(chunk_tx);
            from_workers.push(outcome_rx);
        }

        let result = (|| {
            let (mut sent, mut merged) = (0usize, 0usize);
            let mut read_error = None;
            let mut exhausted = false;
            let mut spare_points: Vec<Vec<BatchPoint>> = Vec::new();
            loop {
                while !exhausted && sent - merged < IN_FLIGHT_PER_WORKER * threads {
                    match reader.next_chunk() {
                        Ok(Some(chunk)) => {
                            let points = spare_points.pop().unwrap_or_default();
                            if to_workers[sent % threads].send((chunk, points)).is_err() {
                                return Err(ImportError::WorkerPanicked);
                            }
                            sent += 1;
                        }
                        Ok(None) => exhausted = true,
                        Err(error) => {
                            read_error = Some(error);
                            exhausted = true;
                        }
                    }
                }
                if merged == sent {
                    return Ok(read_error);
                }
                let (outcome, buffer) = from_workers[merged % threads]
                    .recv()
                    .map_err(|_| ImportError::WorkerPanicked)?;
                merged += 1;
                reader.recycle(buffer);
                spare_points.push(merger.merge(outcome)?);
            }
        })();

        // Closing the chunk channels ends the workers, also after an early error.
        drop(to_workers);
        drop(from_workers);
        let panicked = handles.into_iter().any(|h| h.join().is_err());
        match result {
            Ok(_) if panicked => Err(ImportError::WorkerPanicked),
            other => other,
        }
    })
}

/// Merges outcomes in file order: sink, summary, progress.
struct Merger<'a, S> {
    path: &'a Path,
    options: &'a ImportOptions,
    sink: &'a mut S,
    progress: &'a dyn Fn(ProgressUpdate),
    bytes_total: u64,
    summary: ImportSummary,
}

impl<S: ImportSink> Merger<'_, S> {
    /// Hands the outcome's batch to the sink and counts it; returns the batch's point vector
    /// for a later chunk to fill.
    fn merge(&mut self, outcome: Outcome) -> Result<Vec<BatchPoint>, ImportError> {
        let first_line = self.summary.lines + 1;
        if !outcome.batch.points.is_empty() {
            self.sink.write(&outcome.batch)?;
        }
        if let Some(bad) = outcome.strict_error {
            return Err(ImportError::BadLine {
                path: self.path.to_path_buf(),
                line: first_line - 1 + bad.line,
                reason: bad.reason,
                text: bad.text,
            });
        }
        self.summary
            .merge(outcome.tally, first_line, self.options.max_error_samples);
        (self.progress)(ProgressUpdate {
            bytes_done: self.summary.bytes,
            bytes_total: self.bytes_total,
            lines: self.summary.lines,
            points: self.summary.points,
        });
        Ok(outcome.batch.points)
    }
}
