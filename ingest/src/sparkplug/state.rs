//! The primary host's STATE (Sparkplug 3.0): `{"online":bool,"timestamp":ms}`, retained at QoS 1
//! on `spBv1.0/STATE/{host_id}`.

use serde::{Deserialize, Serialize};

/// A STATE payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HostState {
    /// Whether the host is online.
    pub(crate) online: bool,
    /// When the host connected (the same value in its Will and its online message), ms since
    /// the Unix epoch.
    pub(crate) timestamp: i64,
}

impl HostState {
    /// The JSON payload.
    pub(crate) fn encode(self) -> Vec<u8> {
        format!(
            "{{\"online\":{},\"timestamp\":{}}}",
            self.online, self.timestamp
        )
        .into_bytes()
    }

    /// Reads a STATE payload; `None` when it is not one.
    pub(crate) fn decode(payload: &[u8]) -> Option<Self> {
        serde_json::from_slice(payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_the_json_payload() {
        let s = HostState {
            online: true,
            timestamp: 1_700_000_000_123,
        };
        assert_eq!(s.encode(), br#"{"online":true,"timestamp":1700000000123}"#);
        assert_eq!(HostState::decode(&s.encode()), Some(s));
        assert_eq!(
            HostState::decode(br#"{"timestamp": 5, "online": false}"#),
            Some(HostState {
                online: false,
                timestamp: 5
            })
        );
        assert_eq!(HostState::decode(b"ONLINE"), None);
    }
}
