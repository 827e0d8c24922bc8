//! `citytel.v1.SessionService`: who the caller's key is. Any key that passes the
//! [`Authenticator`](super::auth::Authenticator) may ask, whatever its role: the dashboard signs
//! in with it and shows the organisation and role it answers. Without authentication the caller
//! is an anonymous admin, and the answer says so.

use std::sync::Arc;

use citytel_proto::v1::{self, session_service_server::SessionService};
use tonic::{Request, Response, Status};

use super::admin::{key_to_wire, org_to_wire};
use super::auth::caller;
use crate::db::Database;

/// The session service over a database.
#[derive(Clone)]
pub(crate) struct SessionApi {
    db: Arc<Database>,
    authentication: bool,
}

impl SessionApi {
    /// A service answering from `db`; `authentication` says whether the API requires keys.
    pub(crate) fn new(db: Arc<Database>, authentication: bool) -> Self {
        SessionApi { db, authentication }
    }
}

#[tonic::async_trait]
impl SessionService for SessionApi {
    async fn who_am_i(
        &self,
        request: Request<v1::WhoAmIRequest>,
    ) -> Result<Response<v1::WhoAmIResponse>, Status> {
        let caller = caller(&request)?;
        let role = caller.role.as_str().to_string();
        if !self.authentication {
            return Ok(Response::new(v1::WhoAmIResponse {
                authentication: false,
                organisation: None,
                key: None,
                role,
            }));
        }
        let state = self.db.read();
        let access = state.access();
        Ok(Response::new(v1::WhoAmIResponse {
            authentication: true,
            organisation: access.org(&caller.org).map(org_to_wire),
            key: access.key(&caller.key).map(key_to_wire),
            role,
        }))
    }
}
