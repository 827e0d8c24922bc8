//! The arithmetic of `citytel-bench scale`: memory of a process from `/proc/PID/status`, bytes
//! per series and per device, the rate of a steady load, and growth factors between sizes.

use anyhow::{Context, Result};

/// Metrics every load device reports (one series each).
pub const METRICS_PER_DEVICE: u64 = 5;

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now, bytes.
    pub rss_bytes: u64,
    /// `VmHWM`: the most it has been resident since it started, bytes.
    pub peak_bytes: u64,
}

impl Memory {
    /// Reads the memory of process `pid`.
    pub fn of(pid: u32) -> Result<Memory> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        Memory::parse(&text).with_context(|| format!("{path} has no VmRSS or VmHWM"))
    }

    /// The `VmRSS` and `VmHWM` lines of a `/proc/PID/status` text (in kB, i.e. KiB).
    pub fn parse(status: &str) -> Option<Memory> {
        let kib = |key: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            let mut words = line[key.len()..].split_whitespace();
            let value = words.next()?.parse::<u64>().ok()?;
            (words.next()? == "kB").then_some(value * 1024)
        };
        Some(Memory {
            rss_bytes: kib("VmRSS:")?,
            peak_bytes: kib("VmHWM:")?,
        })
    }
}

/// Series of `devices` load devices.
pub fn series(devices: u64) -> u64 {
    devices * METRICS_PER_DEVICE
}

/// `bytes` shared out over `count` things; `None` for none.
pub fn bytes_per(bytes: u64, count: u64) -> Option<f64> {
    (count > 0).then(|| bytes as f64 / count as f64)
}

/// One reading per device per minute: `devices / 60` messages per second.
pub fn steady_rate(devices: u64) -> f64 {
    devices as f64 / 60.0
}

/// How much a figure grew from one size to the next (`next / previous`); `None` when either is
/// missing or the previous one is not positive.
pub fn growth(previous: Option<f64>, next: Option<f64>) -> Option<f64> {
    match (previous, next) {
        (Some(p), Some(n)) if p > 0.0 && p.is_finite() && n.is_finite() => Some(n / p),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tcitytel\nUmask:\t0022\nVmPeak:\t 9000000 kB\n\
                          VmHWM:\t  345600 kB\nVmRSS:\t  300000 kB\nThreads:\t12\n";

    #[test]
    fn memory_is_read_from_the_status_text() {
        assert_eq!(
            Memory::parse(STATUS),
            Some(Memory {
                rss_bytes: 300_000 * 1024,
                peak_bytes: 345_600 * 1024
            })
        );
        assert_eq!(Memory::parse("Name:\tgone\n"), None);
        assert_eq!(Memory::parse("VmRSS:\t12 MB\nVmHWM:\t12 kB\n"), None);
    }

    #[test]
    fn memory_of_this_process_is_plausible() -> Result<()> {
        let m = Memory::of(std::process::id())?;
        assert!(m.rss_bytes > 0);
        assert!(m.peak_bytes >= m.rss_bytes);
        Ok(())
    }

    #[test]
    fn bytes_are_shared_over_series_and_devices() {
        assert_eq!(series(100_000), 500_000);
        // 349 MB over 100,000 devices: 3,490 bytes per device, 698 per series.
        assert_eq!(bytes_per(349_000_000, 100_000), Some(3_490.0));
        assert_eq!(bytes_per(349_000_000, series(100_000)), Some(698.0));
        assert_eq!(bytes_per(1, 0), None);
    }

    #[test]
    fn the_steady_rate_is_one_message_per_device_per_minute() {
        assert_eq!(steady_rate(1_020_000), 17_000.0);
        assert_eq!(steady_rate(60), 1.0);
    }

    #[test]
    fn growth_factors_are_next_over_previous() {
        // The table: 349 MB at 100k, 5.9 GB at 1M.
        let g = growth(Some(349e6), Some(5.9e9)).unwrap();
        assert!((g - 16.905).abs() < 1e-3, "{g}");
        assert_eq!(growth(None, Some(1.0)), None);
        assert_eq!(growth(Some(0.0), Some(1.0)), None);
        assert_eq!(growth(Some(2.0), None), None);
    }
}
