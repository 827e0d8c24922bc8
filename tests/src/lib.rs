//! Shared helpers for citytel's end-to-end tests: the service as a real child process, a real
//! Mosquitto broker, a raw MQTT client and a crash-tolerant publisher, a gRPC client, and
//! comparison of query results with a fleet's ground truth.
//!
//! Every process a helper starts is stopped when its guard is dropped, also when a test panics.

pub mod faults;
pub mod fleet;
pub mod metrics;
pub mod mosquitto;
pub mod process;
pub mod publisher;
pub mod raw_mqtt;
pub mod scenario;
pub mod scenario_expect;
pub mod truth;
pub mod victoriametrics;
pub mod wire;

use std::net::TcpListener;

/// A port that was free a moment ago, for programs that cannot bind port 0 themselves
/// (Mosquitto). citytel itself always binds port 0 and reports what it got.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
