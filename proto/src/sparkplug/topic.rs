//! The Sparkplug B topic namespace: `spBv1.0/{group}/{type}/{edge_node}[/{device}]` for edge
//! nodes and devices, `spBv1.0/STATE/{host_id}` for host applications.
//!
//! Group, edge node, device and host ids are checked like citytel's own identifiers
//! ([`crate::topic::is_valid_id`]: 1 to 128 bytes of `[A-Za-z0-9._-]`), since citytel derives
//! device ids from them. Parsing borrows from the topic string and allocates nothing.

use std::fmt;

use crate::topic::is_valid_id;

/// The namespace, the first segment of every Sparkplug B topic.
pub const NAMESPACE: &str = "spBv1.0";

/// The subscription filter that covers every Sparkplug B topic.
pub const SUBSCRIPTION: &str = "spBv1.0/#";

/// The message types of edge nodes and devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// An edge node's birth certificate.
    NBirth,
    /// An edge node's death certificate (its MQTT Will).
    NDeath,
    /// A device's birth certificate.
    DBirth,
    /// A device's death certificate.
    DDeath,
    /// An edge node's data.
    NData,
    /// A device's data.
    DData,
    /// A command to an edge node.
    NCmd,
    /// A command to a device.
    DCmd,
}

impl MessageType {
    /// The topic segment, e.g. `NBIRTH`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::NBirth => "NBIRTH",
            MessageType::NDeath => "NDEATH",
            MessageType::DBirth => "DBIRTH",
            MessageType::DDeath => "DDEATH",
            MessageType::NData => "NDATA",
            MessageType::DData => "DDATA",
            MessageType::NCmd => "NCMD",
            MessageType::DCmd => "DCMD",
        }
    }

    fn parse(segment: &str) -> Option<Self> {
        Some(match segment {
            "NBIRTH" => MessageType::NBirth,
            "NDEATH" => MessageType::NDeath,
            "DBIRTH" => MessageType::DBirth,
            "DDEATH" => MessageType::DDeath,
            "NDATA" => MessageType::NData,
            "DDATA" => MessageType::DData,
            "NCMD" => MessageType::NCmd,
            "DCMD" => MessageType::DCmd,
            _ => return None,
        })
    }

    /// Whether the type is about a device (its topic has a device segment).
    pub fn is_device(self) -> bool {
        matches!(
            self,
            MessageType::DBirth | MessageType::DDeath | MessageType::DData | MessageType::DCmd
        )
    }
}

/// A parsed Sparkplug B topic, borrowing its segments from the topic string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparkplugTopic<'a> {
    /// A message of an edge node or one of its devices.
    Node {
        /// The group id.
        group: &'a str,
        /// The message type.
        kind: MessageType,
        /// The edge node id.
        edge_node: &'a str,
        /// The device id, for device message types.
        device: Option<&'a str>,
    },
    /// A host application's STATE.
    State {
        /// The host id.
        host_id: &'a str,
    },
}

/// Why a topic is not a Sparkplug B topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// The topic does not start with `spBv1.0/`.
    WrongNamespace,
    /// The message type segment is not one of the eight types (nor `STATE`).
    UnknownMessageType,
    /// The number of segments does not fit the message type (a node type with a device segment,
    /// a device type without one, more than five segments).
    WrongShape,
    /// A group, edge node, device or host id is empty, too long or has a character outside
    /// `[A-Za-z0-9._-]`.
    InvalidIdentifier,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::WrongNamespace => "topic does not start with spBv1.0/",
            TopicError::UnknownMessageType => {
                "message type is none of NBIRTH, NDEATH, DBIRTH, DDEATH, NDATA, DDATA, NCMD, DCMD, STATE"
            }
            TopicError::WrongShape => {
                "topic is not spBv1.0/{group}/{N*}/{edge_node}, spBv1.0/{group}/{D*}/{edge_node}/{device} or spBv1.0/STATE/{host_id}"
            }
            TopicError::InvalidIdentifier => {
                "group, edge node, device or host id is empty, longer than 128 bytes or not [A-Za-z0-9._-]"
            }
        })
    }
}

impl std::error::Error for TopicError {}

