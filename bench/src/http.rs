//! A minimal plain-HTTP/1.1 client for the peers' HTTP APIs, on hyper (already in the tree through
//! tonic), with one keep-alive connection per [`HttpConn`].
//!
//! Queries reuse one connection, as citytel's gRPC client reuses its channel, so no system pays a
//! TCP handshake per query.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An HTTP response, body read in full.
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// The body as (lossy) text, for error messages.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(500) {
            Some((i, _)) => format!("{}...", &text[..i]),
            None => text.to_string(),
        }
    }

    /// Fails unless the status is `expected`.
    pub fn expect(self, expected: StatusCode, what: &str) -> Result<Response> {
        if self.status != expected {
            bail!("{what}: HTTP {} {}", self.status, self.text());
        }
        Ok(self)
    }
}

/// One keep-alive HTTP/1.1 connection to `addr`, reopened when the server closes it.
pub struct HttpConn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpConn {
    /// A connection to `addr`, opened on first use.
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn { addr, sender: None }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        let reusable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .with_context(|| format!("HTTP handshake with {}", self.addr))?;
            // Ends when the connection closes, which dropping the sender does.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().context("no connection")
    }

    /// Sends one request and reads the whole response.
    pub async fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Bytes,
    ) -> Result<Response> {
        let host = self.addr.to_string();
        let request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .context("building an HTTP request")?;
        let sender = self.sender().await?;
        let result = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Response { status, body })
        }
        .await;
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                self.sender = None;
                Err(e).with_context(|| format!("HTTP request to {}{path_and_query}", self.addr))
            }
        }
    }

    /// `GET path_and_query`.
    pub async fn get(&mut self, path_and_query: &str) -> Result<Response> {
        self.request(Method::GET, path_and_query, Bytes::new())
            .await
    }

    /// `POST path_and_query` with `body`.
    pub async fn post(&mut self, path_and_query: &str, body: Bytes) -> Result<Response> {
        self.request(Method::POST, path_and_query, body).await
    }
}

/// Percent-encodes `s` for a URL query string (everything but RFC 3986 unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode(r#"a{b="c"} [5m]"#), "a%7Bb%3D%22c%22%7D%20%5B5m%5D");
        assert_eq!(encode("cab-0001_x.y~"), "cab-0001_x.y~");
    }
}
