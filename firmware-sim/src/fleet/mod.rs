//! A fleet of simulated devices: configuration, device plan, and the run that connects them all.
//!
//! [`Fleet::run`] spawns one task per device (the plan numbers them and staggers their first
//! connection attempts), feeds live [`Progress`] to an optional watch channel, and returns a
//! [`FleetReport`] once every device has finished: taken its readings and seen them acknowledged,
//! reached the configured duration, or been shut down. If no device manages to connect within
//! [`FleetConfig::connect_timeout`], the run stops and fails with
//! [`FleetError::BrokerUnreachable`].

mod config;
mod feed;
mod plan;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::device::Device;
use crate::progress::{Counters, Progress};
use crate::report::{DeviceReport, FleetReport, Totals};
use feed::ProgressFeed;

// The address type of `FleetConfig::broker`, for users of the fleet alone.
pub use crate::broker::BrokerAddr;
pub use config::{ConfigError, FleetConfig, MAX_BATCH};

/// Why a fleet run failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The configuration is out of range.
    #[error("invalid fleet configuration: {0}")]
    Config(#[from] ConfigError),
    /// No device connected within the connect timeout.
    #[error(
        "no device could connect to {broker} within {}{}",
        humantime::format_duration(*.waited),
        .last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
    )]
    BrokerUnreachable {
        /// The broker address.
        broker: BrokerAddr,
        /// How long the fleet tried.
        waited: Duration,
        /// The last connection error, if any.
        last_error: Option<String>,
    },
    /// A device task panicked, so its report is missing.
    #[error("the task of device {device_id} failed: {source}")]
    DeviceTask {
        /// The device.
        device_id: String,
        /// Why the task ended.
        source: JoinError,
    },
}

/// A validated fleet, ready to run.
#[derive(Debug, Clone)]
pub struct Fleet {
    config: FleetConfig,
}

impl Fleet {
    /// Validates `config`.
    pub fn new(config: FleetConfig) -> Result<Self, FleetError> {
        config.validate()?;
        Ok(Fleet { config })
    }

    /// The configuration the fleet runs with.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Runs every device until it is done or `shutdown` is cancelled (devices then publish their
    /// death, wait for outstanding acknowledgements and disconnect), sending live counters to
    /// `progress` if given.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        progress: Option<watch::Sender<Progress>>,
    ) -> Result<FleetReport, FleetError> {
        let started = Instant::now();
        let counters = Arc::new(Counters::default());
        let connections = self.config.connections();
        let settings = Arc::new(self.config.device_settings(started));
        let devices = shutdown.child_token();
        let tasks: Vec<_> = plan::plan(&self.config)
            .into_iter()
            .map(|spec| {
                let device_id = spec.device_id.clone();
                let device = Device::new(spec, Arc::clone(&settings), Arc::clone(&counters));
                (device_id, tokio::spawn(device.run(devices.clone())))
            })
            .collect();
        let stop_feed = CancellationToken::new();
        let feed = progress.map(|sender| {
            let feed = ProgressFeed::new(sender, Arc::clone(&counters), started, connections);
            tokio::spawn(feed.run(stop_feed.clone()))
        });

        let joined = join_devices(tasks);
        tokio::pin!(joined);
        let outcome = tokio::select! {
            outcome = &mut joined => outcome,
            () = unreachable(&counters, self.config.connect_timeout) => {
                devices.cancel();
                // Devices that never connected stop at once; their reports are of no interest.
                let _ = joined.await;
                Err(FleetError::BrokerUnreachable {
                    broker: self.config.broker.clone(),
                    waited: self.config.connect_timeout.unwrap_or_default(),
                    last_error: counters.last_error(),
                })
            }
        };

        stop_feed.cancel();
        if let Some(feed) = feed
            && let Err(error) = feed.await
        {
            tracing::warn!(%error, "progress feed failed");
        }
        let devices = outcome?;
        let last = counters.snapshot(started.elapsed(), connections);
        Ok(FleetReport {
            totals: Totals {
                messages_published: last.messages_published,
                messages_acked: last.messages_acked,
                readings_published: last.readings_published,
                readings_acked: last.readings_acked,
                reconnects: last.reconnects,
                errors: last.errors,
                elapsed: last.elapsed,
            },
            devices,
        })
    }
}

/// Waits for every device task and concatenates their reports in order. Every task is awaited even
/// if one failed; the first failure is returned.
async fn join_devices(
    tasks: Vec<(String, tokio::task::JoinHandle<Vec<DeviceReport>>)>,
) -> Result<Vec<DeviceReport>, FleetError> {
    let mut reports = Vec::with_capacity(tasks.len());
    let mut failure = None;
    for (device_id, task) in tasks {
        match task.await {
            Ok(device_reports) => reports.extend(device_reports),
            Err(source) => {
                tracing::error!(device = %device_id, error = %source, "device task failed");
                failure.get_or_insert(FleetError::DeviceTask { device_id, source });
            }
        }
    }
    failure.map_or(Ok(reports), Err)
}

/// Resolves if no device has connected once `timeout` has passed; never otherwise.
async fn unreachable(counters: &Counters, timeout: Option<Duration>) {
    match timeout {
        Some(timeout) => {
            tokio::time::sleep(timeout).await;
            if counters.ever_connected() > 0 {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}
