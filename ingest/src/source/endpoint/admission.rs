//! Who may open a connection to the device endpoint, per peer IP address, decided when the
//! connection is accepted (before anything is read):
//!
//! - at most `endpoint.max_connections_per_ip` open connections;
//! - a connect rate: a token bucket of `endpoint.connect_burst_per_ip` tokens refilled at
//!   `endpoint.connect_rate_per_ip` per second;
//! - refused CONNECTs: an address whose CONNECTs were refused `endpoint.failed_connects_per_ip`
//!   times within a minute (bad credentials, a client id or protocol level refused, a protocol
//!   violation, no CONNECT in time) has every connection refused until that minute is over. The
//!   first refusal that throttles an address is logged with it; later ones are only counted.
//!
//! Time is tokio's, so tests run it on a paused clock. The table holds an entry per address
//! with an open connection or recent activity; [`Admission::prune`] drops the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Window over which refused CONNECTs are counted.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The per-address limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// Open connections per address.
    pub(crate) max_per_ip: usize,
    /// Connections per second per address, sustained.
    pub(crate) rate_per_s: f64,
    /// Connections per address in a burst.
    pub(crate) burst: f64,
    /// Refused CONNECTs per address within [`FAILURE_WINDOW`] before it is throttled.
    pub(crate) failures: u32,
}

/// Why a connection was refused at accept; the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The address has `max_per_ip` connections open.
    IpLimit,
    /// The address connects faster than its rate.
    ConnectRate,
    /// The address's CONNECTs were refused too often.
    FailedConnects,
}

impl Refusal {
    /// Metric label (`citytel_endpoint_refused_total{reason}`).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::IpLimit => "ip_connection_limit",
            Refusal::ConnectRate => "connect_rate",
            Refusal::FailedConnects => "failed_connects",
        }
    }
}

#[derive(Debug)]
struct PerIp {
    open: usize,
    tokens: f64,
    refilled_at: Instant,
    failures: u32,
    failures_since: Instant,
}

/// The per-address table.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    by_ip: Mutex<HashMap<IpAddr, PerIp>>,
}

/// An admitted connection's place in its address's count, given back when dropped.
#[derive(Debug)]
pub(crate) struct IpSlot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some(entry) = self.admission.by_ip.lock().get_mut(&self.ip) {
            entry.open = entry.open.saturating_sub(1);
        }
    }
}

impl Admission {
    /// A table enforcing `limits`.
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Admission {
            limits,
            by_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Admits a connection from `ip` now, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<IpSlot, Refusal> {
        let now = Instant::now();
        let limits = self.limits;
        let mut table = self.by_ip.lock();
        let entry = table.entry(ip).or_insert_with(|| PerIp {
            open: 0,
            tokens: limits.burst,
            refilled_at: now,
            failures: 0,
            failures_since: now,
        });
        if now.duration_since(entry.failures_since) >= FAILURE_WINDOW {
            entry.failures = 0;
            entry.failures_since = now;
        }
        if entry.failures >= limits.failures {
            return Err(Refusal::FailedConnects);
        }
        if entry.open >= limits.max_per_ip {
            return Err(Refusal::IpLimit);
        }
        let elapsed = now.duration_since(entry.refilled_at).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * limits.rate_per_s).min(limits.burst);
        entry.refilled_at = now;
        if entry.tokens < 1.0 {
            return Err(Refusal::ConnectRate);
        }
        entry.tokens -= 1.0;
        entry.open += 1;
        Ok(IpSlot {
            admission: self.clone(),
            ip,
        })
    }

    /// Notes a refused CONNECT from `ip`; returns whether this one throttles the address (so
    /// the caller logs it once).
    pub(crate) fn connect_failed(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut table = self.by_ip.lock();
        let Some(entry) = table.get_mut(&ip) else {
            return false;
        };
        if now.duration_since(entry.failures_since) >= FAILURE_WINDOW {
            entry.failures = 0;
            entry.failures_since = now;
        }
        entry.failures += 1;
        entry.failures == self.limits.failures
    }

    /// Forgets addresses with no open connection, a full bucket and no recent failure.
    pub(crate) fn prune(&self) {
        let now = Instant::now();
        let limits = self.limits;
        self.by_ip.lock().retain(|_, e| {
            let full_at = e.refilled_at
                + Duration::from_secs_f64(
                    ((limits.burst - e.tokens) / limits.rate_per_s.max(f64::MIN_POSITIVE))
                        .min(86_400.0),
                );
            e.open > 0
                || now < full_at
                || (e.failures > 0 && now.duration_since(e.failures_since) < FAILURE_WINDOW)
        });
    }

    /// Addresses in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_ip.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn limits() -> Limits {
        Limits {
            max_per_ip: 3,
            rate_per_s: 2.0,
            burst: 5.0,
            failures: 4,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_connections_per_address_are_capped_and_given_back() {
        let admission = Admission::new(limits());
        let slots: Vec<IpSlot> = (0..3).map(|_| admission.admit(A).unwrap()).collect();
        assert_eq!(admission.admit(A).unwrap_err(), Refusal::IpLimit);
        assert!(
            admission.admit(B).is_ok(),
            "other addresses are not affected"
        );
        drop(slots);
        assert!(admission.admit(A).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_connect_rate_allows_a_burst_then_the_sustained_rate() {
        let admission = Admission::new(Limits {
            max_per_ip: 1000,
            ..limits()
        });
        let mut kept = Vec::new();
        for _ in 0..5 {
            kept.push(admission.admit(A).unwrap());
        }
        assert_eq!(admission.admit(A).unwrap_err(), Refusal::ConnectRate);
        tokio::time::sleep(Duration::from_millis(500)).await;
        kept.push(admission.admit(A).unwrap());
        assert_eq!(admission.admit(A).unwrap_err(), Refusal::ConnectRate);
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_whose_connects_keep_failing_is_throttled_for_the_window() {
        let admission = Admission::new(Limits {
            max_per_ip: 1000,
            burst: 100.0,
            ..limits()
        });
        let mut throttled = Vec::new();
        for _ in 0..4 {
            let slot = admission.admit(A).unwrap();
            throttled.push(admission.connect_failed(A));
            drop(slot);
        }
        assert_eq!(throttled, [false, false, false, true], "logged once");
        assert_eq!(admission.admit(A).unwrap_err(), Refusal::FailedConnects);
        assert!(admission.admit(B).is_ok());
        tokio::time::sleep(FAILURE_WINDOW).await;
        assert!(admission.admit(A).is_ok(), "the window is over");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_addresses_are_forgotten() {
        let admission = Admission::new(limits());
        let slot = admission.admit(A).unwrap();
        drop(admission.admit(B).unwrap());
        admission.prune();
        assert_eq!(admission.len(), 2, "B's bucket is still refilling");
        tokio::time::sleep(Duration::from_secs(10)).await;
        admission.prune();
        assert_eq!(admission.len(), 1, "A still has a connection open");
        drop(slot);
        tokio::time::sleep(Duration::from_secs(10)).await;
        admission.prune();
        assert_eq!(admission.len(), 0);
    }
}
