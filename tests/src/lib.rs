//! Shared helpers for citytel's end-to-end tests: the service as a real child process, a raw
//! MQTT client and a crash-tolerant publisher, gRPC clients (with API keys: [`keys`]), and
//! comparison of query results
//! with a fleet's ground truth. Helpers the benchmark harness needs too (process guards, the
//! Mosquitto launcher, readiness waits, HTTP and MQTT framing) live in `citytel-testkit`.
//!
//! Every process a helper starts is stopped when its guard is dropped, also when a test panics.

pub mod alert_expect;
pub mod alertmanager;
pub mod faults;
pub mod fleet;
pub mod golden;
pub mod keys;
pub mod mtls;
pub mod process;
pub mod publisher;
pub mod raw_mqtt;
pub mod readings_expect;
pub mod scenario;
pub mod scenario_expect;
pub mod truth;
pub mod victoriametrics;
pub mod webhook;
pub mod wire;
