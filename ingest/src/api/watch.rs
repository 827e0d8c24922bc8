//! Live streams: WatchEvents (state changes and reboots) and WatchReadings (stored readings).
//! Both subscribe to broadcasts fed by the writer; a watcher that falls too far behind misses the
//! oldest items (it is told so in a log line) rather than slowing ingest down.
//!
//! A watcher gets only what its caller sees ([`Visible`]), checked item by item as it is sent
//! (so devices that appear later are shown or hidden by the same rule): readings carry their
//! device's kind and site, events are checked against the registry; metrics outside the
//! caller's scope are left out, and an item left with nothing visible is not sent at all.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use citytel_proto::v1;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

use super::convert::change_to_wire;
use super::error::ApiError;
use crate::db::Database;
use crate::query::{self, Selector, Visible};
use crate::state::State;
use crate::state::access::Scope;

/// A boxed stream of answers.
pub(crate) type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The device ids a selector picks among the visible ones, or `None` for every device (an
/// empty selector: devices that appear later are included too).
fn filter(
    state: &State,
    selector: Selector,
    visible: &Visible,
) -> Result<Option<HashSet<String>>, ApiError> {
    if selector == Selector::default() {
        return Ok(None);
    }
    Ok(Some(
        query::select(state.registry(), &selector, visible)?
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
    db: Arc<Database>,
    req: v1::WatchEventsRequest,
    scope: &Scope,
) -> Result<Answers<v1::FleetEvent>, ApiError> {
    let (visible, devices, changes) = {
        let state = db.read();
        let visible = Visible::of(scope, &state);
        let devices = filter(&state, req.devices.unwrap_or_default().into(), &visible)?;
        (visible, devices, state.watch_changes())
    };
    // Whether the device of an event is visible now (devices of a selector were checked when
    // it was resolved).
    let sees = move |device: &str| {
        visible.is_everything() || visible.get(db.read().registry(), device).is_some()
    };
    let stream = BroadcastStream::new(changes).filter_map(move |item| match item {
        Ok(change) => devices
            .as_ref()
            .map_or_else(|| sees(&change.device), |d| d.contains(&*change.device))
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
    scope: &Scope,
) -> Result<Answers<v1::LiveReadings>, ApiError> {
    let visible = Visible::of(scope, state);
    let devices = filter(state, req.devices.unwrap_or_default().into(), &visible)?;
    let metrics: HashSet<String> = req.metrics.into_iter().collect();
    let stream = BroadcastStream::new(state.watch_readings()).filter_map(move |item| match item {
        Ok(live) => {
            if devices.as_ref().is_some_and(|d| !d.contains(&*live.device))
                || !visible.sees(
                    &live.device,
                    &live.kind,
                    &live.site,
                    live.district.as_deref(),
                )
            {
                return None;
            }
            let values: Vec<v1::LatestValue> = live
                .points
                .iter()
                .filter(|(m, _, _)| metrics.is_empty() || metrics.contains(&**m))
                .filter(|(m, _, _)| visible.metric(m))
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
