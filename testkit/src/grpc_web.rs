//! gRPC-Web over HTTP/1.1, the way a browser calls citytel's dashboard port: one request of one
//! message frame on a connection of its own (plain, or TLS with [`call_tls`]), and the answer
//! read frame by frame, so a server stream (`WatchEvents`) can be held open and its end observed.
//!
//! Frames, in both directions: a flag byte (`0x00` a message, `0x80` the trailers), a 4-byte
//! big-endian length, the bytes. Trailers are `name:value` lines. An answer that fails before its
//! first message may carry its `grpc-status` in the HTTP headers instead (trailers only).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::http::{self, HttpError};

/// The content type of a binary gRPC-Web request.
pub const CONTENT_TYPE_PROTO: &str = "application/grpc-web+proto";
/// The flag byte of a trailers frame.
const TRAILERS: u8 = 0x80;
/// Length of a frame's header: flag byte and length.
const HEADER: usize = 5;

/// One frame of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A message.
    Message(Bytes),
    /// The trailers, names in lower case.
    Trailers(BTreeMap<String, String>),
}

/// `message` as a request body: one message frame.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(HEADER + message.len());
    out.push(0);
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    out.into()
}

/// A call in progress: the answer's status and headers, then its frames as they arrive.
pub struct Call {
    target: String,
    /// The HTTP status.
    pub status: StatusCode,
    /// The HTTP headers.
    pub headers: HeaderMap,
    body: Incoming,
    buf: BytesMut,
    connection: JoinHandle<()>,
}

/// Calls `path` (e.g. `/citytel.v1.QueryService/WatchEvents`) on the server at `addr` with the
/// encoded request `message`; returns once the answer's headers arrived.
pub async fn call(addr: SocketAddr, path: &str, message: &[u8]) -> Result<Call, HttpError> {
    call_with(addr, path, message, &[]).await
}

/// Like [`call`], with extra `headers` (an `authorization` bearer, an `origin`), each replacing
/// a default of its name.
pub async fn call_with(
    addr: SocketAddr,
    path: &str,
    message: &[u8],
    headers: &[(&str, &str)],
) -> Result<Call, HttpError> {
    call_over(addr, None, path, message, headers).await
}

/// Like [`call_with`], over TLS with `config` (e.g. [`crate::tls::client_config`], trusting a
/// test CA), offering ALPN `http/1.1`; the server's certificate must be valid for `addr`'s IP.
pub async fn call_tls(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    message: &[u8],
    headers: &[(&str, &str)],
) -> Result<Call, HttpError> {
    call_over(addr, Some(config.as_ref()), path, message, headers).await
}

async fn call_over(
    addr: SocketAddr,
    tls: Option<&rustls::ClientConfig>,
    path: &str,
    message: &[u8],
    headers: &[(&str, &str)],
) -> Result<Call, HttpError> {
    let target = format!("{addr}{path}");
    let failed = |source| HttpError::Request {
        target: target.clone(),
        source,
    };
    let stream = http::open(addr, tls).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    let connection = tokio::spawn(async move {
        let _ = conn.await;
    });
    let build_error = |source| HttpError::Build {
        target: target.clone(),
        source,
    };
    let mut request = Request::post(path)
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, CONTENT_TYPE_PROTO)
        .header("x-grpc-web", "1")
        .body(Full::new(frame(message)))
        .map_err(build_error)?;
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| build_error(e.into()))?;
        let value = HeaderValue::from_str(value).map_err(|e| build_error(e.into()))?;
        request.headers_mut().insert(name, value);
    }
    let response = sender.send_request(request).await.map_err(failed)?;
    let (parts, body) = response.into_parts();
    Ok(Call {
        target,
        status: parts.status,
        headers: parts.headers,
        body,
        buf: BytesMut::new(),
        connection,
    })
}

impl Call {
    /// The next frame; `None` once the answer ended.
    pub async fn next(&mut self) -> Result<Option<Frame>, HttpError> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(Some(frame));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(source)) => {
                    return Err(HttpError::Request {
                        target: self.target.clone(),
                        source,
                    });
                }
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(self.protocol("the answer ends inside a frame")),
            }
        }
    }

    /// Reads the answer to its end: its messages and its `grpc-status`, from the trailers or, for
    /// a trailers-only answer, from the headers (`None`: it has none).
    pub async fn finish(mut self) -> Result<(Vec<Bytes>, Option<String>), HttpError> {
        let mut messages = Vec::new();
        let mut status = self
            .headers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        while let Some(frame) = self.next().await? {
            match frame {
                Frame::Message(m) => messages.push(m),
                Frame::Trailers(t) => status = t.get("grpc-status").cloned().or(status),
            }
        }
        Ok((messages, status))
    }

    /// One whole frame from the buffer, if it holds one.
    fn parse(&mut self) -> Result<Option<Frame>, HttpError> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if self.buf.len() - HEADER < len {
            return Ok(None);
        }
        let flag = self.buf[0];
        self.buf.advance(HEADER);
        let bytes = self.buf.split_to(len).freeze();
        match flag {
            0 => Ok(Some(Frame::Message(bytes))),
            TRAILERS => Ok(Some(Frame::Trailers(trailers(&bytes)))),
            other => Err(self.protocol(&format!("unknown frame flag {other:#04x}"))),
        }
    }

    fn protocol(&self, reason: &str) -> HttpError {
        HttpError::Protocol {
            target: self.target.clone(),
            reason: reason.to_string(),
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// The `name:value` lines of a trailers frame.
fn trailers(bytes: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(bytes)
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_one_message_frame() {
        assert_eq!(&frame(&[8, 1])[..], &[0, 0, 0, 0, 2, 8, 1]);
        assert_eq!(&frame(&[])[..], &[0, 0, 0, 0, 0]);
    }

    #[test]
    fn trailers_are_name_value_lines() {
        let t = trailers(b"grpc-status:14\r\nGrpc-Message: citytel%20is%20shutting%20down\r\n");
        assert_eq!(t["grpc-status"], "14");
        assert_eq!(t["grpc-message"], "citytel%20is%20shutting%20down");
    }
}
