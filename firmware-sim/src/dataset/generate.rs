//! The generator loop: walks the time grid, samples every device's model, applies the outage plan
//! and hands each reading to the format's encoder.
//!
//! Time-major: all devices at the first timestamp, then all at the second, and so on. A device's
//! model is sampled at every grid timestamp, also while the device is down (the weather and the
//! traffic go on without it), so a reading has the same values whether or not the device had an
//! earlier outage, and a device without outages gets the values a live device with the same seed
//! would report at the same timestamps.

use std::io::{self, Write};

use citytel_proto::catalog::metric_names;

use super::config::{DatasetConfig, DatasetConfigError, DatasetFormat};
use super::encoder::{Encoder, ReadingRef};
use super::line_protocol::LineProtocolEncoder;
use super::plan::{DatasetDevice, boot_id, plan};
use super::proto::ProtoEncoder;
use crate::model::DeviceModel;

/// Most metrics a dataset device reports per reading.
const MAX_METRICS: usize = 8;

/// Where a generator run is, reported after every timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetProgress {
    /// Timestamps done.
    pub steps_done: u64,
    /// Timestamps in the dataset.
    pub steps_total: u64,
    /// The timestamp just done, in Unix milliseconds.
    pub time_ms: i64,
}

/// What a generator run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSummary {
    /// Devices in the dataset.
    pub devices: u64,
    /// Devices with at least one outage.
    pub devices_with_outages: u64,
    /// Outages over all devices.
    pub outages: u64,
    /// Readings (one per device and timestamp it was up): lines of line protocol.
    pub readings: u64,
    /// Protobuf records written (zero for line protocol).
    pub records: u64,
    /// Metric values over all readings.
    pub values: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Time of the first grid timestamp, Unix milliseconds.
    pub start_ms: i64,
    /// End of the span (exclusive), Unix milliseconds: start plus duration.
    pub end_ms: i64,
}

/// Why a dataset could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The configuration is out of range.
    #[error("invalid dataset configuration: {0}")]
    Config(#[from] DatasetConfigError),
    /// Writing the output failed.
    #[error("cannot write the dataset: {0}")]
    Io(#[from] io::Error),
}

/// Writes the dataset described by `config` to `out`, calling `progress` after every timestamp.
///
/// `out` is written in large blocks; wrapping it in a `BufWriter` gains nothing.
pub fn write_dataset<W: Write>(
    config: &DatasetConfig,
    out: W,
    progress: &mut dyn FnMut(DatasetProgress),
) -> Result<DatasetSummary, DatasetError> {
    config.validate()?;
    let devices = plan(config);
    let mut out = CountingWriter {
        inner: out,
        bytes: 0,
    };
    let (records, readings, values) = match config.format {
        DatasetFormat::LineProtocol => {
            let mut encoder = LineProtocolEncoder::new(&devices, &mut out);
            generate(config, &devices, &mut encoder, progress)?
        }
        DatasetFormat::Proto => {
            let batch = usize::try_from(config.batch).unwrap_or(1);
            let mut encoder = ProtoEncoder::new(&devices, batch, &mut out);
            generate(config, &devices, &mut encoder, progress)?
        }
    };
    let with_outages = devices.iter().filter(|d| !d.outages.is_empty()).count();
    Ok(DatasetSummary {
        devices: devices.len() as u64,
        devices_with_outages: with_outages as u64,
        outages: devices.iter().map(|d| d.outages.len() as u64).sum(),
        readings,
        records,
        values,
        bytes: out.bytes,
        start_ms: config.start_ms,
        end_ms: config.start_ms.saturating_add(config.duration_ms()),
    })
}

/// The per-device state of a run.
struct DeviceRun {
    model: DeviceModel,
    metrics: usize,
    boot_id: u64,
    next_seq: u64,
    /// Index of the first outage that has not ended yet.
    next_outage: usize,
    down: bool,
}

/// Runs the grid through `encoder`; returns (records, readings, values).
fn generate(
    config: &DatasetConfig,
    devices: &[DatasetDevice],
    encoder: &mut impl Encoder,
    progress: &mut dyn FnMut(DatasetProgress),
) -> io::Result<(u64, u64, u64)> {
    let mut runs: Vec<DeviceRun> = devices
        .iter()
        .map(|device| DeviceRun {
            model: DeviceModel::new(device.kind, config.seed, &device.device_id),
            metrics: metric_names(device.kind).len().min(MAX_METRICS),
            boot_id: boot_id(config.seed, &device.device_id, config.start_ms),
            next_seq: 1,
            next_outage: 0,
            down: false,
        })
        .collect();
    let mut values = [0.0; MAX_METRICS];
    let (mut readings, mut value_count) = (0u64, 0u64);
    let steps = config.steps();
    let interval_ms = config.interval_ms();
    for step in 0..steps {
        let time_ms = config.start_ms + i64::try_from(step).unwrap_or(i64::MAX) * interval_ms;
        for (index, (device, run)) in devices.iter().zip(&mut runs).enumerate() {
            let values = &mut values[..run.metrics];
            run.model.sample_into(time_ms, values);
            if is_down(device, run, config.seed, time_ms) {
                if !run.down {
                    run.down = true;
                    encoder.device_down(index)?;
                }
                continue;
            }
            run.down = false;
            let reading = ReadingRef {
                boot_id: run.boot_id,
                seq: run.next_seq,
                time_ms,
                values,
            };
            encoder.reading(index, &reading)?;
            run.next_seq += 1;
            readings += 1;
            value_count += values.len() as u64;
        }
        encoder.end_of_step()?;
        progress(DatasetProgress {
            steps_done: step + 1,
            steps_total: steps,
            time_ms,
        });
    }
    let records = encoder.finish()?;
    Ok((records, readings, value_count))
}

/// Whether `device` is down at `time_ms`; reboots it (new boot id, sequence from 1) for every
/// outage that ended since the last call.
fn is_down(device: &DatasetDevice, run: &mut DeviceRun, seed: u64, time_ms: i64) -> bool {
    while let Some(outage) = device.outages.get(run.next_outage) {
        if outage.end_ms > time_ms {
            return outage.start_ms <= time_ms;
        }
        run.next_outage += 1;
        run.boot_id = boot_id(seed, &device.device_id, outage.end_ms);
        run.next_seq = 1;
    }
    false
}

/// Counts the bytes that reach the inner writer.
struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
