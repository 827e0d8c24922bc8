//! The connection task: polls a device's rumqttc event loop and reports what happens to the link.
//!
//! This task never publishes (awaiting a publish while nobody polls the event loop deadlocks
//! rumqttc); the publisher task does that. On a connection error it records which requests rumqttc
//! parked in its pending queue, waits a backoff and polls again, which reconnects. It ends when the
//! DISCONNECT the publisher requested has been written, or when told to stop.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::ack_tracker::TrackerError;
use super::link::Link;
use super::mqtt::{ConnectionError, EventLoop, LinkEvent};
use crate::progress::Counters;

/// Polls one device's event loop.
pub(crate) struct Connection {
    eventloop: EventLoop,
    link: Arc<Link>,
    counters: Arc<Counters>,
    device_id: String,
    start_delay: Duration,
    backoff: backon::ExponentialBackoff,
    connected: bool,
    ever_connected: bool,
}

impl Connection {
    /// A task polling `eventloop` for device `device_id`, first connecting after `start_delay`.
    pub(crate) fn new(
        eventloop: EventLoop,
        link: Arc<Link>,
        counters: Arc<Counters>,
        device_id: String,
        start_delay: Duration,
    ) -> Self {
        Connection {
            eventloop,
            link,
            counters,
            device_id,
            start_delay,
            backoff: reconnect_backoff(),
            connected: false,
            ever_connected: false,
        }
    }

    /// Polls until the device's DISCONNECT went out or `shutdown` is cancelled.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(self.start_delay) => {}
        }
        loop {
            let polled = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                polled = self.eventloop.poll() => polled,
            };
            let disconnected = match polled {
                Ok(event) => self.handle(event),
                Err(error) => {
                    // rumqttc handles several packets per read; when the connection fails midway,
                    // the events of the packets before the failure stay buffered and would only
                    // come out after the next CONNACK. They belong to the connection that just
                    // ended, so account for them before a reconnect can change the session.
                    let buffered = self.eventloop.take_buffered();
                    let mut disconnected = false;
                    for event in buffered {
                        disconnected |= self.handle(event);
                    }
                    self.connection_failed(&error);
                    if !disconnected {
                        tokio::select! {
                            biased;
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(self.backoff.next().unwrap_or(RECONNECT_MAX)) => {}
                        }
                    }
                    disconnected
                }
            };
            if disconnected {
                break;
            }
        }
        if self.connected {
            self.counters.disconnected();
        }
    }

    /// Accounts for one event. Returns whether it was the DISCONNECT going out.
    fn handle(&mut self, event: LinkEvent) -> bool {
        match event {
            LinkEvent::Connected { session_present } => {
                tracing::debug!(device = %self.device_id, session_present, "connected");
                self.backoff = reconnect_backoff();
                self.connected = true;
                self.counters.connected(!self.ever_connected);
                self.ever_connected = true;
                self.link.connected(session_present);
            }
            LinkEvent::Published(pkid) => self.check(self.link.published(pkid)),
            LinkEvent::Acked(pkid) => self.check(self.link.acked(pkid)),
            LinkEvent::Received(pkid) => self.check(self.link.received(pkid)),
            LinkEvent::Completed(pkid) => self.check(self.link.completed(pkid)),
            LinkEvent::Refused(pkid, why) => {
                tracing::warn!(device = %self.device_id, pkid, %why, "publish refused");
                self.check(self.link.refused(pkid, &why));
            }
            LinkEvent::Disconnected => return true,
            LinkEvent::Other => {}
        }
        false
    }

    fn connection_failed(&mut self, error: &ConnectionError) {
        if self.connected {
            self.connected = false;
            self.counters.disconnected();
            tracing::warn!(device = %self.device_id, %error, "connection lost, reconnecting");
        } else {
            tracing::debug!(device = %self.device_id, %error, "connection attempt failed");
        }
        self.counters.error(error);
        self.link.connection_lost(self.eventloop.unsent_publishes());
    }

    fn check(&self, result: Result<(), TrackerError>) {
        if let Err(error) = result {
            tracing::warn!(device = %self.device_id, %error, "acknowledgement tracking");
            self.counters.error(error);
        }
    }
}

/// Longest wait between reconnect attempts.
const RECONNECT_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Reconnect backoff: a short first wait (200 ms) that doubles up to [`RECONNECT_MAX`], reset by
/// a good connection. No jitter: a simulated fleet's timing stays reproducible.
fn reconnect_backoff() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(200))
        .with_max_delay(RECONNECT_MAX)
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_wait_longer_each_time_up_to_the_ceiling_and_start_over_when_reset() {
        let delays: Vec<u128> = reconnect_backoff().take(8).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }
}
