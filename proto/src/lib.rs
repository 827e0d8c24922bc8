//! citytel's wire contract, shared by the service, the simulator and every client.
//!
//! - [`v1`]: the generated protobuf messages (device telemetry and status) and the gRPC
//!   `QueryService` client and server, from `proto/citytel/v1/*.proto`.
//! - [`kind`]: the device kinds and their stable names.
//! - [`topic`]: the MQTT topic scheme devices publish on, `citytel/v1/{site}/{kind}/{device_id}/{channel}`.
//! - [`compact`]: the compact forms of `QueryRange` answers (timestamps as runs, values as
//!   decimals).
//! - [`codec`]: the gRPC codec the generated clients and servers use (prost, decoding from one
//!   contiguous slice).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.
//!
//! The generated code stays in its own module; hand-written helpers live next to it.

pub mod codec;
pub mod compact;
pub mod kind;
pub mod topic;

/// Generated protobuf and gRPC code for package `citytel.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("citytel.v1");
}

/// The encoded `FileDescriptorSet` of every citytel `.proto` file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("citytel_descriptor");
