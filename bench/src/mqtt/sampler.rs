//! Time series sampled while a load runs: a delivered/stored counter and the CPU time of the
//! processes under test, every [`EVERY`], stamped with the wall clock.
//!
//! The load generator reports its measured window in wall-clock time; [`Series::at`]
//! interpolates a sampled quantity linearly at the window's edges, so rates and CPU per reading
//! cover exactly the generator's window, not the sampler's ticks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::citytel::StoredReadings;

/// Sampling period.
pub const EVERY: Duration = Duration::from_millis(200);

/// What the counter of a series counts.
pub enum Counter {
    /// An in-process counter (the do-nothing subscriber's messages).
    Atomic(Arc<AtomicU64>),
    /// Readings citytel has stored, over gRPC.
    Citytel(StoredReadings),
}

/// One sample.
#[derive(Debug, Clone)]
pub struct Point {
    /// Wall clock, milliseconds since 1970.
    pub unix_ms: f64,
    /// The counter (`None` when it could not be read).
    pub counter: Option<f64>,
    /// CPU seconds (user + system) of each watched process, in the order given.
    pub cpu_s: Vec<Option<f64>>,
}

/// A running sampler.
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Series>,
}

/// The samples of a finished sampler.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// In time order.
    pub points: Vec<Point>,
}

impl Sampler {
    /// Starts sampling `counter` and the CPU time of `pids`.
    pub fn start(mut counter: Counter, pids: Vec<u32>) -> Sampler {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut series = Series::default();
            let mut ticker = tokio::time::interval(EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let last = tokio::select! {
                    _ = ticker.tick() => false,
                    _ = &mut stopped => true,
                };
                let before = unix_ms();
                let value = match &mut counter {
                    Counter::Atomic(n) => Some(n.load(Ordering::Relaxed) as f64),
                    Counter::Citytel(stored) => stored.get().await.ok().map(|n| n as f64),
                };
                // A gRPC answer reflects citytel somewhere during the call: stamp its middle.
                let at = (before + unix_ms()) / 2.0;
                series.points.push(Point {
                    unix_ms: at,
                    counter: value,
                    cpu_s: pids.iter().map(|&pid| cpu_seconds(pid)).collect(),
                });
                if last {
                    return series;
                }
            }
        });
        Sampler { stop, task }
    }

    /// Takes a last sample and returns the series.
    pub async fn finish(self) -> Series {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

impl Series {
    /// The counter at wall-clock time `unix_ms`, interpolated between its steps (see
    /// [`steps`]).
    pub fn counter_at(&self, unix_ms: f64) -> Option<f64> {
        let points: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter_map(|p| Some((p.unix_ms, p.counter?)))
            .collect();
        at(&steps(&points), unix_ms)
    }

    /// CPU seconds of the `i`th process at `unix_ms`, interpolated.
    pub fn cpu_at(&self, i: usize, unix_ms: f64) -> Option<f64> {
        let points: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter_map(|p| Some((p.unix_ms, (*p.cpu_s.get(i)?)?)))
            .collect();
        at(&points, unix_ms)
    }

    /// The first time the counter reached `target`, interpolated.
    pub fn time_of(&self, target: f64) -> Option<f64> {
        let points: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter_map(|p| Some((p.counter?, p.unix_ms)))
            .collect();
        inverse(&points, target)
    }
}

/// `y` at `x` on the polyline through `points` (sorted by `x`), clamped to its ends.
pub fn at(points: &[(f64, f64)], x: f64) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if x <= first.0 {
        return Some(first.1);
    }
    if x >= last.0 {
        return Some(last.1);
    }
    let i = points.partition_point(|p| p.0 <= x);
    let (a, b) = (points[i - 1], points[i]);
    if b.0 == a.0 {
        return Some(b.1);
    }
    Some(a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0))
}

/// The samples of a non-decreasing counter (`(time, counter)` in time order) at which it
/// took each of its values first, and its last sample.
///
/// citytel acknowledges and stores readings a write group at a time (up to 8192 messages once
/// its writer is saturated), so its counters rise in steps, and a counter read at two instants
/// differs by a whole number of groups: over a 10 s window, to within 819 readings/s. Drawn
/// through the first sample of each step instead, the counter rises evenly from one group to
/// the next, and its value at an instant between two groups counts the part of the next group
/// earned by then: a rate over the window no longer jumps by whole groups.
pub fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points.len());
    for &p in points {
        if out.last().is_none_or(|last| p.1 > last.1) {
            out.push(p);
        }
    }
    if let (Some(&last), Some(kept)) = (points.last(), out.last())
        && last.0 > kept.0
    {
        out.push(last);
    }
    out
}

