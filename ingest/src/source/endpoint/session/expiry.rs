//! A connection's MQTT 5 session lifetime: the Session Expiry Interval granted at CONNECT and
//! changed by DISCONNECT, the session resumed from [`crate::source::endpoint::kept`], and what
//! is kept of it when the connection ends.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Next, Session};
use crate::source::endpoint::connection::Disconnect;
use crate::source::endpoint::kept;

impl Session {
    /// Starts with the Session Expiry Interval granted (seconds) and, when the session was
    /// resumed, the subscriptions it held (an edge node's command route bound again).
    pub(crate) fn resume(&mut self, expiry_s: u32, subscriptions: Option<BTreeSet<String>>) {
        self.session_expiry_s = expiry_s;
        for filter in subscriptions.into_iter().flatten() {
            self.restore_subscription(filter);
        }
    }

    /// Leaves at the client's DISCONNECT, which may change the Session Expiry Interval, but not
    /// from 0 to another (MQTT 5, 3.14.2.2.2: a protocol error).
    pub(super) fn leave(&mut self, expiry_s: Option<u32>, reason: Disconnect) -> Next {
        match expiry_s {
            Some(s) if s != 0 && self.session_expiry_s == 0 => Next::Stop(
                Disconnect::ProtocolError("DISCONNECT sets a session expiry after 0".into()),
            ),
            Some(s) => {
                self.session_expiry_s = s;
                Next::Stop(reason)
            }
            None => Next::Stop(reason),
        }
    }

    /// How long the session outlives the connection (at most `endpoint.max_session_expiry`).
    pub(crate) fn expiry(&self) -> Duration {
        kept::granted_expiry(self.session_expiry_s, self.shared.config.max_session_expiry)
    }

    /// The filters the session is subscribed to, taken to be kept.
    pub(crate) fn take_subscriptions(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.subscriptions)
    }
}
