//! The sink's task: read the WAL from the cursor into batches, deliver up to `max_in_flight` of
//! them at once, and move the cursor past every batch confirmed in order.
//!
//! A delivery ([`deliver`]) retries transient failures (network, timeout, 429, 5xx) with
//! exponential backoff and jitter; holds on 401/403 and other refusals (unhealthy, retrying at
//! `retry_max`, reading the token file again); and splits a batch refused with 400/413 in halves
//! until the refused points are alone, dead-letters them and sends the rest. The cursor moves only
//! past batches that are confirmed together with every batch before them; it is made durable at
//! most once a second and whenever it enters a new segment (a crash resends at most that much,
//! which the server overwrites with the same values).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::client::{Client, SendError, gzip};
use super::config::{BacklogPolicy, InfluxDbConfig};
use super::{NAME, SinkError};
use crate::journal::Entry;
use crate::sink::cursor;
use crate::sink::line::{self, Batch};
use crate::sink::stats::{ErrorClass, SinkStats};
use crate::sink::{BacklogGate, DeadLetterFn, RejectedPoint};
use citytel_storage::wal::tail::{self, Tail};
use citytel_storage::wal::{Position, SEGMENT_HEADER_LEN, WalError, hold};

/// Longest a confirmed cursor stays only in memory.
const CURSOR_EVERY: Duration = Duration::from_secs(1);
/// How often the backlog is measured while deliveries are in flight.
const BACKLOG_EVERY: Duration = Duration::from_millis(500);

/// What the task is built from.
pub(super) struct Parts {
    pub config: InfluxDbConfig,
    pub client: Client,
    pub wal_dir: PathBuf,
    pub state_dir: PathBuf,
    pub from: Position,
    pub stats: Arc<SinkStats>,
    pub gate: Arc<BacklogGate>,
    pub dead_letters: DeadLetterFn,
    pub health: watch::Sender<bool>,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Every point confirmed or dead-lettered.
    Done,
    /// Shutdown came first.
    Stopped,
    /// The backlog passed its limit under `drop_oldest`: the batch is given up.
    Abandoned,
}

/// What deliveries share.
struct Shared {
    config: InfluxDbConfig,
    client: RwLock<Arc<Client>>,
    state_dir: PathBuf,
    stats: Arc<SinkStats>,
    dead_letters: DeadLetterFn,
    health: watch::Sender<bool>,
    /// Set under `drop_oldest` when the backlog passed its limit: deliveries give up.
    abandon: AtomicBool,
}

/// The sink's task state.
pub(super) struct Sink {
    shared: Arc<Shared>,
    wal_dir: PathBuf,
    gate: Arc<BacklogGate>,
    tail: Option<Tail>,
    /// The batch being filled, and the position after its last record.
    batch: Batch,
    batch_end: Position,
    /// Everything before it is confirmed.
    cursor: Position,
    /// The cursor as last made durable, and when.
    stored: (Position, Instant),
    held_segment: u64,
    skipped_seen: u64,
    /// Deliveries in flight, by sequence number, with the position after their batch.
    in_flight: BTreeMap<u64, (Position, Option<Delivery>)>,
    next_seq: u64,
}