/// The first `y` at which the non-decreasing counter (`(counter, y)` pairs in time order)
/// reaches `target`, interpolated; `None` if it never does.
pub fn inverse(points: &[(f64, f64)], target: f64) -> Option<f64> {
    let i = points.iter().position(|p| p.0 >= target)?;
    if i == 0 {
        return Some(points[0].1);
    }
    let (a, b) = (points[i - 1], points[i]);
    if b.0 == a.0 {
        return Some(b.1);
    }
    Some(a.1 + (b.1 - a.1) * (target - a.0) / (b.0 - a.0))
}

/// Now, in milliseconds since 1970.
pub fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// User + system CPU seconds of process `pid` (all its threads), if it runs.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Clock ticks per second of /proc's CPU times.
fn clock_ticks() -> f64 {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(n)) if n > 0 => n as f64,
        _ => 100.0,
    }
}

/// Peak resident set size (`VmHWM`) of process `pid` in bytes, if it runs.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_and_clamps_outside() {
        let p = [(0.0, 0.0), (10.0, 100.0), (20.0, 100.0)];
        assert_eq!(at(&p, -5.0), Some(0.0));
        assert_eq!(at(&p, 2.5), Some(25.0));
        assert_eq!(at(&p, 10.0), Some(100.0));
        assert_eq!(at(&p, 15.0), Some(100.0));
        assert_eq!(at(&p, 99.0), Some(100.0));
        assert_eq!(at(&[], 1.0), None);
    }

    #[test]
    fn a_rate_between_steps_does_not_jump_by_whole_groups() {
        // Groups of 8192 every 240 ms (34133/s), sampled every 100 ms.
        let cumulative = |t: f64| (t / 240.0).floor() * 8192.0;
        let samples: Vec<(f64, f64)> = (0..=140)
            .map(|i| {
                let t = f64::from(i) * 100.0;
                (t, cumulative(t))
            })
            .collect();
        let stepped = steps(&samples);
        assert!(stepped.windows(2).all(|w| w[1].1 > w[0].1), "{stepped:?}");
        assert_eq!(stepped.last(), samples.last(), "the last sample stays");
        let true_rate = 8192.0 / 0.24;
        let mut raw_rates = Vec::new();
        for start in [1000.0, 1030.0, 1110.0, 1260.0, 1390.0, 2345.0] {
            let end = start + 10_000.0;
            raw_rates.push((cumulative(end) - cumulative(start)) / 10.0);
            let rate = (at(&stepped, end).unwrap() - at(&stepped, start).unwrap()) / 10.0;
            assert!(
                (rate - true_rate).abs() < true_rate * 0.005,
                "{start}: {rate}"
            );
        }
        // Read at the two instants, the count moves by whole groups: 41 or 42 in 10 s.
        assert!(
            raw_rates.contains(&33587.2) && raw_rates.contains(&34406.4),
            "{raw_rates:?}"
        );
        // Flat ends stay flat; an idle counter keeps its value.
        let idle = steps(&[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]);
        assert_eq!(idle, [(0.0, 5.0), (2.0, 5.0)]);
        assert_eq!(at(&idle, 1.5), Some(5.0));
        assert!(steps(&[]).is_empty());
    }

    #[test]
    fn finds_when_a_counter_reached_a_value() {
        let p = [
            (0.0, 1000.0),
            (50.0, 1010.0),
            (50.0, 1020.0),
            (150.0, 1030.0),
        ];
        assert_eq!(inverse(&p, 0.0), Some(1000.0));
        assert_eq!(inverse(&p, 25.0), Some(1005.0));
        assert_eq!(inverse(&p, 100.0), Some(1025.0));
        assert_eq!(inverse(&p, 151.0), None);
    }

    #[test]
    fn reads_its_own_cpu_time_and_peak_rss() {
        let pid = std::process::id();
        let start = cpu_seconds(pid).expect("this process's CPU time");
        // The kernel counts CPU time in clock ticks: spin until at least one more has passed.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        let mut now = start;
        while now <= start && std::time::Instant::now() < deadline {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            now = cpu_seconds(pid).expect("this process's CPU time");
        }
        assert!(now > start, "CPU time stayed at {start} s while spinning");
        assert!(peak_rss_bytes(pid).is_some_and(|b| b > 1 << 20));
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
