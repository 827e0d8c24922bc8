//! A gateway: its own CPU and memory, and the strength of its cellular backhaul.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::cycle::{activity, hour_of_day};
use super::walk::{MINUTE, Walk};

/// State of one gateway.
#[derive(Debug, Clone)]
pub(super) struct Gateway {
    cpu: Walk,
    memory_base: f64,
    memory: Walk,
    rssi_base: f64,
    rssi: Walk,
}

impl Gateway {
    pub(super) fn new(rng: &mut ChaCha8Rng) -> Self {
        Gateway {
            cpu: Walk::new(4.0, 10.0 * MINUTE, rng),
            memory_base: rng.random_range(35.0..55.0),
            memory: Walk::new(5.0, 6.0 * 60.0 * MINUTE, rng),
            rssi_base: rng.random_range(-85.0..-60.0),
            rssi: Walk::new(3.0, 60.0 * MINUTE, rng),
        }
    }

    /// Takes a reading: one value per metric of [`citytel_proto::catalog::GATEWAY`], in that
    /// order, not yet quantized.
    pub(super) fn sample(&mut self, time_ms: i64, dt_ms: i64, rng: &mut ChaCha8Rng) -> [f64; 3] {
        let busy = activity(hour_of_day(time_ms));
        let cpu = (12.0 + 20.0 * busy + self.cpu.step(dt_ms, rng)).clamp(0.0, 100.0);
        let memory = (self.memory_base + self.memory.step(dt_ms, rng)).clamp(5.0, 95.0);
        let rssi = (self.rssi_base + self.rssi.step(dt_ms, rng)).clamp(-110.0, -40.0);
        [cpu, memory, rssi]
    }
}
