//! What citytel writes into WAL records: accepted messages, dead letters, device connections
//! opening and closing at the device endpoint, commands (state changes requested through the
//! API), and the service clock's ticks and restarts while alert rules are in force. The WAL
//! itself stores opaque payloads; their layout is in `FORMAT.md` next to this file.

use crate::decode::RejectReason;

const TYPE_MESSAGE: u8 = 1;
const TYPE_DEAD_LETTER: u8 = 2;
const TYPE_CONNECTION: u8 = 3;
const TYPE_COMMAND: u8 = 4;
const TYPE_TICK: u8 = 5;
const TYPE_STARTED: u8 = 6;

/// What happened to a device's connection to citytel's device endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Connection {
    /// The connection opened (CONNECT accepted).
    Opened,
    /// The device closed it cleanly (MQTT DISCONNECT).
    Closed,
    /// It ended without a DISCONNECT: the socket closed or failed, the keep-alive expired, or the
    /// device broke the protocol.
    Lost,
}

impl Connection {
    /// Every variant, in code order.
    pub const ALL: [Connection; 3] = [Connection::Opened, Connection::Closed, Connection::Lost];

    /// Stable one-byte code in WAL records (never 0).
    pub fn code(self) -> u8 {
        match self {
            Connection::Opened => 1,
            Connection::Closed => 2,
            Connection::Lost => 3,
        }
    }

