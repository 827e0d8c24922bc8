//! Sparkplug B 3.0 (Eclipse Sparkplug, ISO/IEC 20237): the topic namespace, the metric datatypes
//! and the payload messages.
//!
//! - [`topic`]: parsing and building `spBv1.0/{group}/{type}/{edge_node}[/{device}]` and
//!   `spBv1.0/STATE/{host_id}`.
//! - [`datatype`]: the metric datatypes and how a metric's value reads as a number or a text.
//! - [`pb`]: the generated payload messages, from `proto/sparkplug_b/sparkplug_b.proto`, which is
//!   wire-compatible with Eclipse Tahu's `sparkplug_b.proto` (EPL-2.0, see the file's header).

pub mod datatype;
pub mod topic;

/// Generated protobuf messages of package `org.eclipse.tahu.protobuf` (the Sparkplug B payload).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("org.eclipse.tahu.protobuf");
}

pub use datatype::{DataType, Value};
pub use topic::{MessageType, SparkplugTopic, TopicError};
