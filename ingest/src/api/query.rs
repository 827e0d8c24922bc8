//! `citytel.v1.QueryService`: device inventory, latest values and raw ranges.

use std::sync::Arc;

use citytel_proto::v1::{self, query_service_server::QueryService};
use tonic::{Request, Response, Status};

use super::convert::aggregation;
use super::error::ApiError;
use crate::query::{self, Selector, SeriesQuery};
use crate::store::Database;
use crate::store::series::SeriesReader;

/// Default and largest page of `ListDevices`.
const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;

/// The query service over a database.
pub struct QueryApi {
    db: Arc<Database>,
}

impl QueryApi {
    /// A service answering from `db`.
    pub fn new(db: Arc<Database>) -> Self {
        QueryApi { db }
    }
}

/// Runs CPU-heavy query work (decompression, aggregation) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Status::from),
        Err(_) => Err(Status::internal("query task failed")),
    }
}

fn require_device(id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::InvalidArgument("device_id is required".into()));
    }
    Ok(())
}

#[tonic::async_trait]
impl QueryService for QueryApi {
    async fn list_devices(
        &self,
        request: Request<v1::ListDevicesRequest>,
    ) -> Result<Response<v1::ListDevicesResponse>, Status> {
        let req = request.into_inner();
        let page_size = match req.page_size as usize {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(ApiError::InvalidArgument(format!(
                    "page_size {n} exceeds the maximum of {MAX_PAGE}"
                ))
                .into());
            }
            n => n,
        };
        let matches = |d: &&crate::store::registry::DeviceRecord| {
            (req.kind.is_empty() || *d.kind == *req.kind)
                && (req.site.is_empty() || *d.site == *req.site)
        };
        let state = self.db.read();
        let after = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
        let mut devices: Vec<v1::Device> = state
            .registry
            .iter_after(after)
            .filter(matches)
            .take(page_size + 1)
            .map(v1::Device::from)
            .collect();
        let next_page_token = if devices.len() > page_size {
            devices.truncate(page_size);
            devices
                .last()
                .map(|d| d.device_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let total = state.registry.iter_after(None).filter(matches).count();
        Ok(Response::new(v1::ListDevicesResponse {
            devices,
            next_page_token,
            total: u32::try_from(total).unwrap_or(u32::MAX),
        }))
    }

    async fn get_device(
        &self,
        request: Request<v1::GetDeviceRequest>,
    ) -> Result<Response<v1::GetDeviceResponse>, Status> {
        let id = request.into_inner().device_id;
        require_device(&id)?;
        let state = self.db.read();
        let record = state
            .registry
            .get(&id)
            .ok_or(ApiError::DeviceNotFound(id))?;
        Ok(Response::new(v1::GetDeviceResponse {
            device: Some(record.into()),
        }))
    }

    async fn get_latest(
        &self,
        request: Request<v1::GetLatestRequest>,
    ) -> Result<Response<v1::GetLatestResponse>, Status> {
        let id = request.into_inner().device_id;
        require_device(&id)?;
        let state = self.db.read();
        if state.registry.get(&id).is_none() {
            return Err(ApiError::DeviceNotFound(id).into());
        }
        let values = state
            .engine
            .latest(&id)
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Response::new(v1::GetLatestResponse {
            device_id: id,
            values,
        }))
    }

    async fn query_range(
        &self,
        request: Request<v1::QueryRangeRequest>,
    ) -> Result<Response<v1::QueryRangeResponse>, Status> {
        let req = request.into_inner();
        require_device(&req.device_id)?;
        if req.metric.is_empty() {
            return Err(ApiError::InvalidArgument("metric is required".into()).into());
        }
        if req.end_unix_ms <= req.start_unix_ms {
            return Err(ApiError::InvalidArgument(format!(
                "end_unix_ms ({}) must be greater than start_unix_ms ({})",
                req.end_unix_ms, req.start_unix_ms
            ))
            .into());
        }
        let capture = {
            let state = self.db.read();
            let Some(device) = state.registry.get(&req.device_id) else {
                return Err(ApiError::DeviceNotFound(req.device_id).into());
            };
            state.engine.capture(
                [(&device.device_id, req.metric.as_str())],
                req.start_unix_ms,
                req.end_unix_ms,
            )
        };
        let points = blocking(move || {
            capture
                .range(
                    &req.device_id,
                    &req.metric,
                    req.start_unix_ms,
                    req.end_unix_ms,
                )?
                .ok_or(ApiError::MetricNotFound {
                    device: req.device_id,
                    metric: req.metric,
                })
        })
        .await?;
        Ok(Response::new(points.into()))
    }

    async fn query_series(
        &self,
        request: Request<v1::QuerySeriesRequest>,
    ) -> Result<Response<v1::QuerySeriesResponse>, Status> {
        let req = request.into_inner();
        let per_bucket = aggregation(req.aggregation, "aggregation")?;
        let across = aggregation(req.across, "across")?;
        let step = match (req.step_ms, per_bucket) {
            (0, None) => None,
            (0, Some(_)) => {
                return Err(
                    ApiError::InvalidArgument("aggregation needs step_ms > 0".into()).into(),
                );
            }
            (_, None) => {
                return Err(
                    ApiError::InvalidArgument("step_ms > 0 needs an aggregation".into()).into(),
                );
            }
            (step, Some(agg)) => Some((step, agg)),
        };
        let selector: Selector = req.devices.unwrap_or_default().into();
        let (q, capture) = {
            let state = self.db.read();
            let devices = query::select(&state.registry, &selector).map_err(ApiError::from)?;
            let q = SeriesQuery {
                devices,
                metric: req.metric,
                start_ms: req.start_unix_ms,
                end_ms: req.end_unix_ms,
                step,
                across,
            };
            q.validate().map_err(ApiError::from)?;
            let capture = state.engine.capture(
                q.devices.iter().map(|d| (d, q.metric.as_str())),
                q.start_ms,
                q.end_ms,
            );
            (q, capture)
        };
        let answer = blocking(move || Ok(query::run(&capture, &q)?)).await?;
        Ok(Response::new(answer.into()))
    }

    async fn list_latest(
        &self,
        request: Request<v1::ListLatestRequest>,
    ) -> Result<Response<v1::ListLatestResponse>, Status> {
        let selector: Selector = request.into_inner().devices.unwrap_or_default().into();
        let state = self.db.read();
        let devices = query::select(&state.registry, &selector).map_err(ApiError::from)?;
        let devices = devices
            .into_iter()
            .map(|device| v1::DeviceLatest {
                values: state
                    .engine
                    .latest(&device)
                    .into_iter()
                    .map(Into::into)
                    .collect(),
                device_id: device.to_string(),
            })
            .collect();
        Ok(Response::new(v1::ListLatestResponse { devices }))
    }
}
