//! `citytel.v1.AdminService`: organisations, API keys and the audit log. Every call needs an
//! admin key; every change is a command through the WAL (answered once durable) and lands in the
//! audit log.

use std::sync::Arc;

use citytel_proto::v1::{self, admin_service_server::AdminService};
use tonic::{Request, Response, Status};

use super::auth::{caller, require};
use super::error::ApiError;
use super::query::submitted;
use crate::clock::Clock;
use crate::db::Database;
use crate::pipeline::{Pipeline, PipelineClosed};
use crate::state::access::{self, ApiKey, KeyId, Organisation, Role, Scope, token};
use crate::state::command::{Command, Outcome};

/// Default and largest number of audit records per answer.
const DEFAULT_AUDIT: usize = 100;
const MAX_AUDIT: usize = 1000;
/// Longest name, licence and scope entry, in bytes.
const MAX_TEXT: usize = 1024;
/// Most entries of one scope list.
const MAX_SCOPE_ENTRIES: usize = 1000;

/// The admin service over a database.
#[derive(Clone)]
pub(crate) struct AdminApi {
    db: Arc<Database>,
    pipeline: Pipeline,
    clock: Clock,
}

impl AdminApi {
    /// A service answering from `db` and changing state through `pipeline`.
    pub(crate) fn new(db: Arc<Database>, pipeline: Pipeline, clock: Clock) -> Self {
        AdminApi {
            db,
            pipeline,
            clock,
        }
    }

    async fn apply(
        &self,
        command: Command,
        request: &Request<impl Sized>,
    ) -> Result<Outcome, Status> {
        let caller = caller(request)?;
        match self.pipeline.command(&submitted(&caller, command)).await {
            Ok(Outcome::Refused(refusal)) => {
                Err(ApiError::FailedPrecondition(refusal.to_string()).into())
            }
            Ok(outcome) => Ok(outcome),
            Err(PipelineClosed) => Err(Status::unavailable(
                "citytel is not accepting changes (shutting down, or storage failed)",
            )),
        }
    }
}

fn admin<T>(request: &Request<T>, what: &str) -> Result<(), Status> {
    require(&caller(request)?, Role::Admin, what)
}

fn invalid(message: impl Into<String>) -> Status {
    ApiError::InvalidArgument(message.into()).into()
}

fn text(field: &str, value: &str) -> Result<(), Status> {
    if value.len() > MAX_TEXT {
        return Err(invalid(format!("{field} is longer than {MAX_TEXT} bytes")));
    }
    Ok(())
}

/// An organisation on the wire.
pub(crate) fn org_to_wire(o: &Organisation) -> v1::Organisation {
    v1::Organisation {
        id: o.id.clone(),
        name: o.name.clone(),
        licence: o.licence.clone(),
        created_unix_ms: o.created_ms,
    }
}

/// A key on the wire (never its hash).
pub(crate) fn key_to_wire(k: &ApiKey) -> v1::ApiKey {
    let s = &k.scope;
    v1::ApiKey {
        id: k.id.to_string(),
        organisation: k.org.clone(),
        role: k.role.as_str().to_string(),
        scope: Some(v1::Scope {
            districts: s.districts.clone(),
            sites: s.sites.clone(),
            kinds: s.kinds.clone(),
            devices: s.devices.clone(),
            metrics: s.metrics.clone().unwrap_or_default(),
            restrict_metrics: s.metrics.is_some(),
        }),
        name: k.name.clone(),
        created_unix_ms: k.created_ms,
        expires_unix_ms: k.expires_ms.unwrap_or(0),
        revoked_unix_ms: k.revoked_ms.unwrap_or(0),
    }
}

