//! citytel's wire contract, shared by the service, the simulator and every client.
//!
//! The domain's vocabulary lives here, so that devices, the service and its dashboards name things
//! the same way: the device kinds ([`kind`]), the metrics each kind reports with their units and
//! resolutions ([`catalog`]), and the MQTT topics devices publish on ([`topic`]). The other crates
//! take these from the contract instead of defining their own.
//!
//! - [`v1`]: the generated protobuf messages (device telemetry and status) and the gRPC
//!   `QueryService` client and server, from `proto/citytel/v1/*.proto`.
//! - [`kind`]: the device kinds (`cabinet`, `small_cell`, `sensor`, `gateway`) and their stable
//!   names.
//! - [`catalog`]: the metric catalogue, per kind the metrics in reading order, each with its name,
//!   unit, resolution and description.
//! - [`topic`]: the MQTT topic scheme devices publish on, `citytel/v1/{site}/{kind}/{device_id}/{channel}`.
//! - [`compact`]: the compact form of `QueryRange` timestamps (runs of evenly spaced times).
//! - [`sparkplug`]: the Sparkplug B 3.0 topic namespace (`spBv1.0/...`), datatypes and the
//!   generated payload messages (Eclipse Tahu's `sparkplug_b.proto`, EPL-2.0).
//! - [`codec`]: the gRPC codec the generated clients and servers use (prost, decoding from one
//!   contiguous slice).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.
//!
//! The generated code stays in its own module; hand-written helpers live next to it.

pub mod catalog;
pub mod codec;
pub mod compact;
pub mod kind;
pub mod sparkplug;
pub mod topic;

/// Generated protobuf and gRPC code for package `citytel.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("citytel.v1");
}

/// The encoded `FileDescriptorSet` of every citytel `.proto` file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("citytel_descriptor");
