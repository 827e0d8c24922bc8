//! citytel ingests telemetry from a city's connectivity infrastructure (fibre street cabinets,
//! 5G small cells, environmental sensors and their gateways), stores it as time series and
//! answers dashboards over gRPC.
//!
//! How a message travels, and where each step lives:
//!
//! ```text
//! source::endpoint (MQTT server)  ─┐
//!                                  ├─> pipeline (admission, decode) ─> pipeline::writer
//! source::broker (MQTT client)    ─┘        │                            │ WAL group commit
//!                                       decode (validation,              │ store::State::apply
//!                                       reject reasons)                  │ acks, in order
//!                                                                        v
//!                                    api (gRPC QueryService) <── store::Database
//! ```
//!
//! - [`config`]: the TOML configuration, its defaults and overrides.
//! - [`source`]: where messages come from.
//! - [`pipeline`]: admission with a byte budget, then the group-commit writer.
//! - [`decode`]: protobuf decoding and validation, with counted reject reasons.
//! - [`import`]: bulk import of InfluxDB line protocol and dataset files, parsed in parallel.
//! - [`store`]: the WAL and the state rebuilt from it (registry, series, dead letters).
//! - [`availability`]: the pure device state machine, availability, outages, completeness.
//! - [`tracker`]: drives the state machines from the ingest path and answers availability.
//! - [`clock`]: where "now" comes from (the system clock, or tokio's in tests).
//! - [`query`]: device selection, step buckets and aggregation over any series backend.
//! - [`api`]: the gRPC query service.
//! - [`web`]: the operator web dashboard over HTTP, with the query service over gRPC-Web.
//! - [`sink`]: copies of the stored data sent to other systems (InfluxDB), fed from the WAL.
//! - [`service`]: start-up and phased shutdown.
//! - [`cli`]: the `citytel` command line.
//! - [`telemetry`]: logs and metric names.

pub mod api;
pub mod availability;
pub mod cli;
pub mod clock;
pub mod config;
pub mod decode;
pub mod hash;
pub mod import;
pub mod pipeline;
pub mod query;
pub mod service;
pub mod sink;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod tracker;
pub mod web;
