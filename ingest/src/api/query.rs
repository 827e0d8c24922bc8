//! `citytel.v1.QueryService`: one method per RPC, each delegating to the module that owns the
//! topic ([`super::devices`], [`super::series`], [`super::fleet`], [`super::deadletters`],
//! [`super::watch`], [`super::export`]). Small answers (one device, one series) are read inline
//! under a brief read lock; answers that grow with the fleet or the range run in the [`Reads`]
//! pool; state changes are commands through the pipeline, answered once they are durable.
//!
//! Every method takes the [`Caller`] the authenticator found and answers only what its scope
//! shows: the handlers build a [`Visible`] from it under the read lock and ask it, nothing else.

use std::sync::Arc;

use citytel_proto::v1::{self, query_service_server::QueryService};
use tonic::{Request, Response, Status};

use super::auth::{caller, require};
use super::error::ApiError;
use super::reads::Reads;
use super::watch::Answers;
use super::{deadletters, devices, export, fleet, series, watch};
use crate::clock::Clock;
use crate::db::Database;
use crate::pipeline::Pipeline;
use crate::query::Visible;
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
        let caller = caller(&request)?;
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |_| {
                let state = db.read();
                devices::list(&state, &req, &Visible::of(&caller.scope, &state))
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn get_device(
        &self,
        request: Request<v1::GetDeviceRequest>,
    ) -> Result<Response<v1::GetDeviceResponse>, Status> {
        let caller = caller(&request)?;
        let state = self.db.read();
        let visible = Visible::of(&caller.scope, &state);
        ok(devices::get(
            &state,
            request.into_inner().device_id,
            &visible,
        ))
    }

    async fn get_latest(
        &self,
        request: Request<v1::GetLatestRequest>,
    ) -> Result<Response<v1::GetLatestResponse>, Status> {
        let caller = caller(&request)?;
        let state = self.db.read();
        let visible = Visible::of(&caller.scope, &state);
        ok(devices::latest(
            &state,
            request.into_inner().device_id,
            &visible,
        ))
    }

    async fn query_range(
        &self,
        request: Request<v1::QueryRangeRequest>,
    ) -> Result<Response<v1::QueryRangeResponse>, Status> {
        // One series decodes in microseconds (decoded segments are cached): answered inline
        // rather than paying for a hop to the blocking pool.
        let caller = caller(&request)?;
        ok(series::range(&self.db, request.into_inner(), &caller.scope))
    }

    async fn query_series(
        &self,
        request: Request<v1::QuerySeriesRequest>,
    ) -> Result<Response<v1::QuerySeriesResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let caller = caller(&request)?;
        let work =
            series::series(&self.db, request.into_inner(), &caller.scope).map_err(Status::from)?;
        let answer = self.reads.run(deadline, move |_| work()).await?;
        Ok(Response::new(answer))
    }

    async fn list_latest(
        &self,
        request: Request<v1::ListLatestRequest>,
    ) -> Result<Response<v1::ListLatestResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let caller = caller(&request)?;
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |_| {
                let state = db.read();
                let visible = Visible::of(&caller.scope, &state);
                devices::list_latest(&state, &req, &visible)
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn get_fleet_summary(
        &self,
        request: Request<v1::GetFleetSummaryRequest>,
    ) -> Result<Response<v1::GetFleetSummaryResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let caller = caller(&request)?;
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |_| {
                let state = db.read();
                let visible = Visible::of(&caller.scope, &state);
                Ok(fleet::summary(&state, &req, &visible))
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn list_state_history(
        &self,
        request: Request<v1::ListStateHistoryRequest>,
    ) -> Result<Response<v1::ListStateHistoryResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let caller = caller(&request)?;
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |_| {
                let state = db.read();
                fleet::history(&state, &req, &Visible::of(&caller.scope, &state))
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn get_availability(
        &self,
        request: Request<v1::GetAvailabilityRequest>,
    ) -> Result<Response<v1::GetAvailabilityResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let caller = caller(&request)?;
        let now = self.clock.now_ms();
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |deadline| {
                fleet::availability(&db, &req, &caller.scope, now, deadline)
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn list_availability(
        &self,
        request: Request<v1::ListAvailabilityRequest>,
    ) -> Result<Response<v1::ListAvailabilityResponse>, Status> {
        let deadline = self.reads.deadline(&request);
        let caller = caller(&request)?;
        let now = self.clock.now_ms();
        let (db, req) = (self.db.clone(), request.into_inner());
        let answer = self
            .reads
            .run(deadline, move |deadline| {
                fleet::list_availability(&db, req, &caller.scope, now, deadline)
            })
            .await?;
        Ok(Response::new(answer))
    }

    type WatchEventsStream = Answers<v1::FleetEvent>;

    async fn watch_events(
        &self,
        request: Request<v1::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let caller = caller(&request)?;
        ok(watch::events(
            self.db.clone(),
            request.into_inner(),
            &caller.scope,
        ))
    }

    type WatchReadingsStream = Answers<v1::LiveReadings>;

    async fn watch_readings(
        &self,
        request: Request<v1::WatchReadingsRequest>,
    ) -> Result<Response<Self::WatchReadingsStream>, Status> {
        let caller = caller(&request)?;
        ok(watch::readings(
            &self.db.read(),
            request.into_inner(),
            &caller.scope,
        ))
    }

    async fn set_maintenance(
        &self,
        request: Request<v1::SetMaintenanceRequest>,
    ) -> Result<Response<v1::SetMaintenanceResponse>, Status> {
        let caller = caller(&request)?;
        require(&caller, Role::Operator, "SetMaintenance")?;
        let command = {
            let state = self.db.read();
            let visible = Visible::of(&caller.scope, &state);
            fleet::set_maintenance_command(&state, request.into_inner(), &visible)?
        };
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
        let command = {
            let state = self.db.read();
            let visible = Visible::of(&caller.scope, &state);
            fleet::delete_maintenance_command(&state, request.get_ref(), &visible)?
        };
        let command = submitted(&caller, command);
        let window = fleet::maintenance_outcome(self.pipeline.command(&command).await)?;
        Ok(Response::new(v1::DeleteMaintenanceResponse {
            window: Some(super::convert::maintenance_to_wire(&window)),
        }))
    }

    async fn list_maintenance(
        &self,
        request: Request<v1::ListMaintenanceRequest>,
    ) -> Result<Response<v1::ListMaintenanceResponse>, Status> {
        let caller = caller(&request)?;
        let state = self.db.read();
        let visible = Visible::of(&caller.scope, &state);
        Ok(Response::new(fleet::list_maintenance(&state, &visible)))
    }

    type ExportSeriesStream = Answers<v1::ExportChunk>;

    async fn export_series(
        &self,
        request: Request<v1::ExportSeriesRequest>,
    ) -> Result<Response<Self::ExportSeriesStream>, Status> {
        let deadline = self.reads.deadline(&request);
        let caller = caller(&request)?;
        let export = export::Export::from_request(request.into_inner())?;
        Ok(Response::new(export::start(
            self.db.clone(),
            &self.reads,
            deadline,
            caller,
            export,
        )))
    }

    async fn list_dead_letters(
        &self,
        request: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        // Payloads can hold anything a client sent, and may name no device a scope could
        // filter on: admins only, unfiltered.
        require(&caller(&request)?, Role::Admin, "ListDeadLetters")?;
        ok(deadletters::list(&self.db.read(), &request.into_inner()))
    }
}
