//! The writer: one dedicated thread that group-commits queued messages to the WAL, applies them
//! to the database and acknowledges them, in arrival order.
//!
//! Whatever arrived while the previous commit was in flight forms the next group, so under load
//! one fsync covers many messages and at low load a message waits for one fsync only.
//!
//! When storage cannot take the group, nothing of it is acknowledged and the writer waits
//! instead of exiting ([`super::durability`]):
//! - free space below `storage.min_free_bytes` (checked with `statvfs` before a commit, and every
//!   second while idle): the group is not written yet;
//! - the write or fsync fails because the disk is full (`ENOSPC`, `EDQUOT`) or no file
//!   descriptor is left (`EMFILE`, `ENFILE`): the WAL cuts the segment back to the last good
//!   commit (no half-written record stays in it) and keeps the group buffered.
//!
//! Either way the writer reports itself paused (health NOT_SERVING, with the reason in the log
//! and in `citytel_storage_paused{reason}`), keeps applying the fleet's silence timeouts, and
//! tries the same group again with backoff (50 ms doubling to 1 s) until it is durable; only then
//! are its messages applied and acknowledged, in order, and the writer resumes by itself. Intake
//! meanwhile stops at the in-flight budget (sources stop reading, the broker keeps the rest).
//! Queries keep being answered: the writer holds no lock while it waits. Any other write or
//! fsync failure ends the writer without acknowledging anything more: the service then stops
//! rather than report data durable that may not be. A shutdown while paused ends the writer
//! with the group unacknowledged (its senders resend it).
//!
//! A checkpoint that cannot start for the same reasons (the WAL cannot roll to a new segment) is
//! tried again later; the WAL keeps everything meanwhile.
//!
//! Before a group is appended, the writer checks the cardinality limits ([`Writer::limit_series`],
//! [`Writer::limit_devices`]): a message that would add series or devices beyond them becomes a
//! `too_many_series` or `too_many_devices` dead letter (a connection event of such a device is
//! dropped), so the decision is in the WAL and replays identically.
//!
//! While alert rules are in force, a tick that finds deadlines due (silence thresholds, alerts'
//! `for`) is itself a WAL entry ([`Entry::Tick`]), committed before it is applied, so what the
//! deadlines did replays identically; the idle wait then ends at the next deadline instead of a
//! whole [`TICK`] later, so an alert fires on time.
//!
//! Debug option for fault tests: when the environment variable [`PAUSE_FILE_ENV`] names a file,
//! the writer commits nothing while that file exists (as if the disk had stalled): nothing is
//! acknowledged, and intake stops once the in-flight budget is used up. Never set it in production.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Queued;
use super::durability::{self, Durability, FreeSpace, Pause};
use crate::clock::Clock;
use crate::db::housekeeping::Job;
use crate::db::{Database, DbError, checkpoint};
use crate::decode::Decoded;
use crate::journal::Entry;
use crate::state::Applied;
use crate::state::alerting::TickDue;
use crate::state::attributes::{AttributeLimits, Pending};
use crate::telemetry::metrics as m;
use citytel_proto::v1::status;
use citytel_storage::wal::Wal;

/// Environment variable naming a file whose existence pauses the writer (a debug option for
/// fault tests that simulate stalled storage; see the module documentation).
pub(crate) const PAUSE_FILE_ENV: &str = "CITYTEL_DEBUG_WAL_PAUSE_FILE";
/// How often a paused writer checks whether the pause file is gone.
const PAUSE_POLL: Duration = Duration::from_millis(20);

/// Most messages committed in one group.
const MAX_GROUP: usize = 8192;
/// Most bytes buffered for one group.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// Totals of a writer's run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Group commits.
    pub commits: u64,
    /// Messages accepted.
    pub accepted: u64,
    /// Messages rejected into the dead-letter store.
    pub rejected: u64,
    /// Readings stored.
    pub readings_stored: u64,
    /// Readings dropped as duplicates.
    pub readings_duplicate: u64,
}

