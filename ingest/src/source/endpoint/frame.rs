//! The raw bytes of MQTT 3.1.1 and 5 packets, checked where rumqttc's codec is lenient, and oversize
//! PUBLISH packets read past without buffering them.
//!
//! Checked before a packet is parsed (a violation closes the connection, MQTT-4.8.0-1):
//! - the fixed header's flags, the low nibble of the first byte: 0b0010 for PUBREL, SUBSCRIBE
//!   and UNSUBSCRIBE, 0 for every other packet but PUBLISH, whose QoS must not be 3 and whose
//!   DUP flag must be 0 at QoS 0 (MQTT-2.2.2-1, MQTT-3.3.1-2, MQTT-3.3.1-4);
//! - CONNECT's flags: the reserved bit must be 0 (MQTT-3.1.2-3) and a password needs a user
//!   name in MQTT 3.1.1 (MQTT-3.1.2-22; MQTT 5 allows it);
//! - after parsing, a PUBLISH topic name must not contain `+` or `#` (MQTT-3.3.2-2).
//!
//! A PUBLISH larger than `endpoint.max_packet_bytes` but within `endpoint.max_discard_bytes` is
//! an [`Oversize`]: its topic, packet id and first payload bytes are kept, the rest is consumed
//! as it arrives and dropped, and the endpoint then dead-letters it (`oversize`) and
//! acknowledges it like any other rejected message.

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::QoS;

/// The fixed header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FixedHeader {
    /// The first byte: type in the high nibble, flags in the low one.
    pub(crate) byte1: u8,
    /// Bytes of the fixed header (the first byte and the remaining length).
    pub(crate) header_len: usize,
    /// Bytes after the fixed header.
    pub(crate) remaining_len: usize,
}

const CONNECT: u8 = 1;
const PUBLISH: u8 = 3;
const PUBREL: u8 = 6;
const SUBSCRIBE: u8 = 8;
const UNSUBSCRIBE: u8 = 10;

impl FixedHeader {
    /// The packet type.
    pub(crate) fn packet_type(&self) -> u8 {
        self.byte1 >> 4
    }

    /// The whole packet's length.
    pub(crate) fn total_len(&self) -> usize {
        self.header_len + self.remaining_len
    }

    /// Whether this is a PUBLISH.
    pub(crate) fn is_publish(&self) -> bool {
        self.packet_type() == PUBLISH
    }

    /// Whether this is a CONNECT.
    pub(crate) fn is_connect(&self) -> bool {
        self.packet_type() == CONNECT
    }
}

/// The fixed header at the start of `buf`: `None` until enough bytes are there, an error for a
/// malformed remaining length.
pub(crate) fn fixed_header(buf: &[u8]) -> Option<Result<FixedHeader, String>> {
    let byte1 = *buf.first()?;
    let mut remaining_len = 0usize;
    for i in 0..4 {
        let byte = *buf.get(1 + i)?;
        remaining_len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(Ok(FixedHeader {
                byte1,
                header_len: 2 + i,
                remaining_len,
            }));
        }
    }
    Some(Err("malformed remaining length".into()))
}

/// Checks the fixed header's flags (see the module documentation).
pub(crate) fn check_flags(header: &FixedHeader) -> Result<(), String> {
    let flags = header.byte1 & 0x0f;
    let expected = match header.packet_type() {
        PUBLISH => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err("PUBLISH with QoS 3".into());
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err("PUBLISH with DUP set at QoS 0".into());
            }
            return Ok(());
        }
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 0b0010,
        _ => 0,
    };
    if flags != expected {
        return Err(format!(
            "packet type {} with fixed-header flags {flags:#06b}",
            header.packet_type()
        ));
    }
    Ok(())
}

/// Checks the flags of the CONNECT packet at the start of `buf` (see the module
/// documentation); `None` until enough bytes are there.
pub(crate) fn check_connect_flags(buf: &[u8], header: &FixedHeader) -> Option<Result<(), String>> {
    let at = header.header_len;
    let name_len = usize::from(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]));
    // Protocol name, then the level byte, then the flags.
    let flags = *buf.get(at + 2 + name_len + 1)?;
    if flags & 0x01 != 0 {
        return Some(Err("CONNECT with the reserved flag set".into()));
    }
    let level = buf[at + 2 + name_len];
    if level != 5 && flags & 0x40 != 0 && flags & 0x80 == 0 {
        return Some(Err("CONNECT with a password but no user name".into()));
    }
    Some(Ok(()))
}

