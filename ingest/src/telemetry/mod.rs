//! citytel's own observability: log set-up, the names of every metric it records and the layer
//! that counts gRPC requests; it depends on nothing else of the service (the endpoint that serves
//! the metrics is [`crate::exporter`]).

pub mod grpc;
pub mod logging;
pub mod metrics;
