//! An environmental sensor: particulates and NO2 (which follow road traffic), outdoor climate and a
//! slowly draining battery.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::cycle::{cosine, hour_of_day, traffic};
use super::walk::{MINUTE, Walk, normal};

const DAY_MS: f64 = 24.0 * 60.0 * MINUTE;
/// Below this charge a technician swaps the battery for a full one.
const BATTERY_SWAP_PCT: f64 = 5.0;

/// State of one sensor.
#[derive(Debug, Clone)]
pub(super) struct Sensor {
    pm25_base: f64,
    pm25: Walk,
    no2_background: f64,
    /// How exposed the sensor is to traffic (a kerbside sensor sees more than a park one).
    no2_exposure: f64,
    no2: Walk,
    temperature_offset: f64,
    temperature: Walk,
    humidity: Walk,
    battery_pct: f64,
    battery_drain_per_ms: f64,
}

impl Sensor {
    pub(super) fn new(rng: &mut ChaCha8Rng) -> Self {
        Sensor {
            pm25_base: rng.random_range(6.0..14.0),
            pm25: Walk::new(0.45, 240.0 * MINUTE, rng),
            no2_background: rng.random_range(8.0..18.0),
            no2_exposure: rng.random_range(0.6..1.4),
            no2: Walk::new(0.25, 120.0 * MINUTE, rng),
            temperature_offset: rng.random_range(-3.0..3.0),
            temperature: Walk::new(1.5, 180.0 * MINUTE, rng),
            humidity: Walk::new(7.0, 240.0 * MINUTE, rng),
            battery_pct: rng.random_range(55.0..100.0),
            battery_drain_per_ms: rng.random_range(0.4..1.2) / DAY_MS,
        }
    }

    /// Takes a reading: one value per metric of [`citytel_proto::catalog::SENSOR`], in that
    /// order, not yet quantized.
    pub(super) fn sample(&mut self, time_ms: i64, dt_ms: i64, rng: &mut ChaCha8Rng) -> [f64; 5] {
        let hour = hour_of_day(time_ms);
        let rush = traffic(hour);
        let day = cosine(hour, 15.0);
        let pm25 = (self.pm25_base * self.pm25.step(dt_ms, rng).exp() * (1.0 + 0.35 * rush)
            + 0.5 * normal(rng))
        .max(0.0);
        let no2 = (self.no2_background + 45.0 * self.no2_exposure * rush)
            * self.no2.step(dt_ms, rng).exp()
            + 1.5 * normal(rng);
        let temperature =
            (13.0 + self.temperature_offset + 6.0 * day + self.temperature.step(dt_ms, rng))
                .clamp(-30.0, 50.0);
        let humidity = (68.0 - 14.0 * day + self.humidity.step(dt_ms, rng)).clamp(5.0, 100.0);
        [
            pm25,
            no2.max(0.0),
            temperature,
            humidity,
            self.battery(dt_ms),
        ]
    }

    /// Drains the battery by `dt_ms` worth of use; a nearly empty one is swapped for a full one.
    fn battery(&mut self, dt_ms: i64) -> f64 {
        if dt_ms > 0 {
            self.battery_pct -= self.battery_drain_per_ms * dt_ms as f64;
            if self.battery_pct < BATTERY_SWAP_PCT {
                self.battery_pct = 100.0;
            }
        }
        self.battery_pct
    }
}
