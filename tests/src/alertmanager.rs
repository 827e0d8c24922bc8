//! A real Alertmanager (Debian package `prometheus-alertmanager`) on a free loopback port, with
//! its own configuration and storage in a directory of the test's, clustering off. Its own API
//! (`GET /api/v2/alerts`) shows the alerts it holds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use citytel_testkit::http::{HttpConn, StatusCode};
use citytel_testkit::net::loopback;
use citytel_testkit::process::{ChildGuard, SpawnOptions};
use citytel_testkit::wait::Wait;

/// Where Debian installs Alertmanager.
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// Its configuration: every alert goes to a receiver that sends nothing on.
const CONFIG: &str = "route:\n  receiver: none\nreceivers:\n  - name: none\n";

/// A running Alertmanager, killed on drop.
pub struct Alertmanager {
    _child: ChildGuard,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Alertmanager {
    /// Starts Alertmanager on `port` with its files under `dir`, and waits until it is ready.
    /// Panics with a clear message if the package is not installed.
    pub async fn start_on(dir: &Path, port: u16) -> Alertmanager {
        Self::start_with(dir, port, CONFIG).await
    }

    /// As [`start_on`](Self::start_on), routing every alert, each alone (grouped by alert name
    /// and device), to the webhook at `url` within a fraction of a second, resolutions included
    /// (`send_resolved`).
    pub async fn start_routing_to(dir: &Path, port: u16, url: &str) -> Alertmanager {
        let config = format!(
            "route:\n  receiver: hook\n  group_by: [alertname, device]\n  group_wait: 100ms\n  \
             group_interval: 300ms\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
             webhook_configs:\n      - url: {url}\n        send_resolved: true\n"
        );
        Self::start_with(dir, port, &config).await
    }

    async fn start_with(dir: &Path, port: u16, config_text: &str) -> Alertmanager {
        assert!(
            Path::new(ALERTMANAGER).exists(),
            "interop tests need Alertmanager: install it with \
             `apt-get install -y prometheus-alertmanager` (Debian package), or run the tests \
             without `--features interop`"
        );
        let home = dir.join("alertmanager");
        std::fs::create_dir_all(&home).expect("alertmanager directory");
        let config = home.join("alertmanager.yml");
        std::fs::write(&config, config_text).expect("alertmanager configuration");
        let mut cmd = Command::new(ALERTMANAGER);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", home.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = ChildGuard::spawn("alertmanager", &mut cmd, SpawnOptions::default())
            .expect("start alertmanager");
        let am = Alertmanager {
            _child: child,
            port,
        };
        let mut wait = Wait::new(
            format!("alertmanager ready on {port}"),
            Duration::from_secs(30),
        )
        .every(Duration::from_millis(20));
        loop {
            let ready = HttpConn::new(loopback(port)).get("/-/ready").await;
            if ready.is_ok_and(|r| r.status == StatusCode::OK) {
                return am;
            }
            if let Err(e) = wait.retry().await {
                panic!("{e}");
            }
        }
    }

    /// The alerts it holds and has not seen resolved (`GET /api/v2/alerts`).
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        let response = HttpConn::new(loopback(self.port))
            .get("/api/v2/alerts")
            .await
            .and_then(|r| r.expect(StatusCode::OK, "GET /api/v2/alerts"))
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_slice(&response.body).expect("alerts are JSON")
    }
}
