//! MQTT 5 sessions kept after their connection ends, for their Session Expiry Interval (at most
//! `endpoint.max_session_expiry`), so that a client reconnecting with clean start 0 learns
//! truthfully whether its session is still there (CONNACK's session present flag) and gets
//! back what the session held.
//!
//! A device connection only publishes, so a session holds little: its identity (a session
//! resumes only for the device that left it) and its subscriptions (a Sparkplug edge node's own
//! commands and citytel's STATE), and its Last Will while that waits for its Will Delay
//! Interval ([`DelayedWill`]). At most `endpoint.max_kept_sessions` are kept; one more is
//! not kept (the client finds no session when it returns) and counted. MQTT 3.1.1 clients are
//! not kept here: their persistent session never expires and holds no state, so it is always
//! reported present.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::will::DelayedWill;
use crate::telemetry::metrics as m;

/// Session Expiry Interval that means "never" (MQTT 5, 3.1.2.11.2).
pub(crate) const NEVER: u32 = u32::MAX;

/// The sessions kept, by client id.
#[derive(Debug)]
pub(crate) struct KeptSessions {
    by_client: Mutex<HashMap<String, Kept>>,
    /// Most sessions kept at once.
    limit: usize,
}

/// One session kept after its connection.
#[derive(Debug)]
struct Kept {
    /// The device the connection authenticated as (`None` without device authentication).
    identity: Option<String>,
    /// When the session ends.
    expires_at: Instant,
    /// The filters it was subscribed to.
    subscriptions: BTreeSet<String>,
    /// Its Last Will, waiting for its delay.
    will: Option<DelayedWill>,
}

/// What a connection finds of the session its client id left.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The session resumed: the filters it was subscribed to (its delayed Will is cancelled).
    pub(crate) resumed: Option<BTreeSet<String>>,
    /// The session ended instead, with a Will still waiting: publish it now, before anything
    /// of the new connection.
    pub(crate) ended_will: Option<DelayedWill>,
}

impl KeptSessions {
    /// Keeps at most `limit` sessions.
    pub(crate) fn new(limit: usize) -> KeptSessions {
        KeptSessions {
            by_client: Mutex::new(HashMap::new()),
            limit,
        }
    }

    /// The session `client_id` left, for a connection authenticated as `identity`: resumed
    /// (the connection owns it now), or ended with clean start, when it expired, or when
    /// another device left it (a session is never shared).
    pub(crate) fn resume(
        &self,
        client_id: &str,
        identity: Option<&str>,
        clean_start: bool,
    ) -> Found {
        let Some(kept) = self.by_client.lock().remove(client_id) else {
            return Found::default();
        };
        let usable = !clean_start
            && kept.expires_at > Instant::now()
            && kept.identity.as_deref() == identity;
        if usable {
            if let Some(will) = &kept.will {
                will.cancel();
            }
            Found {
                resumed: Some(kept.subscriptions),
                ended_will: None,
            }
        } else {
            Found {
                resumed: None,
                ended_will: kept.will,
            }
        }
    }

    /// Keeps the session of `client_id` for `expiry` (none: it ends now), with its delayed
    /// `will`; the Will is given back when the session ends now, or could not be kept because
    /// `endpoint.max_kept_sessions` are kept already (counted).
    pub(crate) fn keep(
        &self,
        client_id: &str,
        identity: Option<&str>,
        expiry: Duration,
        subscriptions: BTreeSet<String>,
        will: Option<DelayedWill>,
    ) -> Result<(), Option<DelayedWill>> {
        if expiry.is_zero() {
            return Err(will);
        }
        let now = Instant::now();
        let mut map = self.by_client.lock();
        if map.len() >= self.limit && !map.contains_key(client_id) {
            map.retain(|_, kept| kept.expires_at > now);
        }
        if map.len() >= self.limit && !map.contains_key(client_id) {
            drop(map);
            metrics::counter!(m::ENDPOINT_SESSIONS_NOT_KEPT_TOTAL).increment(1);
            tracing::warn!(
                client_id,
                limit = self.limit,
                "session not kept: endpoint.max_kept_sessions reached"
            );
            return Err(will);
        }
        map.insert(
            client_id.to_string(),
            Kept {
                identity: identity.map(str::to_string),
                expires_at: now + expiry,
                subscriptions,
                will,
            },
        );
        Ok(())
    }

