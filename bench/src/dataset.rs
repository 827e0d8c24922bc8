//! The reference dataset: making sure the file exists, and what is in it.
//!
//! The file is InfluxDB line protocol written by `firmware-sim dataset` (1,000 devices x 5 metrics
//! every 10 s for 24 h). When it is missing, [`ensure`] generates it with the `firmware-sim` binary
//! next to this executable, starting at the UTC midnight two days ago, so the whole day is in the
//! past and within citytel's retention.
//!
//! [`Dataset::scan`] reads the file once and hands on what every system is checked against: the
//! number of lines and values, the query window (from the smallest to the largest timestamp in the
//! file, so nothing depends on the file name or the options it was made with), the number of
//! series and devices, and the expected answer sizes of the three queries. Reading it also leaves
//! it in the page cache, so every system's import reads from memory.
//!
//! The scanner expects what `firmware-sim` writes: numeric fields only and no escaped spaces;
//! a line it cannot read is an error, never skipped.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure as check};
use serde::Serialize;

use crate::process;

/// The device of query (a).
pub const QUERY_DEVICE: &str = "cab-0001";
/// The measurement (device kind) of queries (a) and (b).
pub const QUERY_MEASUREMENT: &str = "cabinet";
/// The metric of queries (a) and (b).
pub const QUERY_METRIC: &str = "temperature_c";
/// Bucket width of query (b).
pub const QUERY_STEP: Duration = Duration::from_secs(300);
/// Seed passed to `firmware-sim dataset`.
const SEED: u64 = 42;

/// What the reference file holds, as the systems' answers are checked against it.
#[derive(Debug, Clone, Serialize)]
pub struct Dataset {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Line protocol lines (points).
    pub lines: u64,
    /// Field values over all lines: what "values" means in every rate and ratio.
    pub values: u64,
    /// Distinct (measurement, tag set, field) series.
    pub series: u64,
    /// Distinct (measurement, tag set) combinations: one per device.
    pub devices: u64,
    /// Smallest timestamp, ns since the epoch.
    pub first_timestamp_ns: i64,
    /// Largest timestamp, ns since the epoch.
    pub last_timestamp_ns: i64,
    /// `first_timestamp_ns` as RFC 3339.
    pub start: String,
    /// `last_timestamp_ns` as RFC 3339.
    pub end: String,
    /// Points query (a) must return: `QUERY_METRIC` of `QUERY_DEVICE` in the window.
    pub expected_a_points: u64,
    /// Buckets query (b) must return: `QUERY_STEP` buckets with a `QUERY_METRIC` point of any
    /// `QUERY_MEASUREMENT` device.
    pub expected_b_buckets: u64,
}

impl Dataset {
    /// Start of the query window, ms since the epoch (inclusive).
    pub fn start_ms(&self) -> i64 {
        self.first_timestamp_ns.div_euclid(1_000_000)
    }

    /// End of the query window, ms since the epoch, exclusive: just after the last timestamp.
    pub fn end_ms_exclusive(&self) -> i64 {
        self.last_timestamp_ns.div_euclid(1_000_000) + 1
    }

    /// Last timestamp, ms since the epoch (inclusive end of the window).
    pub fn last_ms(&self) -> i64 {
        self.last_timestamp_ns.div_euclid(1_000_000)
    }

    /// Reads the whole file and counts what is in it.
    pub fn scan(path: &Path) -> Result<Dataset> {
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let bytes = file.metadata()?.len();
        let mut scan = Scan::default();
        let mut buf = vec![0u8; 16 << 20];
        let mut filled = 0;
        let mut line_no = 0u64;
        loop {
            let n = file
                .read(&mut buf[filled..])
                .with_context(|| format!("reading {}", path.display()))?;
            filled += n;
            let eof = n == 0;
            let mut pos = 0;
            while let Some(nl) = memchr::memchr(b'\n', &buf[pos..filled]) {
                line_no += 1;
                scan.line(&buf[pos..pos + nl])
                    .with_context(|| format!("{}:{line_no}", path.display()))?;
                pos += nl + 1;
            }
            if eof {
                if pos < filled {
                    line_no += 1;
                    scan.line(&buf[pos..filled])
                        .with_context(|| format!("{}:{line_no}", path.display()))?;
                }
                break;
            }
            buf.copy_within(pos..filled, 0);
            filled -= pos;
            if filled == buf.len() {
                bail!(
                    "{}:{}: line longer than 16 MiB",
                    path.display(),
                    line_no + 1
                );
            }
        }
        scan.finish(path.to_path_buf(), bytes)
    }
}

