//! One reporting identity on a connection: the device itself, or a sensor behind a gateway.
//!
//! A reporter owns its metric model, its sequence numbers and the readings it buffers until a batch
//! is full, and composes its status messages. Readings are stamped with the device's own clock: the
//! wall clock plus the device's skew.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use citytel_proto::v1::{
    Birth, Death, DeathReason, Heartbeat, Location, Reading, Status, TelemetryBatch, status,
};

use super::identity::Identity;
use crate::model::DeviceModel;
use crate::profile;

/// A device identity that takes readings and reports status.
#[derive(Debug)]
pub(crate) struct Reporter {
    identity: Identity,
    model: DeviceModel,
    /// For a gateway, the ids of its children, announced in its birth.
    children: Vec<String>,
    /// Sequence number of the next reading; the first is 1.
    next_seq: u64,
    /// Readings taken but not yet put in a batch.
    buffered: Vec<Reading>,
    booted: Instant,
    /// Where it stands (latitude, longitude), stated in its births.
    location: Option<(f64, f64)>,
}

impl Reporter {
    /// A freshly booted reporter, its model seeded with the fleet `seed`.
    pub(crate) fn new(identity: Identity, seed: u64, children: Vec<String>) -> Self {
        let model = DeviceModel::new(identity.kind, seed, &identity.device_id);
        Reporter {
            identity,
            model,
            children,
            next_seq: 1,
            buffered: Vec::new(),
            booted: Instant::now(),
            location: None,
        }
    }

    /// The reporter standing at `location` (latitude, longitude), if given.
    pub(crate) fn located(mut self, location: Option<(f64, f64)>) -> Self {
        self.location = location;
        self
    }

    /// Who this reporter is.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The metrics of every reading.
    pub(crate) fn metric_names(&self) -> &'static [&'static str] {
        self.model.metric_names()
    }

    /// The sequence number of the last reading taken, if any.
    pub(crate) fn last_seq(&self) -> Option<u64> {
        self.next_seq.checked_sub(1).filter(|seq| *seq > 0)
    }

    /// Takes a reading now and buffers it; once `batch` readings are buffered, returns them as one
    /// telemetry batch.
    pub(crate) fn take_reading(&mut self, batch: usize) -> Option<TelemetryBatch> {
        let time_unix_ms = self.now_ms();
        let values = self.model.sample(time_unix_ms);
        self.buffered.push(Reading {
            seq: self.next_seq,
            time_unix_ms,
            values,
        });
        self.next_seq += 1;
        (self.buffered.len() >= batch)
            .then(|| self.flush())
            .flatten()
    }

    /// The buffered readings as a telemetry batch, if there are any.
    pub(crate) fn flush(&mut self) -> Option<TelemetryBatch> {
        if self.buffered.is_empty() {
            return None;
        }
        Some(TelemetryBatch {
            device_id: self.identity.device_id.clone(),
            boot_id: self.identity.boot_id,
            metric_names: self.metric_names().iter().map(|n| n.to_string()).collect(),
            readings: std::mem::take(&mut self.buffered),
            gateway_id: self.identity.gateway_id.clone(),
        })
    }

    /// The birth this reporter publishes on every connect.
    pub(crate) fn birth(
        &self,
        reporting_interval_ms: u32,
        heartbeat_interval_ms: Option<u32>,
    ) -> Status {
        self.status(
            self.now_ms(),
            status::Kind::Birth(Birth {
                firmware_version: profile::firmware_version(self.identity.kind).to_string(),
                reporting_interval_ms,
                heartbeat_interval_ms,
                children: self.children.clone(),
                intermittent: None,
                location: self.location.map(|(latitude, longitude)| Location {
                    latitude,
                    longitude,
                }),
            }),
        )
    }

    /// A heartbeat carrying the last sequence number and the uptime.
    pub(crate) fn heartbeat(&self) -> Status {
        self.status(
            self.now_ms(),
            status::Kind::Heartbeat(Heartbeat {
                last_seq: self.last_seq(),
                uptime_s: Some(self.booted.elapsed().as_secs()),
            }),
        )
    }

    /// The death published at an orderly shutdown.
    pub(crate) fn shutdown(&self) -> Status {
        self.death(self.now_ms(), DeathReason::Shutdown)
    }

    /// The death set as the MQTT Last Will: composed at connect time, so its time is zero.
    pub(crate) fn last_will(&self) -> Status {
        self.death(0, DeathReason::ConnectionLost)
    }

    fn death(&self, time_unix_ms: i64, reason: DeathReason) -> Status {
        self.status(
            time_unix_ms,
            status::Kind::Death(Death {
                reason: reason as i32,
                at_status_time: false,
            }),
        )
    }

    fn status(&self, time_unix_ms: i64, kind: status::Kind) -> Status {
        Status {
            device_id: self.identity.device_id.clone(),
            boot_id: self.identity.boot_id,
            time_unix_ms,
            gateway_id: self.identity.gateway_id.clone(),
            kind: Some(kind),
        }
    }

    /// The device's clock: the wall clock plus its skew, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64 {
        wall_clock_ms().saturating_add(self.identity.clock_skew_ms)
    }
}

