//! A real Alertmanager (Debian package `prometheus-alertmanager`, see
//! [`citytel_testkit::alertmanager`]) for the end-to-end tests, on a port the test chose, with
//! its files under the test's directory; failing to start it fails the test with why.

use std::path::Path;

use citytel_testkit::alertmanager::{self, HOLD_ONLY};

/// A running Alertmanager, killed on drop.
pub struct Alertmanager(alertmanager::Alertmanager);

impl Alertmanager {
    /// Starts Alertmanager on `port`, holding every alert and sending nothing on.
    pub async fn start_on(dir: &Path, port: u16) -> Alertmanager {
        Self::start_with(dir, port, HOLD_ONLY).await
    }

    /// Starts Alertmanager on `port`, routing every alert to the webhook at `url` (see
    /// [`alertmanager::routing_to`]).
    pub async fn start_routing_to(dir: &Path, port: u16, url: &str) -> Alertmanager {
        Self::start_with(dir, port, &alertmanager::routing_to(url)).await
    }

    async fn start_with(dir: &Path, port: u16, config: &str) -> Alertmanager {
        let am = alertmanager::Alertmanager::start(&dir.join("alertmanager"), port, config)
            .await
            .unwrap_or_else(|e| {
                panic!("{e} (interop tests need it; or run them without `--features interop`)")
            });
        Alertmanager(am)
    }

    /// The alerts it holds and has not seen resolved (`GET /api/v2/alerts`).
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        self.0.alerts(None).await.unwrap_or_else(|e| panic!("{e}"))
    }
}