/// Whether `topic` is in the Sparkplug B namespace (whatever its shape).
pub fn is_sparkplug(topic: &str) -> bool {
    topic
        .strip_prefix(NAMESPACE)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Parses a Sparkplug B topic.
pub fn parse(topic: &str) -> Result<SparkplugTopic<'_>, TopicError> {
    let rest = topic
        .strip_prefix(NAMESPACE)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or(TopicError::WrongNamespace)?;
    let mut parts = rest.split('/');
    let first = parts.next().unwrap_or_default();
    let second = parts.next();
    if first == "STATE" {
        let (Some(host_id), None) = (second, parts.next()) else {
            return Err(TopicError::WrongShape);
        };
        if !is_valid_id(host_id) {
            return Err(TopicError::InvalidIdentifier);
        }
        return Ok(SparkplugTopic::State { host_id });
    }
    let group = first;
    let kind = MessageType::parse(second.ok_or(TopicError::WrongShape)?)
        .ok_or(TopicError::UnknownMessageType)?;
    let edge_node = parts.next().ok_or(TopicError::WrongShape)?;
    let device = parts.next();
    if parts.next().is_some() || device.is_some() != kind.is_device() {
        return Err(TopicError::WrongShape);
    }
    if !(is_valid_id(group) && is_valid_id(edge_node) && device.is_none_or(is_valid_id)) {
        return Err(TopicError::InvalidIdentifier);
    }
    Ok(SparkplugTopic::Node {
        group,
        kind,
        edge_node,
        device,
    })
}

/// Builds the topic of a node or device message.
pub fn build(group: &str, kind: MessageType, edge_node: &str, device: Option<&str>) -> String {
    match device {
        Some(device) => format!("{NAMESPACE}/{group}/{}/{edge_node}/{device}", kind.as_str()),
        None => format!("{NAMESPACE}/{group}/{}/{edge_node}", kind.as_str()),
    }
}

/// Builds a host application's STATE topic.
pub fn state(host_id: &str) -> String {
    format!("{NAMESPACE}/STATE/{host_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_node_device_and_state_topics() {
        assert_eq!(
            parse("spBv1.0/plant-1/NBIRTH/edge-7"),
            Ok(SparkplugTopic::Node {
                group: "plant-1",
                kind: MessageType::NBirth,
                edge_node: "edge-7",
                device: None
            })
        );
        assert_eq!(
            parse("spBv1.0/plant-1/DDATA/edge-7/pump.3"),
            Ok(SparkplugTopic::Node {
                group: "plant-1",
                kind: MessageType::DData,
                edge_node: "edge-7",
                device: Some("pump.3")
            })
        );
        assert_eq!(
            parse("spBv1.0/STATE/citytel"),
            Ok(SparkplugTopic::State { host_id: "citytel" })
        );
    }

    #[test]
    fn rejects_malformed_topics() {
        let cases = [
            ("spAv1.0/g/NDATA/e", TopicError::WrongNamespace),
            ("spBv1.0", TopicError::WrongNamespace),
            ("citytel/v1/a/b/c/telemetry", TopicError::WrongNamespace),
            ("spBv1.0/g/NDATUM/e", TopicError::UnknownMessageType),
            ("spBv1.0/g/ndata/e", TopicError::UnknownMessageType),
            ("spBv1.0/g", TopicError::WrongShape),
            ("spBv1.0/g/NDATA", TopicError::WrongShape),
            ("spBv1.0/g/NDATA/e/d", TopicError::WrongShape),
            ("spBv1.0/g/DDATA/e", TopicError::WrongShape),
            ("spBv1.0/g/DDATA/e/d/x", TopicError::WrongShape),
            ("spBv1.0/STATE", TopicError::WrongShape),
            ("spBv1.0/STATE/h/x", TopicError::WrongShape),
            ("spBv1.0//NDATA/e", TopicError::InvalidIdentifier),
            ("spBv1.0/g/DDATA/e/", TopicError::InvalidIdentifier),
            ("spBv1.0/g/DDATA/e/a b", TopicError::InvalidIdentifier),
            ("spBv1.0/STATE/+", TopicError::InvalidIdentifier),
        ];
        for (topic, want) in cases {
            assert_eq!(parse(topic), Err(want), "{topic}");
        }
        assert!(is_sparkplug("spBv1.0/g/NDATA/e/d/x"));
        assert!(!is_sparkplug("spBv1.0x/g/NDATA/e"));
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(
            group in "[A-Za-z0-9._-]{1,20}",
            edge in "[A-Za-z0-9._-]{1,20}",
            device in "[A-Za-z0-9._-]{1,20}",
            kind in prop::sample::select(vec![
                MessageType::NBirth, MessageType::NDeath, MessageType::DBirth, MessageType::DDeath,
                MessageType::NData, MessageType::DData, MessageType::NCmd, MessageType::DCmd,
            ]),
        ) {
            let device = kind.is_device().then_some(device.as_str());
            let topic = build(&group, kind, &edge, device);
            prop_assert_eq!(
                parse(&topic),
                Ok(SparkplugTopic::Node { group: &group, kind, edge_node: &edge, device })
            );
        }
    }
}
