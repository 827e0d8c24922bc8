//! Measuring: medians of repeated runs, and the on-disk size of a data directory.
//!
//! Every query is run once as a warm-up that is not counted, then `runs` times; the figure
//! reported is the median (the machine is shared and noisy, so means would mostly measure the
//! neighbours). Disk size is what the regular files under the data directory store, walked
//! in-process (see [`DiskUsage`]).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// The timings of one query: every counted run, and their median.
#[derive(Debug, Clone)]
pub struct Timings {
    /// Each counted run, in ms, in the order they ran.
    pub runs_ms: Vec<f64>,
    /// The median of `runs_ms`.
    pub median_ms: f64,
}

/// The median of `values` (the mean of the two middle ones for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Runs `query` once as a warm-up, then `runs` times, and returns the timings. `query` returns the
/// duration of its own round trip (checking the answer is not timed) and fails on an implausible
/// answer, so a broken query cannot look fast.
pub async fn repeat(
    runs: usize,
    mut query: impl AsyncFnMut() -> Result<Duration>,
) -> Result<Timings> {
    query().await.context("warm-up run")?;
    let mut runs_ms = Vec::with_capacity(runs);
    for i in 0..runs {
        let elapsed = query().await.with_context(|| format!("run {}", i + 1))?;
        runs_ms.push(elapsed.as_secs_f64() * 1e3);
    }
    Ok(Timings {
        median_ms: median(&runs_ms),
        runs_ms,
    })
}

/// What the files under a directory take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskUsage {
    /// Bytes stored: per file the smaller of its length and its allocated blocks, so the holes
    /// of sparse, preallocated files (journals, mmapped segments) do not count and neither does
    /// the rounding of small files up to whole blocks. This is "bytes on disk" in the results.
    pub stored: u64,
    /// Sum of the file lengths (what `ls -l` shows), for reference.
    pub apparent: u64,
}

/// What the regular files under `dir` take (symbolic links are not followed).
pub fn dir_bytes(dir: &Path) -> Result<DiskUsage> {
    use std::os::unix::fs::MetadataExt;
    let mut usage = DiskUsage::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            // A directory a compaction just removed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d != dir => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", d.display())),
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                usage.apparent += meta.len();
                usage.stored += meta.len().min(meta.blocks() * 512);
            }
        }
    }
    Ok(usage)
}

/// Polls the size of `dir` every second until it has not changed for `stable_for`, or `limit`
/// has passed (then the current size is returned with a warning). `busy` is checked on every
/// poll; while it says the system is still working (e.g. temporary compaction files exist), the
/// size does not count as stable.
pub async fn wait_dir_stable(
    name: &str,
    dir: &Path,
    stable_for: Duration,
    limit: Duration,
    busy: impl Fn(&Path) -> bool,
) -> Result<DiskUsage> {
    let t0 = Instant::now();
    let mut last = dir_bytes(dir)?;
    let mut since = Instant::now();
    let mut reported = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let size = dir_bytes(dir)?;
        if size != last || busy(dir) {
            last = size;
            since = Instant::now();
        } else if since.elapsed() >= stable_for {
            return Ok(size);
        }
        if t0.elapsed() >= limit {
            eprintln!(
                "warning: {name}'s data dir still changes after {:.0} s; taking its size now",
                limit.as_secs_f64()
            );
            return Ok(size);
        }
        if reported.elapsed() >= Duration::from_secs(10) {
            reported = Instant::now();
            eprintln!(
                "  waiting for {name}'s data dir to settle... {:.1} MB after {:.0} s",
                size.stored as f64 / 1e6,
                t0.elapsed().as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn sums_nested_files() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("a/b"))?;
        std::fs::write(dir.path().join("x"), [1u8; 10])?;
        std::fs::write(dir.path().join("a/b/y"), [1u8; 32])?;
        let sparse = std::fs::File::create(dir.path().join("a/sparse"))?;
        sparse.set_len(1 << 20)?;
        let usage = dir_bytes(dir.path())?;
        assert_eq!(usage.stored, 42);
        assert_eq!(usage.apparent, 42 + (1 << 20));
        Ok(())
    }

    #[tokio::test]
    async fn repeats_after_a_warm_up() -> Result<()> {
        let mut calls = 0;
        let t = repeat(3, async || {
            calls += 1;
            Ok(Duration::from_millis(calls))
        })
        .await?;
        assert_eq!(calls, 4);
        assert_eq!(t.runs_ms, vec![2.0, 3.0, 4.0]);
        assert_eq!(t.median_ms, 3.0);
        Ok(())
    }
}