impl Sink {
    pub(super) fn new(parts: Parts) -> Sink {
        let from = parts.from;
        Sink {
            shared: Arc::new(Shared {
                config: parts.config,
                client: RwLock::new(Arc::new(parts.client)),
                state_dir: parts.state_dir,
                stats: parts.stats,
                dead_letters: parts.dead_letters,
                health: parts.health,
                abandon: AtomicBool::new(false),
            }),
            tail: Some(Tail::new(&parts.wal_dir, from)),
            wal_dir: parts.wal_dir,
            gate: parts.gate,
            batch: Batch::default(),
            batch_end: from,
            cursor: from,
            stored: (from, Instant::now()),
            held_segment: from.segment,
            skipped_seen: 0,
            in_flight: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Runs until `stop`, or until `drain` once everything in the WAL is confirmed.
    pub(super) async fn run(
        mut self,
        drain: CancellationToken,
        stop: CancellationToken,
    ) -> Result<(), SinkError> {
        let mut deliveries = JoinSet::new();
        let result = self.run_inner(&drain, &stop, &mut deliveries).await;
        stop.cancel();
        while deliveries.join_next().await.is_some() {}
        self.store_cursor(true).await?;
        self.gate.release();
        result
    }

    async fn run_inner(
        &mut self,
        drain: &CancellationToken,
        stop: &CancellationToken,
        deliveries: &mut JoinSet<(u64, Result<Delivery, SinkError>)>,
    ) -> Result<(), SinkError> {
        let config = self.shared.config.clone();
        loop {
            self.check_backlog().await?;
            // Start deliveries while there is room: full batches, or a lingered partial one
            // when nothing else is in flight.
            while self.in_flight.len() < config.max_in_flight
                && !self.shared.abandon.load(Ordering::Relaxed)
            {
                self.fill().await?;
                if self.batch.len() < config.batch_size && !self.in_flight.is_empty() {
                    break;
                }
                if self.batch.len() < config.batch_size && !drain.is_cancelled() {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = drain.cancelled() => {}
                        _ = tokio::time::sleep(config.linger) => {}
                    }
                    self.fill().await?;
                }
                if self.batch.is_empty() {
                    // Records without readings (status messages) are passed at once.
                    if self.in_flight.is_empty() {
                        self.cursor = self.batch_end;
                        self.store_cursor(false).await?;
                        if drain.is_cancelled() {
                            return Ok(());
                        }
                    }
                    break;
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                self.in_flight.insert(seq, (self.batch_end, None));
                let batch = Arc::new(std::mem::take(&mut self.batch));
                deliveries.spawn(deliver(self.shared.clone(), seq, batch, stop.clone()));
            }
            if self.in_flight.is_empty() {
                if stop.is_cancelled() {
                    return Ok(());
                }
                continue;
            }
            // Prepare the next batch while the server works, so it goes out the moment a
            // delivery ends.
            if self.batch.len() < config.batch_size && !self.shared.abandon.load(Ordering::Relaxed)
            {
                self.fill().await?;
            }
            let joined = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                joined = deliveries.join_next() => joined,
                _ = tokio::time::sleep(BACKLOG_EVERY) => continue,
            };
            let Some(joined) = joined else { continue };
            let (seq, outcome) = joined?;
            let outcome = outcome?;
            if outcome == Delivery::Stopped {
                return Ok(());
            }
            if let Some(entry) = self.in_flight.get_mut(&seq) {
                entry.1 = Some(outcome);
            }
            self.confirm_prefix().await?;
        }
    }

    /// Moves the cursor past the deliveries that ended, in order; after an abandoned one,
    /// waits for all to end and restarts reading at the cursor.
    async fn confirm_prefix(&mut self) -> Result<(), SinkError> {
        while let Some((&seq, &(end, Some(Delivery::Done)))) = self.in_flight.first_key_value() {
            self.in_flight.remove(&seq);
            self.cursor = end;
        }
        let abandoned = self
            .in_flight
            .values()
            .any(|(_, o)| *o == Some(Delivery::Abandoned));
        if abandoned && self.in_flight.values().all(|(_, o)| o.is_some()) {
            self.in_flight.clear();
            self.batch.clear();
            self.batch_end = self.cursor;
            self.tail = Some(Tail::new(&self.wal_dir, self.cursor));
            self.shared.abandon.store(false, Ordering::Relaxed);
        }
        self.store_cursor(false).await
    }

    /// Reads records after the tail's position into the batch, up to `batch_size` points.
    async fn fill(&mut self) -> Result<(), SinkError> {
        let mut tail = match self.tail.take() {
            Some(tail) => tail,
            None => Tail::new(&self.wal_dir, self.batch_end),
        };
        let mut batch = std::mem::take(&mut self.batch);
        let limit = self.shared.config.batch_size;
        let threshold = i64::try_from(self.shared.config.receive_time_threshold.as_millis())
            .unwrap_or(i64::MAX);
        let (tail, batch, result) = tokio::task::spawn_blocking(move || {
            let result = read_into(&mut tail, &mut batch, limit, threshold);
            (tail, batch, result)
        })
        .await?;
        let skipped = tail.skipped_bytes();
        self.shared
            .stats
            .record_dropped(skipped.saturating_sub(self.skipped_seen));
        self.skipped_seen = skipped;
        self.tail = Some(tail);
        self.batch = batch;
        self.batch_end = result?;
        Ok(())
    }

    /// Makes the cursor durable if it entered a new segment, a second has passed, or `now`;
    /// then moves the WAL hold up to it.
    async fn store_cursor(&mut self, now: bool) -> Result<(), SinkError> {
        let (stored, at) = self.stored;
        if stored == self.cursor {
            return Ok(());
        }
        if !(now || self.cursor.segment != stored.segment || at.elapsed() >= CURSOR_EVERY) {
            return Ok(());
        }
        let cursor = self.cursor;
        let state_dir = self.shared.state_dir.clone();
        let wal_dir = self.wal_dir.clone();
        let move_hold = cursor.segment > self.held_segment;
        tokio::task::spawn_blocking(move || -> Result<(), SinkError> {
            cursor::store(&state_dir, cursor)?;
            if move_hold {
                hold::set(&wal_dir, NAME, cursor.segment)?;
            }
            Ok(())
        })
        .await??;
        if move_hold {
            self.held_segment = cursor.segment;
        }
        self.stored = (cursor, Instant::now());
        Ok(())
    }

    /// Measures the backlog and applies the policy.
    async fn check_backlog(&mut self) -> Result<(), SinkError> {
        let config = &self.shared.config;
        let stats = &self.shared.stats;
        let max = config.max_backlog_bytes;
        let backlog = tail::bytes_after(&self.wal_dir, self.cursor)?;
        stats.set_backlog(backlog);
        if backlog <= max {
            // Hysteresis: intake resumes once a tenth of the limit is free again.
            if backlog <= max - max / 10 && self.gate.is_closed() {
                self.gate.open();
                if stats.set_backpressure(false) {
                    tracing::info!(
                        backlog_bytes = backlog,
                        "influxdb sink backlog under its limit; intake resumes"
                    );
                }
            }
            return Ok(());
        }
        match config.backlog_policy {
            BacklogPolicy::Backpressure => {
                self.gate.close();
                if stats.set_backpressure(true) {
                    tracing::warn!(
                        backlog_bytes = backlog,
                        limit = max,
                        "influxdb sink backlog over its limit; holding intake back (MQTT backpressure)"
                    );
                }
                Ok(())
            }
            BacklogPolicy::DropOldest if !self.in_flight.is_empty() => {
                self.shared.abandon.store(true, Ordering::Relaxed);
                Ok(())
            }
            BacklogPolicy::DropOldest => self.drop_oldest(backlog).await,
        }
    }

    /// Skips whole WAL segments from the cursor until the backlog fits (never the last one).
    async fn drop_oldest(&mut self, backlog: u64) -> Result<(), SinkError> {
        let max = self.shared.config.max_backlog_bytes;
        let dir = &self.wal_dir;
        let segments = tail::segments(dir)?;
        let mut cursor = self.cursor;
        let mut left = backlog;
        while left > max {
            let Some(&next) = segments.iter().find(|&&s| s > cursor.segment) else {
                break;
            };
            cursor = Position {
                segment: next,
                offset: SEGMENT_HEADER_LEN,
            };
            left = tail::bytes_after(dir, cursor)?;
        }
        if cursor == self.cursor {
            return Ok(());
        }
        let dropped = backlog - left;
        tracing::warn!(
            dropped_bytes = dropped,
            limit = max,
            "influxdb sink backlog over its limit; oldest WAL segments dropped for the sink (drop_oldest)"
        );
        self.shared.stats.record_dropped(dropped);
        self.batch.clear();
        self.cursor = cursor;
        self.batch_end = cursor;
        self.tail = Some(Tail::new(dir, cursor));
        self.skipped_seen = 0;
        self.store_cursor(true).await
    }
}

/// Sends one batch; see the module documentation for what each failure does.
async fn deliver(
    shared: Arc<Shared>,
    seq: u64,
    batch: Arc<Batch>,
    stop: CancellationToken,
) -> (u64, Result<Delivery, SinkError>) {
    (seq, deliver_batch(&shared, batch, &stop).await)
}

async fn deliver_batch(
    shared: &Shared,
    batch: Arc<Batch>,
    stop: &CancellationToken,
) -> Result<Delivery, SinkError> {
    let config = &shared.config;
    // Line ranges still to send; a refused range is replaced by its halves.
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..batch.len());
    let mut backoff = retry_backoff(config);
    while let Some(range) = pending.pop() {
        let (lines, part) = (batch.clone(), range.clone());
        let body = tokio::task::spawn_blocking(move || gzip(lines.bytes(part)))
            .await
            .map(bytes::Bytes::from)?;
        loop {
            let client = shared.client.read().clone();
            let started = Instant::now();
            let result = tokio::select! {
                _ = stop.cancelled() => return Ok(Delivery::Stopped),
                r = client.send_gzipped(body.clone()) => r,
            };
            let error = match result {
                Ok(()) => {
                    shared.stats.record_sent(
                        range.len() as u64,
                        batch.values(range.clone()),
                        started.elapsed().as_secs_f64(),
                    );
                    shared.set_healthy(true, None);
                    backoff = retry_backoff(config);
                    break;
                }
                Err(error) => error,
            };
            shared.stats.record_failure(error.class);
            let wait = match error.class {
                ErrorClass::BadRequest if range.len() > 1 => {
                    let mid = range.start + range.len() / 2;
                    pending.push(mid..range.end);
                    pending.push(range.start..mid);
                    break;
                }
                ErrorClass::BadRequest => {
                    shared.reject(batch.line(range.start), &error).await?;
                    break;
                }
                class if class.is_transient() => {
                    tracing::debug!(class = class.as_str(), error = %error.message, "influxdb sink retrying");
                    backoff.next().unwrap_or(config.retry_max)
                }
                _ => {
                    shared.set_healthy(false, Some(&error));
                    shared.refresh_token();
                    config.retry_max
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return Ok(Delivery::Stopped),
                _ = tokio::time::sleep(wait) => {}
            }
            if shared.abandon.load(Ordering::Relaxed) {
                return Ok(Delivery::Abandoned);
            }
        }
    }
    Ok(Delivery::Done)
}

impl Shared {
    /// Dead-letters a refused line: appended (fsynced) to the sink's `rejected.lp`, then handed
    /// to the dead-letter store.
    async fn reject(&self, line: &str, error: &SendError) -> Result<(), SinkError> {
        let line = line.to_string();
        tracing::warn!(error = %error.message, "influxdb sink: point refused, moved to dead letters");
        let path = self.state_dir.join("rejected.lp");
        let text = format!("# {}\n{line}\n", error.message.replace('\n', " "));
        let shown = path.clone();
        tokio::task::spawn_blocking(move || append_synced(&path, text.as_bytes()))
            .await?
            .map_err(|source| {
                SinkError::Wal(WalError::Io {
                    op: "append rejected point",
                    path: shown,
                    source,
                })
            })?;
        self.stats.record_rejected(1);
        (self.dead_letters)(RejectedPoint {
            sink: NAME,
            line,
            error: error.message.clone(),
        });
        Ok(())
    }

