//! `citytel.v1.QueryService`: one method per RPC, each delegating to the module that owns the
//! topic ([`super::devices`], [`super::series`], [`super::fleet`], [`super::deadletters`],
//! [`super::watch`]). Small answers (one device, one series) are read inline under a brief read
//! lock; answers that grow with the fleet or the range run in the [`Reads`] pool; state changes
//! are commands through the pipeline, answered once they are durable.

use std::sync::Arc;

use citytel_proto::v1::{self, query_service_server::QueryService};
use tonic::{Request, Response, Status};

use super::auth::{caller, require};
use super::error::ApiError;
use super::reads::Reads;
use super::watch::Answers;
use super::{deadletters, devices, fleet, series, watch};
use crate::clock::Clock;
use crate::db::Database;
use crate::pipeline::Pipeline;
use crate::state::access::{Caller, Role};
use crate::state::command::{Actor, Command, Submitted};

/// A command as `caller` submits it.
pub(crate) fn submitted(caller: &Caller, command: Command) -> Submitted {
    let anonymous = caller.org.is_empty();
    Submitted {
        actor: Actor {
            org: caller.org.clone(),
            key: if anonymous {
                String::new()
            } else {
                caller.key.to_string()
            },
        },
        command,
    }
}

/// The query service over a database.
#[derive(Clone)]
pub(crate) struct QueryApi {
    db: Arc<Database>,
    pipeline: Pipeline,
    reads: Reads,
    clock: Clock,
}

impl QueryApi {
    /// A service answering from `db`, changing state through `pipeline`, running heavy reads in
    /// `reads`; `clock` says what "now" is (windows are cut at now).
    pub(crate) fn new(db: Arc<Database>, pipeline: Pipeline, reads: Reads, clock: Clock) -> Self {
        QueryApi {
            db,
            pipeline,
            reads,
            clock,
        }
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
        let deadline = self.reads.deadline(&request);
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |_| devices::list(&db.read(), &req))
            .await?;
        Ok(Response::new(answer))
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
        let deadline = self.reads.deadline(&request);
        let work = series::series(&self.db, request.into_inner()).map_err(Status::from)?;
        let answer = self.reads.run(deadline, move |_| work()).await?;
        Ok(Response::new(answer))
    }

    async fn list_latest(
        &self,
        request: Request<v1::ListLatestRequest>,
    ) -> Result<Response<v1::ListLatestResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let selector = request.into_inner().devices.unwrap_or_default().into();
        let db = self.db.clone();
        let answer = self
            .reads
            .run(deadline, move |_| {
                devices::list_latest(&db.read(), selector)
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn get_fleet_summary(
        &self,
        request: Request<v1::GetFleetSummaryRequest>,
    ) -> Result<Response<v1::GetFleetSummaryResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |_| Ok(fleet::summary(&db.read(), &req)))
            .await?;
        Ok(Response::new(answer))
    }

    async fn list_state_history(
        &self,
        request: Request<v1::ListStateHistoryRequest>,
    ) -> Result<Response<v1::ListStateHistoryResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |_| fleet::history(&db.read(), &req))
            .await?;
        Ok(Response::new(answer))
    }

    async fn get_availability(
        &self,
        request: Request<v1::GetAvailabilityRequest>,
    ) -> Result<Response<v1::GetAvailabilityResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let now = self.clock.now_ms();
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |deadline| {
                fleet::availability(&db, &req, now, deadline)
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn list_availability(
        &self,
        request: Request<v1::ListAvailabilityRequest>,
    ) -> Result<Response<v1::ListAvailabilityResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let now = self.clock.now_ms();
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |deadline| {
                fleet::list_availability(&db, req, now, deadline)
            })
            .await?;
        Ok(Response::new(answer))
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
        let caller = caller(&request)?;
        require(&caller, Role::Operator, "SetMaintenance")?;
        let command = fleet::set_maintenance_command(&self.db.read(), request.into_inner())?;
        let command = submitted(&caller, command);
        let window = fleet::maintenance_outcome(self.pipeline.command(&command).await)?;
        Ok(Response::new(v1::SetMaintenanceResponse {
            window: Some(super::convert::maintenance_to_wire(&window)),
        }))
    }

    async fn delete_maintenance(
        &self,
        request: Request<v1::DeleteMaintenanceRequest>,
    ) -> Result<Response<v1::DeleteMaintenanceResponse>, Status> {
        let caller = caller(&request)?;
        require(&caller, Role::Operator, "DeleteMaintenance")?;
        let command = submitted(
            &caller,
            fleet::delete_maintenance_command(request.get_ref())?,
        );
        let window = fleet::maintenance_outcome(self.pipeline.command(&command).await)?;
        Ok(Response::new(v1::DeleteMaintenanceResponse {
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
        // Payloads can hold anything a client sent.
        require(&caller(&request)?, Role::Admin, "ListDeadLetters")?;
        ok(deadletters::list(&self.db.read(), &request.into_inner()))
    }
}
