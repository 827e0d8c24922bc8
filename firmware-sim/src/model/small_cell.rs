//! A 5G small cell: radio quality, attached users, throughput and CPU, all driven by how busy the
//! street is.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::cycle::{activity, hour_of_day};
use super::walk::{MINUTE, Walk, normal};

/// State of one small cell.
#[derive(Debug, Clone)]
pub(super) struct SmallCell {
    /// Connected UEs at the busiest hour, on average.
    capacity: f64,
    /// Average throughput per connected UE, in Mbit/s.
    per_ue_mbps: f64,
    rsrp_base: f64,
    ues: Walk,
    throughput: Walk,
    rsrp: Walk,
    sinr: Walk,
    cpu: Walk,
}

impl SmallCell {
    pub(super) fn new(rng: &mut ChaCha8Rng) -> Self {
        SmallCell {
            capacity: rng.random_range(40.0..160.0),
            per_ue_mbps: rng.random_range(1.5..4.0),
            rsrp_base: rng.random_range(-98.0..-82.0),
            ues: Walk::new(0.15, 60.0 * MINUTE, rng),
            throughput: Walk::new(0.25, 15.0 * MINUTE, rng),
            rsrp: Walk::new(4.0, 60.0 * MINUTE, rng),
            sinr: Walk::new(2.5, 30.0 * MINUTE, rng),
            cpu: Walk::new(3.0, 10.0 * MINUTE, rng),
        }
    }

    /// Takes a reading: one value per metric of [`citytel_proto::catalog::SMALL_CELL`], in that
    /// order, not yet quantized.
    pub(super) fn sample(&mut self, time_ms: i64, dt_ms: i64, rng: &mut ChaCha8Rng) -> [f64; 5] {
        let busy = activity(hour_of_day(time_ms));
        let mean_ues = self.capacity * (0.06 + 0.94 * busy) * self.ues.step(dt_ms, rng).exp();
        let ues = (mean_ues + mean_ues.sqrt() * normal(rng)).round().max(0.0);
        let load = (ues / self.capacity).min(1.5);
        let throughput = (ues * self.per_ue_mbps * self.throughput.step(dt_ms, rng).exp()).max(0.0);
        let rsrp = (self.rsrp_base - 3.0 * busy + self.rsrp.step(dt_ms, rng)).clamp(-110.0, -70.0);
        let sinr = (21.0 - 9.0 * load + self.sinr.step(dt_ms, rng)).clamp(-5.0, 30.0);
        let cpu = (7.0 + 55.0 * load + self.cpu.step(dt_ms, rng)).clamp(0.0, 100.0);
        [rsrp, sinr, ues, throughput, cpu]
    }
}
