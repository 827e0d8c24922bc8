//! Client ids of the open connections, so that a second connection with the same id takes over
//! the first (MQTT 3.1.1, 3.1.4-2).
//!
//! A takeover must come from the same identity: with device authentication, a connection that
//! authenticated as another device cannot take a client id over (it is refused, and the open
//! connection stays). A takeover is ordered: the new connection waits until the one it replaces has queued
//! everything it will queue (its last messages, and its Last Will and connection event if it had
//! dropped just before), so the pipeline never sees the old connection's end after the new one's
//! start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// The open connections by client id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_client: Mutex<HashMap<String, Entry>>,
    next_id: AtomicU64,
}

/// What is kept per client id.
#[derive(Debug)]
struct Entry {
    connection_id: u64,
    /// The device the connection authenticated as (`None` without device authentication).
    identity: Option<String>,
    taken_over: CancellationToken,
    finished: CancellationToken,
}

/// A takeover refused: the client id is held by a connection authenticated as another device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TakeoverRefused {
    /// The device the open connection authenticated as.
    pub(crate) holder: Option<String>,
}

/// A registered connection: its id and the token cancelled when another connection takes over.
#[derive(Debug)]
pub(crate) struct Registration {
    /// Unique id of this connection.
    pub(crate) connection_id: u64,
    /// Cancelled when a newer connection with the same client id arrives.
    pub(crate) taken_over: CancellationToken,
    /// Whether an older connection was taken over.
    pub(crate) replaced_existing: bool,
    /// The connection must cancel this once it will queue nothing more into the pipeline.
    pub(crate) finished: CancellationToken,
    /// Cancelled once the connection taken over has queued everything it will queue: wait for
    /// it before queueing anything.
    pub(crate) previous_finished: Option<CancellationToken>,
}

impl Sessions {
    /// Registers a connection for `client_id`, authenticated as `identity`, disconnecting any
    /// existing one; refused (the existing one kept) when the existing one authenticated as
    /// another device.
    pub(crate) fn register(
        &self,
        client_id: &str,
        identity: Option<&str>,
    ) -> Result<Registration, TakeoverRefused> {
        let connection_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let finished = CancellationToken::new();
        let mut map = self.by_client.lock();
        if let Some(existing) = map.get(client_id)
            && existing.identity.as_deref() != identity
        {
            return Err(TakeoverRefused {
                holder: existing.identity.clone(),
            });
        }
        let previous = map.insert(
            client_id.to_string(),
            Entry {
                connection_id,
                identity: identity.map(str::to_string),
                taken_over: token.clone(),
                finished: finished.clone(),
            },
        );
        drop(map);
        let previous_finished = previous.map(|old| {
            old.taken_over.cancel();
            old.finished
        });
        Ok(Registration {
            connection_id,
            taken_over: token,
            replaced_existing: previous_finished.is_some(),
            finished,
            previous_finished,
        })
    }

    /// Removes the registration of `client_id` if it still belongs to `connection_id`.
    pub(crate) fn deregister(&self, client_id: &str, connection_id: u64) {
        let mut map = self.by_client.lock();
        if map
            .get(client_id)
            .is_some_and(|entry| entry.connection_id == connection_id)
        {
            map.remove(client_id);
        }
    }

    /// A fresh connection id, for clients that connect with an empty client id.
    pub(crate) fn next_anonymous_id(&self) -> String {
        format!(
            "citytel-anon-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Number of registered client ids.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_client.lock().len()
    }
}
