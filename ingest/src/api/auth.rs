//! Authentication and authorisation of API calls.
//!
//! Every call to the query and admin services (native gRPC and gRPC-Web alike) passes
//! [`Authenticator::check`] before its handler runs: with keys required, the request must carry
//! `authorization: Bearer citytel_<id>_<secret>` of a key that is known, not revoked and not
//! expired (UNAUTHENTICATED otherwise), and stay within its key's rate (RESOURCE_EXHAUSTED
//! beyond). The [`Caller`] it finds travels in the request's extensions; handlers ask
//! [`caller`] for it and check the role they need with [`require`] (PERMISSION_DENIED). Without
//! authentication (`citytel demo`, or `api.authentication = false`, refused on a non-loopback
//! listener unless explicitly allowed), every call is an anonymous admin that sees everything.
//! Health and reflection need no key. A key is checked when a call starts; a [`KeyCheck`] lets
//! an open stream notice later that its key was revoked or expired
//! ([`super::key_watch`]).

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tonic::{Request, Status};

use crate::clock::Clock;
use crate::db::Database;
use crate::state::access::{Caller, Denied, KeyId, Role, Scope};
use crate::telemetry::metrics as m;

/// How a service checks its callers.
#[derive(Clone)]
pub(crate) struct Authenticator {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    /// Every caller is an anonymous admin.
    Open,
    /// Keys are required.
    Keys {
        db: Arc<Database>,
        clock: Clock,
        limiter: Arc<DefaultKeyedRateLimiter<KeyId>>,
    },
}

/// The caller of a service without authentication.
fn anonymous() -> Caller {
    Caller {
        org: String::new(),
        key: KeyId::parse("000000000000").unwrap_or_else(|_| unreachable!("a valid id")),
        role: Role::Admin,
        scope: Scope::default(),
    }
}

impl Authenticator {
    /// No authentication: every call is an anonymous admin.
    pub(crate) fn open() -> Self {
        Authenticator { mode: Mode::Open }
    }

    /// Keys from `db`, checked against `clock`'s time, each allowed `per_second` requests with
    /// bursts of `burst`.
    pub(crate) fn keys(db: Arc<Database>, clock: Clock, per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        let limiter = RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst));
        Authenticator {
            mode: Mode::Keys {
                db,
                clock,
                limiter: Arc::new(limiter),
            },
        }
    }

    /// Checks a request's key and puts its [`Caller`] into the request's extensions.
    pub(crate) fn check(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = match &self.mode {
            Mode::Open => anonymous(),
            Mode::Keys { db, clock, limiter } => {
                let caller = authenticate(&request, db, clock.now_ms())?;
                if limiter.check_key(&caller.key).is_err() {
                    metrics::counter!(m::API_REQUESTS_REFUSED_TOTAL, "reason" => "rate_limited")
                        .increment(1);
                    return Err(Status::resource_exhausted(format!(
                        "API key {} is over its rate limit (api.rate_limit_per_key); slow down",
                        caller.key
                    )));
                }
                caller
            }
        };
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

fn authenticate<T>(request: &Request<T>, db: &Database, now_ms: i64) -> Result<Caller, Status> {
    let refused = |reason: &'static str, message: String| {
        metrics::counter!(m::API_REQUESTS_REFUSED_TOTAL, "reason" => reason).increment(1);
        Status::unauthenticated(message)
    };
    let Some(header) = request.metadata().get("authorization") else {
        return Err(refused(
            "no_key",
            "an API key is required: authorization: Bearer citytel_<id>_<secret>".into(),
        ));
    };
    let text = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            refused(
                "malformed",
                "the authorization header must be Bearer citytel_<id>_<secret>".into(),
            )
        })?;
    db.read()
        .access()
        .authenticate(text, now_ms)
        .map_err(|denied| match denied {
            Denied::Malformed(e) => refused("malformed", e.to_string()),
            Denied::Unknown => refused("unknown", denied.to_string()),
            Denied::Revoked(_) => refused("revoked", denied.to_string()),
            Denied::Expired(_) => refused("expired", denied.to_string()),
        })
}

/// Whether one key still works: what an open stream asks now and then.
#[derive(Clone)]
pub(crate) struct KeyCheck {
    db: Arc<Database>,
    clock: Clock,
    key: KeyId,
}

impl KeyCheck {
    /// UNAUTHENTICATED once the key was revoked or has expired (or is gone); `None` while it
    /// works.
    pub(crate) fn refusal(&self) -> Option<Status> {
        let state = self.db.read();
        let message = match state.access().key(&self.key) {
            None => format!("API key {} is unknown", self.key),
            Some(key) if key.revoked_ms.is_some() => format!("API key {} was revoked", self.key),
            Some(key) if !key.active(self.clock.now_ms()) => {
                format!("API key {} has expired", self.key)
            }
            Some(_) => return None,
        };
        Some(Status::unauthenticated(message))
    }
}

impl Authenticator {
    /// The check of `caller`'s key, for a stream to repeat while it is open; `None` without
    /// authentication (nothing to check).
    pub(crate) fn key_check(&self, caller: &Caller) -> Option<KeyCheck> {
        match &self.mode {
            Mode::Open => None,
            Mode::Keys { db, clock, .. } => Some(KeyCheck {
                db: db.clone(),
                clock: *clock,
                key: caller.key.clone(),
            }),
        }
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request)
    }
}

/// The caller of a request that passed an [`Authenticator`].
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::internal("the request was not authenticated"))
}

/// PERMISSION_DENIED unless `caller` has at least `role`.
pub(crate) fn require(caller: &Caller, role: Role, what: &str) -> Result<(), Status> {
    if caller.role >= role {
        return Ok(());
    }
    metrics::counter!(m::API_REQUESTS_REFUSED_TOTAL, "reason" => "permission").increment(1);
    Err(Status::permission_denied(format!(
        "{what} needs the {} role; key {} is {}",
        role.as_str(),
        caller.key,
        caller.role.as_str()
    )))
}
