//! Posting the dataset's line protocol to a peer's HTTP `/write`, as its own clients would: the
//! file cut at line boundaries into batches, a few requests in flight.
//!
//! A blocking reader thread cuts the file into batches and hands them over a bounded channel
//! (the bound keeps memory flat) to `in_flight` workers, each with its own keep-alive connection.
//! Every request must answer 204 No Content; the first failure stops the import.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use crate::dataset::Dataset;
use citytel_testkit::http::{HttpConn, StatusCode};

/// Size of the blocks the file is read in; also the largest batch.
const BLOCK_BYTES: usize = 16 << 20;
/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How the file is cut into requests.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// At most this many lines per request (`usize::MAX`: whole ~16 MB blocks).
    pub max_lines: usize,
    /// Requests in flight at once.
    pub in_flight: usize,
}

/// Posts the whole dataset to `path_and_query` on `addr` and returns when every request has been
/// answered.
pub async fn post_dataset(
    name: &str,
    addr: SocketAddr,
    path_and_query: &str,
    ds: &Dataset,
    batching: Batching,
) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Bytes>(batching.in_flight * 2);
    let path = ds.path.clone();
    let max_lines = batching.max_lines;
    let reader = tokio::task::spawn_blocking(move || read_batches(&path, max_lines, &tx));

    let rx = Arc::new(Mutex::new(rx));
    let sent = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..batching.in_flight {
        let rx = rx.clone();
        let sent = sent.clone();
        let pq = path_and_query.to_string();
        workers.spawn(async move {
            let mut conn = HttpConn::new(addr);
            loop {
                let batch = rx.lock().await.recv().await;
                let Some(batch) = batch else {
                    return Ok::<_, anyhow::Error>(());
                };
                let len = batch.len() as u64;
                conn.post(&pq, batch)
                    .await?
                    .expect(StatusCode::NO_CONTENT, "write")?;
                sent.fetch_add(len, Ordering::Relaxed);
            }
        });
    }

    let t0 = Instant::now();
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                None => break,
                Some(result) => result.context("write worker panicked")??,
            },
            _ = tick.tick() => {
                let done = sent.load(Ordering::Relaxed) as f64 / ds.bytes.max(1) as f64;
                let values = done * ds.values as f64;
                eprintln!(
                    "  importing into {name}... {:>3.0}%  {:.2} M values/s",
                    done * 100.0,
                    values / t0.elapsed().as_secs_f64() / 1e6
                );
            }
        }
    }
    reader.await.context("file reader panicked")??;
    let sent = sent.load(Ordering::Relaxed);
    if sent != ds.bytes {
        bail!(
            "posted {sent} bytes of {} ({} bytes)",
            ds.path.display(),
            ds.bytes
        );
    }
    Ok(())
}

/// Reads `path` in blocks and sends it as batches of whole lines, each at most `max_lines` lines
/// and one block long. Stops quietly when the receiver is gone (the import failed).
fn read_batches(path: &std::path::Path, max_lines: usize, tx: &mpsc::Sender<Bytes>) -> Result<()> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut block = Vec::with_capacity(BLOCK_BYTES);
        block.extend_from_slice(&carry);
        carry.clear();
        let want = BLOCK_BYTES.saturating_sub(block.len()).max(1);
        let n = (&mut file)
            .take(want as u64)
            .read_to_end(&mut block)
            .with_context(|| format!("reading {}", path.display()))?;
        let eof = n == 0;
        if block.is_empty() {
            return Ok(());
        }
        let cut = if eof {
            block.len()
        } else {
            match memchr::memrchr(b'\n', &block) {
                Some(nl) => nl + 1,
                None => bail!("{}: a line longer than {BLOCK_BYTES} bytes", path.display()),
            }
        };
        carry.extend_from_slice(&block[cut..]);
        block.truncate(cut);
        let block = Bytes::from(block);
        for batch in split_lines(&block, max_lines) {
            if tx.blocking_send(batch).is_err() {
                return Ok(());
            }
        }
        if eof {
            return Ok(());
        }
    }
}

/// Cuts `block` (whole lines) into batches of at most `max_lines` lines, without copying.
fn split_lines(block: &Bytes, max_lines: usize) -> Vec<Bytes> {
    let mut batches = Vec::new();
    let mut start = 0;
    while start < block.len() {
        let end = if max_lines == usize::MAX {
            block.len()
        } else {
            memchr::memchr_iter(b'\n', &block[start..])
                .nth(max_lines.saturating_sub(1))
                .map_or(block.len(), |i| start + i + 1)
        };
        batches.push(block.slice(start..end));
        start = end;
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_line_boundaries() {
        let block = Bytes::from_static(b"a 1\nb 2\nc 3\nd 4\ne 5");
        let batches = split_lines(&block, 2);
        assert_eq!(
            batches,
            vec![
                Bytes::from_static(b"a 1\nb 2\n"),
                Bytes::from_static(b"c 3\nd 4\n"),
                Bytes::from_static(b"e 5"),
            ]
        );
        assert_eq!(split_lines(&block, usize::MAX), vec![block.clone()]);
    }

    #[test]
    fn reads_every_byte_once() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x.lp");
        let text: String = (0..1000).map(|i| format!("m,t=x f={i} {i}\n")).collect();
        std::fs::write(&path, &text)?;
        let (tx, mut rx) = mpsc::channel(10_000);
        read_batches(&path, 7, &tx)?;
        drop(tx);
        let mut out = Vec::new();
        while let Ok(b) = rx.try_recv() {
            assert!(b.ends_with(b"\n"));
            out.extend_from_slice(&b);
        }
        assert_eq!(out, text.as_bytes());
        Ok(())
    }
}