    /// The variant with the given [`code`](Self::code).
    pub fn from_code(code: u8) -> Option<Connection> {
        Connection::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// Largest payload kept with a dead letter.
pub const DEAD_LETTER_PAYLOAD_CAP: usize = 64 * 1024;

/// One WAL entry, borrowing from the record (when read) or the message (when written).
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// An accepted message, payload exactly as received.
    Message {
        /// Receive time, ms since the Unix epoch.
        received_at_ms: i64,
        /// MQTT topic.
        topic: &'a str,
        /// Protobuf payload.
        payload: &'a [u8],
    },
    /// A rejected message with its reason.
    DeadLetter {
        /// Receive time, ms since the Unix epoch.
        received_at_ms: i64,
        /// Why it was rejected.
        reason: RejectReason,
        /// MQTT topic.
        topic: &'a str,
        /// Human-readable detail.
        detail: &'a str,
        /// The payload, capped at [`DEAD_LETTER_PAYLOAD_CAP`] bytes.
        payload: &'a [u8],
    },
    /// A device's connection to the device endpoint opened or closed.
    Connection {
        /// When the endpoint saw it, ms since the Unix epoch.
        received_at_ms: i64,
        /// Opened, closed or lost.
        change: Connection,
        /// The device's status topic (`citytel/v1/{site}/{kind}/{device_id}/status`).
        topic: &'a str,
    },
    /// A state change requested through the API (encoded by `state::persist`).
    Command {
        /// When it was submitted, ms since the Unix epoch.
        received_at_ms: i64,
        /// The encoded command.
        payload: &'a [u8],
    },
    /// The service clock reached `at_ms` with deadlines due (devices' silence thresholds,
    /// alerts' `for`): written by the writer's tick while alert rules are in force, so that
    /// what the deadlines did (alerts firing without any message arriving) replays identically.
    Tick {
        /// The clock's time, ms since the Unix epoch.
        at_ms: i64,
    },
    /// citytel started at `at_ms` (after the replay of everything before): what happened while
    /// it was down is unknown.
    Started {
        /// The clock's time at the start, ms since the Unix epoch.
        at_ms: i64,
    },
}

/// A record that does not hold a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid wal entry: {0}")]
pub struct EntryError(&'static str);

impl Entry<'_> {
    /// Appends the encoded entry to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Entry::Message {
                received_at_ms,
                topic,
                payload,
            } => {
                out.push(TYPE_MESSAGE);
                out.extend_from_slice(&received_at_ms.to_le_bytes());
                put_str(out, topic);
                out.extend_from_slice(payload);
            }
            Entry::DeadLetter {
                received_at_ms,
                reason,
                topic,
                detail,
                payload,
            } => {
                out.push(TYPE_DEAD_LETTER);
                out.extend_from_slice(&received_at_ms.to_le_bytes());
                out.push(reason.code());
                put_str(out, topic);
                put_str(out, detail);
                out.extend_from_slice(&payload[..payload.len().min(DEAD_LETTER_PAYLOAD_CAP)]);
            }
            Entry::Connection {
                received_at_ms,
                change,
                topic,
            } => {
                out.push(TYPE_CONNECTION);
                out.extend_from_slice(&received_at_ms.to_le_bytes());
                out.push(change.code());
                put_str(out, topic);
            }
            Entry::Command {
                received_at_ms,
                payload,
            } => {
                out.push(TYPE_COMMAND);
                out.extend_from_slice(&received_at_ms.to_le_bytes());
                out.extend_from_slice(payload);
            }
            Entry::Tick { at_ms } => {
                out.push(TYPE_TICK);
                out.extend_from_slice(&at_ms.to_le_bytes());
            }
            Entry::Started { at_ms } => {
                out.push(TYPE_STARTED);
                out.extend_from_slice(&at_ms.to_le_bytes());
            }
        }
    }

    /// The entry's time: when it was received, submitted, or the clock's time.
    pub fn time_ms(&self) -> i64 {
        match *self {
            Entry::Message { received_at_ms, .. }
            | Entry::DeadLetter { received_at_ms, .. }
            | Entry::Connection { received_at_ms, .. }
            | Entry::Command { received_at_ms, .. } => received_at_ms,
            Entry::Tick { at_ms } | Entry::Started { at_ms } => at_ms,
        }
    }

    /// Decodes an entry from a record payload.
    pub fn decode(buf: &[u8]) -> Result<Entry<'_>, EntryError> {
        let (&kind, rest) = buf.split_first().ok_or(EntryError("empty"))?;
        let (received_at_ms, rest) = take_i64(rest)?;
        match kind {
            TYPE_MESSAGE => {
                let (topic, payload) = take_str(rest)?;
                Ok(Entry::Message {
                    received_at_ms,
                    topic,
                    payload,
                })
            }
            TYPE_DEAD_LETTER => {
                let (&code, rest) = rest.split_first().ok_or(EntryError("no reason"))?;
                let reason = RejectReason::from_code(code).ok_or(EntryError("unknown reason"))?;
                let (topic, rest) = take_str(rest)?;
                let (detail, payload) = take_str(rest)?;
                Ok(Entry::DeadLetter {
                    received_at_ms,
                    reason,
                    topic,
                    detail,
                    payload,
                })
            }
            TYPE_CONNECTION => {
                let (&code, rest) = rest.split_first().ok_or(EntryError("no change"))?;
                let change =
                    Connection::from_code(code).ok_or(EntryError("unknown connection change"))?;
                let (topic, rest) = take_str(rest)?;
                if !rest.is_empty() {
                    return Err(EntryError("trailing bytes after a connection"));
                }
                Ok(Entry::Connection {
                    received_at_ms,
                    change,
                    topic,
                })
            }
            TYPE_COMMAND if !rest.is_empty() => Ok(Entry::Command {
                received_at_ms,
                payload: rest,
            }),
            TYPE_COMMAND => Err(EntryError("empty command")),
            TYPE_TICK if rest.is_empty() => Ok(Entry::Tick {
                at_ms: received_at_ms,
            }),
            TYPE_STARTED if rest.is_empty() => Ok(Entry::Started {
                at_ms: received_at_ms,
            }),
            TYPE_TICK | TYPE_STARTED => Err(EntryError("trailing bytes after a clock entry")),
            _ => Err(EntryError("unknown entry type")),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = &s[..floor_char_boundary(s, usize::from(u16::MAX))];
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The largest index of at most `max` that is a character boundary of `s`.
pub(crate) fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

fn take_i64(buf: &[u8]) -> Result<(i64, &[u8]), EntryError> {
    let (head, rest) = buf
        .split_at_checked(8)
        .ok_or(EntryError("truncated time"))?;
    let mut b = [0u8; 8];
    b.copy_from_slice(head);
    Ok((i64::from_le_bytes(b), rest))
}

fn take_str(buf: &[u8]) -> Result<(&str, &[u8]), EntryError> {
    let (len, rest) = buf
        .split_at_checked(2)
        .ok_or(EntryError("truncated length"))?;
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let (s, rest) = rest
        .split_at_checked(len)
        .ok_or(EntryError("truncated string"))?;
    let s = std::str::from_utf8(s).map_err(|_| EntryError("string is not utf-8"))?;
    Ok((s, rest))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round_trip(entry: &Entry<'_>) -> Vec<u8> {
        let mut buf = Vec::new();
        entry.encode(&mut buf);
        assert_eq!(&Entry::decode(&buf).unwrap(), entry);
        buf
    }

    #[test]
    fn dead_letter_payloads_are_capped() {
        let big = vec![7u8; DEAD_LETTER_PAYLOAD_CAP + 10];
        let mut buf = Vec::new();
        Entry::DeadLetter {
            received_at_ms: 1,
            reason: RejectReason::Oversize,
            topic: "t",
            detail: "d",
            payload: &big,
        }
        .encode(&mut buf);
        match Entry::decode(&buf).unwrap() {
            Entry::DeadLetter { payload, .. } => assert_eq!(payload.len(), DEAD_LETTER_PAYLOAD_CAP),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_connection_entry_has_the_documented_layout() {
        let buf = round_trip(&Entry::Connection {
            received_at_ms: 0x0102,
            change: Connection::Lost,
            topic: "t/s",
        });
        assert_eq!(buf, b"\x03\x02\x01\0\0\0\0\0\0\x03\x03\0t/s");
    }

    #[test]
    fn a_command_entry_has_the_documented_layout() {
        let buf = round_trip(&Entry::Command {
            received_at_ms: 0x0102,
            payload: b"\xc1\x02\x01",
        });
        assert_eq!(buf, b"\x04\x02\x01\0\0\0\0\0\0\xc1\x02\x01");
    }

    #[test]
    fn clock_entries_have_the_documented_layout() {
        let tick = round_trip(&Entry::Tick { at_ms: 0x0102 });
        assert_eq!(tick, b"\x05\x02\x01\0\0\0\0\0\0");
        let started = round_trip(&Entry::Started { at_ms: 0x0102 });
        assert_eq!(started, b"\x06\x02\x01\0\0\0\0\0\0");
        assert_eq!(Entry::Tick { at_ms: 9 }.time_ms(), 9);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x01",
            b"\x09aaaaaaaa",
            b"\x01\0\0\0\0\0\0\0\0\xff\xff",
            b"\x03\0\0\0\0\0\0\0\0",
            b"\x03\0\0\0\0\0\0\0\0\x09\0\0",
            b"\x03\0\0\0\0\0\0\0\0\x01\x05\0ab",
            b"\x04\0\0\0\0\0\0\0\0",
            b"\x05\0\0\0\0\0\0\0\0x",
            b"\x06\0\0\0",
        ] {
            assert!(Entry::decode(bad).is_err());
        }
    }

    proptest! {
        #[test]
        fn entries_round_trip(
            t in any::<i64>(),
            topic in "\\PC{0,80}",
            detail in "\\PC{0,80}",
            payload in proptest::collection::vec(any::<u8>(), 0..500),
            code in 1u8..=11,
            change in 0usize..3,
        ) {
            round_trip(&Entry::Message { received_at_ms: t, topic: &topic, payload: &payload });
            round_trip(&Entry::DeadLetter {
                received_at_ms: t,
                reason: RejectReason::from_code(code).unwrap(),
                topic: &topic,
                detail: &detail,
                payload: &payload,
            });
            round_trip(&Entry::Connection {
                received_at_ms: t,
                change: Connection::ALL[change],
                topic: &topic,
            });
            if !payload.is_empty() {
                round_trip(&Entry::Command { received_at_ms: t, payload: &payload });
            }
        }
    }
}
