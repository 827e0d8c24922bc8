//! What one connection publishes: citytel's own format, one pre-encoded [`Template`] per device
//! in turn, or a Sparkplug B edge node ([`SparkplugNode`]) with its births first.

use bytes::BytesMut;

use super::sparkplug::SparkplugNode;
use super::template::{Template, TemplateError};

/// The messages of one connection.
pub(crate) enum Messages {
    /// citytel's wire contract: each device's template, in turn.
    Citytel {
        /// One per device.
        templates: Vec<Template>,
        /// The device of the next message.
        next: usize,
    },
    /// A Sparkplug B edge node and its devices.
    Sparkplug(SparkplugNode),
}

impl Messages {
    /// citytel's format for the devices of `templates`.
    pub(crate) fn citytel(templates: Vec<Template>) -> Messages {
        Messages::Citytel { templates, next: 0 }
    }

    /// Appends what goes before the first message (a Sparkplug node's births), stamped `now_ms`.
    pub(crate) fn prelude(&mut self, out: &mut BytesMut, now_ms: i64) -> Result<(), TemplateError> {
        match self {
            Messages::Citytel { .. } => Ok(()),
            Messages::Sparkplug(node) => node.births(out, now_ms),
        }
    }

    /// Appends the next message, a QoS 1 PUBLISH with packet id `pkid`, stamped `now_ms`.
    pub(crate) fn write(
        &mut self,
        out: &mut BytesMut,
        pkid: u16,
        now_ms: i64,
    ) -> Result<(), TemplateError> {
        match self {
            Messages::Citytel { templates, next } => {
                let i = *next;
                *next = (i + 1) % templates.len();
                templates[i].write(out, pkid, now_ms).map(|_| ())
            }
            Messages::Sparkplug(node) => node.write(out, pkid, now_ms),
        }
    }
}
