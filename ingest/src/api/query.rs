//! `citytel.v1.QueryService`: one method per RPC, each delegating to the module that owns the
//! topic ([`super::devices`], [`super::series`], [`super::fleet`], [`super::deadletters`],
//! [`super::watch`]). Quick answers run inline under a read lock; heavy reads run on the blocking
//! pool without the lock.

use std::sync::Arc;

use citytel_proto::v1::{self, query_service_server::QueryService};
use tonic::{Request, Response, Status};

use super::error::ApiError;
use super::watch::Answers;
use super::{deadletters, devices, fleet, series, watch};
use crate::clock::Clock;
use crate::store::Database;
use crate::store::database::MAINTENANCE_KEY;

/// The query service over a database.
pub struct QueryApi {
    db: Arc<Database>,
    clock: Clock,
}

impl QueryApi {
    /// A service answering from `db`, with the system clock.
    pub fn new(db: Arc<Database>) -> Self {
        Self::with_clock(db, Clock::System)
    }

    /// A service answering from `db`; `clock` says what "now" is (windows are cut at now).
    pub fn with_clock(db: Arc<Database>, clock: Clock) -> Self {
        QueryApi { db, clock }
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

fn ok<T>(r: Result<T, ApiError>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl QueryService for QueryApi {
    async fn list_devices(
        &self,
        request: Request<v1::ListDevicesRequest>,
    ) -> Result<Response<v1::ListDevicesResponse>, Status> {
        ok(devices::list(&self.db.read(), &request.into_inner()))
    }

    async fn get_device(
        &self,
        request: Request<v1::GetDeviceRequest>,
    ) -> Result<Response<v1::GetDeviceResponse>, Status> {
        ok(devices::get(
            &self.db.read(),
            request.into_inner().device_id,
        ))
    }

    async fn get_latest(
        &self,
        request: Request<v1::GetLatestRequest>,
    ) -> Result<Response<v1::GetLatestResponse>, Status> {
        ok(devices::latest(
            &self.db.read(),
            request.into_inner().device_id,
        ))
    }

    async fn query_range(
        &self,
        request: Request<v1::QueryRangeRequest>,
    ) -> Result<Response<v1::QueryRangeResponse>, Status> {
        // One series decodes in microseconds (decoded segments are cached): answered inline
        // rather than paying for a hop to the blocking pool.
        ok(series::range(&self.db, request.into_inner()))
    }

    async fn query_series(
        &self,
        request: Request<v1::QuerySeriesRequest>,
    ) -> Result<Response<v1::QuerySeriesResponse>, Status> {
        let work = series::series(&self.db, request.into_inner()).map_err(Status::from)?;
        Ok(Response::new(blocking(work).await?))
    }

    async fn list_latest(
        &self,
        request: Request<v1::ListLatestRequest>,
    ) -> Result<Response<v1::ListLatestResponse>, Status> {
        let selector = request.into_inner().devices.unwrap_or_default().into();
        ok(devices::list_latest(&self.db.read(), selector))
    }

    async fn get_fleet_summary(
        &self,
        request: Request<v1::GetFleetSummaryRequest>,
    ) -> Result<Response<v1::GetFleetSummaryResponse>, Status> {
        Ok(Response::new(fleet::summary(
            &self.db.read(),
            &request.into_inner(),
        )))
    }

    async fn list_state_history(
        &self,
        request: Request<v1::ListStateHistoryRequest>,
    ) -> Result<Response<v1::ListStateHistoryResponse>, Status> {
        ok(fleet::history(&self.db.read(), &request.into_inner()))
    }

    async fn get_availability(
        &self,
        request: Request<v1::GetAvailabilityRequest>,
    ) -> Result<Response<v1::GetAvailabilityResponse>, Status> {
        let now = self.clock.now_ms();
        ok(fleet::availability(
            &self.db.read(),
            &request.into_inner(),
            now,
        ))
    }

    async fn list_availability(
        &self,
        request: Request<v1::ListAvailabilityRequest>,
    ) -> Result<Response<v1::ListAvailabilityResponse>, Status> {
        let now = self.clock.now_ms();
        ok(fleet::list_availability(
            &self.db.read(),
            request.into_inner(),
            now,
        ))
    }

    type WatchEventsStream = Answers<v1::FleetEvent>;

    async fn watch_events(
        &self,
        request: Request<v1::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        ok(watch::events(&self.db.read(), request.into_inner()))
    }

    type WatchReadingsStream = Answers<v1::LiveReadings>;

    async fn watch_readings(
        &self,
        request: Request<v1::WatchReadingsRequest>,
    ) -> Result<Response<Self::WatchReadingsStream>, Status> {
        ok(watch::readings(&self.db.read(), request.into_inner()))
    }

    async fn set_maintenance(
        &self,
        request: Request<v1::SetMaintenanceRequest>,
    ) -> Result<Response<v1::SetMaintenanceResponse>, Status> {
        let (target, span, reason) =
            fleet::maintenance_request(request.into_inner()).map_err(Status::from)?;
        let db = self.db.clone();
        let window = blocking(move || {
            // Stored before it is answered, so it survives a crash right after.
            let mut state = db.write();
            let window = state.tracker.add_maintenance(target, span, reason);
            let windows = state.tracker.api_maintenance();
            let bytes = postcard::to_stdvec(&windows)
                .map_err(|e| ApiError::Internal(format!("encoding maintenance windows: {e}")))?;
            let store = state.engine.store().clone();
            store
                .ingest_into(&store.meta, vec![(MAINTENANCE_KEY.to_vec(), Some(bytes))])
                .map_err(|e| ApiError::Internal(format!("storing maintenance windows: {e}")))?;
            Ok(window)
        })
        .await?;
        Ok(Response::new(v1::SetMaintenanceResponse {
            window: Some(super::convert::maintenance_to_wire(&window)),
        }))
    }

    async fn list_maintenance(
        &self,
        _request: Request<v1::ListMaintenanceRequest>,
    ) -> Result<Response<v1::ListMaintenanceResponse>, Status> {
        Ok(Response::new(fleet::list_maintenance(&self.db.read())))
    }

    async fn list_dead_letters(
        &self,
        request: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        ok(deadletters::list(&self.db.read(), &request.into_inner()))
    }
}
