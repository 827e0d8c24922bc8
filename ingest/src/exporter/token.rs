//! The metrics endpoint's bearer token (`metrics.bearer_token_file`). The token is read from its
//! file once, at start, and kept only as its SHA-256 hash, so it is in no configuration, log or
//! debug output; a request's token is hashed too and the hashes compared in constant time (so
//! neither the token's bytes nor its length leak through timing). A request without the token
//! gets `401 Unauthorized`, counted in `citytel_http_requests_refused_total{listener="metrics",
//! reason}` (`no_token`, `wrong_token`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use axum::middleware::Next;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::telemetry::metrics as m;

/// Why the token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("cannot read metrics.bearer_token_file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds nothing but whitespace.
    #[error("metrics.bearer_token_file {0} is empty")]
    Empty(PathBuf),
}

/// The token scrapers must send, as its hash.
#[derive(Clone)]
pub(crate) struct BearerToken {
    hash: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl BearerToken {
    /// The token in `path` (surrounding whitespace trimmed).
    pub(crate) fn read(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(text.trim()).ok_or_else(|| TokenError::Empty(path.to_path_buf()))
    }

    /// The token `text`; `None` if it is empty.
    pub(crate) fn new(text: &str) -> Option<Self> {
        (!text.is_empty()).then(|| BearerToken { hash: hash(text) })
    }

    /// Whether `headers` carry `Authorization: Bearer <the token>`; the refusal's reason if not.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let Some(presented) = presented else {
            return Err("no_token");
        };
        if bool::from(hash(presented).ct_eq(&self.hash)) {
            Ok(())
        } else {
            Err("wrong_token")
        }
    }
}

/// Answers `401` to a request without the token and passes the others on.
pub(crate) async fn require(
    State(token): State<Arc<BearerToken>>,
    request: Request<Body>,
    next: Next,
) -> Response<Body> {
    let Err(reason) = token.check(request.headers()) else {
        return next.run(request).await;
    };
    metrics::counter!(m::HTTP_REQUESTS_REFUSED_TOTAL, "listener" => "metrics", "reason" => reason)
        .increment(1);
    let mut response = Response::new(Body::from(
        "a bearer token is required: Authorization: Bearer <token>\n",
    ));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"citytel metrics\""),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_the_token_passes() {
        let token = BearerToken::new("s3cret").unwrap();
        assert_eq!(token.check(&headers(Some("Bearer s3cret"))), Ok(()));
        assert_eq!(token.check(&headers(Some("bearer  s3cret "))), Ok(()));
        assert_eq!(token.check(&headers(None)), Err("no_token"));
        assert_eq!(
            token.check(&headers(Some("Basic czNjcmV0"))),
            Err("no_token")
        );
        assert_eq!(token.check(&headers(Some("s3cret"))), Err("no_token"));
        assert_eq!(
            token.check(&headers(Some("Bearer s3cre"))),
            Err("wrong_token")
        );
        assert_eq!(
            token.check(&headers(Some("Bearer s3cret2"))),
            Err("wrong_token")
        );
        assert_eq!(token.check(&headers(Some("Bearer "))), Err("no_token"));
    }

    #[test]
    fn the_token_comes_from_its_file_and_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        let token = BearerToken::read(&path).unwrap();
        assert_eq!(token.check(&headers(Some("Bearer s3cret"))), Ok(()));
        assert!(!format!("{token:?}").contains("s3cret"));
        std::fs::write(&path, " \n").unwrap();
        assert!(matches!(
            BearerToken::read(&path),
            Err(TokenError::Empty(_))
        ));
        assert!(matches!(
            BearerToken::read(&dir.path().join("missing")),
            Err(TokenError::Read { .. })
        ));
    }
}