/// The wall clock in milliseconds since the Unix epoch.
fn wall_clock_ms() -> i64 {
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => ms(since),
        Err(before) => -ms(before.duration()),
    }
}

#[cfg(test)]
mod tests {
    use citytel_proto::kind::Kind;

    use super::*;

    fn reporter(skew_ms: u32) -> Reporter {
        let identity = Identity::new(
            "gw-0001-s01".into(),
            Kind::Sensor,
            "site-01".into(),
            Some("gw-0001".into()),
            (42, 0),
            skew_ms,
        );
        Reporter::new(identity, 42, Vec::new())
    }

    #[test]
    fn readings_are_numbered_from_one_and_batched() {
        let mut r = reporter(0);
        assert_eq!(r.last_seq(), None);
        assert!(r.take_reading(3).is_none());
        assert!(r.take_reading(3).is_none());
        let batch = r
            .take_reading(3)
            .expect("third reading completes the batch");
        let seqs: Vec<u64> = batch.readings.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(batch.metric_names.len(), 5);
        assert!(batch.readings.iter().all(|r| r.values.len() == 5));
        assert_eq!(batch.gateway_id.as_deref(), Some("gw-0001"));
        assert_eq!(r.last_seq(), Some(3));
        assert!(r.flush().is_none());
        assert!(r.take_reading(3).is_none());
        assert_eq!(r.flush().map(|b| b.readings[0].seq), Some(4));
    }

    #[test]
    fn readings_use_the_skewed_clock() {
        let mut r = reporter(60_000);
        let skew = r.identity().clock_skew_ms;
        let before = wall_clock_ms();
        let batch = r.take_reading(1).expect("batch of one");
        let after = wall_clock_ms();
        let t = batch.readings[0].time_unix_ms - skew;
        assert!((before..=after).contains(&t));
    }

    #[test]
    fn status_messages_carry_identity_and_kind() {
        let r = reporter(0);
        let will = r.last_will();
        assert_eq!(will.time_unix_ms, 0);
        assert_eq!(will.gateway_id.as_deref(), Some("gw-0001"));
        assert_eq!(
            will.kind,
            Some(status::Kind::Death(Death {
                reason: DeathReason::ConnectionLost as i32,
                at_status_time: false
            }))
        );
        let Some(status::Kind::Birth(birth)) = r.birth(10_000, Some(60_000)).kind else {
            panic!("not a birth");
        };
        assert_eq!(birth.firmware_version, "sen-fw 1.8.3");
        assert_eq!(birth.reporting_interval_ms, 10_000);
        assert_eq!(birth.heartbeat_interval_ms, Some(60_000));
    }
}
