//! A fibre street cabinet: enclosure climate, door contact, optical receive power and power draw.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::cycle::{cosine, hour_of_day};
use super::walk::{MINUTE, Walk, normal};

/// Mean time between door openings during working hours (07:00-19:00 UTC) and at night.
const DOOR_GAP_DAY_MS: f64 = 36.0 * 60.0 * MINUTE;
const DOOR_GAP_NIGHT_MS: f64 = 10.0 * 24.0 * 60.0 * MINUTE;
/// How long a technician keeps the door open, in minutes.
const DOOR_OPEN_MINUTES: std::ops::RangeInclusive<i64> = 3..=25;

/// State of one cabinet.
#[derive(Debug, Clone)]
pub(super) struct Cabinet {
    temperature_offset: f64,
    temperature: Walk,
    humidity: Walk,
    /// Until when the door is open, if it is.
    door_open_until: Option<i64>,
    optical_base: f64,
    optical: Walk,
    power: Walk,
}

impl Cabinet {
    pub(super) fn new(rng: &mut ChaCha8Rng) -> Self {
        Cabinet {
            temperature_offset: rng.random_range(-2.5..2.5),
            temperature: Walk::new(1.5, 120.0 * MINUTE, rng),
            humidity: Walk::new(6.0, 180.0 * MINUTE, rng),
            door_open_until: None,
            optical_base: rng.random_range(-16.5..-13.5),
            optical: Walk::new(0.8, 12.0 * 60.0 * MINUTE, rng),
            power: Walk::new(3.0, 30.0 * MINUTE, rng),
        }
    }

    /// Takes a reading: one value per metric of [`citytel_proto::catalog::CABINET`], in that
    /// order, not yet quantized.
    pub(super) fn sample(&mut self, time_ms: i64, dt_ms: i64, rng: &mut ChaCha8Rng) -> [f64; 5] {
        let hour = hour_of_day(time_ms);
        let day = cosine(hour, 15.0);
        let temperature =
            (23.5 + self.temperature_offset + 6.5 * day + self.temperature.step(dt_ms, rng))
                .clamp(-10.0, 60.0);
        let humidity = (50.0 - 12.0 * day + self.humidity.step(dt_ms, rng)).clamp(5.0, 95.0);
        let door = self.door(time_ms, dt_ms, hour, rng);
        let optical = (self.optical_base + self.optical.step(dt_ms, rng) + 0.03 * normal(rng))
            .clamp(-30.0, -5.0);
        // Fans and the heat exchanger draw more when the enclosure is warm.
        let power =
            (62.0 + 2.0 * (temperature - 12.0) + self.power.step(dt_ms, rng)).clamp(30.0, 200.0);
        [temperature, humidity, door, optical, power]
    }

    /// The door contact: closed most of the time, opened now and then (mostly in working hours)
    /// for a few minutes.
    fn door(&mut self, time_ms: i64, dt_ms: i64, hour: f64, rng: &mut ChaCha8Rng) -> f64 {
        if let Some(until) = self.door_open_until {
            if time_ms < until {
                return 1.0;
            }
            self.door_open_until = None;
        }
        if dt_ms <= 0 {
            return 0.0;
        }
        let gap = if (7.0..19.0).contains(&hour) {
            DOOR_GAP_DAY_MS
        } else {
            DOOR_GAP_NIGHT_MS
        };
        let opens = rng.random::<f64>() < -(-(dt_ms as f64) / gap).exp_m1();
        if opens {
            self.door_open_until = Some(time_ms + rng.random_range(DOOR_OPEN_MINUTES) * 60_000);
            return 1.0;
        }
        0.0
    }
}
