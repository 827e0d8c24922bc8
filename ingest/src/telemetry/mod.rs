//! citytel's own observability: log set-up and the names of every metric it records.

pub mod exporter;
pub mod grpc;
pub mod logging;
pub mod metrics;
