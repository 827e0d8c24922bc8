//! `citytel.v1.ReportService`: district reports, for any role. Each report is built from the
//! devices the caller's key sees ([`Visible`]); a district where it sees none is NOT_FOUND. The
//! work runs in the [`Reads`] pool: [`reports::gather`] under a brief read lock, the figures
//! without it ([`crate::reports`]).

use std::sync::Arc;

use citytel_proto::v1::{self, report_service_server::ReportService};
use tonic::{Request, Response, Status};

use super::auth::caller;
use super::error::ApiError;
use super::reads::Reads;
use crate::clock::Clock;
use crate::db::Database;
use crate::query::Visible;
use crate::reports::{self, Period, config::ReportSettings};
use crate::state::access::Caller;

/// The report service over a database.
#[derive(Clone)]
pub(crate) struct ReportApi {
    db: Arc<Database>,
    reads: Reads,
    clock: Clock,
    settings: Arc<ReportSettings>,
}

impl ReportApi {
    /// A service answering from `db` in `reads`, with `clock` for "now" (periods are cut at
    /// now) and the `[reports]` settings.
    pub(crate) fn new(
        db: Arc<Database>,
        reads: Reads,
        clock: Clock,
        settings: ReportSettings,
    ) -> Self {
        ReportApi {
            db,
            reads,
            clock,
            settings: Arc::new(settings),
        }
    }

    /// The reports of `district` (every visible one when `None`) over `[start_ms, end_ms)`.
    async fn reports<T>(
        &self,
        request: &Request<T>,
        district: Option<String>,
        (start_ms, end_ms): (i64, i64),
        worst: u32,
    ) -> Result<Vec<v1::DistrictReport>, Status> {
        let deadline = self.reads.deadline(request);
        let caller: Caller = caller(request)?;
        let period = Period::new(start_ms, end_ms, self.clock.now_ms()).map_err(ApiError::from)?;
        let worst = reports::worst_limit(worst).map_err(ApiError::from)?;
        let (db, settings) = (self.db.clone(), self.settings.clone());
        self.reads
            .run(deadline, move |deadline| {
                let gathered = {
                    let state = db.read();
                    let visible = Visible::of(&caller.scope, &state);
                    let intensity = settings.grid_intensity_series.as_ref();
                    reports::gather(&state, &visible, district.as_deref(), period, intensity)?
                };
                Ok(gathered.compute(&settings, worst, || deadline.expired())?)
            })
            .await
    }
}

#[tonic::async_trait]
impl ReportService for ReportApi {
    async fn get_district_report(
        &self,
        request: Request<v1::GetDistrictReportRequest>,
    ) -> Result<Response<v1::GetDistrictReportResponse>, Status> {
        let req = request.get_ref();
        if req.district.is_empty() {
            return Err(ApiError::InvalidArgument("district is required".into()).into());
        }
        let range = (req.start_unix_ms, req.end_unix_ms);
        let (district, worst) = (req.district.clone(), req.worst_limit);
        let report = self
            .reports(&request, Some(district), range, worst)
            .await?
            .into_iter()
            .next();
        Ok(Response::new(v1::GetDistrictReportResponse { report }))
    }

    async fn list_district_reports(
        &self,
        request: Request<v1::ListDistrictReportsRequest>,
    ) -> Result<Response<v1::ListDistrictReportsResponse>, Status> {
        let req = request.get_ref();
        let range = (req.start_unix_ms, req.end_unix_ms);
        let worst = req.worst_limit;
        let reports = self.reports(&request, None, range, worst).await?;
        Ok(Response::new(v1::ListDistrictReportsResponse { reports }))
    }
}