/// Counters of one pass over the file.
#[derive(Default)]
struct Scan {
    lines: u64,
    values: u64,
    first: Option<i64>,
    last: Option<i64>,
    /// Per series key (measurement and tags): the field keys of its last line, and every field
    /// key it ever had.
    keys: HashMap<Vec<u8>, SeriesKeys>,
    expected_a: u64,
    b_buckets: BTreeSet<i64>,
}

#[derive(Default)]
struct SeriesKeys {
    last_line: Vec<u8>,
    all: HashSet<Vec<u8>>,
}

impl Scan {
    fn line(&mut self, line: &[u8]) -> Result<()> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line[0] == b'#' {
            return Ok(());
        }
        let key_end = unescaped_space(line, 0).context("no field set")?;
        let fields_end = unescaped_space(line, key_end + 1).context("no timestamp")?;
        let key = &line[..key_end];
        let fields = &line[key_end + 1..fields_end];
        check!(!fields.contains(&b'"'), "string fields are not supported");
        let ts: i64 = std::str::from_utf8(&line[fields_end + 1..])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .context("bad timestamp")?;

        self.lines += 1;
        let count = memchr::memchr_iter(b',', fields).count() as u64 + 1;
        self.values += count;
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));

        if !self.keys.contains_key(key) {
            self.keys.insert(key.to_vec(), SeriesKeys::default());
        }
        let entry = self.keys.get_mut(key).context("series key just inserted")?;
        if !same_field_keys(&entry.last_line, fields) {
            entry.last_line.clear();
            for field in fields.split(|&b| b == b',') {
                let name = field
                    .split(|&b| b == b'=')
                    .next()
                    .context("field without a name")?;
                entry.all.insert(name.to_vec());
                if !entry.last_line.is_empty() {
                    entry.last_line.push(b',');
                }
                entry.last_line.extend_from_slice(name);
            }
        }

        let measurement = key.split(|&b| b == b',').next().unwrap_or_default();
        if measurement == QUERY_MEASUREMENT.as_bytes() && has_field(fields, QUERY_METRIC) {
            let step_ns = QUERY_STEP.as_nanos() as i64;
            self.b_buckets.insert(ts.div_euclid(step_ns));
            if has_tag(key, "device_id", QUERY_DEVICE) {
                self.expected_a += 1;
            }
        }
        Ok(())
    }

    fn finish(self, path: PathBuf, bytes: u64) -> Result<Dataset> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            bail!("{} holds no line protocol", path.display());
        };
        let series = self.keys.values().map(|k| k.all.len() as u64).sum();
        Ok(Dataset {
            path,
            bytes,
            lines: self.lines,
            values: self.values,
            series,
            devices: self.keys.len() as u64,
            first_timestamp_ns: first,
            last_timestamp_ns: last,
            start: rfc3339_ns(first),
            end: rfc3339_ns(last),
            expected_a_points: self.expected_a,
            expected_b_buckets: self.b_buckets.len() as u64,
        })
    }
}

/// Position of the first space at or after `from` that is not escaped with a backslash.
fn unescaped_space(line: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let i = at + memchr::memchr(b' ', &line[at..])?;
        if i == 0 || line[i - 1] != b'\\' {
            return Some(i);
        }
        at = i + 1;
    }
}

