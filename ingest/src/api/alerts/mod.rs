//! `citytel.v1.AlertService`: alerts, acknowledgements, silences and the rules in force.
//! Viewers list and watch; operators acknowledge and silence (`auth::require`). What a caller
//! sees is decided by its [`Visible`]: the alerts of devices it sees, and site or district alerts
//! only when its scope covers that site or district as a whole.
//! Acknowledgements and silences are commands through the WAL, answered once durable.
//!
//! - [`convert`]: wire types.

pub(crate) mod convert;

use std::sync::Arc;

use citytel_proto::v1::{self, alert_service_server::AlertService};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::{Request, Response, Status};

use super::auth::{caller, require};
use super::error::ApiError;
use super::query::submitted;
use super::watch::Answers;
use crate::alerts::rule::TargetKind;
use crate::alerts::view::{AlertView, Phase};
use crate::clock::Clock;
use crate::db::Database;
use crate::pipeline::{Pipeline, PipelineClosed};
use crate::query::Visible;
use crate::state::State;
use crate::state::access::{Caller, Role};
use crate::state::command::{Command, Outcome, Refusal};
use convert::{alert_to_wire, event_kind_to_wire, op_from_wire, passes, silence_to_wire};

/// Default and largest number of alerts per answer.
const DEFAULT_ALERTS: usize = 1000;
const MAX_ALERTS: usize = 10_000;
/// Longest name, comment and matcher value, in bytes.
const MAX_NAME: usize = 256;
const MAX_TEXT: usize = 1024;
/// Most matchers of a silence.
const MAX_MATCHERS: usize = 32;
/// Longest silence.
const MAX_SILENCE_MS: i64 = 366 * 24 * 3600 * 1000;

/// The alert service over a database.
#[derive(Clone)]
pub(crate) struct AlertApi {
    db: Arc<Database>,
    pipeline: Pipeline,
    clock: Clock,
}

/// Whether alert `a` is visible: a device alert when its device is; a site alert when the
/// caller's scope covers the site as a whole; a district alert when it covers the district.
pub(crate) fn visible(v: &Visible, a: &AlertView) -> bool {
    if v.is_everything() {
        return true;
    }
    let site = a.site.as_deref().unwrap_or("");
    match a.target.kind {
        TargetKind::Device => v.sees(
            &a.target.id,
            a.kind.as_deref().unwrap_or(""),
            site,
            a.district.as_deref(),
        ),
        TargetKind::Site => v.covers_site(site),
        TargetKind::District => v.covers_district(&a.target.id),
    }
}

/// Whether a caller who sees `v` may see and change a silence with `matchers`: any, when it
/// sees everything; otherwise one that matches `device` with `=` to a device it sees.
fn pins_a_seen_device(
    state: &State,
    v: &Visible,
    matchers: &[(String, crate::alerts::silence::MatchOp, String)],
) -> bool {
    v.is_everything()
        || matchers.iter().any(|(name, op, value)| {
            name == "device"
                && *op == crate::alerts::silence::MatchOp::Equal
                && v.get(state.registry(), value).is_some()
        })
}

/// A silence's matchers as (name, operator, value).
fn matchers_of(
    s: &crate::alerts::silence::Silence,
) -> Vec<(String, crate::alerts::silence::MatchOp, String)> {
    s.matchers
        .iter()
        .map(|m| (m.name.clone(), m.op, m.value.clone()))
        .collect()
}

fn invalid(message: impl Into<String>) -> Status {
    ApiError::InvalidArgument(message.into()).into()
}

/// Who a caller is, for acknowledgements and silences: the name given, and the caller's
/// organisation and key.
fn identity(caller: &Caller, name: &str) -> Result<String, Status> {
    if name.len() > MAX_NAME {
        return Err(invalid(format!("the name is longer than {MAX_NAME} bytes")));
    }
    let key = if caller.org.is_empty() {
        "anonymous".to_string()
    } else {
        format!("{}/{}", caller.org, caller.key)
    };
    Ok(if name.trim().is_empty() {
        key
    } else {
        format!("{} ({key})", name.trim())
    })
}

impl AlertApi {
    /// A service answering from `db` and changing state through `pipeline`.
    pub(crate) fn new(db: Arc<Database>, pipeline: Pipeline, clock: Clock) -> Self {
        AlertApi {
            db,
            pipeline,
            clock,
        }
    }

