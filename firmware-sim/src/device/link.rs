//! The state a device's two tasks share: the publisher requests publishes, the connection task
//! reports what rumqttc did with them.
//!
//! The link owns the [`AckTracker`] and, per reporter, the tally of published and acknowledged
//! readings that becomes the device's report. Every change wakes the publisher, which reacts to new
//! connections (births), to messages the broker lost with its session (resent) and to freed room
//! for more requests.

use std::sync::Arc;

use citytel_proto::v1::Reading;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use super::ack_tracker::{AckTracker, Sent, TrackerError};
use super::message::Message;
use crate::progress::Counters;

/// Published and acknowledged readings of one reporter.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Tally {
    /// Readings written to the broker.
    pub(crate) readings_published: u64,
    /// Readings the broker acknowledged.
    pub(crate) readings_acked: u64,
    /// The acknowledged readings, if the fleet records them.
    pub(crate) acked: Vec<Reading>,
}

/// What happened on the connection since the publisher last asked.
#[derive(Debug, Default)]
pub(crate) struct News {
    /// CONNACKs received so far, ever.
    pub(crate) connects: u64,
    /// Messages the broker lost with its session, oldest first, to publish again.
    pub(crate) resend: Vec<Message>,
}

#[derive(Debug)]
struct LinkState {
    tracker: AckTracker<Message>,
    tallies: Vec<Tally>,
    connects: u64,
    resend: Vec<Message>,
}

/// Shared between a device's publisher and connection tasks.
#[derive(Debug)]
pub(crate) struct Link {
    state: Mutex<LinkState>,
    changed: Notify,
    counters: Arc<Counters>,
}

impl Link {
    /// A link for a device with `reporters` reporters, counting into the fleet's `counters`.
    pub(crate) fn new(reporters: usize, counters: Arc<Counters>) -> Self {
        Link {
            state: Mutex::new(LinkState {
                tracker: AckTracker::default(),
                tallies: vec![Tally::default(); reporters],
                connects: 0,
                resend: Vec::new(),
            }),
            changed: Notify::new(),
            counters,
        }
    }

    /// Resolves after the next change (or at once if one happened since the last wait).
    pub(crate) fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }

    /// Records `message` as requested and hands it to `send` (a non-blocking rumqttc request), as
    /// one step, so the connection task cannot see the request before the tracker knows of it. If
    /// `send` fails, the message comes back with the error.
    pub(crate) fn submit<E>(
        &self,
        message: Message,
        send: impl FnOnce(&Message) -> Result<(), E>,
    ) -> Result<(), (Message, E)> {
        let mut state = self.state.lock();
        let result = send(&message);
        match result {
            Ok(()) => {
                state.tracker.requested(message);
                Ok(())
            }
            Err(error) => Err((message, error)),
        }
    }

    /// Requests not yet written by rumqttc.
    pub(crate) fn queued(&self) -> usize {
        self.state.lock().tracker.queued()
    }

    /// Whether every request was written and acknowledged.
    pub(crate) fn is_idle(&self) -> bool {
        self.state.lock().tracker.is_idle()
    }

    /// Connection count and messages to resend; the messages are taken.
    pub(crate) fn news(&self) -> News {
        let mut state = self.state.lock();
        News {
            connects: state.connects,
            resend: std::mem::take(&mut state.resend),
        }
    }

    /// The per-reporter tallies, taken (call once the connection task has ended).
    pub(crate) fn take_tallies(&self) -> Vec<Tally> {
        std::mem::take(&mut self.state.lock().tallies)
    }

    /// A CONNACK arrived. Without a session, whatever rumqttc discarded is queued for resending.
    pub(crate) fn connected(&self, session_present: bool) {
        let mut state = self.state.lock();
        state.connects += 1;
        if !session_present {
            let lost = state.tracker.session_lost();
            state.resend.extend(lost);
        }
        drop(state);
        self.changed.notify_one();
    }

    /// The connection dropped; rumqttc moved `queued_in_pending` unsent requests to its pending
    /// queue.
    pub(crate) fn connection_lost(&self, queued_in_pending: usize) {
        self.state.lock().tracker.connection_lost(queued_in_pending);
    }

    /// rumqttc wrote a publish with packet id `pkid`.
    pub(crate) fn published(&self, pkid: u16) -> Result<(), TrackerError> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        match state.tracker.published(pkid)? {
            Sent::InFlight(message) => {
                count_published(message, &mut state.tallies, &self.counters);
            }
            Sent::Done(mut message) => {
                count_published(&mut message, &mut state.tallies, &self.counters);
            }
            Sent::Retransmitted => {}
        }
        drop(guard);
        self.changed.notify_one();
        Ok(())
    }

    /// The broker acknowledged packet `pkid` (PUBACK).
    pub(crate) fn acked(&self, pkid: u16) -> Result<(), TrackerError> {
        self.acknowledge(|tracker| tracker.acked(pkid))
    }

    /// The broker refused packet `pkid` (an MQTT 5 PUBACK or PUBREC with a refusing reason
    /// code, `why`): it is no longer in flight, but not acknowledged either; counted as an error.
    pub(crate) fn refused(&self, pkid: u16, why: &str) -> Result<(), TrackerError> {
        let mut state = self.state.lock();
        state.tracker.acked(pkid)?;
        drop(state);
        self.counters
            .error(format_args!("publish {pkid} refused: {why}"));
        self.changed.notify_one();
        Ok(())
    }

    /// The broker received packet `pkid` (PUBREC, QoS 2).
    pub(crate) fn received(&self, pkid: u16) -> Result<(), TrackerError> {
        self.acknowledge(|tracker| tracker.received(pkid))
    }

    /// The broker completed packet `pkid` (PUBCOMP, QoS 2).
    pub(crate) fn completed(&self, pkid: u16) -> Result<(), TrackerError> {
        self.state.lock().tracker.completed(pkid)?;
        self.changed.notify_one();
        Ok(())
    }

    fn acknowledge(
        &self,
        take: impl FnOnce(&mut AckTracker<Message>) -> Result<Message, TrackerError>,
    ) -> Result<(), TrackerError> {
        let mut state = self.state.lock();
        let message = take(&mut state.tracker)?;
        self.counters.acked(message.readings);
        if let Some(tally) = state.tallies.get_mut(message.reporter) {
            tally.readings_acked += message.readings;
            tally.acked.extend(message.recorded);
        }
        drop(state);
        self.changed.notify_one();
        Ok(())
    }
}

/// Counts a message's first transmission.
fn count_published(message: &mut Message, tallies: &mut [Tally], counters: &Counters) {
    if message.published {
        return;
    }
    message.published = true;
    counters.published(message.readings);
    if let Some(tally) = tallies.get_mut(message.reporter) {
        tally.readings_published += message.readings;
    }
}