/// When the writer starts checkpoints, and where it sends them.
#[derive(Debug)]
pub(crate) struct CheckpointPolicy {
    /// Longest time between checkpoints.
    pub(crate) interval: Duration,
    /// The housekeeping thread that writes them, and its handle (joined at shutdown).
    pub(crate) housekeeping: Option<(Sender<Job>, JoinHandle<()>)>,
    /// Threads a checkpoint may use to compress.
    pub(crate) threads: usize,
    /// Where "now" comes from, for the fleet tracker's silence timeouts.
    pub(crate) clock: Clock,
    /// The runtime whose timers pace the writer's idle ticks.
    pub(crate) runtime: tokio::runtime::Handle,
    /// Closed by a sink whose backlog is over its limit: the writer waits before committing
    /// more (backpressure to the sources).
    pub(crate) gate: Option<Arc<crate::sink::BacklogGate>>,
    /// Cancelled once intake has stopped: the writer then refuses anything new, commits what is
    /// queued and ends (the API may still hold pipeline handles, so the queue never closes by
    /// itself).
    pub(crate) stop: tokio_util::sync::CancellationToken,
    /// Where the writer says whether it can make data durable.
    pub(crate) durability: Durability,
    /// Free space below which the writer stops committing (`storage.min_free_bytes`; 0: never).
    pub(crate) min_free_bytes: u64,
}

/// How often an idle writer applies the fleet tracker's silence timeouts.
const TICK: Duration = Duration::from_secs(1);
/// Shortest idle wait before the next deadline.
const MIN_WAIT: Duration = Duration::from_millis(5);
/// First and longest wait before a paused writer tries its group again.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);
/// Wait before a checkpoint that could not start is tried again.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(5);

/// The group-commit loop.
pub(crate) struct Writer {
    rx: mpsc::UnboundedReceiver<Queued>,
    wal: Wal,
    db: Arc<Database>,
    policy: CheckpointPolicy,
    last_checkpoint: Instant,
    max_series: u64,
    max_devices: u64,
    attributes: AttributeLimits,
    pause_file: Option<PathBuf>,
    space: FreeSpace,
    /// A checkpoint that could not start is not tried again before this.
    checkpoint_after: Option<Instant>,
}