/// Whether a PUBLISH topic name holds a wildcard.
pub(crate) fn has_wildcard(topic: &str) -> bool {
    topic.contains(['+', '#'])
}

/// An oversize PUBLISH being read past.
#[derive(Debug)]
pub(crate) struct Oversize {
    /// Its topic (lossily UTF-8).
    pub(crate) topic: String,
    /// Its QoS.
    pub(crate) qos: QoS,
    /// Its packet id (0 at QoS 0).
    pub(crate) pkid: u16,
    /// The whole packet's length.
    pub(crate) total_len: usize,
    /// Its first payload bytes.
    pub(crate) kept: BytesMut,
    keep: usize,
    /// Payload bytes still to consume.
    left: usize,
}

impl Oversize {
    /// Starts reading past the oversize PUBLISH at the start of `buf`, keeping up to `keep`
    /// payload bytes: consumes its headers (with MQTT 5 `properties`, those too) and whatever
    /// of its payload `buf` holds. `None` until the headers are in `buf`; an error when they
    /// are malformed.
    pub(crate) fn start(
        buf: &mut BytesMut,
        header: &FixedHeader,
        keep: usize,
        properties: bool,
    ) -> Option<Result<Oversize, String>> {
        let flags = header.byte1 & 0x0f;
        let qos = match (flags >> 1) & 0b11 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        let at = header.header_len;
        let topic_len = usize::from(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]));
        let pkid_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
        let mut variable_len = 2 + topic_len + pkid_len;
        if properties {
            // A variable byte integer, then that many bytes of properties.
            let mut len = 0usize;
            let mut i = 0;
            loop {
                let byte = *buf.get(at + variable_len + i)?;
                len |= usize::from(byte & 0x7f) << (7 * i);
                i += 1;
                if byte & 0x80 == 0 {
                    break;
                }
                if i == 4 {
                    return Some(Err("malformed PUBLISH property length".into()));
                }
            }
            variable_len += i + len;
        }
        if variable_len > header.remaining_len {
            return Some(Err("PUBLISH shorter than its topic".into()));
        }
        if buf.len() < at + variable_len {
            return None;
        }
        let topic = String::from_utf8_lossy(&buf[at + 2..at + 2 + topic_len]).into_owned();
        let pkid = if pkid_len == 2 {
            u16::from_be_bytes([buf[at + 2 + topic_len], buf[at + 3 + topic_len]])
        } else {
            0
        };
        buf.advance(at + variable_len);
        let mut oversize = Oversize {
            topic,
            qos,
            pkid,
            total_len: header.total_len(),
            kept: BytesMut::new(),
            keep,
            left: header.remaining_len - variable_len,
        };
        oversize.feed(buf);
        Some(Ok(oversize))
    }

    /// Consumes what `buf` holds of the rest of the packet (and nothing after it); returns
    /// whether the packet is now wholly read.
    pub(crate) fn feed(&mut self, buf: &mut BytesMut) -> bool {
        let take = buf.len().min(self.left);
        let kept = take.min(self.keep - self.kept.len());
        self.kept.extend_from_slice(&buf[..kept]);
        buf.advance(take);
        self.left -= take;
        self.left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> FixedHeader {
        fixed_header(bytes).unwrap().unwrap()
    }

    #[test]
    fn fixed_header_flags_must_be_the_ones_the_protocol_fixes() {
        let ok = [
            0x10, // CONNECT
            0x30, 0x32, 0x34, 0x3b, // PUBLISH QoS 0, 1, 2; DUP + QoS 1 + RETAIN
            0x40, 0x62, 0x82, 0xa2, 0xc0,
            0xe0, // PUBACK, PUBREL, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT
        ];
        for byte1 in ok {
            assert!(check_flags(&header(&[byte1, 0])).is_ok(), "{byte1:#04x}");
        }
        let bad = [
            0x11, // CONNECT with a flag
            0x36, // PUBLISH QoS 3
            0x38, // PUBLISH DUP at QoS 0
            0x60, // PUBREL without its 0b0010
            0x80, // SUBSCRIBE without its 0b0010
            0xa0, // UNSUBSCRIBE without its 0b0010
            0xc1, // PINGREQ with a flag
            0xe2, // DISCONNECT with a flag
            0x42, // PUBACK with a flag
        ];
        for byte1 in bad {
            assert!(check_flags(&header(&[byte1, 0])).is_err(), "{byte1:#04x}");
        }
    }

    #[test]
    fn remaining_lengths_parse_and_a_fifth_length_byte_is_malformed() {
        assert_eq!(fixed_header(&[0x30]), None);
        assert_eq!(fixed_header(&[0x30, 0x80]), None);
        let h = header(&[0x30, 0x80, 0x80, 0x01]);
        assert_eq!((h.header_len, h.remaining_len), (4, 16_384));
        assert!(
            fixed_header(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01])
                .unwrap()
                .is_err()
        );
    }

    /// A CONNECT's first bytes with `flags`.
    fn connect(flags: u8) -> Vec<u8> {
        vec![0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 30]
    }

    #[test]
    fn connect_flags_reserved_bit_and_password_without_user_are_refused() {
        let check = |flags| {
            let buf = connect(flags);
            check_connect_flags(&buf, &header(&buf)).unwrap()
        };
        assert!(check(0x02).is_ok(), "clean session");
        assert!(check(0xc2).is_ok(), "user name and password");
        assert!(check(0x82).is_ok(), "user name only");
        assert!(check(0x03).is_err(), "reserved bit");
        assert!(check(0x42).is_err(), "password without user name");
        let mut v5 = connect(0x42);
        v5[8] = 5;
        assert!(
            check_connect_flags(&v5, &header(&v5)).unwrap().is_ok(),
            "MQTT 5 allows a password without a user name"
        );
        let short = &connect(0x02)[..9];
        assert_eq!(check_connect_flags(short, &header(short)), None);
    }

    #[test]
    fn wildcards_are_not_topic_names() {
        assert!(has_wildcard("citytel/v1/+/cabinet/x/telemetry"));
        assert!(has_wildcard("citytel/#"));
        assert!(!has_wildcard("citytel/v1/s/cabinet/x/telemetry"));
    }

    #[test]
    fn an_oversize_publish_is_read_past_keeping_its_first_bytes() {
        // PUBLISH QoS 1, topic "t/a", packet id 7, 300 payload bytes, then a PINGREQ.
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let remaining = 2 + 3 + 2 + payload.len();
        let mut packet = vec![0x32, (remaining as u8) | 0x80, (remaining >> 7) as u8];
        packet.extend_from_slice(&[0, 3, b't', b'/', b'a', 0, 7]);
        packet.extend_from_slice(&payload);
        let next = [0xc0, 0x00];

        // Arriving in small pieces: the headers first, then the rest.
        let mut buf = BytesMut::from(&packet[..4]);
        let h = header(&buf);
        assert!(
            Oversize::start(&mut buf, &h, 100, false).is_none(),
            "headers incomplete"
        );
        buf.extend_from_slice(&packet[4..50]);
        let mut oversize = Oversize::start(&mut buf, &h, 100, false).unwrap().unwrap();
        assert_eq!((oversize.topic.as_str(), oversize.pkid), ("t/a", 7));
        assert_eq!(oversize.qos, QoS::AtLeastOnce);
        assert_eq!(oversize.total_len, packet.len());
        assert!(buf.is_empty());
        let mut rest = BytesMut::from(&packet[50..]);
        rest.extend_from_slice(&next);
        assert!(oversize.feed(&mut rest));
        assert_eq!(&oversize.kept[..], &payload[..100]);
        assert_eq!(&rest[..], &next, "the next packet is left alone");
    }

    #[test]
    fn an_oversize_mqtt5_publish_keeps_its_payload_not_its_properties() {
        // PUBLISH QoS 1, topic "t", packet id 9, properties (3 bytes: user property too short
        // to matter, only skipped), 50 payload bytes.
        let payload = [7u8; 50];
        let remaining = 2 + 1 + 2 + 1 + 3 + payload.len();
        let mut packet = vec![0x32, remaining as u8, 0, 1, b't', 0, 9, 3, 0x01, 0x01, 0x02];
        packet.extend_from_slice(&payload);
        let mut buf = BytesMut::from(&packet[..]);
        let h = header(&buf);
        let mut oversize = Oversize::start(&mut buf, &h, 100, true).unwrap().unwrap();
        assert!(oversize.feed(&mut buf));
        assert_eq!((oversize.topic.as_str(), oversize.pkid), ("t", 9));
        assert_eq!(&oversize.kept[..], &payload[..]);
    }

    #[test]
    fn a_publish_shorter_than_its_topic_is_malformed() {
        let mut buf = BytesMut::from(&[0x30, 4, 0, 200, b'a', b'b'][..]);
        let h = header(&buf);
        assert!(Oversize::start(&mut buf, &h, 10, false).unwrap().is_err());
    }
}
