//! One receiver's task: read the outbox from its cursor, deliver, confirm, repeat.
//!
//! - A webhook gets one POST per notification (Alertmanager's webhook payload with that one
//!   alert, header `Idempotency-Key: {fingerprint}-{sequence}`), in sequence order; its cursor is
//!   made durable after every confirmed POST.
//! - An Alertmanager gets up to [`AM_BATCH`] notifications per `POST /api/v2/alerts`; its
//!   cursor is made durable after every confirmed batch. Every `resend_interval` (and at start)
//!   it is sent every firing alert again, valid for four intervals, as Prometheus does, so it
//!   keeps them firing and resolves them by itself should citytel go away for longer.
//!
//! A request that fails is retried with exponential backoff (from `retry_initial`, doubling up
//! to `retry_max`, with jitter) for as long as it takes: an unreachable receiver delays
//! notifications but never loses them. One the receiver refuses (a 4xx answer other than 408
//! and 429) is counted and skipped. Nothing is confirmed before the receiver answered, so a
//! restart resends at most the request that was in flight.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::client::{Client, Failure};
use super::cursor;
use super::payload::{PostableAlert, WebhookMessage, idempotency_key};
use super::{NotifyError, Progress};
use crate::alerts::config::{AlertsConfig, Receiver, ReceiverKind};
use crate::alerts::outbox::Notification;
use crate::clock::Clock;
use crate::db::Database;
use crate::telemetry::metrics as m;

/// Most notifications in one request to an Alertmanager.
pub const AM_BATCH: usize = 100;

/// How a delivery ended.
enum Delivered {
    /// Confirmed or refused: the cursor moves past it.
    Done,
    /// Stopped before it was confirmed.
    Stopped,
}

/// What the task runs with.
pub(super) struct Task {
    pub(super) receiver: Receiver,
    pub(super) config: AlertsConfig,
    pub(super) client: Client,
    pub(super) db: Arc<Database>,
    pub(super) clock: Clock,
    pub(super) dir: PathBuf,
    pub(super) cursor: u64,
    pub(super) changed: watch::Receiver<u64>,
    pub(super) progress: Arc<Progress>,
    pub(super) index: usize,
}

impl Task {
    /// Delivers until `stop`, or until `drain` once everything is confirmed.
    pub(super) async fn run(
        mut self,
        drain: CancellationToken,
        stop: CancellationToken,
    ) -> Result<(), NotifyError> {
        let am = self.receiver.kind == ReceiverKind::Alertmanager;
        let mut resend_at = tokio::time::Instant::now();
        loop {
            let (first, batch) = {
                let state = self.db.read();
                let outbox = state.alerts().outbox();
                let max = if am { AM_BATCH } else { 1 };
                (outbox.first_seq(), outbox.from(self.cursor, max))
            };
            if first > self.cursor {
                tracing::warn!(
                    receiver = %self.receiver.name,
                    lost = first - self.cursor,
                    "alert notifications were dropped before this receiver confirmed them (alerts.outbox_limit)"
                );
                self.confirm(first).await?;
                continue;
            }
            metrics::gauge!(m::ALERT_NOTIFICATIONS_PENDING, "receiver" => self.receiver.name.clone())
                .set(self.pending() as f64);
            if let Some(last) = batch.last().map(|n| n.seq) {
                match self.deliver(&batch, &stop).await {
                    Delivered::Done => self.confirm(last + 1).await?,
                    Delivered::Stopped => return Ok(()),
                }
                continue;
            }
            if drain.is_cancelled() || stop.is_cancelled() {
                return Ok(());
            }
            if am && tokio::time::Instant::now() >= resend_at {
                self.resend().await;
                resend_at = tokio::time::Instant::now() + self.config.resend_interval;
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = drain.cancelled() => {}
                changed = self.changed.changed() => {
                    if changed.is_err() {
                        // The state is gone: nothing more will come.
                        return Ok(());
                    }
                }
                _ = tokio::time::sleep_until(resend_at), if am => {}
            }
        }
    }

