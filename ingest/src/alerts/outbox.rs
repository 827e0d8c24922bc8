//! The notification outbox: every alert that fires or resolves (and is not muted) becomes one
//! [`Notification`] with the next sequence number, in the order the engine made them. Receivers
//! read it from their own durable cursor ([`crate::notify`]); the state keeps what some receiver
//! has not confirmed yet (in the checkpoint snapshot, and rebuilt identically by the WAL replay),
//! so a restart neither loses nor repeats one. (alert fingerprint, sequence) is the idempotency
//! key of each notification.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::labels::Labels;
use super::rule::Severity;

/// What an alert looks like to a receiver: its identity and the text for people.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertInfo {
    /// The alert's id.
    pub id: u64,
    /// Its rule.
    pub rule: Arc<str>,
    /// Its severity.
    pub severity: Severity,
    /// Its labels (identity).
    pub labels: Labels,
    /// Its fingerprint ([`super::labels::fingerprint`]).
    pub fingerprint: u64,
    /// Its annotations, rendered when it fired.
    pub annotations: Labels,
    /// When it fired (deadline-derived), ms since the Unix epoch.
    pub starts_at_ms: i64,
}

/// Whether a notification says an alert fires or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The alert fires (sent again while it lasts, to Alertmanager).
    Firing,
    /// The alert resolved.
    Resolved,
}

impl Status {
    /// `firing` or `resolved`, as Alertmanager writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }

    /// Stable one-byte code in persisted records (never 0).
    pub fn code(self) -> u8 {
        match self {
            Status::Firing => 1,
            Status::Resolved => 2,
        }
    }

    /// The status of a [`code`](Self::code).
    pub fn from_code(code: u8) -> Option<Status> {
        match code {
            1 => Some(Status::Firing),
            2 => Some(Status::Resolved),
            _ => None,
        }
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Its sequence number.
    pub seq: u64,
    /// Firing or resolved.
    pub status: Status,
    /// When the alert fired or resolved.
    pub at_ms: i64,
    /// The alert.
    pub alert: Arc<AlertInfo>,
}

impl Notification {
    /// When the alert ends: the resolution time, or `None` while it fires.
    pub fn ends_at_ms(&self) -> Option<i64> {
        (self.status == Status::Resolved).then_some(self.at_ms)
    }
}

/// How far every receiver has confirmed: notifications before it may be forgotten. Shared
/// between the receivers (which raise it) and the state (which prunes at checkpoints).
#[derive(Debug, Default)]
pub struct Confirmed(AtomicU64);

impl Confirmed {
    /// Nothing confirmed.
    pub fn new() -> Self {
        Confirmed(AtomicU64::new(0))
    }

    /// Every notification before `seq` is confirmed by every receiver.
    pub fn set(&self, seq: u64) {
        self.0.store(seq, Ordering::SeqCst);
    }

    /// The first sequence number some receiver has not confirmed.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The notifications not yet confirmed by every receiver, in sequence order.
#[derive(Debug)]
pub struct Outbox {
    items: VecDeque<Arc<Notification>>,
    next_seq: u64,
    limit: usize,
    dropped: u64,
    confirmed: Arc<Confirmed>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Outbox {
    /// An empty outbox keeping at most `limit` notifications.
    pub fn new(limit: usize) -> Self {
        Outbox {
            items: VecDeque::new(),
            next_seq: 0,
            limit: limit.max(1),
            dropped: 0,
            confirmed: Arc::new(Confirmed::new()),
            changed: tokio::sync::watch::channel(0).0,
        }
    }

    /// A receiver told the next sequence number whenever a notification is added.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Appends a notification; returns its sequence number. Beyond the limit the oldest is
    /// dropped (counted in [`dropped`](Self::dropped)).
    pub fn push(&mut self, status: Status, at_ms: i64, alert: Arc<AlertInfo>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.items.push_back(Arc::new(Notification {
            seq,
            status,
            at_ms,
            alert,
        }));
        self.prune();
        self.changed.send_replace(self.next_seq);
        while self.items.len() > self.limit {
            self.items.pop_front();
            self.dropped += 1;
            metrics::counter!(crate::telemetry::metrics::ALERT_NOTIFICATIONS_DROPPED_TOTAL)
                .increment(1);
        }
        seq
    }

    /// Keeps at most `limit` notifications from now on.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// Up to `max` notifications from sequence `from` on.
    pub fn from(&self, from: u64, max: usize) -> Vec<Arc<Notification>> {
        let start = self.items.partition_point(|n| n.seq < from);
        self.items.range(start..).take(max).cloned().collect()
    }

    /// The sequence number the next notification gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The oldest sequence number still kept (`next_seq` when empty).
    pub fn first_seq(&self) -> u64 {
        self.items.front().map_or(self.next_seq, |n| n.seq)
    }

    /// Notifications dropped over the limit since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// What the receivers confirm.
    pub fn confirmed(&self) -> Arc<Confirmed> {
        self.confirmed.clone()
    }

    /// Forgets what every receiver confirmed.
    pub fn prune(&mut self) {
        let floor = self.confirmed.get();
        while self.items.front().is_some_and(|n| n.seq < floor) {
            self.items.pop_front();
        }
    }

    /// Everything kept, for the snapshot.
    pub fn items(&self) -> impl Iterator<Item = &Arc<Notification>> {
        self.items.iter()
    }

    /// Restores kept notifications and the next sequence number (from a snapshot).
    pub fn restore(&mut self, items: Vec<Notification>, next_seq: u64) {
        self.items = items.into_iter().map(Arc::new).collect();
        self.next_seq = next_seq;
        self.changed.send_replace(next_seq);
    }
}
