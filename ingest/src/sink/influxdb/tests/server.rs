//! A small InfluxDB v2 write endpoint that injects faults: answers a scripted status, delays
//! past the client's timeout, or drops the connection; refuses (400) any request holding a line
//! with a marker; records the lines of every request it confirms.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// What the next request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// This status, with an error body.
    Status(u16),
    /// No answer for this long (then 204, after the client gave up).
    Delay(Duration),
    /// The connection is dropped after the request arrived.
    Reset,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Fault>,
    refuse_marker: Option<String>,
    confirmed: Vec<String>,
    requests: u64,
    refused_requests: u64,
    bad_headers: Vec<String>,
}

/// The running server; stops with the test's runtime.
#[derive(Clone)]
pub struct FaultServer {
    state: Arc<Mutex<State>>,
    /// Its address.
    pub addr: SocketAddr,
}

/// The token requests must carry.
pub const TOKEN: &str = "test-token";

impl FaultServer {
    /// Starts the server on a free loopback port.
    pub async fn start() -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let accept_state = state.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let state = accept_state.clone();
                let reset = {
                    let mut s = state.lock();
                    if s.script.front() == Some(&Fault::Reset) {
                        s.script.pop_front();
                        s.requests += 1;
                        true
                    } else {
                        false
                    }
                };
                tokio::spawn(async move {
                    if reset {
                        let mut buf = [0u8; 512];
                        let _ = stream.read(&mut buf).await;
                        #[allow(deprecated)]
                        let _ = stream.set_linger(Some(Duration::ZERO));
                        drop(stream);
                        return;
                    }
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultServer { state, addr }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next requests.
    pub fn script(&self, faults: &[Fault]) {
        self.state.lock().script.extend(faults.iter().copied());
    }

    /// Refuses (400) every request with a line containing `marker`.
    pub fn refuse_lines_with(&self, marker: &str) {
        self.state.lock().refuse_marker = Some(marker.to_string());
    }

    /// Lines of every confirmed request, in arrival order.
    pub fn confirmed(&self) -> Vec<String> {
        self.state.lock().confirmed.clone()
    }

    /// Requests seen (confirmed, refused or failed by a fault).
    pub fn requests(&self) -> u64 {
        self.state.lock().requests
    }

    /// Requests refused with 400 because of the marker.
    pub fn refused_requests(&self) -> u64 {
        self.state.lock().refused_requests
    }

    /// Requests without the expected path, query, token or encoding.
    pub fn bad_headers(&self) -> Vec<String> {
        self.state.lock().bad_headers.clone()
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let query = req.uri().query().unwrap_or("").to_string();
    let path = req.uri().path().to_string();
    let auth = header(&req, "authorization");
    let encoding = header(&req, "content-encoding");
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let mut text = String::new();
    let decoded = body
        .ok()
        .map(|b| {
            flate2::read::GzDecoder::new(&b[..])
                .read_to_string(&mut text)
                .is_ok()
        })
        .unwrap_or(false);
    let fault = {
        let mut s = state.lock();
        s.requests += 1;
        let expected = path == "/api/v2/write"
            && query.contains("bucket=test-bucket")
            && query.contains("org=test-org")
            && query.contains("precision=ns")
            && auth == format!("Token {TOKEN}")
            && encoding == "gzip"
            && decoded;
        if !expected {
            s.bad_headers
                .push(format!("{path}?{query} auth={auth} encoding={encoding}"));
        }
        s.script.pop_front()
    };
    match fault {
        Some(Fault::Status(code)) => return Ok(reply(code, "injected fault")),
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            return Ok(reply(204, ""));
        }
        Some(Fault::Reset) | None => {}
    }
    let mut s = state.lock();
    if let Some(marker) = &s.refuse_marker
        && let Some(bad) = text.lines().find(|l| l.contains(marker.as_str()))
    {
        let message = format!("unable to parse '{bad}': refused by the test");
        s.refused_requests += 1;
        return Ok(reply(400, &message));
    }
    s.confirmed.extend(text.lines().map(str::to_string));
    Ok(reply(204, ""))
}

fn header(req: &Request<Incoming>, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn reply(code: u16, message: &str) -> Response<Full<Bytes>> {
    let body = if message.is_empty() {
        Bytes::new()
    } else {
        Bytes::from(format!("{{\"code\":\"invalid\",\"message\":{message:?}}}"))
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::from_u16(code).unwrap();
    response
}