    /// Notifications not yet confirmed.
    fn pending(&self) -> u64 {
        self.db
            .read()
            .alerts()
            .outbox()
            .next_seq()
            .saturating_sub(self.cursor)
    }

    /// Moves the cursor to `next` and makes it durable.
    async fn confirm(&mut self, next: u64) -> Result<(), NotifyError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || cursor::store(&dir, next))
            .await
            .map_err(|_| NotifyError::Panicked)??;
        self.cursor = next;
        self.progress.set(self.index, next);
        Ok(())
    }

    /// Firing alerts valid until four resend intervals from now.
    fn valid_until(&self) -> i64 {
        let interval = i64::try_from(self.config.resend_interval.as_millis()).unwrap_or(i64::MAX);
        self.clock
            .now_ms()
            .saturating_add(interval.saturating_mul(4))
    }

    /// Delivers `batch` (one notification for a webhook), retrying until it is confirmed or
    /// refused, or `stop`.
    async fn deliver(&self, batch: &[Arc<Notification>], stop: &CancellationToken) -> Delivered {
        let mut backoff = backoff(&self.config);
        let name = self.receiver.name.clone();
        loop {
            let result = match self.receiver.kind {
                ReceiverKind::Alertmanager => {
                    let until = self.valid_until();
                    let body: Vec<PostableAlert> = batch
                        .iter()
                        .map(|n| PostableAlert::of(n, until, &self.config.external_url))
                        .collect();
                    let url = format!("{}/api/v2/alerts", self.receiver.url);
                    self.client.post(&url, &body, None).await
                }
                ReceiverKind::Webhook => {
                    let n = &batch[0];
                    let body = WebhookMessage::of(n, &name, &self.config.external_url);
                    let key = idempotency_key(n);
                    self.client
                        .post(&self.receiver.url, &body, Some(&key))
                        .await
                }
            };
            let count = batch.len() as u64;
            let wait = match result {
                Ok(()) => {
                    metrics::counter!(m::ALERT_NOTIFICATIONS_TOTAL, "receiver" => name.clone(), "outcome" => "sent")
                        .increment(count);
                    return Delivered::Done;
                }
                Err(Failure::Refused(message)) => {
                    metrics::counter!(m::ALERT_NOTIFICATIONS_TOTAL, "receiver" => name.clone(), "outcome" => "refused")
                        .increment(count);
                    tracing::error!(receiver = %name, error = %message, "alert receiver refused a notification; it is skipped");
                    return Delivered::Done;
                }
                Err(Failure::Retry(message)) => {
                    metrics::counter!(m::ALERT_NOTIFICATIONS_TOTAL, "receiver" => name.clone(), "outcome" => "failed")
                        .increment(count);
                    tracing::warn!(receiver = %name, error = %message, "alert notification failed; retrying");
                    backoff.next().unwrap_or(self.config.retry_max)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return Delivered::Stopped,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Sends an Alertmanager every firing alert whose notification it confirmed, again. A
    /// failure is logged; the next interval tries again.
    async fn resend(&self) {
        let firing = self.db.read().alerts().notified_firing();
        let until = self.valid_until();
        let body: Vec<PostableAlert> = firing
            .iter()
            .filter(|(seq, _)| *seq < self.cursor)
            .map(|(_, info)| PostableAlert::firing(info, until, &self.config.external_url))
            .collect();
        if body.is_empty() {
            return;
        }
        let url = format!("{}/api/v2/alerts", self.receiver.url);
        for chunk in body.chunks(AM_BATCH) {
            if let Err(Failure::Retry(e) | Failure::Refused(e)) =
                self.client.post(&url, &chunk, None).await
            {
                tracing::warn!(receiver = %self.receiver.name, error = %e, "sending firing alerts to alertmanager again failed");
                return;
            }
        }
    }
}

/// Waits between retries: from `retry_initial`, doubling up to `retry_max`, plus jitter.
fn backoff(config: &AlertsConfig) -> backon::ExponentialBackoff {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::default()
        .with_min_delay(config.retry_initial)
        .with_max_delay(config.retry_max.max(Duration::from_millis(1)))
        .with_jitter()
        .without_max_times()
        .build()
}