/// A scope from the wire, checked.
pub(crate) fn scope_from_wire(scope: Option<v1::Scope>) -> Result<Scope, Status> {
    let Some(s) = scope else {
        return Ok(Scope::default());
    };
    for (field, list) in [
        ("scope.districts", &s.districts),
        ("scope.sites", &s.sites),
        ("scope.kinds", &s.kinds),
        ("scope.devices", &s.devices),
        ("scope.metrics", &s.metrics),
    ] {
        if list.len() > MAX_SCOPE_ENTRIES {
            return Err(invalid(format!(
                "{field} has more than {MAX_SCOPE_ENTRIES} entries"
            )));
        }
        for entry in list {
            text(field, entry)?;
        }
    }
    Ok(Scope {
        districts: s.districts,
        sites: s.sites,
        kinds: s.kinds,
        devices: s.devices,
        metrics: s.restrict_metrics.then_some(s.metrics),
    })
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_organisation(
        &self,
        request: Request<v1::CreateOrganisationRequest>,
    ) -> Result<Response<v1::CreateOrganisationResponse>, Status> {
        admin(&request, "CreateOrganisation")?;
        let org = request
            .get_ref()
            .organisation
            .clone()
            .ok_or_else(|| invalid("organisation is required"))?;
        if !access::valid_org_id(&org.id) {
            return Err(invalid(format!(
                "organisation id {:?} must be 1 to 64 characters of [a-z0-9-]",
                org.id
            )));
        }
        text("name", &org.name)?;
        text("licence", &org.licence)?;
        let org = Organisation {
            id: org.id,
            name: org.name,
            licence: org.licence,
            created_ms: self.clock.now_ms(),
        };
        match self
            .apply(Command::CreateOrganisation(org), &request)
            .await?
        {
            Outcome::OrganisationCreated(org) => {
                Ok(Response::new(v1::CreateOrganisationResponse {
                    organisation: Some(org_to_wire(&org)),
                }))
            }
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
    }

    async fn list_organisations(
        &self,
        request: Request<v1::ListOrganisationsRequest>,
    ) -> Result<Response<v1::ListOrganisationsResponse>, Status> {
        admin(&request, "ListOrganisations")?;
        let organisations = self.db.read().access().orgs().map(org_to_wire).collect();
        Ok(Response::new(v1::ListOrganisationsResponse {
            organisations,
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<v1::CreateApiKeyRequest>,
    ) -> Result<Response<v1::CreateApiKeyResponse>, Status> {
        admin(&request, "CreateApiKey")?;
        let req = request.get_ref().clone();
        let role = Role::from_name(&req.role).ok_or_else(|| {
            invalid(format!(
                "role {:?} must be viewer, operator or admin",
                req.role
            ))
        })?;
        text("name", &req.name)?;
        let now = self.clock.now_ms();
        if req.expires_unix_ms != 0 && req.expires_unix_ms <= now {
            return Err(invalid("expires_unix_ms is in the past"));
        }
        if self.db.read().access().org(&req.organisation).is_none() {
            return Err(ApiError::NotFound(format!(
                "organisation {:?} not found",
                req.organisation
            ))
            .into());
        }
        let (id, secret, hash) = token::generate();
        let key = ApiKey {
            id,
            org: req.organisation,
            role,
            scope: scope_from_wire(req.scope)?,
            name: req.name,
            hash,
            created_ms: now,
            expires_ms: (req.expires_unix_ms != 0).then_some(req.expires_unix_ms),
            revoked_ms: None,
        };
        match self.apply(Command::CreateKey(key), &request).await? {
            Outcome::KeyCreated(key) => Ok(Response::new(v1::CreateApiKeyResponse {
                key: Some(key_to_wire(&key)),
                secret,
            })),
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
    }

    async fn list_api_keys(
        &self,
        request: Request<v1::ListApiKeysRequest>,
    ) -> Result<Response<v1::ListApiKeysResponse>, Status> {
        admin(&request, "ListApiKeys")?;
        let org = &request.get_ref().organisation;
        let keys = self
            .db
            .read()
            .access()
            .keys()
            .filter(|k| org.is_empty() || k.org == *org)
            .map(key_to_wire)
            .collect();
        Ok(Response::new(v1::ListApiKeysResponse { keys }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<v1::RevokeApiKeyRequest>,
    ) -> Result<Response<v1::RevokeApiKeyResponse>, Status> {
        admin(&request, "RevokeApiKey")?;
        let id = KeyId::parse(&request.get_ref().id)
            .map_err(|_| invalid("id must be the 12 hex digits of a key id"))?;
        if self.db.read().access().key(&id).is_none() {
            return Err(ApiError::NotFound(format!("no API key {id}")).into());
        }
        match self.apply(Command::RevokeKey { id }, &request).await? {
            Outcome::KeyRevoked(key) => Ok(Response::new(v1::RevokeApiKeyResponse {
                key: Some(key_to_wire(&key)),
            })),
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
        }
    }

    async fn list_audit_log(
        &self,
        request: Request<v1::ListAuditLogRequest>,
    ) -> Result<Response<v1::ListAuditLogResponse>, Status> {
        admin(&request, "ListAuditLog")?;
        let req = request.get_ref();
        let limit = match req.limit as usize {
            0 => DEFAULT_AUDIT,
            n => n.min(MAX_AUDIT),
        };
        let records = self
            .db
            .read()
            .audit()
            .recent()
            .rev()
            .filter(|r| req.before_unix_ms == 0 || r.at_ms < req.before_unix_ms)
            .take(limit)
            .map(|r| v1::AuditRecord {
                at_unix_ms: r.at_ms,
                organisation: r.org.clone(),
                key_id: r.key.clone(),
                method: r.method.clone(),
                target: r.target.clone(),
                result: r.result.clone(),
            })
            .collect();
        Ok(Response::new(v1::ListAuditLogResponse { records }))
    }
}
