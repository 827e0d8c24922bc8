//! The MQTT topic scheme: `citytel/v1/{site}/{kind}/{device_id}/{telemetry|status}`.
//!
//! Building and parsing live together so that devices and the ingester cannot disagree.
//! Parsing borrows from the topic string and allocates nothing.

use std::fmt;

/// First two segments of every citytel topic.
pub const PREFIX: &str = "citytel/v1";

/// Subscription filters that cover every device topic.
pub const SUBSCRIPTIONS: [&str; 2] = ["citytel/v1/+/+/+/telemetry", "citytel/v1/+/+/+/status"];

/// Longest accepted identifier (site, kind or device id), in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Which message a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A `TelemetryBatch`.
    Telemetry,
    /// A `Status` (birth, heartbeat, death).
    Status,
}

impl Channel {
    /// The last topic segment for this channel.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Telemetry => "telemetry",
            Channel::Status => "status",
        }
    }
}

/// A parsed device topic, borrowing its segments from the topic string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTopic<'a> {
    /// The site segment.
    pub site: &'a str,
    /// The device kind segment.
    pub kind: &'a str,
    /// The device id segment.
    pub device_id: &'a str,
    /// Telemetry or status.
    pub channel: Channel,
}

/// Why a topic is not a citytel device topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// The topic does not start with `citytel/v1/`.
    WrongPrefix,
    /// The topic does not have exactly six segments.
    WrongShape,
    /// The last segment is neither `telemetry` nor `status`.
    UnknownChannel,
    /// A site, kind or device id segment is empty, too long or has a character outside `[A-Za-z0-9._-]`.
    InvalidIdentifier,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::WrongPrefix => "topic does not start with citytel/v1/",
            TopicError::WrongShape => {
                "topic is not of the form citytel/v1/{site}/{kind}/{device_id}/{telemetry|status}"
            }
            TopicError::UnknownChannel => "last topic segment is neither telemetry nor status",
            TopicError::InvalidIdentifier => {
                "site, kind or device id is empty, longer than 128 bytes or not [A-Za-z0-9._-]"
            }
        })
    }
}

impl std::error::Error for TopicError {}

/// Whether `id` is a valid site, kind, device id or metric name: 1 to [`MAX_ID_LEN`] bytes of
/// `[A-Za-z0-9._-]`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Parses a device topic.
pub fn parse(topic: &str) -> Result<DeviceTopic<'_>, TopicError> {
    let rest = topic
        .strip_prefix(PREFIX)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or(TopicError::WrongPrefix)?;
    let mut parts = rest.split('/');
    let (Some(site), Some(kind), Some(device_id), Some(channel), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TopicError::WrongShape);
    };
    let channel = match channel {
        "telemetry" => Channel::Telemetry,
        "status" => Channel::Status,
        _ => return Err(TopicError::UnknownChannel),
    };
    if !(is_valid_id(site) && is_valid_id(kind) && is_valid_id(device_id)) {
        return Err(TopicError::InvalidIdentifier);
    }
    Ok(DeviceTopic {
        site,
        kind,
        device_id,
        channel,
    })
}

/// Builds the topic a device publishes `channel` messages on.
pub fn build(site: &str, kind: &str, device_id: &str, channel: Channel) -> String {
    format!("{PREFIX}/{site}/{kind}/{device_id}/{}", channel.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_telemetry_topic() {
        let t = parse("citytel/v1/dist-03/cabinet/cab-0042/telemetry").unwrap();
        assert_eq!(t.site, "dist-03");
        assert_eq!(t.kind, "cabinet");
        assert_eq!(t.device_id, "cab-0042");
        assert_eq!(t.channel, Channel::Telemetry);
    }

    #[test]
    fn rejects_malformed_topics() {
        let cases = [
            ("other/v1/a/b/c/telemetry", TopicError::WrongPrefix),
            ("citytel/v2/a/b/c/telemetry", TopicError::WrongPrefix),
            ("citytel/v1/a/b/telemetry", TopicError::WrongShape),
            ("citytel/v1/a/b/c/d/telemetry", TopicError::WrongShape),
            ("citytel/v1/a/b/c/readings", TopicError::UnknownChannel),
            ("citytel/v1/a//c/status", TopicError::InvalidIdentifier),
            ("citytel/v1/a/b/c d/status", TopicError::InvalidIdentifier),
            ("citytel/v1/a/b/+/status", TopicError::InvalidIdentifier),
        ];
        for (topic, want) in cases {
            assert_eq!(parse(topic), Err(want), "{topic}");
        }
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(
            site in "[A-Za-z0-9._-]{1,20}",
            kind in "[a-z_]{1,12}",
            device in "[A-Za-z0-9._-]{1,40}",
            status in any::<bool>(),
        ) {
            let channel = if status { Channel::Status } else { Channel::Telemetry };
            let topic = build(&site, &kind, &device, channel);
            let parsed = parse(&topic).unwrap();
            prop_assert_eq!(parsed, DeviceTopic { site: &site, kind: &kind, device_id: &device, channel });
        }
    }
}
