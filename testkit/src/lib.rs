//! Helpers shared by citytel's end-to-end tests (`citytel-tests`) and its benchmark harness
//! (`citytel-bench`), so each exists once:
//!
//! - [`process`]: a guard that stops and reaps a child process when dropped.
//! - [`alertmanager`]: a real Alertmanager with its own configuration, and its alerts.
//! - [`net`]: free loopback ports for programs that cannot bind port 0 themselves.
//! - [`wait`]: polling a condition until a deadline, instead of sleeping a fixed time.
//! - [`health`]: the gRPC health check citytel answers once it is ready.
//! - [`http`]: a keep-alive HTTP/1.1 client on hyper, plain or TLS, with form-encoded query
//!   strings.
//! - [`grpc_web`]: gRPC-Web calls over HTTP/1.1 (plain or TLS) as a browser makes them, read
//!   frame by frame.
//! - [`metrics`]: scraping a Prometheus endpoint; a missing metric fails by name.
//! - [`mqtt`]: reading and writing single MQTT packets on rumqttc's codec.
//! - [`mqtt5`]: the same for MQTT 5, where a server says why (reason codes and strings).
//! - [`mosquitto`]: a real Mosquitto broker with citytel's shipped configuration, plain or TLS.
//! - [`tls`]: test certificates (CAs, server and client certificates) and TLS clients.
//!
//! Everything here talks to processes and sockets on this machine only (loopback).

pub mod alertmanager;
pub mod grpc_web;
pub mod health;
pub mod http;
pub mod metrics;
pub mod mosquitto;
pub mod mqtt;
pub mod mqtt5;
pub mod net;
pub mod process;
pub mod tls;
pub mod wait;
