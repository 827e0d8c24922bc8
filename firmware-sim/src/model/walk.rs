//! Mean-reverting random walks (Ornstein-Uhlenbeck processes), the noise behind every metric.
//!
//! A walk wanders around zero with a stationary standard deviation `sigma` and forgets its past over
//! a time constant `tau`. Steps use the exact discretisation, so any time step (regular or not, one
//! second or one hour) gives the statistics of the continuous process.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Milliseconds in a minute, for writing time constants.
pub(super) const MINUTE: f64 = 60_000.0;

/// One standard normal draw.
pub(super) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// A zero-mean Ornstein-Uhlenbeck process.
#[derive(Debug, Clone)]
pub(super) struct Walk {
    value: f64,
    sigma: f64,
    tau_ms: f64,
    /// The step the coefficients below were computed for; readings usually come at a fixed
    /// interval, so `exp` runs once per walk rather than once per step.
    step_ms: i64,
    decay: f64,
    spread: f64,
}

impl Walk {
    /// A walk with stationary standard deviation `sigma` and time constant `tau_ms`, starting from a
    /// draw of its stationary distribution.
    pub(super) fn new(sigma: f64, tau_ms: f64, rng: &mut ChaCha8Rng) -> Self {
        Walk {
            value: sigma * normal(rng),
            sigma,
            tau_ms,
            step_ms: 0,
            decay: 1.0,
            spread: 0.0,
        }
    }

    /// Advances the walk by `dt_ms` (nothing happens for zero or negative steps) and returns the
    /// new value.
    pub(super) fn step(&mut self, dt_ms: i64, rng: &mut ChaCha8Rng) -> f64 {
        if dt_ms <= 0 {
            return self.value;
        }
        if dt_ms != self.step_ms {
            self.step_ms = dt_ms;
            self.decay = (-(dt_ms as f64) / self.tau_ms).exp();
            self.spread = self.sigma * (1.0 - self.decay * self.decay).sqrt();
        }
        self.value = self.value * self.decay + self.spread * normal(rng);
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stays_near_its_stationary_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut walk = Walk::new(2.0, 10.0 * MINUTE, &mut rng);
        let n = 20_000;
        let sum_sq: f64 = (0..n).map(|_| walk.step(60_000, &mut rng).powi(2)).sum();
        let std = (sum_sq / f64::from(n)).sqrt();
        assert!((1.6..2.4).contains(&std), "std {std}");
    }

    #[test]
    fn does_not_move_without_time() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut walk = Walk::new(2.0, MINUTE, &mut rng);
        let before = walk.step(0, &mut rng);
        assert_eq!(walk.step(-5, &mut rng), before);
    }
}
