//! citytel's service: ingests telemetry from a city's connectivity infrastructure (fibre street
//! cabinets, 5G small cells, environmental sensors and their gateways) over MQTT, keeps it in
//! `citytel-storage`, tracks device availability with `citytel-availability`, and answers
//! dashboards over gRPC. The `citytel` command line (`cli/`) is a thin layer over it.
//!
//! How a message travels, and where each step lives:
//!
//! ```text
//! source::endpoint (MQTT server)  ─┐
//!                                  ├─> pipeline (admission, decode) ─> pipeline::writer
//! source::broker (MQTT client)    ─┘        │                            │ WAL group commit (journal)
//! api (commands) ──────────────────────────>│                            │ state::State::apply
//!                                       decode (validation,              │ acks, in order
//!                                       reject reasons)                  v
//!                                    api (gRPC QueryService) <── db::Database (State behind a lock)
//! ```
//!
//! - [`config`]: the TOML configuration, its defaults and overrides.
//! - [`source`]: where messages come from.
//! - [`sparkplug`]: the Sparkplug B host application: Sparkplug messages into citytel's own.
//! - [`pipeline`]: admission with a byte budget, then the group-commit writer.
//! - [`decode`]: protobuf decoding and validation, with counted reject reasons.
//! - [`journal`]: what citytel writes into WAL records.
//! - [`state`]: the application state built from the WAL (registry, fleet, dead letters,
//!   maintenance windows) and its versioned persistence.
//! - [`db`]: the state behind a lock: opening a data directory, checkpoints, housekeeping.
//! - [`import`]: bulk import of InfluxDB line protocol and dataset files, parsed in parallel.
//! - [`query`]: device selection, step buckets and aggregation over any series backend.
//! - [`api`]: the gRPC query service, with its read pool.
//! - [`reports`]: district reports (connectivity, energy and carbon, air quality) and their
//!   configuration.
//! - [`web`]: the operator web dashboard over HTTP, with the query service over gRPC-Web.
//! - [`sink`]: copies of the stored data sent to other systems (InfluxDB), fed from the WAL.
//! - [`alerts`]: alert rules evaluated by the writer, and the outbox of their notifications.
//! - [`notify`]: delivery of the outbox to Alertmanager and webhooks, each receiver with a
//!   durable cursor.
//! - [`cursor_file`]: the durable cursor file of a sink or a receiver.
//! - [`service`]: start-up and phased shutdown.
//! - [`exporter`]: the Prometheus metrics endpoint.
//! - [`net`]: the open-file limit, connection caps, accept backoff, idle timeouts and TLS.
//! - [`provisioning`]: the devices that may connect, their credentials and what they speak for.
//! - [`telemetry`]: log set-up, metric names, the gRPC metrics layer.
//! - [`clock`]: where "now" comes from (the system clock, or a test's).
//! - `fuzz` (with the `fuzzing` feature only): entry points for the fuzz targets in `fuzz/`.

pub mod alerts;
pub(crate) mod api;
pub mod clock;
pub mod config;
pub mod cursor_file;
pub mod db;
pub mod decode;
pub mod exporter;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub(crate) mod hash;
pub mod import;
pub mod journal;
pub mod net;
pub mod notify;
pub(crate) mod pipeline;
pub mod provisioning;
pub(crate) mod query;
pub mod reports;
pub mod service;
pub mod sink;
pub(crate) mod source;
pub mod sparkplug;
pub mod state;
pub mod telemetry;
pub(crate) mod web;
