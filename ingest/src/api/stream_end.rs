//! Server streams that end early. A live stream (a dashboard's WatchEvents, WatchReadings) may
//! stay open for days, so a response body that waits for its next message also waits for a
//! reason to stop, and then ends with a gRPC status in its trailers. Messages that are ready are
//! still delivered first. Two reasons exist:
//!
//! - [`OnShutdown`]: once shutdown starts, `UNAVAILABLE` ("reconnect later"); a graceful
//!   shutdown waits for every response to finish, and a browser never finishes its streams.
//! - [`OnRevokedKey`]: a key is checked when a call starts, but revoking it must cut off its
//!   open streams too; the body asks its [`KeyCheck`] every [`RECHECK`] and ends with
//!   `UNAUTHENTICATED` (the dashboard's "sign in again") once the key is revoked or expired.
//!   Without authentication nothing is checked. This wrapper sits inside the authenticator (it
//!   needs the [`Caller`] the authenticator put into the request) and outside the generated
//!   service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use axum::http::{HeaderMap, Request, Response};
use http_body::{Frame, SizeHint};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

use super::auth::{Authenticator, KeyCheck};
use crate::state::access::Caller;

/// How often an open stream checks that its key still works.
pub(crate) const RECHECK: Duration = Duration::from_secs(2);

/// A reason for a waiting response body to end.
pub(crate) trait End: Send + Unpin + 'static {
    /// Ready with the status to end with once the body must end; registers a wake-up otherwise.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Status>;
}

/// What makes the [`End`] of each request's response (if it has one).
pub(crate) trait EndFor: Clone + Send + 'static {
    /// The reason type.
    type End: End;
    /// The reason `request`'s response ends early for; `None` to leave it alone.
    fn end_for<B>(&self, request: &Request<B>) -> Option<Self::End>;
}

/// A gRPC service whose response bodies end early for the reason `F` gives.
#[derive(Clone)]
pub(crate) struct EndStreams<S, F> {
    inner: S,
    end_for: F,
}

/// Ends streams at shutdown.
#[derive(Clone)]
pub(crate) struct OnShutdown(pub(crate) CancellationToken);

/// Ends streams whose key stops working.
#[derive(Clone)]
pub(crate) struct OnRevokedKey(pub(crate) Authenticator);

impl<S> EndStreams<S, OnShutdown> {
    /// Wraps `inner`, its streams ending when `shutdown` is cancelled.
    pub(crate) fn on_shutdown(inner: S, shutdown: CancellationToken) -> Self {
        EndStreams {
            inner,
            end_for: OnShutdown(shutdown),
        }
    }
}

impl<S> EndStreams<S, OnRevokedKey> {
    /// Wraps `inner`, its streams ending when the caller's key (checked with `auth`) stops
    /// working.
    pub(crate) fn on_revoked_key(inner: S, auth: Authenticator) -> Self {
        EndStreams {
            inner,
            end_for: OnRevokedKey(auth),
        }
    }
}

impl<S: NamedService, F> NamedService for EndStreams<S, F> {
    const NAME: &'static str = S::NAME;
}

impl<S, F, B, R> Service<Request<B>> for EndStreams<S, F>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    F: EndFor,
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
        let end = self.end_for.end_for(&request);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| match end {
                Some(end) => Body::new(EndingBody {
                    inner: Body::new(body),
                    end,
                    done: false,
                }),
                None => Body::new(body),
            }))
        })
    }
}

/// The end at shutdown.
pub(crate) struct ShutdownEnd(Pin<Box<WaitForCancellationFutureOwned>>);

impl EndFor for OnShutdown {
    type End = ShutdownEnd;
    fn end_for<B>(&self, _: &Request<B>) -> Option<ShutdownEnd> {
        Some(ShutdownEnd(Box::pin(self.0.clone().cancelled_owned())))
    }
}

impl End for ShutdownEnd {
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Status> {
        self.0
            .as_mut()
            .poll(cx)
            .map(|()| Status::unavailable("citytel is shutting down"))
    }
}

/// The end when a key stops working: checked every [`RECHECK`] from the first wait on.
pub(crate) struct KeyEnd {
    check: KeyCheck,
    every: Option<Interval>,
}

impl EndFor for OnRevokedKey {
    type End = KeyEnd;
    fn end_for<B>(&self, request: &Request<B>) -> Option<KeyEnd> {
        let caller = request.extensions().get::<Caller>()?;
        Some(KeyEnd {
            check: self.0.key_check(caller)?,
            every: None,
        })
    }
}

impl End for KeyEnd {
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Status> {
        let every = self.every.get_or_insert_with(|| {
            let mut every =
                tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            every
        });
        while every.poll_tick(cx).is_ready() {
            if let Some(refusal) = self.check.refusal() {
                return Poll::Ready(refusal);
            }
        }
        Poll::Pending
    }
}

/// A response body that ends with its [`End`]'s status in trailers once that is ready while
/// the body waits.
struct EndingBody<E> {
    inner: Body,
    end: E,
    done: bool,
}

impl<E: End> HttpBody for EndingBody<E> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        // Every field is Unpin (the body is boxed), so the body is too.
        let this = self.get_mut();
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
        if let Poll::Ready(status) = this.end.poll_end(cx) {
            this.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(trailers(&status)))));
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