    async fn apply(&self, caller: &Caller, command: Command) -> Result<Outcome, Status> {
        match self.pipeline.command(&submitted(caller, command)).await {
            Ok(Outcome::Refused(Refusal::Alert(r))) => Err(match r {
                crate::alerts::commands::AlertRefusal::NoSuchAlert(_)
                | crate::alerts::commands::AlertRefusal::NoSuchSilence(_) => {
                    ApiError::NotFound(r.to_string())
                }
                crate::alerts::commands::AlertRefusal::TooManySilences(_) => {
                    ApiError::FailedPrecondition(r.to_string())
                }
            }
            .into()),
            Ok(Outcome::Refused(refusal)) => {
                Err(ApiError::FailedPrecondition(refusal.to_string()).into())
            }
            Ok(outcome) => Ok(outcome),
            Err(PipelineClosed) => Err(Status::unavailable(
                "citytel is not accepting changes (shutting down, or storage failed)",
            )),
        }
    }

    /// The alert `id` as `caller` may see it (NOT_FOUND otherwise).
    fn seen(&self, caller: &Caller, id: u64) -> Result<AlertView, Status> {
        let state = self.db.read();
        let world = state.alert_world();
        state
            .alerts()
            .view_of(id, &world)
            .filter(|a| visible(&Visible::of(&caller.scope, &state), a))
            .ok_or_else(|| ApiError::NotFound(format!("no open alert {id}")).into())
    }
}

