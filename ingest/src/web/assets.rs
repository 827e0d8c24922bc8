//! The dashboard's files, embedded at compile time from `dashboards/web/dist` (built and
//! committed by the npm project, so `cargo build` needs no npm), with their content types and
//! caching headers.
//!
//! The bundle has fixed names (`index.html`, `app.js`, `app.css`): every file is served with
//! `Cache-Control: no-cache` and a strong ETag, so a browser revalidates on each load and gets
//! `304 Not Modified` until citytel is upgraded. `include_dir` embeds each file with
//! `include_bytes!`, so editing a built file rebuilds the binary.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use include_dir::{Dir, include_dir};

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../dashboards/web/dist");

/// The dashboard may only load its own files and talk to its own origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file, ready to serve.
#[derive(Debug)]
pub(crate) struct Asset {
    /// The file's contents.
    pub(crate) body: &'static [u8],
    /// Its `Content-Type`.
    pub(crate) content_type: &'static str,
    /// Its strong entity tag: a CRC-32 of the contents and the length.
    pub(crate) etag: HeaderValue,
}

static ASSETS: LazyLock<HashMap<String, Asset>> = LazyLock::new(|| {
    let mut assets = HashMap::new();
    collect(&DIST, &mut assets);
    assets
});

fn collect(dir: &'static Dir<'static>, out: &mut HashMap<String, Asset>) {
    for file in dir.files() {
        let path = file.path().to_string_lossy().replace('\\', "/");
        let body = file.contents();
        let tag = format!("\"{:08x}-{:x}\"", crc32fast::hash(body), body.len());
        let etag = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\""));
        let content_type = content_type(&path);
        out.insert(
            path,
            Asset {
                body,
                content_type,
                etag,
            },
        );
    }
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

/// The embedded file served at URL path `path` (`/` is `index.html`).
pub(crate) fn find(path: &str) -> Option<&'static Asset> {
    let name = path.trim_start_matches('/');
    ASSETS.get(if name.is_empty() { "index.html" } else { name })
}

/// The content type of a file, from its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Answers a request for a file: `GET` and `HEAD` only, `304` when the browser's copy is
/// current, `404` for anything not embedded.
pub(crate) fn respond<B>(request: &Request<B>) -> Response<Body> {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let Some(asset) = find(request.uri().path()) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let fresh = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == asset.etag || tag == "*");
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else if method == Method::HEAD {
        (StatusCode::OK, Body::empty())
    } else {
        (StatusCode::OK, Body::from(asset.body))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::ETAG, asset.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if !fresh {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(asset.body.len()));
    }
    security_headers(headers);
    response
}

/// A short plain-text answer, with the security headers.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    security_headers(response.headers_mut());
    response
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
