//! Network resources under abuse: file descriptors and connections.
//!
//! - [`fds`]: the open-file limit, raised to its hard limit at start, and the connection caps of
//!   every listener derived from it, with descriptors kept back for storage.
//! - [`listener`]: accepting that survives descriptor exhaustion (`EMFILE` is counted and backed
//!   off from, never fatal), the per-listener connection cap, and the HTTP listeners (gRPC,
//!   dashboard, metrics) built on both.
//! - [`idle`]: a connection wrapper that holds its slot and closes after a time with no traffic
//!   in either direction.
//! - [`tls`]: rustls server configurations reloaded in place, and connections plain or TLS.

pub(crate) mod fds;
pub(crate) mod idle;
pub(crate) mod listener;
pub mod tls;
