//! Ending server streams whose key stops working. A key is checked when a call starts, but a
//! live stream (a dashboard's WatchEvents) may stay open for days; revoking a key must cut it off
//! too. So while a response body waits for its next message, it asks its [`KeyCheck`] every
//! [`RECHECK`]; once the key is revoked or expired, the body ends with `UNAUTHENTICATED`
//! trailers, which the dashboard takes as "sign in again". Without authentication nothing is
//! checked.
//!
//! The wrapper sits inside the authenticator (it needs the [`Caller`] the authenticator put into
//! the request) and outside the generated service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use axum::http::{HeaderMap, Request, Response};
use http_body::{Frame, SizeHint};
use tokio::time::{Interval, MissedTickBehavior};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

use super::auth::{Authenticator, KeyCheck};
use crate::state::access::Caller;

/// How often an open stream checks that its key still works.
pub(crate) const RECHECK: Duration = Duration::from_secs(2);

/// A gRPC service whose response bodies end once the caller's key stops working.
#[derive(Clone)]
pub(crate) struct EndStreamsOfRevokedKeys<S> {
    inner: S,
    auth: Authenticator,
}

impl<S> EndStreamsOfRevokedKeys<S> {
    /// Wraps `inner`, checking keys with `auth`.
    pub(crate) fn new(inner: S, auth: Authenticator) -> Self {
        EndStreamsOfRevokedKeys { inner, auth }
    }
}

impl<S: NamedService> NamedService for EndStreamsOfRevokedKeys<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<Request<B>> for EndStreamsOfRevokedKeys<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: HttpBody<Data = Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let check = request
            .extensions()
            .get::<Caller>()
            .and_then(|caller| self.auth.key_check(caller));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| match check {
                Some(check) => Body::new(KeyWatchBody::new(Body::new(body), check)),
                None => Body::new(body),
            }))
        })
    }
}

/// A response body that ends with `UNAUTHENTICATED` trailers once its key stops working.
struct KeyWatchBody {
    inner: Body,
    check: KeyCheck,
    /// Started the first time the body waits.
    every: Option<Interval>,
    done: bool,
}

impl KeyWatchBody {
    fn new(inner: Body, check: KeyCheck) -> Self {
        KeyWatchBody {
            inner,
            check,
            every: None,
            done: false,
        }
    }
}

impl HttpBody for KeyWatchBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.done = match &frame {
                Some(Ok(frame)) => frame.is_trailers(),
                Some(Err(_)) | None => true,
            };
            return Poll::Ready(frame);
        }
        let every = this.every.get_or_insert_with(|| {
            let mut every =
                tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            every
        });
        while every.poll_tick(cx).is_ready() {
            if let Some(refusal) = this.check.refusal() {
                this.done = true;
                return Poll::Ready(Some(Ok(Frame::trailers(trailers(&refusal)))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown: the body may end early.
        SizeHint::default()
    }
}

/// The trailers of a stream cut off by `status`.
fn trailers(status: &Status) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    // Only fails for metadata that is not valid in a header, which these statuses have none of.
    let _ = status.add_header(&mut trailers);
    trailers
}