#[tonic::async_trait]
impl AlertService for AlertApi {
    async fn list_alerts(
        &self,
        request: Request<v1::ListAlertsRequest>,
    ) -> Result<Response<v1::ListAlertsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let filter = req.filter.unwrap_or_default();
        let limit = match req.limit as usize {
            0 => DEFAULT_ALERTS,
            n => n.min(MAX_ALERTS),
        };
        let (views, v) = {
            let state = self.db.read();
            let world = state.alert_world();
            (
                state.alerts().views(&world),
                Visible::of(&caller.scope, &state),
            )
        };
        let seen: Vec<&AlertView> = views.iter().filter(|a| visible(&v, a)).collect();
        let count = |phase| seen.iter().filter(|a| a.phase == phase).count() as u32;
        let (firing, pending) = (count(Phase::Firing), count(Phase::Pending));
        let alerts = seen
            .into_iter()
            .filter(|a| passes(&filter, a))
            .take(limit)
            .map(alert_to_wire)
            .collect();
        Ok(Response::new(v1::ListAlertsResponse {
            alerts,
            firing,
            pending,
        }))
    }

    type WatchAlertsStream = Answers<v1::AlertEvent>;

    async fn watch_alerts(
        &self,
        request: Request<v1::WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let caller = caller(&request)?;
        let filter = request.into_inner().filter.unwrap_or_default();
        let (events, v) = {
            let state = self.db.read();
            (state.alerts().watch(), Visible::of(&caller.scope, &state))
        };
        let stream = BroadcastStream::new(events).filter_map(move |item| match item {
            Ok(event) => (visible(&v, &event.alert) && passes(&filter, &event.alert)).then(|| {
                Ok(v1::AlertEvent {
                    kind: event_kind_to_wire(event.kind).into(),
                    alert: Some(alert_to_wire(&event.alert)),
                })
            }),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                tracing::warn!(
                    stream = "alerts",
                    missed = n,
                    "a watcher fell behind and missed items"
                );
                None
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn ack_alert(
        &self,
        request: Request<v1::AckAlertRequest>,
    ) -> Result<Response<v1::AckAlertResponse>, Status> {
        let caller = caller(&request)?;
        require(&caller, Role::Operator, "AckAlert")?;
        let req = request.into_inner();
        self.seen(&caller, req.id)?;
        let by = identity(&caller, &req.by)?;
        match self
            .apply(&caller, Command::AckAlert { id: req.id, by })
            .await?
        {
            Outcome::AlertAcknowledged(view) => Ok(Response::new(v1::AckAlertResponse {
                alert: Some(alert_to_wire(&view)),
            })),
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
    }

    async fn create_silence(
        &self,
        request: Request<v1::CreateSilenceRequest>,
    ) -> Result<Response<v1::CreateSilenceResponse>, Status> {
        let caller = caller(&request)?;
        require(&caller, Role::Operator, "CreateSilence")?;
        let req = request.into_inner();
        let now = self.clock.now_ms();
        if req.matchers.is_empty() || req.matchers.len() > MAX_MATCHERS {
            return Err(invalid(format!(
                "a silence needs 1 to {MAX_MATCHERS} matchers"
            )));
        }
        let mut matchers = Vec::with_capacity(req.matchers.len());
        for m in &req.matchers {
            let op = op_from_wire(m.op).ok_or_else(|| invalid("unknown matcher operator"))?;
            if m.name.len() > MAX_NAME || m.value.len() > MAX_TEXT {
                return Err(invalid("a matcher's name or value is too long"));
            }
            crate::alerts::silence::Matcher::new(&m.name, op, &m.value)
                .map_err(|e| invalid(e.to_string()))?;
            matchers.push((m.name.clone(), op, m.value.clone()));
        }
        let starts = if req.starts_unix_ms == 0 {
            now
        } else {
            req.starts_unix_ms
        };
        if req.ends_unix_ms <= starts.max(now) || req.ends_unix_ms - starts > MAX_SILENCE_MS {
            return Err(invalid(
                "ends_unix_ms must be after the start and now, at most a year after the start",
            ));
        }
        if req.comment.len() > MAX_TEXT {
            return Err(invalid(format!("comment is longer than {MAX_TEXT} bytes")));
        }
        let pinned = {
            let state = self.db.read();
            pins_a_seen_device(&state, &Visible::of(&caller.scope, &state), &matchers)
        };
        if !pinned {
            return Err(Status::permission_denied(
                "a key with a restricted scope may only silence devices it sees: add a matcher device = <id>",
            ));
        }
        let command = Command::CreateSilence {
            matchers,
            starts_ms: starts,
            ends_ms: req.ends_unix_ms,
            created_by: identity(&caller, &req.created_by)?,
            comment: req.comment,
        };
        match self.apply(&caller, command).await? {
            Outcome::SilenceCreated(s) => Ok(Response::new(v1::CreateSilenceResponse {
                silence: Some(silence_to_wire(&s, now)),
            })),
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
    }

    async fn list_silences(
        &self,
        request: Request<v1::ListSilencesRequest>,
    ) -> Result<Response<v1::ListSilencesResponse>, Status> {
        let caller = caller(&request)?;
        let include_expired = request.get_ref().include_expired;
        let now = self.clock.now_ms();
        let silences = {
            let state = self.db.read();
            let v = Visible::of(&caller.scope, &state);
            state
                .alerts()
                .silences()
                .filter(|s| include_expired || s.ends_ms > now)
                .filter(|s| pins_a_seen_device(&state, &v, &matchers_of(s)))
                .map(|s| silence_to_wire(s, now))
                .collect()
        };
        Ok(Response::new(v1::ListSilencesResponse { silences }))
    }

    async fn expire_silence(
        &self,
        request: Request<v1::ExpireSilenceRequest>,
    ) -> Result<Response<v1::ExpireSilenceResponse>, Status> {
        let caller = caller(&request)?;
        require(&caller, Role::Operator, "ExpireSilence")?;
        let id = request.get_ref().id;
        let found = {
            let state = self.db.read();
            let v = Visible::of(&caller.scope, &state);
            state
                .alerts()
                .silences()
                .any(|s| s.id == id && pins_a_seen_device(&state, &v, &matchers_of(s)))
        };
        if !found {
            return Err(ApiError::NotFound(format!("no silence {id}")).into());
        }
        match self.apply(&caller, Command::ExpireSilence { id }).await? {
            Outcome::SilenceExpired(s) => Ok(Response::new(v1::ExpireSilenceResponse {
                silence: Some(silence_to_wire(&s, self.clock.now_ms())),
            })),
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
    }

    async fn list_alert_rules(
        &self,
        request: Request<v1::ListAlertRulesRequest>,
    ) -> Result<Response<v1::ListAlertRulesResponse>, Status> {
        caller(&request)?;
        let rules = self
            .db
            .read()
            .alerts()
            .rules()
            .iter()
            .map(|r| convert::rule_to_wire(r))
            .collect();
        Ok(Response::new(v1::ListAlertRulesResponse { rules }))
    }
}