    /// Number of sessions kept (expired ones included until they are swept).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_client.lock().len()
    }
}

/// The expiry granted for a requested Session Expiry Interval (seconds, [`NEVER`] for never):
/// at most `max`.
pub(crate) fn granted_expiry(requested_s: u32, max: Duration) -> Duration {
    match requested_s {
        NEVER => max,
        s => Duration::from_secs(u64::from(s)).min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(filters: &[&str]) -> BTreeSet<String> {
        filters.iter().map(|f| f.to_string()).collect()
    }

    /// Keeps a session without a Will; whether it was kept.
    fn keep(kept: &KeptSessions, id: &str, who: Option<&str>, secs: u64, s: &[&str]) -> bool {
        kept.keep(id, who, Duration::from_secs(secs), subs(s), None)
            .is_ok()
    }

    fn resume(
        kept: &KeptSessions,
        id: &str,
        who: Option<&str>,
        clean: bool,
    ) -> Option<Vec<String>> {
        let found = kept.resume(id, who, clean);
        assert!(found.ended_will.is_none());
        found.resumed.map(|s| s.into_iter().collect())
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_resumes_until_it_expires_and_only_for_its_device() {
        let kept = KeptSessions::new(10);
        let x = Some(vec!["x".to_string()]);
        assert!(keep(&kept, "a", Some("dev-a"), 60, &["x"]));
        assert_eq!(resume(&kept, "a", Some("dev-a"), false), x);
        assert_eq!(resume(&kept, "a", Some("dev-a"), false), None, "taken");

        keep(&kept, "a", Some("dev-a"), 60, &["x"]);
        assert_eq!(
            resume(&kept, "a", Some("dev-b"), false),
            None,
            "another device"
        );
        assert_eq!(
            resume(&kept, "a", Some("dev-a"), false),
            None,
            "and it ended"
        );

        keep(&kept, "a", None, 60, &[]);
        assert_eq!(resume(&kept, "a", None, true), None, "clean start");
        assert_eq!(kept.len(), 0);

        keep(&kept, "a", None, 60, &["x"]);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(resume(&kept, "a", None, false), x);
        keep(&kept, "a", None, 60, &["x"]);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(resume(&kept, "a", None, false), None, "expired");
    }

    #[tokio::test(start_paused = true)]
    async fn an_expiry_of_zero_keeps_nothing() {
        let kept = KeptSessions::new(10);
        assert!(!keep(&kept, "a", None, 0, &["x"]));
        assert_eq!(kept.len(), 0);
        assert_eq!(resume(&kept, "a", None, false), None);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_limit_expired_sessions_make_room_and_live_ones_are_not_replaced() {
        let kept = KeptSessions::new(2);
        assert!(keep(&kept, "a", None, 10, &[]));
        assert!(keep(&kept, "b", None, 100, &[]));
        assert!(!keep(&kept, "c", None, 100, &[]));
        assert!(keep(&kept, "b", None, 100, &[]), "same id");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(keep(&kept, "c", None, 100, &[]));
        assert_eq!(kept.len(), 2);
        assert_eq!(resume(&kept, "a", None, false), None);
        assert!(resume(&kept, "b", None, false).is_some());
        assert!(resume(&kept, "c", None, false).is_some());
    }

    #[test]
    fn the_granted_expiry_is_capped() {
        let max = Duration::from_secs(3600);
        assert_eq!(granted_expiry(0, max), Duration::ZERO);
        assert_eq!(granted_expiry(60, max), Duration::from_secs(60));
        assert_eq!(granted_expiry(7200, max), max);
        assert_eq!(granted_expiry(NEVER, max), max);
    }
}
