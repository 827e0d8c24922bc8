//! Simulates a fleet of citytel devices over MQTT: fibre cabinets, small cells, environmental
//! sensors and gateways that report for the sensors behind them.
//!
//! - [`model`]: per-kind metric models producing realistic, seeded, reproducible readings.
//! - [`fleet`]: the fleet configuration and [`Fleet::run`], which connects every device to a
//!   broker, publishes births, telemetry, heartbeats and deaths, and tracks every acknowledgement.
//! - [`report`]: what a run returns, the exact ground truth of which readings the broker acked.
//! - [`dataset`]: deterministic reference datasets (line protocol or protobuf files) from the same
//!   models, with planned outages and reboots.
//! - [`scenario`]: scripted scenarios (power cuts, gateway failures, reboot loops, skewed clocks,
//!   backfill, flapping links) and the ground truth of what the devices did.
//! - [`Progress`]: live counters while a fleet runs.
//! - [`city`]: the synthetic city (made-up district polygons) and where each device stands.
//! - [`broker`]: the broker address every device, load connection and scenario connects to.
//!
//! Device kinds, topics and payloads follow the wire contract in [`citytel_proto`].

pub mod broker;
pub mod city;
pub mod dataset;
mod device;
pub mod fleet;
pub mod load;
pub mod model;
mod profile;
mod progress;
pub mod report;
pub mod scenario;
mod seed;

pub use fleet::{Fleet, FleetConfig};
pub use progress::Progress;
pub use report::{DeviceReport, FleetReport};
/// MQTT quality of service, as used by [`FleetConfig::qos`].
pub use rumqttc::QoS;
