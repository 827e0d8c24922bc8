//! The cardinality limits the writer checks before it appends a group to the WAL, so the
//! decision is in the WAL (as a dead letter) and a replay rebuilds exactly the same state:
//!
//! - series (`ingest.max_series`): a telemetry batch that would add series beyond the limit is
//!   refused with [`RejectReason::TooManySeries`];
//! - devices (`ingest.max_devices`): a message, or a connection event, about a device the
//!   registry does not hold yet is refused with [`RejectReason::TooManyDevices`] (a connection
//!   event is dropped: it would only register the device) once the registry is full. Status
//!   messages count as much as telemetry;
//! - attributes (`ingest.max_attributes_per_device`, `ingest.max_attribute_bytes_per_device`):
//!   an attributes status that would bring its device over either bound is refused with
//!   [`RejectReason::TooManyAttributes`] (see [`super::attributes`]).
//!
//! `pending` sets collect what earlier messages of the same group (not yet applied) add.

use std::collections::HashSet;

use citytel_proto::topic;
use citytel_proto::v1::status;

use super::State;
use super::attributes::{AttributeLimits, Pending};
use crate::decode::{Decoded, RejectReason, Rejection};

impl State {
    /// Checks the series cardinality limit for a message about to be committed. A telemetry
    /// batch that would bring the number of series (device, metric pairs) over `max_series` is
    /// refused with [`RejectReason::TooManySeries`]; batches that only write to known series always
    /// pass. `pending` collects the series admitted earlier in the same commit group (not yet
    /// applied); an accepted batch adds its new series to it.
    pub(crate) fn admit_series(
        &self,
        decoded: &Decoded,
        max_series: u64,
        pending: &mut HashSet<(String, String)>,
    ) -> Result<(), Rejection> {
        let Decoded::Telemetry(batch) = decoded else {
            return Ok(());
        };
        let catalog = self.engine.catalog();
        let device = batch.device_id.as_str();
        let new: Vec<&str> = batch
            .metric_names
            .iter()
            .map(String::as_str)
            .filter(|metric| {
                catalog.get(device, metric).is_none()
                    && !pending.contains(&(device.to_string(), (*metric).to_string()))
            })
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let total = (catalog.len() + pending.len() + new.len()) as u64;
        if total > max_series {
            return Err(Rejection::new(
                RejectReason::TooManySeries,
                format!(
                    "{} new series for device {device:?} would exceed the limit of {max_series} series",
                    new.len()
                ),
            ));
        }
        pending.extend(
            new.into_iter()
                .map(|metric| (device.to_string(), metric.to_string())),
        );
        Ok(())
    }

    /// Checks the attribute limits of a device for an attributes status about to be committed
    /// (other messages always pass). `pending` collects what statuses admitted earlier in the
    /// same commit group add.
    pub(crate) fn admit_attributes(
        &self,
        decoded: &Decoded,
        limits: AttributeLimits,
        pending: &mut Pending,
    ) -> Result<(), Rejection> {
        let Decoded::Status(s) = decoded else {
            return Ok(());
        };
        let Some(status::Kind::Attributes(a)) = &s.kind else {
            return Ok(());
        };
        self.attributes
            .admit(&s.device_id, &a.attributes, limits, pending)
    }

    /// Checks the device limit for a message (or connection event) about `topic` about to be
    /// committed: a device the registry does not hold, beyond `max_devices` devices, is refused
    /// with [`RejectReason::TooManyDevices`]. Known devices and topics that name no device pass.
    /// `pending` collects the devices admitted earlier in the same commit group.
    pub(crate) fn admit_device(
        &self,
        topic: &str,
        max_devices: u64,
        pending: &mut HashSet<String>,
    ) -> Result<(), Rejection> {
        let Ok(parsed) = topic::parse(topic) else {
            return Ok(());
        };
        let device = parsed.device_id;
        if self.registry.get(device).is_some() || pending.contains(device) {
            return Ok(());
        }
        if (self.registry.len() + pending.len()) as u64 >= max_devices {
            return Err(Rejection::new(
                RejectReason::TooManyDevices,
                format!("device {device:?} would exceed the limit of {max_devices} devices"),
            ));
        }
        pending.insert(device.to_string());
        Ok(())
    }
}
