//! Per-kind metric models: realistic, seeded, reproducible readings.
//!
//! A [`DeviceModel`] turns the timestamps of a device's readings into metric values. Every metric
//! is a daily cycle (from the time of day, UTC, of the reading's timestamp) plus mean-reverting
//! random walks and sensor noise, coupled where the physics couple them (a warm cabinet draws more
//! power, a busy cell has more throughput and a worse SINR), and quantized to the sensor's
//! resolution.
//!
//! The model reads no clock and does no I/O: the caller chooses the timestamps, which is how the
//! simulator feeds it wall-clock time and how a dataset generator feeds it a synthetic day. Its only
//! randomness is a ChaCha8 stream derived from the fleet seed and the device id, so the same seed,
//! device id and sequence of timestamps give bit-identical values on every run.
//!
//! Which metrics a kind reports, in which order and at which resolution is not the model's choice:
//! that is the contract's metric catalogue ([`citytel_proto::catalog`]), which every sample
//! follows.

mod cabinet;
mod cycle;
mod gateway;
mod sensor;
mod small_cell;
mod walk;

#[cfg(test)]
mod tests;

use citytel_proto::catalog::{self, Metric};
use citytel_proto::kind::Kind;
use rand_chacha::ChaCha8Rng;

use crate::seed::{Purpose, device_rng};

/// The metric model of one device.
#[derive(Debug, Clone)]
pub struct DeviceModel {
    kind: Kind,
    rng: ChaCha8Rng,
    last_time_ms: Option<i64>,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Cabinet(cabinet::Cabinet),
    SmallCell(small_cell::SmallCell),
    Sensor(sensor::Sensor),
    Gateway(gateway::Gateway),
}

impl DeviceModel {
    /// The model of device `device_id`, of kind `kind`, in a fleet seeded with `seed`. Per-device
    /// traits (a cabinet's optical budget, a cell's capacity, a sensor's battery) are drawn here.
    pub fn new(kind: Kind, seed: u64, device_id: &str) -> Self {
        let mut rng = device_rng(seed, device_id, Purpose::Model);
        let state = match kind {
            Kind::Cabinet => State::Cabinet(cabinet::Cabinet::new(&mut rng)),
            Kind::SmallCell => State::SmallCell(small_cell::SmallCell::new(&mut rng)),
            Kind::Sensor => State::Sensor(sensor::Sensor::new(&mut rng)),
            Kind::Gateway => State::Gateway(gateway::Gateway::new(&mut rng)),
        };
        DeviceModel {
            kind,
            rng,
            last_time_ms: None,
            state,
        }
    }

    /// The kind of device this models.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The metrics each sample reports, in order: the catalogue's names for the model's kind.
    pub fn metric_names(&self) -> &'static [&'static str] {
        catalog::metric_names(self.kind)
    }

    /// Takes a reading at `time_unix_ms` and returns one value per metric.
    pub fn sample(&mut self, time_unix_ms: i64) -> Vec<f64> {
        let mut values = vec![0.0; self.metric_names().len()];
        self.sample_into(time_unix_ms, &mut values);
        values
    }

    /// Takes a reading at `time_unix_ms` and writes one value per metric into `out`, allocating
    /// nothing.
    ///
    /// The walks advance by the time since the previous sample; the first sample, or one whose
    /// timestamp is not after the previous one, does not move them.
    ///
    /// # Panics
    ///
    /// If `out.len()` is not the number of metrics of the model's kind.
    pub fn sample_into(&mut self, time_unix_ms: i64, out: &mut [f64]) {
        let dt_ms = self
            .last_time_ms
            .map_or(0, |last| time_unix_ms.saturating_sub(last));
        self.last_time_ms = Some(time_unix_ms);
        let rng = &mut self.rng;
        match &mut self.state {
            State::Cabinet(m) => {
                quantize_into(out, m.sample(time_unix_ms, dt_ms, rng), &catalog::CABINET);
            }
            State::SmallCell(m) => quantize_into(
                out,
                m.sample(time_unix_ms, dt_ms, rng),
                &catalog::SMALL_CELL,
            ),
            State::Sensor(m) => {
                quantize_into(out, m.sample(time_unix_ms, dt_ms, rng), &catalog::SENSOR);
            }
            State::Gateway(m) => {
                quantize_into(out, m.sample(time_unix_ms, dt_ms, rng), &catalog::GATEWAY);
            }
        }
    }
}

/// Writes `raw`, each value rounded to the resolution of its metric in `metrics`, into `out`.
fn quantize_into<const N: usize>(out: &mut [f64], raw: [f64; N], metrics: &[Metric; N]) {
    assert_eq!(
        out.len(),
        N,
        "sample_into needs a slice of one value per metric"
    );
    for ((slot, value), metric) in out.iter_mut().zip(raw).zip(metrics) {
        *slot = quantize(value, metric.resolution);
    }
}

/// Rounds `value` to the nearest multiple of `resolution` (which is `1/n` for a whole `n`), giving
/// the double nearest to that multiple, and never `-0.0`.
fn quantize(value: f64, resolution: f64) -> f64 {
    let steps_per_unit = (1.0 / resolution).round();
    (value * steps_per_unit).round() / steps_per_unit + 0.0
}