    fn set_healthy(&self, healthy: bool, error: Option<&SendError>) {
        if !self.stats.set_healthy(healthy) {
            return;
        }
        let _ = self.health.send(healthy);
        match error {
            Some(e) if !healthy => tracing::error!(
                class = e.class.as_str(),
                error = %e.message,
                "influxdb sink held: the server refuses its requests; check url, org, bucket and token"
            ),
            _ => tracing::info!("influxdb sink delivering again"),
        }
    }

    /// Reads the token file again (after a 401/403 the token may have been rotated).
    fn refresh_token(&self) {
        if self.config.token_file.is_none() {
            return;
        }
        match self.config.token() {
            Ok(token) => match Client::new(&self.config, &token) {
                Ok(client) => *self.client.write() = Arc::new(client),
                Err(e) => tracing::warn!(error = %e, "influxdb sink: cannot rebuild the client"),
            },
            Err(e) => tracing::warn!(error = %e, "influxdb sink: cannot read the token file"),
        }
    }
}

/// Reads records from `tail` into `batch` until it holds `limit` points or no complete record
/// follows. Returns the position after the last record read.
fn read_into(
    tail: &mut Tail,
    batch: &mut Batch,
    limit: usize,
    receive_threshold_ms: i64,
) -> Result<Position, WalError> {
    while batch.len() < limit {
        match tail.next_record()? {
            Some((_, payload)) => {
                if let Ok(entry) = Entry::decode(payload) {
                    line::append_entry(&entry, receive_threshold_ms, batch);
                }
            }
            None => break,
        }
    }
    Ok(tail.position())
}

/// Up to `d`, at least half of it: retries of many clients spread out.
/// Waits between retries of transient errors: from `retry_initial`, doubling up to
/// `retry_max`, each plus up to as much again of random jitter.
fn retry_backoff(config: &InfluxDbConfig) -> backon::ExponentialBackoff {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::default()
        .with_min_delay(config.retry_initial)
        .with_max_delay(config.retry_max)
        .with_jitter()
        .without_max_times()
        .build()
}

fn append_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_retry_max_with_at_most_as_much_again_of_jitter() {
        let mut config = crate::config::load_str(None, &[])
            .expect("defaults")
            .sink
            .influxdb;
        config.retry_initial = Duration::from_millis(100);
        config.retry_max = Duration::from_millis(1_000);
        let waits: Vec<Duration> = retry_backoff(&config).take(8).collect();
        let bases = [100, 200, 400, 800, 1000, 1000, 1000, 1000].map(Duration::from_millis);
        for (wait, base) in waits.iter().zip(bases) {
            assert!(*wait >= base && *wait <= base * 2, "{wait:?} for {base:?}");
        }
    }
}
