//! Which requested publish became which MQTT packet, and which of those the broker acknowledged.
//!
//! rumqttc assigns packet ids inside its event loop and reports, in the order it processes publish
//! requests, `Outgoing::Publish(pkid)` (pkid 0 for QoS 0); acknowledgements come back as
//! `Incoming::PubAck(pkid)` (QoS 1) or `PubRec`/`PubComp` (QoS 2). The tracker mirrors that: a FIFO
//! of requested items, popped on each first transmission and mapped to its packet id until acked.
//! An `Outgoing::Publish` for a packet id already in flight is rumqttc retransmitting after a
//! reconnect and pops nothing.
//!
//! If a reconnect finds the broker forgot the session (CONNACK with `session_present = 0`), rumqttc
//! discards both the unacknowledged publishes and the requests it had queued while disconnected;
//! [`AckTracker::session_lost`] hands those items back so the device can publish them again.
//!
//! The tracker is pure bookkeeping: no I/O, no clock.

use std::collections::{HashMap, HashSet, VecDeque};

/// An acknowledgement or transmission the tracker cannot explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TrackerError {
    /// rumqttc sent a publish nobody requested.
    #[error("publish with packet id {0} went out but no publish was requested")]
    NothingRequested(u16),
    /// The broker acknowledged a packet id that is not in flight.
    #[error("acknowledgement for packet id {0}, which is not in flight")]
    UnknownAck(u16),
    /// The broker completed a QoS 2 exchange that was never released.
    #[error("PUBCOMP for packet id {0}, which is not awaiting completion")]
    UnknownCompletion(u16),
}

/// What an `Outgoing::Publish` meant.
#[derive(Debug, PartialEq)]
pub(crate) enum Sent<'a, T> {
    /// A QoS 1 or 2 publish went out for the first time and now awaits its acknowledgement.
    InFlight(&'a mut T),
    /// A QoS 0 publish went out; nothing more will happen to it.
    Done(T),
    /// An in-flight publish went out again after a reconnect.
    Retransmitted,
}

/// A requested item and its place in request order.
#[derive(Debug)]
struct Entry<T> {
    order: u64,
    item: T,
}

/// Maps rumqttc's publish and acknowledgement events back to the items that were requested.
#[derive(Debug)]
pub(crate) struct AckTracker<T> {
    requested: VecDeque<Entry<T>>,
    in_flight: HashMap<u16, Entry<T>>,
    /// QoS 2 packet ids acknowledged with PUBREC whose PUBCOMP has not arrived.
    releasing: HashSet<u16>,
    /// How many items at the front of `requested` sit in rumqttc's pending queue, from where a
    /// CONNACK without a session discards them.
    queued_in_pending: usize,
    next_order: u64,
}

impl<T> Default for AckTracker<T> {
    fn default() -> Self {
        AckTracker {
            requested: VecDeque::new(),
            in_flight: HashMap::new(),
            releasing: HashSet::new(),
            queued_in_pending: 0,
            next_order: 0,
        }
    }
}

impl<T> AckTracker<T> {
    /// An item was handed to rumqttc to publish (record it before rumqttc can process the request).
    pub(crate) fn requested(&mut self, item: T) {
        self.requested.push_back(Entry {
            order: self.next_order,
            item,
        });
        self.next_order += 1;
    }