/// Whether `fields` (`k=v,k=v`) has exactly the keys `keys` (`k,k`), in that order.
fn same_field_keys(keys: &[u8], fields: &[u8]) -> bool {
    let mut keys = keys.split(|&b| b == b',');
    for field in fields.split(|&b| b == b',') {
        let name = field.split(|&b| b == b'=').next().unwrap_or_default();
        if keys.next() != Some(name) {
            return false;
        }
    }
    keys.next().is_none()
}

fn has_field(fields: &[u8], name: &str) -> bool {
    fields
        .split(|&b| b == b',')
        .any(|f| f.split(|&b| b == b'=').next() == Some(name.as_bytes()))
}

fn has_tag(key: &[u8], tag: &str, value: &str) -> bool {
    key.split(|&b| b == b',').skip(1).any(|kv| {
        let mut it = kv.splitn(2, |&b| b == b'=');
        it.next() == Some(tag.as_bytes()) && it.next() == Some(value.as_bytes())
    })
}

/// `ns` since the epoch as RFC 3339 (UTC).
pub fn rfc3339_ns(ns: i64) -> String {
    let t = if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    };
    humantime::format_rfc3339(t).to_string()
}

/// The UTC midnight two days before `now`, as RFC 3339.
fn midnight_two_days_ago(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let day = secs / 86_400;
    let start = UNIX_EPOCH + Duration::from_secs(day.saturating_sub(2) * 86_400);
    humantime::format_rfc3339_seconds(start).to_string()
}

/// Makes sure the dataset file exists, generating it with `firmware-sim` when it does not.
pub fn ensure(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let sim = process::sibling_binary("firmware-sim")?;
    let start = midnight_two_days_ago(SystemTime::now());
    eprintln!(
        "{} does not exist: generating it with firmware-sim (seed {SEED}, start {start})...",
        path.display()
    );
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let t0 = Instant::now();
    let status = Command::new(&sim)
        .arg("dataset")
        .arg("--out")
        .arg(path)
        .args([
            "--format",
            "lp",
            "--seed",
            &SEED.to_string(),
            "--start",
            &start,
        ])
        .status()
        .with_context(|| format!("running {}", sim.display()))?;
    check!(
        status.success(),
        "{} dataset failed: {status}",
        sim.display()
    );
    check!(
        path.exists(),
        "{} dataset exited successfully but {} does not exist",
        sim.display(),
        path.display()
    );
    eprintln!(
        "generated {} in {:.1} s",
        path.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_counts_and_window() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("d.lp");
        std::fs::write(
            &path,
            "cabinet,device_id=cab-0001,kind=cabinet temperature_c=1,power_w=2 600000000000\n\
             cabinet,device_id=cab-0002,kind=cabinet temperature_c=1,power_w=2 600000000000\n\
             sensor,device_id=sen-0001,kind=sensor pm25_ugm3=3 610000000000\n\
             cabinet,device_id=cab-0001,kind=cabinet temperature_c=1,power_w=2,door_open=0 900000000000",
        )?;
        let d = Dataset::scan(&path)?;
        assert_eq!(d.lines, 4);
        assert_eq!(d.values, 2 + 2 + 1 + 3);
        assert_eq!(d.series, 3 + 2 + 1);
        assert_eq!(d.devices, 3);
        assert_eq!(d.first_timestamp_ns, 600_000_000_000);
        assert_eq!(d.last_timestamp_ns, 900_000_000_000);
        assert_eq!(d.expected_a_points, 2);
        assert_eq!(d.expected_b_buckets, 2);
        assert_eq!(d.start_ms(), 600_000);
        assert_eq!(d.end_ms_exclusive(), 900_001);
        Ok(())
    }

    #[test]
    fn start_is_midnight_two_days_ago() {
        let now = UNIX_EPOCH + Duration::from_secs(86_400 * 10 + 3_600 * 17);
        assert_eq!(midnight_two_days_ago(now), "1970-01-09T00:00:00Z");
    }
}
