//! The open-file limit and the connection caps derived from it.
//!
//! At start citytel raises its soft `RLIMIT_NOFILE` to the hard limit (systemd's default soft
//! limit is 1024, far below what a busy endpoint needs), then keeps `service.reserved_fds`
//! descriptors (at most half the limit) for storage (WAL segments, the embedded store's files),
//! logs and outgoing connections, and shares the rest between the listeners. A cap configured as
//! 0 is derived from that budget:
//!
//! | listener | share of the budget |
//! | --- | --- |
//! | MQTT endpoint (`endpoint.max_connections`) | 3/4 |
//! | gRPC (`grpc.max_connections`) | 1/8 |
//! | dashboard (`http.max_connections`) | 1/16 |
//! | metrics (`metrics.max_connections`) | 1/16 |
//!
//! A cap set explicitly is used as it is; when the caps and the reserve add up to more than the
//! limit, a warning says so at start.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// What the open-file limit was and became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdLimit {
    /// The soft limit in force now.
    pub(crate) soft: u64,
    /// The soft limit before it was raised, if it was.
    pub(crate) raised_from: Option<u64>,
}

/// Largest soft limit set when the hard limit is unlimited.
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Raises the soft open-file limit to the hard limit. A failure leaves the limit as it was
/// (and is logged): citytel then runs within it.
pub(crate) fn raise_open_file_limit() -> FdLimit {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return FdLimit {
            soft: 1024,
            raised_from: None,
        };
    };
    let target = if hard == nix::sys::resource::RLIM_INFINITY {
        UNLIMITED_TARGET.max(soft)
    } else {
        hard
    };
    if target <= soft {
        return FdLimit {
            soft,
            raised_from: None,
        };
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => FdLimit {
            soft: target,
            raised_from: Some(soft),
        },
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit");
            FdLimit {
                soft,
                raised_from: None,
            }
        }
    }
}

/// The connection cap of each listener, and the descriptors kept back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionCaps {
    /// MQTT device endpoint.
    pub(crate) mqtt: usize,
    /// gRPC API.
    pub(crate) grpc: usize,
    /// Dashboard (HTTP and gRPC-Web).
    pub(crate) dashboard: usize,
    /// Metrics endpoint.
    pub(crate) metrics: usize,
    /// Descriptors kept for storage and everything else.
    pub(crate) reserved: u64,
}

/// The configured caps (0: derived) of the MQTT endpoint, gRPC, the dashboard and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Configured {
    /// `endpoint.max_connections`.
    pub(crate) mqtt: usize,
    /// `grpc.max_connections`.
    pub(crate) grpc: usize,
    /// `http.max_connections`.
    pub(crate) dashboard: usize,
    /// `metrics.max_connections`.
    pub(crate) metrics: usize,
}

impl ConnectionCaps {
    /// The caps for an open-file limit of `nofile`, keeping `reserved_fds` (at most half of it)
    /// back; `configured` caps other than 0 are taken as they are.
    pub(crate) fn derive(nofile: u64, reserved_fds: u64, configured: Configured) -> Self {
        let reserved = reserved_fds.min(nofile / 2);
        let budget = usize::try_from(nofile - reserved).unwrap_or(usize::MAX);
        let pick = |set: usize, share: usize| if set > 0 { set } else { share.max(1) };
        ConnectionCaps {
            mqtt: pick(configured.mqtt, budget / 4 * 3),
            grpc: pick(configured.grpc, budget / 8),
            dashboard: pick(configured.dashboard, budget / 16),
            metrics: pick(configured.metrics, budget / 16),
            reserved,
        }
    }

    /// Descriptors all caps and the reserve need together.
    pub(crate) fn total(&self) -> u64 {
        (self.mqtt + self.grpc + self.dashboard + self.metrics) as u64 + self.reserved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_caps_share_what_the_reserve_leaves() {
        let caps = ConnectionCaps::derive(1024, 256, Configured::default());
        assert_eq!(caps.reserved, 256);
        assert_eq!(
            (caps.mqtt, caps.grpc, caps.dashboard, caps.metrics),
            (576, 96, 48, 48)
        );
        assert!(caps.total() <= 1024);
    }

    #[test]
    fn a_low_limit_keeps_at_most_half_in_reserve() {
        let caps = ConnectionCaps::derive(256, 256, Configured::default());
        assert_eq!(caps.reserved, 128);
        assert_eq!(
            (caps.mqtt, caps.grpc, caps.dashboard, caps.metrics),
            (96, 16, 8, 8)
        );
        let tiny = ConnectionCaps::derive(4, 256, Configured::default());
        assert!(tiny.mqtt >= 1 && tiny.metrics >= 1);
    }

    #[test]
    fn configured_caps_are_taken_as_they_are() {
        let configured = Configured {
            mqtt: 50_000,
            grpc: 0,
            dashboard: 7,
            metrics: 0,
        };
        let caps = ConnectionCaps::derive(1024, 256, configured);
        assert_eq!((caps.mqtt, caps.grpc, caps.dashboard), (50_000, 96, 7));
        assert!(caps.total() > 1024, "reported as over the limit at start");
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let limit = raise_open_file_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(limit.soft, soft);
        assert!(soft == hard || hard == nix::sys::resource::RLIM_INFINITY);
    }
}
