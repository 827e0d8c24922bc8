//! Message sources. Each turns MQTT PUBLISH packets into [`crate::pipeline::Inbound`] messages
//! with an acknowledgement handle and sends the acknowledgements back once the pipeline reports
//! the message durable.
//!
//! - [`endpoint`]: citytel's own MQTT 3.1.1 server for devices (the default).
//! - [`broker`]: a client of an external broker (Mosquitto, EMQX, HiveMQ) with manual acks.

pub(crate) mod broker;
pub(crate) mod endpoint;
