//! A small HTTP/1.1 client on hyper (already in the tree through tonic), for the HTTP APIs the
//! tests and the bench talk to: VictoriaMetrics, InfluxDB, citytel's Prometheus endpoint and
//! dashboard.
//!
//! [`HttpConn`] keeps one keep-alive connection, reopened when the server closes it, so the
//! bench's timed queries pay no TCP handshake each, as citytel's gRPC client reuses its channel.
//! It is plain, or with [`HttpConn::with_tls`] TLS offering ALPN `http/1.1`, as a browser's
//! HTTP/1.1 connection does.
//! [`get`] is a one-off GET of an absolute `http://` URL. Query strings are encoded by
//! [`path_with_query`] (`application/x-www-form-urlencoded`, via the `url` crate), never by hand.
//! [`HttpConn::request_with`] sends extra headers (a bearer token, a foreign `Host` or
//! `Origin`), which replace the defaults of the same name.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
pub use hyper::{HeaderMap, Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;

/// Characters of a body shown in an error message.
const BODY_IN_ERRORS: usize = 500;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A URL that is not `http://host:port/...`.
    #[error("bad URL {url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection could not be made.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The server.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The request could not be built.
    #[error("building a request for {target}: {source}")]
    Build {
        /// The path and query.
        target: String,
        /// Why.
        source: hyper::http::Error,
    },
    /// The exchange failed (handshake, send, or reading the body).
    #[error("HTTP request to {target}: {source}")]
    Request {
        /// Server, path and query.
        target: String,
        /// Why.
        source: hyper::Error,
    },
    /// The answer does not follow its protocol.
    #[error("answer from {target}: {reason}")]
    Protocol {
        /// Server, path and query.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server answered with another status than expected.
    #[error("{what}: HTTP {status} {body}")]
    Status {
        /// What the request was for.
        what: String,
        /// The status it got.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
}

/// An HTTP response, body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// The body as (lossy) text, cut to 500 characters, for error messages.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(BODY_IN_ERRORS) {
            Some((i, _)) => format!("{}...", &text[..i]),
            None => text.to_string(),
        }
    }

    /// Fails, naming `what` and showing the body, unless the status is `expected`.
    pub fn expect(self, expected: StatusCode, what: &str) -> Result<Response, HttpError> {
        if self.status != expected {
            return Err(HttpError::Status {
                what: what.to_string(),
                status: self.status,
                body: self.text(),
            });
        }
        Ok(self)
    }
}

