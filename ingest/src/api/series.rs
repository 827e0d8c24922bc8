//! Time-series reads: QueryRange and QuerySeries. The state lock is held only to capture what the
//! read needs; decompression and aggregation run without it. Both read only what the caller sees
//! ([`Visible`]): QueryRange of an invisible device or metric is NOT_FOUND like an unknown one;
//! QuerySeries selects among visible devices only (so an aggregate across devices is computed
//! over them alone), and a metric outside the caller's scope is one no device has.

use citytel_proto::v1;

use super::convert::{self, aggregation};
use super::devices::require_device;
use super::error::ApiError;
use crate::db::Database;
use crate::query::{self, Selector, SeriesQuery, Visible};
use crate::state::access::Scope;
use citytel_storage::series::SeriesReader;

/// `QueryRange`.
pub(crate) fn range(
    db: &Database,
    req: v1::QueryRangeRequest,
    scope: &Scope,
) -> Result<v1::QueryRangeResponse, ApiError> {
    require_device(&req.device_id)?;
    if req.metric.is_empty() {
        return Err(ApiError::InvalidArgument("metric is required".into()));
    }
    if req.end_unix_ms <= req.start_unix_ms {
        return Err(ApiError::InvalidArgument(format!(
            "end_unix_ms ({}) must be greater than start_unix_ms ({})",
            req.end_unix_ms, req.start_unix_ms
        )));
    }
    let capture = {
        let state = db.read();
        let visible = Visible::of(scope, &state);
        let Some(device) = visible.get(state.registry(), &req.device_id) else {
            return Err(ApiError::DeviceNotFound(req.device_id));
        };
        if !visible.metric(&req.metric) {
            return Err(ApiError::MetricNotFound {
                device: req.device_id,
                metric: req.metric,
            });
        }
        state.capture(
            [(&device.device_id, req.metric.as_str())],
            req.start_unix_ms,
            req.end_unix_ms,
        )
    };
    let time_runs = req.time_runs;
    let points = capture
        .range(
            &req.device_id,
            &req.metric,
            req.start_unix_ms,
            req.end_unix_ms,
        )?
        .ok_or(ApiError::MetricNotFound {
            device: req.device_id,
            metric: req.metric,
        })?;
    Ok(convert::range_answer(points, time_runs))
}

/// `QuerySeries`: validated and captured here, run by the caller off the async workers.
pub(crate) fn series(
    db: &Database,
    req: v1::QuerySeriesRequest,
    scope: &Scope,
) -> Result<impl FnOnce() -> Result<v1::QuerySeriesResponse, ApiError> + Send + 'static, ApiError> {
    let per_bucket = aggregation(req.aggregation, "aggregation")?;
    let across = aggregation(req.across, "across")?;
    let step = match (req.step_ms, per_bucket) {
        (0, None) => None,
        (0, Some(_)) => {
            return Err(ApiError::InvalidArgument(
                "aggregation needs step_ms > 0".into(),
            ));
        }
        (_, None) => {
            return Err(ApiError::InvalidArgument(
                "step_ms > 0 needs an aggregation".into(),
            ));
        }
        (step, Some(agg)) => Some((step, agg)),
    };
    let selector: Selector = req.devices.unwrap_or_default().into();
    let state = db.read();
    let visible = Visible::of(scope, &state);
    let mut devices = query::select(state.registry(), &selector, &visible)?;
    if !visible.metric(&req.metric) {
        devices.clear();
    }
    let q = SeriesQuery {
        devices,
        metric: req.metric,
        start_ms: req.start_unix_ms,
        end_ms: req.end_unix_ms,
        step,
        across,
    };
    q.validate()?;
    let capture = state.capture(
        q.devices.iter().map(|d| (d, q.metric.as_str())),
        q.start_ms,
        q.end_ms,
    );
    Ok(move || Ok(query::run(&capture, &q)?.into()))
}