    /// rumqttc wrote a publish with packet id `pkid` (0 for QoS 0).
    pub(crate) fn published(&mut self, pkid: u16) -> Result<Sent<'_, T>, TrackerError> {
        if pkid != 0 && self.in_flight.contains_key(&pkid) {
            return Ok(Sent::Retransmitted);
        }
        let entry = self
            .requested
            .pop_front()
            .ok_or(TrackerError::NothingRequested(pkid))?;
        self.queued_in_pending = self.queued_in_pending.saturating_sub(1);
        if pkid == 0 {
            return Ok(Sent::Done(entry.item));
        }
        Ok(Sent::InFlight(
            &mut self
                .in_flight
                .entry(pkid)
                .insert_entry(entry)
                .into_mut()
                .item,
        ))
    }

    /// The broker acknowledged packet `pkid` with a PUBACK (QoS 1).
    pub(crate) fn acked(&mut self, pkid: u16) -> Result<T, TrackerError> {
        self.in_flight
            .remove(&pkid)
            .map(|entry| entry.item)
            .ok_or(TrackerError::UnknownAck(pkid))
    }

    /// The broker acknowledged packet `pkid` with a PUBREC (QoS 2): it owns the message now, and the
    /// exchange completes with PUBREL/PUBCOMP.
    pub(crate) fn received(&mut self, pkid: u16) -> Result<T, TrackerError> {
        let item = self.acked(pkid)?;
        self.releasing.insert(pkid);
        Ok(item)
    }

    /// The broker completed the QoS 2 exchange of packet `pkid` with a PUBCOMP.
    pub(crate) fn completed(&mut self, pkid: u16) -> Result<(), TrackerError> {
        if self.releasing.remove(&pkid) {
            Ok(())
        } else {
            Err(TrackerError::UnknownCompletion(pkid))
        }
    }

    /// The connection dropped and rumqttc moved `queued_in_pending` never-sent publish requests
    /// (those with packet id 0) into its pending queue. They are the oldest requested items.
    pub(crate) fn connection_lost(&mut self, queued_in_pending: usize) {
        self.queued_in_pending = queued_in_pending.min(self.requested.len());
    }

    /// A reconnect found no session: rumqttc discarded every in-flight publish, every pending
    /// release and the requests in its pending queue. Returns those items, oldest request first.
    pub(crate) fn session_lost(&mut self) -> Vec<T> {
        let mut lost: Vec<Entry<T>> = self.in_flight.drain().map(|(_, entry)| entry).collect();
        lost.sort_unstable_by_key(|entry| entry.order);
        lost.extend(self.requested.drain(..self.queued_in_pending));
        self.queued_in_pending = 0;
        self.releasing.clear();
        lost.into_iter().map(|entry| entry.item).collect()
    }

    /// Items requested but not yet written: the upper bound on requests in rumqttc's channel.
    pub(crate) fn queued(&self) -> usize {
        self.requested.len()
    }

    /// Whether everything requested was written and every acknowledgement has arrived.
    pub(crate) fn is_idle(&self) -> bool {
        self.requested.is_empty() && self.in_flight.is_empty() && self.releasing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(items: &[&'static str]) -> AckTracker<&'static str> {
        let mut tracker = AckTracker::default();
        for item in items {
            tracker.requested(*item);
        }
        tracker
    }

    fn first(tracker: &mut AckTracker<&'static str>, pkid: u16) -> &'static str {
        match tracker.published(pkid) {
            Ok(Sent::InFlight(item)) => item,
            other => panic!("expected a first transmission, got {other:?}"),
        }
    }

    #[test]
    fn maps_packet_ids_in_request_order_and_acks_out_of_order() {
        let mut t = tracker(&["a", "b", "c"]);
        assert_eq!(first(&mut t, 1), "a");
        assert_eq!(first(&mut t, 2), "b");
        assert_eq!(first(&mut t, 3), "c");
        assert_eq!(t.queued(), 0);
        assert_eq!(t.acked(2), Ok("b"));
        assert_eq!(t.acked(1), Ok("a"));
        assert!(!t.is_idle());
        assert_eq!(t.acked(3), Ok("c"));
        assert!(t.is_idle());
    }

    #[test]
    fn retransmission_after_reconnect_pops_nothing() {
        let mut t = tracker(&["a", "b", "c"]);
        assert_eq!(first(&mut t, 1), "a");
        assert_eq!(first(&mut t, 2), "b");
        // Connection drops; the session survives; rumqttc resends 1 and 2, then sends "c".
        t.connection_lost(0);
        assert_eq!(t.published(1), Ok(Sent::Retransmitted));
        assert_eq!(t.published(2), Ok(Sent::Retransmitted));
        assert_eq!(first(&mut t, 3), "c");
        assert_eq!(t.acked(1), Ok("a"));
        assert_eq!(t.acked(2), Ok("b"));
        assert_eq!(t.acked(3), Ok("c"));
        assert!(t.is_idle());
    }

    #[test]
    fn a_reused_packet_id_after_its_ack_is_a_new_publish() {
        let mut t = tracker(&["a", "b"]);
        assert_eq!(first(&mut t, 1), "a");
        assert_eq!(t.acked(1), Ok("a"));
        // rumqttc wraps packet ids around; 1 is free again.
        assert_eq!(first(&mut t, 1), "b");
        assert_eq!(t.acked(1), Ok("b"));
    }

    #[test]
    fn collision_resolved_after_the_ack_pops_the_waiting_request() {
        // rumqttc picked pkid 1 for "b" while "a" still held it; it emits AwaitAck, then on
        // PUBACK 1 it sends "b" as Outgoing::Publish(1).
        let mut t = tracker(&["a", "b"]);
        assert_eq!(first(&mut t, 1), "a");
        assert_eq!(t.acked(1), Ok("a"));
        assert_eq!(first(&mut t, 1), "b");
    }

    #[test]
    fn qos0_publishes_are_done_when_written() {
        let mut t = tracker(&["a", "b"]);
        assert_eq!(t.published(0), Ok(Sent::Done("a")));
        assert_eq!(t.published(0), Ok(Sent::Done("b")));
        assert!(t.is_idle());
    }

    #[test]
    fn qos2_is_acked_at_pubrec_and_idle_after_pubcomp() {
        let mut t = tracker(&["a"]);
        assert_eq!(first(&mut t, 1), "a");
        assert_eq!(t.received(1), Ok("a"));
        assert!(!t.is_idle());
        // The packet id is free for a new publish while the release is pending.
        t.requested("b");
        assert_eq!(first(&mut t, 1), "b");
        assert_eq!(t.completed(1), Ok(()));
        assert_eq!(t.completed(1), Err(TrackerError::UnknownCompletion(1)));
        assert_eq!(t.acked(1), Ok("b"));
        assert!(t.is_idle());
    }

    #[test]
    fn unexplained_events_are_errors() {
        let mut t = tracker(&[]);
        assert_eq!(t.published(4), Err(TrackerError::NothingRequested(4)));
        assert_eq!(t.acked(4), Err(TrackerError::UnknownAck(4)));
    }

    #[test]
    fn lost_session_returns_in_flight_and_pending_items_in_request_order() {
        let mut t = tracker(&["a", "b", "c", "d", "e"]);
        assert_eq!(first(&mut t, 1), "a");
        assert_eq!(first(&mut t, 2), "b");
        assert_eq!(first(&mut t, 3), "c");
        assert_eq!(t.acked(2), Ok("b"));
        // "d" was drained into rumqttc's pending queue; "e" is still in its channel.
        t.connection_lost(1);
        assert_eq!(t.session_lost(), vec!["a", "c", "d"]);
        assert_eq!(t.queued(), 1);
        // rumqttc now sends "e" with a fresh packet id; the old ones mean nothing.
        assert_eq!(first(&mut t, 1), "e");
        assert_eq!(t.acked(1), Ok("e"));
        assert!(t.is_idle());
    }

    #[test]
    fn pending_requests_sent_after_a_kept_session_are_not_lost_later() {
        let mut t = tracker(&["a", "b"]);
        t.connection_lost(2);
        // Session kept: rumqttc sends both from its pending queue.
        assert_eq!(first(&mut t, 1), "a");
        assert_eq!(first(&mut t, 2), "b");
        assert_eq!(t.acked(1), Ok("a"));
        t.requested("c");
        // Dropped again before "c" left the channel, and this time the session is gone.
        t.connection_lost(0);
        assert_eq!(t.session_lost(), vec!["b"]);
        assert_eq!(t.queued(), 1);
    }
}