/// One keep-alive HTTP/1.1 connection to `addr`, opened on first use and reopened when the
/// server closes it.
pub struct HttpConn {
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// `config` offering ALPN `http/1.1` (and nothing else), for an HTTP/1.1 connection.
fn http1_alpn(config: &rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    let mut config = config.clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Opens a TCP connection to `addr` and, with `tls`, a TLS session on it (the server's
/// certificate checked for `addr`'s IP), offering ALPN `http/1.1`.
pub(crate) async fn open(
    addr: SocketAddr,
    tls: Option<&rustls::ClientConfig>,
) -> Result<Box<dyn Io>, HttpError> {
    let connect_err = |source| HttpError::Connect {
        addr: addr.to_string(),
        source,
    };
    match tls {
        None => {
            let stream = TcpStream::connect(addr).await.map_err(connect_err)?;
            stream.set_nodelay(true).map_err(connect_err)?;
            Ok(Box::new(stream))
        }
        Some(config) => {
            let stream = crate::tls::connect(addr, http1_alpn(config))
                .await
                .map_err(connect_err)?;
            Ok(Box::new(stream))
        }
    }
}

/// A connection hyper can speak HTTP on: plain TCP or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

impl HttpConn {
    /// A plain connection to `addr`, opened on first use.
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn {
            addr,
            tls: None,
            sender: None,
        }
    }

    /// A TLS connection to `addr` with `config` (e.g. [`crate::tls::client_config`], trusting a
    /// test CA), opened on first use; the server's certificate must be valid for `addr`'s IP.
    pub fn with_tls(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> HttpConn {
        HttpConn {
            addr,
            tls: Some(config),
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, HttpError> {
        if let Some(sender) = self.sender.as_mut()
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        let sender = match self.sender.take() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        Ok(self.sender.insert(sender))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let addr = self.addr;
        let stream = open(addr, self.tls.as_deref()).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| HttpError::Request {
                target: addr.to_string(),
                source,
            })?;
        // Ends when the connection closes, which dropping the sender does.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request and reads the whole response.
    pub async fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Bytes,
    ) -> Result<Response, HttpError> {
        self.request_with(method, path_and_query, &[], body).await
    }

    /// Sends one request with extra `headers` (each replacing a default of its name, such as
    /// `host`) and reads the whole response.
    pub async fn request_with(
        &mut self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Response, HttpError> {
        let build_error = |source| HttpError::Build {
            target: path_and_query.to_string(),
            source,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .map_err(build_error)?;
        for (name, value) in headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| build_error(e.into()))?;
            let value = HeaderValue::from_str(value).map_err(|e| build_error(e.into()))?;
            request.headers_mut().insert(name, value);
        }
        let sender = self.sender().await?;
        let result = async {
            let response = sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        }
        .await;
        result.map_err(|source| {
            self.sender = None;
            HttpError::Request {
                target: format!("{}{path_and_query}", self.addr),
                source,
            }
        })
    }

    /// `GET path_and_query`.
    pub async fn get(&mut self, path_and_query: &str) -> Result<Response, HttpError> {
        self.request(Method::GET, path_and_query, Bytes::new())
            .await
    }

    /// `POST path_and_query` with `body`.
    pub async fn post(&mut self, path_and_query: &str, body: Bytes) -> Result<Response, HttpError> {
        self.request(Method::POST, path_and_query, body).await
    }
}

/// A one-off `GET` of an absolute `http://host:port/path?query` URL, on a connection of its own.
pub async fn get(url: &str) -> Result<Response, HttpError> {
    let bad = |reason: &str| HttpError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "http" {
        return Err(bad("not http://"));
    }
    let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| bad("no port"))?;
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| HttpError::Connect {
            addr: format!("{host}:{port}"),
            source,
        })?
        .next()
        .ok_or_else(|| bad("the host has no address"))?;
    let target = &parsed[url::Position::BeforePath..];
    HttpConn::new(addr).get(target).await
}

/// `path` with the query string of `pairs`, each key and value form-encoded:
/// `path_with_query("/query", &[("db", "bench"), ("q", "SELECT 1")])` is
/// `/query?db=bench&q=SELECT+1`.
pub fn path_with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_form_encoded() {
        assert_eq!(
            path_with_query(
                "/api/v1/export",
                &[("match[]", r#"a{b="c"} [5m]"#), ("start", "1.500")]
            ),
            "/api/v1/export?match%5B%5D=a%7Bb%3D%22c%22%7D+%5B5m%5D&start=1.500"
        );
        assert_eq!(
            path_with_query("/q", &[("d", "cab-0001_x.y")]),
            "/q?d=cab-0001_x.y"
        );
        assert_eq!(path_with_query("/health", &[]), "/health");
    }

    /// Answers each request on one connection with its request line as the body.
    async fn echo_server() -> std::io::Result<SocketAddr> {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let mut stream = BufReader::new(stream);
            loop {
                let mut request_line = String::new();
                if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                    return;
                }
                let mut header = String::new();
                while stream.read_line(&mut header).await.unwrap_or(0) > 2 {
                    header.clear();
                }
                let body = request_line.trim_end();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        Ok(addr)
    }

    #[tokio::test]
    async fn requests_share_one_kept_alive_connection() -> Result<(), Box<dyn std::error::Error>> {
        let addr = echo_server().await?;
        let mut conn = HttpConn::new(addr);
        for i in 0..3 {
            let path = path_with_query("/echo", &[("i", &i.to_string())]);
            let response = conn.get(&path).await?.expect(StatusCode::OK, "echo")?;
            assert_eq!(response.text(), format!("GET /echo?i={i} HTTP/1.1"));
        }
        let err = conn.get("/x").await?.expect(StatusCode::NO_CONTENT, "x");
        assert!(matches!(
            err,
            Err(HttpError::Status {
                status: StatusCode::OK,
                ..
            })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn a_url_is_fetched_with_its_path_and_query() -> Result<(), Box<dyn std::error::Error>> {
        let addr = echo_server().await?;
        let response = get(&format!("http://{addr}/metrics?a=b")).await?;
        assert_eq!(response.text(), "GET /metrics?a=b HTTP/1.1");
        Ok(())
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_before_connecting() {
        for url in ["https://127.0.0.1:1/x", "not a url"] {
            let err = get(url).await.err();
            assert!(matches!(err, Some(HttpError::Url { .. })), "{url}: {err:?}");
        }
    }
}