impl Writer {
    /// A writer committing messages from `rx` to `wal`, applying them to `db` and checkpointing
    /// by `policy`.
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Queued>,
        wal: Wal,
        db: Arc<Database>,
        policy: CheckpointPolicy,
    ) -> Self {
        let mut space = FreeSpace::new(db.data_dir().to_path_buf(), policy.min_free_bytes);
        // Known before the service first reports its health.
        if let Some(free) = space.low(Duration::ZERO) {
            policy
                .durability
                .pause(Pause::LowSpace, &low_space(free, space.min_free()));
        }
        Writer {
            space,
            checkpoint_after: None,
            rx,
            wal,
            db,
            policy,
            last_checkpoint: Instant::now(),
            max_series: u64::MAX,
            max_devices: u64::MAX,
            attributes: AttributeLimits::default(),
            pause_file: std::env::var_os(PAUSE_FILE_ENV).map(PathBuf::from),
        }
    }

    /// Refuses messages that would bring the number of series over `max_series` (they become
    /// `too_many_series` dead letters). Unlimited by default.
    pub(crate) fn limit_series(mut self, max_series: u64) -> Self {
        self.max_series = max_series;
        self
    }

    /// Refuses messages from new devices once the registry holds `max_devices` (they become
    /// `too_many_devices` dead letters). Unlimited by default.
    pub(crate) fn limit_devices(mut self, max_devices: u64) -> Self {
        self.max_devices = max_devices;
        self
    }

    /// Refuses attributes statuses that would bring a device over `limits` (they become
    /// `too_many_attributes` dead letters). [`AttributeLimits::default`] by default.
    pub(crate) fn limit_attributes(mut self, limits: AttributeLimits) -> Self {
        self.attributes = limits;
        self
    }

    /// Runs the loop on the calling thread (a dedicated one: it blocks) until it is told to stop
    /// (or every [`super::Pipeline`] handle is dropped) and the queue is drained, or until
    /// storage fails.
    /// Ends with a final checkpoint, so a restart replays nothing.
    pub(crate) fn run(mut self) -> Result<WriterStats, DbError> {
        let mut stats = WriterStats::default();
        let mut group: Vec<Queued> = Vec::with_capacity(1024);
        loop {
            let first = match self.rx.try_recv() {
                Ok(e) => e,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.policy.stop.is_cancelled() {
                        // Nothing new gets in; what got in before is committed next round.
                        self.rx.close();
                        match self.rx.try_recv() {
                            Ok(e) => e,
                            Err(_) => break,
                        }
                    } else {
                        // Idle: a good moment for a due checkpoint and the silence timeouts.
                        self.maybe_checkpoint()?;
                        self.tick()?;
                        self.check_space_idle();
                        let wait = self.idle_wait();
                        let runtime = self.policy.runtime.clone();
                        let _context = runtime.enter();
                        let stop = self.policy.stop.clone();
                        let next = async {
                            tokio::select! {
                                received = self.rx.recv() => received.ok_or(()),
                                _ = stop.cancelled() => Err(()),
                            }
                        };
                        match runtime.block_on(tokio::time::timeout(wait, next)) {
                            Ok(Ok(e)) => e,
                            // Closed, or stopping: the next round drains and ends.
                            Ok(Err(())) => continue,
                            Err(_) => continue,
                        }
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            group.push(first);
            while group.len() < MAX_GROUP && self.wal.pending_bytes() < MAX_GROUP_BYTES {
                match self.rx.try_recv() {
                    Ok(envelope) => group.push(envelope),
                    Err(_) => break,
                }
            }
            if let Some(gate) = self.policy.gate.clone() {
                while !gate.wait_open(TICK) {
                    self.tick()?;
                }
            }
            self.commit(&mut group, &mut stats)?;
            self.maybe_checkpoint()?;
        }
        tracing::debug!(?stats, "writer drained");
        if let Some((tx, handle)) = self.policy.housekeeping.take() {
            drop(tx);
            let _ = handle.join();
        }
        let started = Instant::now();
        match checkpoint::run(&self.db, &mut self.wal, self.policy.threads) {
            Ok(Some(cp)) => tracing::info!(
                points = cp.points,
                segments = cp.segments,
                write_ms = cp.elapsed_ms,
                total_ms = started.elapsed().as_millis() as u64,
                "final checkpoint written"
            ),
            Ok(None) => {}
            Err(DbError::Wal(e)) if e.exhausted().is_some() => {
                // Everything is in the WAL; the next start replays it.
                tracing::warn!(error = %e, "final checkpoint not written; the next start replays the WAL");
            }
            Err(e) => return Err(e),
        }
        Ok(stats)
    }

    /// While idle: notices free space falling below (or rising back above) the minimum, so
    /// health says so before anything is refused.
    fn check_space_idle(&mut self) {
        match self.space.low(TICK) {
            Some(free) => {
                let detail = low_space(free, self.space.min_free());
                self.policy.durability.pause(Pause::LowSpace, &detail);
            }
            None if self.policy.durability.current() == Some(Pause::LowSpace) => {
                self.policy.durability.resume();
            }
            None => {}
        }
    }

    /// Applies the silence timeouts and alert deadlines that fell due; with alert rules in
    /// force, through a tick written to the WAL first.
    ///
    /// While storage is paused no tick is written: the deadlines wait (their effects carry the
    /// deadlines' own times, so they are only late, not wrong). A tick whose commit found storage
    /// exhausted stays buffered in the WAL, ahead of anything appended after it, so it is applied
    /// at once and committed by the next commit that succeeds (tried again here while idle).
    fn tick(&mut self) -> Result<(), DbError> {
        if self.wal.pending_bytes() > 0 && !self.commit_tick()? {
            return Ok(());
        }
        let now = self.policy.clock.now_ms();
        let due = self.db.read().tick_due(now);
        match due {
            TickDue::Nothing => {}
            TickDue::Unrecorded => self.db.write().advance(now),
            TickDue::Recorded => {
                if self.pause_file.as_ref().is_some_and(|p| p.exists())
                    || self.policy.durability.current().is_some()
                {
                    return Ok(());
                }
                let entry = Entry::Tick { at_ms: now };
                self.wal.append_with(|buf| entry.encode(buf))?;
                self.commit_tick()?;
                self.db.write().apply(&entry, None);
            }
        }
        Ok(())
    }

    /// Commits a tick: `true` once durable, `false` when storage is exhausted (the writer
    /// reports itself paused; the tick stays buffered).
    fn commit_tick(&mut self) -> Result<bool, DbError> {
        match self.wal.commit() {
            Ok(()) => {
                if self
                    .policy
                    .durability
                    .current()
                    .is_some_and(|p| p != Pause::LowSpace)
                {
                    self.policy.durability.resume();
                }
                Ok(true)
            }
            Err(e) => match e.exhausted() {
                Some(exhausted) => {
                    self.policy
                        .durability
                        .pause(Pause::from(exhausted), &e.to_string());
                    Ok(false)
                }
                None => {
                    tracing::error!(error = %e, "wal commit failed; no further message will be acknowledged");
                    Err(e.into())
                }
            },
        }
    }

    /// While a group waits for storage: the silence timeouts only, and only when no alert rule
    /// is in force (with rules, deadlines are applied through the WAL, which cannot take them).
    fn tick_paused(&mut self) {
        let now = self.policy.clock.now_ms();
        if self.db.read().tick_due(now) == TickDue::Unrecorded {
            self.db.write().advance(now);
        }
    }

    /// How long an idle writer may wait before its next tick: until the next deadline, at most
    /// [`TICK`].
    fn idle_wait(&self) -> Duration {
        let now = self.policy.clock.now_ms();
        match self.db.read().next_due() {
            Some(due) => {
                let ms = u64::try_from(due.saturating_sub(now)).unwrap_or(0);
                Duration::from_millis(ms).clamp(MIN_WAIT, TICK)
            }
            None => TICK,
        }
    }

    /// Starts a checkpoint when the head is full or the interval has passed. One that cannot
    /// start because a resource ran out is tried again after [`CHECKPOINT_RETRY`].
    fn maybe_checkpoint(&mut self) -> Result<(), DbError> {
        if self.checkpoint_after.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        match self.try_checkpoint() {
            Err(DbError::Wal(e)) if e.exhausted().is_some() => {
                tracing::warn!(error = %e, "checkpoint postponed; the WAL keeps the data meanwhile");
                self.checkpoint_after = Some(Instant::now() + CHECKPOINT_RETRY);
                Ok(())
            }
            other => {
                self.checkpoint_after = None;
                other
            }
        }
    }

    fn try_checkpoint(&mut self) -> Result<(), DbError> {
        let due = self.last_checkpoint.elapsed() >= self.policy.interval;
        let (full, busy) = self.db.read().flush_status();
        if busy || !(due || full) {
            return Ok(());
        }
        let Some((tx, _)) = &self.policy.housekeeping else {
            // Without a housekeeping thread, checkpoints run inline.
            checkpoint::run(&self.db, &mut self.wal, self.policy.threads)?;
            self.last_checkpoint = Instant::now();
            return Ok(());
        };
        if let Some(pending) = checkpoint::begin(&self.db, &mut self.wal)? {
            self.last_checkpoint = Instant::now();
            if tx.send(Job::Checkpoint(pending)).is_err() {
                tracing::error!("housekeeping thread is gone; checkpoints stop");
            }
        }
        Ok(())
    }

    /// Makes the appended group durable, waiting (paused, see the module documentation) while
    /// storage cannot take it. Fails on any other storage error, or when told to stop while
    /// paused.
    fn make_durable(&mut self) -> Result<(), DbError> {
        let mut wait = RETRY_FIRST;
        loop {
            let max_age = if self.policy.durability.current().is_some() {
                Duration::ZERO
            } else {
                durability::CHECK_EVERY
            };
            let pause = match self.space.low(max_age) {
                Some(free) => (Pause::LowSpace, low_space(free, self.space.min_free())),
                None => match self.wal.commit() {
                    Ok(()) => {
                        self.policy.durability.resume();
                        return Ok(());
                    }
                    Err(e) => match e.exhausted() {
                        Some(exhausted) => (Pause::from(exhausted), e.to_string()),
                        None => {
                            tracing::error!(error = %e, "wal commit failed; no further message will be acknowledged");
                            return Err(e.into());
                        }
                    },
                },
            };
            metrics::counter!(m::WAL_COMMIT_RETRIES_TOTAL, "reason" => pause.0.as_str())
                .increment(1);
            self.policy.durability.pause(pause.0, &pause.1);
            if self.policy.stop.is_cancelled() {
                return Err(DbError::Paused(pause.0.as_str()));
            }
            self.tick_paused();
            std::thread::sleep(wait);
            wait = (wait * 2).min(RETRY_MAX);
        }
    }

    fn commit(&mut self, group: &mut Vec<Queued>, stats: &mut WriterStats) -> Result<(), DbError> {
        self.wait_while_paused();
        self.admit(group);
        let mut wal_bytes = 0usize;
        for envelope in group.iter() {
            let entry = entry_of(envelope);
            self.wal.append_with(|buf| {
                let start = buf.len();
                entry.encode(buf);
                wal_bytes += buf.len() - start;
            })?;
        }
        let started = Instant::now();
        self.make_durable()?;
        metrics::histogram!(m::WAL_COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::counter!(m::WAL_COMMITS_TOTAL).increment(1);
        metrics::counter!(m::WAL_BYTES_TOTAL).increment(wal_bytes as u64);
        stats.commits += 1;

        let mut applied = Applied::default();
        let mut outcomes = Vec::new();
        let (mut accepted, mut acked) = (0u64, 0u64);
        {
            let mut state = self.db.write();
            for (i, envelope) in group.iter().enumerate() {
                let a = state.apply(&entry_of(envelope), envelope.decoded());
                applied.readings_stored += a.readings_stored;
                applied.readings_duplicate += a.readings_duplicate;
                if let Some(outcome) = a.outcome {
                    outcomes.push((i, outcome));
                }
            }
        }
        let mut outcomes = outcomes.into_iter().peekable();
        for (i, queued) in group.drain(..).enumerate() {
            let envelope = match queued {
                Queued::Message(envelope) => envelope,
                // Connection events are neither counted as messages nor acknowledged.
                Queued::Connection { .. } => continue,
                Queued::Command(request) => {
                    if let Some((_, outcome)) = outcomes.next_if(|(at, _)| *at == i) {
                        // The caller may have gone; the command is applied either way.
                        let _ = request.reply.send(outcome);
                    }
                    continue;
                }
            };
            let refused = match &envelope.verdict {
                Ok(_) => {
                    accepted += 1;
                    None
                }
                Err(rejection) => {
                    stats.rejected += 1;
                    metrics::counter!(m::MESSAGES_REJECTED_TOTAL, "reason" => rejection.reason.as_str())
                        .increment(1);
                    Some(rejection.reason)
                }
            };
            if let Some(ack) = envelope.inbound.ack {
                match refused {
                    Some(reason) => ack.refused(reason).send(),
                    None => ack.send(),
                }
                acked += 1;
            }
        }
        stats.accepted += accepted;
        stats.readings_stored += applied.readings_stored;
        stats.readings_duplicate += applied.readings_duplicate;
        metrics::counter!(m::MESSAGES_ACCEPTED_TOTAL).increment(accepted);
        metrics::counter!(m::MESSAGES_ACKED_TOTAL).increment(acked);
        metrics::counter!(m::READINGS_STORED_TOTAL).increment(applied.readings_stored);
        metrics::counter!(m::READINGS_DUPLICATE_TOTAL).increment(applied.readings_duplicate);
        Ok(())
    }
}

impl Writer {
    /// Turns messages that would exceed the device, series or attribute limits into
    /// `too_many_devices`, `too_many_series` or `too_many_attributes` rejections, and drops the
    /// connection events of devices beyond the device limit.
    fn admit(&self, group: &mut Vec<Queued>) {
        let unlimited = self.max_series == u64::MAX && self.max_devices == u64::MAX;
        if unlimited && !group.iter().any(is_attributes) {
            return;
        }
        let state = self.db.read();
        let mut series = HashSet::new();
        let mut devices = HashSet::new();
        let mut attributes = Pending::new();
        group.retain_mut(|queued| match queued {
            Queued::Message(envelope) => {
                if envelope.verdict.is_ok()
                    && let Err(rejection) =
                        state.admit_device(&envelope.inbound.topic, self.max_devices, &mut devices)
                {
                    envelope.verdict = Err(envelope.inbound.annotate(rejection));
                }
                if let Ok(decoded) = &envelope.verdict
                    && let Err(rejection) =
                        state.admit_series(decoded, self.max_series, &mut series)
                {
                    envelope.verdict = Err(envelope.inbound.annotate(rejection));
                }
                if let Ok(decoded) = &envelope.verdict
                    && let Err(rejection) =
                        state.admit_attributes(decoded, self.attributes, &mut attributes)
                {
                    envelope.verdict = Err(envelope.inbound.annotate(rejection));
                }
                true
            }
            Queued::Connection { event, .. } => {
                let known = state
                    .admit_device(&event.topic, self.max_devices, &mut devices)
                    .is_ok();
                if !known {
                    metrics::counter!(m::CONNECTION_EVENTS_DROPPED_TOTAL).increment(1);
                }
                known
            }
            Queued::Command(_) => true,
        });
    }

    /// Blocks while the debug pause file exists (see [`PAUSE_FILE_ENV`]).
    fn wait_while_paused(&self) {
        let Some(path) = &self.pause_file else {
            return;
        };
        if path.exists() {
            tracing::warn!(path = %path.display(), "wal writer paused by the debug pause file");
            while path.exists() {
                std::thread::sleep(PAUSE_POLL);
            }
            tracing::warn!("wal writer resumed");
        }
    }
}

/// Whether `queued` is an accepted attributes status.
fn is_attributes(queued: &Queued) -> bool {
    matches!(
        queued,
        Queued::Message(envelope)
            if matches!(
                &envelope.verdict,
                Ok(Decoded::Status(s)) if matches!(s.kind, Some(status::Kind::Attributes(_)))
            )
    )
}

fn low_space(free: u64, min_free: u64) -> String {
    format!("{free} bytes free, below storage.min_free_bytes ({min_free})")
}

fn entry_of(queued: &Queued) -> Entry<'_> {
    let envelope = match queued {
        Queued::Message(envelope) => envelope,
        Queued::Connection { event, .. } => {
            return Entry::Connection {
                received_at_ms: event.received_at_ms,
                change: event.change,
                topic: &event.topic,
            };
        }
        Queued::Command(request) => {
            return Entry::Command {
                received_at_ms: request.received_at_ms,
                payload: &request.encoded,
            };
        }
    };
    let inbound = &envelope.inbound;
    match &envelope.verdict {
        Ok(_) => Entry::Message {
            received_at_ms: inbound.received_at_ms,
            topic: &inbound.topic,
            payload: &inbound.payload,
        },
        Err(rejection) => Entry::DeadLetter {
            received_at_ms: inbound.received_at_ms,
            reason: rejection.reason,
            topic: &inbound.topic,
            detail: &rejection.detail,
            payload: &inbound.payload,
        },
    }
}

#[cfg(test)]
mod tests;
