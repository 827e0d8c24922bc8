//! Which devices a dataset has, when each one is down, and the boot id of each of its boots.
//!
//! Devices follow the fleet's conventions: `cab-0001`..., `cell-0001`..., `sen-0001`..., numbered
//! cabinets first, then small cells, then sensors, and dealt round-robin to `site-01`,
//! `site-02`... in that order, so a device has the same id and site as in a live fleet of the same
//! size.
//!
//! # The outage plan
//!
//! - Exactly `round(outage_fraction * devices)` devices have outages, chosen by a seeded shuffle.
//! - Each of them gets 1 to 3 outages (uniform). An outage lasts a log-uniform time between
//!   5 minutes and 6 hours (at most a quarter of the span, for short datasets), in whole seconds,
//!   so short outages are common and long ones rare, as in the field.
//! - An outage starts at a uniform whole second of the span, and lies entirely inside it: the
//!   device reports at the start and again after its last outage. Two outages of a device are at
//!   least two intervals apart (so the device reports in between); an outage that cannot be placed
//!   after 64 tries is dropped.
//! - The plan depends only on the seed, the device ids and the span's length, not on its start.
//!
//! During an outage a device takes no readings. When it ends the device boots again: a new boot
//! id and sequence numbers from 1. Boot ids use the live simulator's formula with the boot time as
//! the boot epoch, so every boot of a device has a different, non-zero id.

use std::ops::Range;

use citytel_proto::kind::Kind;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::DatasetConfig;
use crate::profile;
use crate::seed::{Purpose, device_rng};

/// Shortest outage, in milliseconds.
pub(super) const MIN_OUTAGE_MS: i64 = 5 * 60_000;
/// Longest outage, in milliseconds.
pub(super) const MAX_OUTAGE_MS: i64 = 6 * 3_600_000;
/// Most outages of one device.
pub(super) const MAX_OUTAGES: u32 = 3;
/// Attempts to place one outage clear of the device's others.
const PLACEMENT_TRIES: u32 = 64;

/// One device of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetDevice {
    /// The device id, e.g. `cab-0001`.
    pub device_id: String,
    /// The device kind.
    pub kind: Kind,
    /// The site, e.g. `site-01`.
    pub site: String,
    /// When the device is down, sorted and disjoint.
    pub outages: Vec<Outage>,
}

/// A span of time in which a device takes no readings; it reboots at `end_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Outage {
    /// First millisecond of the outage (Unix time).
    pub start_ms: i64,
    /// First millisecond after it: the device boots again at this time.
    pub end_ms: i64,
}

impl Outage {
    /// Whether the device is down at `time_ms`.
    pub fn contains(&self, time_ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&time_ms)
    }
}

/// The devices of the dataset described by `config`, with their outages, in fleet order.
pub fn plan(config: &DatasetConfig) -> Vec<DatasetDevice> {
    let counts = [
        (Kind::Cabinet, config.cabinets),
        (Kind::SmallCell, config.small_cells),
        (Kind::Sensor, config.sensors),
    ];
    let sites = usize::try_from(config.sites.max(1)).unwrap_or(usize::MAX);
    let mut devices = Vec::with_capacity(usize::try_from(config.devices()).unwrap_or(0));
    for (kind, count) in counts {
        for number in 1..=count {
            devices.push(DatasetDevice {
                device_id: format!("{}-{number:04}", profile::id_prefix(kind)),
                kind,
                site: format!("site-{:02}", devices.len() % sites + 1),
                outages: Vec::new(),
            });
        }
    }
    for index in devices_with_outages(config, devices.len()) {
        let device = &mut devices[index];
        device.outages = outages(config, &device.device_id);
    }
    devices
}

/// The boot id of a boot of `device_id` at `boot_ms`, in a dataset seeded with `seed`: the live
/// simulator's formula (a draw from the device's identity stream, mixed with the boot epoch) with
/// the boot time as the epoch. Never zero; distinct boot times give distinct ids.
pub fn boot_id(seed: u64, device_id: &str, boot_ms: i64) -> u64 {
    let mut rng = device_rng(seed, device_id, Purpose::Identity);
    loop {
        // The cast keeps every bit: the epoch is only mixed in.
        #[allow(clippy::cast_sign_loss)]
        let id = mix(rng.random::<u64>() ^ boot_ms as u64);
        if id != 0 {
            return id;
        }
    }
}

/// Indices of the devices that get outages: `round(fraction * count)` of them, by a seeded
/// shuffle, in increasing order.
fn devices_with_outages(config: &DatasetConfig, count: usize) -> Vec<usize> {
    let wanted = (config.outage_fraction * count as f64).round() as usize;
    let mut rng = stream(config.seed, "dataset/outage-devices");
    let mut chosen = index::sample(&mut rng, count, wanted.min(count)).into_vec();
    chosen.sort_unstable();
    chosen
}

/// The outages of `device_id`: sorted, disjoint, inside the span, at least two intervals apart.
fn outages(config: &DatasetConfig, device_id: &str) -> Vec<Outage> {
    let span_ms = config.duration_ms();
    let gap_ms = 2 * config.interval_ms();
    let longest = MAX_OUTAGE_MS.min(span_ms / 4);
    let shortest = MIN_OUTAGE_MS.min(longest);
    let mut rng = stream(config.seed, &format!("dataset/outages/{device_id}"));
    let count = rng.random_range(1..=MAX_OUTAGES);
    let mut placed: Vec<Range<i64>> = Vec::new();
    for _ in 0..count {
        let length = log_uniform_seconds(&mut rng, shortest, longest);
        // Whole seconds that leave the first and the last interval of the span up.
        let first_start_s = (gap_ms / 2 + 999) / 1000;
        let last_start_s = (span_ms - length - gap_ms / 2) / 1000;
        if length <= 0 || last_start_s < first_start_s {
            continue;
        }
        for _ in 0..PLACEMENT_TRIES {
            let start = rng.random_range(first_start_s..=last_start_s) * 1000;
            let clear = placed
                .iter()
                .all(|o| start + length + gap_ms <= o.start || o.end + gap_ms <= start);
            if clear {
                placed.push(start..start + length);
                break;
            }
        }
    }
    placed.sort_by_key(|o| o.start);
    placed
        .into_iter()
        .map(|o| Outage {
            start_ms: config.start_ms + o.start,
            end_ms: config.start_ms + o.end,
        })
        .collect()
}

/// A log-uniform length between `shortest` and `longest` milliseconds, in whole seconds (at least
/// one).
fn log_uniform_seconds(rng: &mut ChaCha8Rng, shortest: i64, longest: i64) -> i64 {
    if shortest >= longest {
        return longest / 1000 * 1000;
    }
    let (low, high) = ((shortest as f64).ln(), (longest as f64).ln());
    let ms = rng.random_range(low..high).exp();
    ((ms / 1000.0).round() as i64).max(1) * 1000
}

/// A generator for dataset-wide draws named `name`, independent of every device stream.
fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(fnv1a(name.as_bytes()));
    rng
}

/// 64-bit FNV-1a, stable across platforms and releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 finalizer, as the live simulator mixes boot ids.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
