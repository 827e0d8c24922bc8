//! How a run moves from one instant to the next: the [`Pacer`] a run is driven by, and
//! [`RealTime`], which follows the wall clock. Tests implement [`Pacer`] with a clock of their
//! own and use [`Pacer::settled`] to wait for whatever the broker does without acknowledging it.

use std::future::Future;
use std::time::Duration;

use crate::broker::BrokerAddr;

/// One instant of a run, once everything of it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The instant, true time in ms since the epoch.
    pub at_unix_ms: i64,
    /// Devices whose connection was dropped without a goodbye in this step: the broker publishes
    /// their Last Will (which nobody acknowledges to the device).
    pub last_wills: Vec<String>,
    /// The closing step at the end of the scenario.
    pub last: bool,
}

/// How a run reaches each instant.
pub trait Pacer {
    /// The broker devices connect to now.
    fn broker(&self) -> BrokerAddr;
    /// Called before the step at `at_unix_ms`: wait for it, or move a clock to it.
    fn until(&mut self, at_unix_ms: i64) -> impl Future<Output = ()> + Send;
    /// Called after every publish of `step` was acknowledged.
    fn settled(&mut self, step: &Step) -> impl Future<Output = ()> + Send;
}

/// Follows the wall clock: each step runs when its time comes.
#[derive(Debug, Clone)]
pub struct RealTime {
    broker: BrokerAddr,
    start_unix_ms: i64,
    start: tokio::time::Instant,
}

impl RealTime {
    /// A pacer for a run starting now at `start_unix_ms`, connecting to `broker`.
    pub fn new(broker: BrokerAddr, start_unix_ms: i64) -> Self {
        RealTime {
            broker,
            start_unix_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Pacer for RealTime {
    fn broker(&self) -> BrokerAddr {
        self.broker.clone()
    }

    async fn until(&mut self, at_unix_ms: i64) {
        let offset = u64::try_from(at_unix_ms - self.start_unix_ms).unwrap_or(0);
        tokio::time::sleep_until(self.start + Duration::from_millis(offset)).await;
    }

    async fn settled(&mut self, _step: &Step) {}
}

/// The wall clock in ms since the Unix epoch (where a real-time run starts).
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
