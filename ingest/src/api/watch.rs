//! Live streams: WatchEvents (state changes and reboots) and WatchReadings (stored readings).
//! Both subscribe to broadcasts fed by the writer; a watcher that falls too far behind misses the
//! oldest items (it is told so in a log line) rather than slowing ingest down.

use std::collections::HashSet;
use std::pin::Pin;

use citytel_proto::v1;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

use super::convert::change_to_wire;
use super::error::ApiError;
use crate::query::{self, Selector};
use crate::state::State;

/// A boxed stream of answers.
pub(crate) type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The device ids a selector picks, or `None` for every device (an empty selector: devices that
/// appear later are included too).
fn filter(state: &State, selector: Selector) -> Result<Option<HashSet<String>>, ApiError> {
    if selector == Selector::default() {
        return Ok(None);
    }
    Ok(Some(
        query::select(state.registry(), &selector)?
            .iter()
            .map(|d| d.to_string())
            .collect(),
    ))
}

fn lagged(what: &'static str, n: u64) {
    tracing::warn!(
        stream = what,
        missed = n,
        "a watcher fell behind and missed items"
    );
}

/// `WatchEvents`.
pub(crate) fn events(
    state: &State,
    req: v1::WatchEventsRequest,
) -> Result<Answers<v1::FleetEvent>, ApiError> {
    let devices = filter(state, req.devices.unwrap_or_default().into())?;
    let stream = BroadcastStream::new(state.watch_changes()).filter_map(move |item| match item {
        Ok(change) => devices
            .as_ref()
            .is_none_or(|d| d.contains(&*change.device))
            .then(|| Ok(change_to_wire(&change))),
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            lagged("events", n);
            None
        }
    });
    Ok(Box::pin(stream))
}

/// `WatchReadings`.
pub(crate) fn readings(
    state: &State,
    req: v1::WatchReadingsRequest,
) -> Result<Answers<v1::LiveReadings>, ApiError> {
    let devices = filter(state, req.devices.unwrap_or_default().into())?;
    let metrics: HashSet<String> = req.metrics.into_iter().collect();
    let stream = BroadcastStream::new(state.watch_readings()).filter_map(move |item| match item {
        Ok(live) => {
            if devices.as_ref().is_some_and(|d| !d.contains(&*live.device)) {
                return None;
            }
            let values: Vec<v1::LatestValue> = live
                .points
                .iter()
                .filter(|(m, _, _)| metrics.is_empty() || metrics.contains(&**m))
                .map(|(m, t, v)| v1::LatestValue {
                    metric: m.to_string(),
                    time_unix_ms: *t,
                    value: *v,
                })
                .collect();
            (!values.is_empty()).then(|| {
                Ok(v1::LiveReadings {
                    device_id: live.device.to_string(),
                    values,
                })
            })
        }
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            lagged("readings", n);
            None
        }
    });
    Ok(Box::pin(stream))
}
