//! Ending server streams at shutdown. A browser keeps its live streams (WatchEvents,
//! WatchReadings) open for as long as the page is open, and a graceful shutdown waits for every
//! response to finish; so once shutdown starts, each response body still waiting for its next
//! message ends with the gRPC status `UNAVAILABLE` instead, which clients treat as "reconnect
//! later". Messages that are ready are still delivered first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Bytes, HttpBody};
use axum::http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Frame, SizeHint};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Status};
use tower::Service;

/// A gRPC service whose response bodies end when `shutdown` is cancelled.
#[derive(Debug, Clone)]
pub(crate) struct EndStreamsOnShutdown<S> {
    inner: S,
    shutdown: CancellationToken,
}

impl<S> EndStreamsOnShutdown<S> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: S, shutdown: CancellationToken) -> Self {
        EndStreamsOnShutdown { inner, shutdown }
    }
}

impl<S: NamedService> NamedService for EndStreamsOnShutdown<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<Request<B>> for EndStreamsOnShutdown<S>
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
        let response = self.inner.call(request);
        let shutdown = self.shutdown.clone();
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Body::new(DrainBody::new(Body::new(body), shutdown))))
        })
    }
}

/// A response body that ends with `UNAVAILABLE` trailers when shutdown starts while it waits.
pub(crate) struct DrainBody {
    inner: Body,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
}

impl DrainBody {
    /// Wraps `inner`, to end when `shutdown` is cancelled.
    pub(crate) fn new(inner: Body, shutdown: CancellationToken) -> Self {
        DrainBody {
            inner,
            stop: Box::pin(shutdown.cancelled_owned()),
            done: false,
        }
    }
}

impl HttpBody for DrainBody {
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
        if this.stop.as_mut().poll(cx).is_ready() {
            this.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(shutdown_trailers()))));
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

/// The trailers of a stream cut short by shutdown.
fn shutdown_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(Code::Unavailable as i32));
    trailers.insert(
        "grpc-message",
        HeaderValue::from_static("citytel%20is%20shutting%20down"),
    );
    trailers
}
