//! A real Alertmanager (Debian package `prometheus-alertmanager`) on a loopback port, with its
//! own configuration and storage under a directory, clustering off. Its own API
//! (`GET /api/v2/alerts`) shows the alerts it holds.

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::http::{HttpConn, HttpError, StatusCode};
use crate::net::loopback;
use crate::process::{ChildGuard, ProcessError, SpawnOptions};
use crate::wait::{TimedOut, Wait};

/// Where Debian installs Alertmanager.
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
/// How to install it.
pub const INSTALL: &str = "apt-get install -y prometheus-alertmanager (Debian package)";
/// A configuration that holds every alert and sends nothing on.
pub const HOLD_ONLY: &str = "route:\n  receiver: none\nreceivers:\n  - name: none\n";
/// How long Alertmanager may take to say it is ready.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// A configuration routing every alert, each alone (grouped by alert name and device), to the
/// webhook at `url` within a fraction of a second, resolutions included (`send_resolved`).
pub fn routing_to(url: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname, device]\n  group_wait: 100ms\n  \
         group_interval: 300ms\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
         webhook_configs:\n      - url: {url}\n        send_resolved: true\n"
    )
}

/// What went wrong starting or asking Alertmanager.
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerError {
    /// It is not installed.
    #[error("{ALERTMANAGER} is missing: install it with `{INSTALL}`")]
    Missing,
    /// Its directory or configuration could not be written.
    #[error("writing Alertmanager's files: {0}")]
    Io(#[from] io::Error),
    /// It could not be started.
    #[error(transparent)]
    Spawn(#[from] ProcessError),
    /// It did not become ready.
    #[error(transparent)]
    NotReady(#[from] TimedOut),
    /// Its API did not answer as expected.
    #[error("GET /api/v2/alerts: {0}")]
    Api(String),
}

impl From<HttpError> for AlertmanagerError {
    fn from(e: HttpError) -> Self {
        AlertmanagerError::Api(e.to_string())
    }
}

/// A running Alertmanager, stopped on drop.
pub struct Alertmanager {
    _child: ChildGuard,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Alertmanager {
    /// Starts Alertmanager on `port` with `config` (YAML) and its files under `dir`, and waits
    /// until it is ready.
    pub async fn start(
        dir: &Path,
        port: u16,
        config: &str,
    ) -> Result<Alertmanager, AlertmanagerError> {
        if !Path::new(ALERTMANAGER).exists() {
            return Err(AlertmanagerError::Missing);
        }
        std::fs::create_dir_all(dir)?;
        let file = dir.join("alertmanager.yml");
        std::fs::write(&file, config)?;
        let mut cmd = Command::new(ALERTMANAGER);
        cmd.arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = ChildGuard::spawn("alertmanager", &mut cmd, SpawnOptions::default())?;
        let mut wait = Wait::new(format!("alertmanager ready on {port}"), READY_LIMIT)
            .every(Duration::from_millis(20));
        loop {
            let ready = HttpConn::new(loopback(port)).get("/-/ready").await;
            if ready.is_ok_and(|r| r.status == StatusCode::OK) {
                return Ok(Alertmanager {
                    _child: child,
                    port,
                });
            }
            wait.retry().await?;
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The alerts it holds and has not seen resolved (`GET /api/v2/alerts`), only those of the
    /// alert `name` when given.
    pub async fn alerts(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, AlertmanagerError> {
        let path = match name {
            Some(name) => format!("/api/v2/alerts?filter=alertname%3D%22{name}%22"),
            None => "/api/v2/alerts".to_string(),
        };
        let response = HttpConn::new(loopback(self.port))
            .get(&path)
            .await?
            .expect(StatusCode::OK, "GET /api/v2/alerts")?;
        serde_json::from_slice(&response.body).map_err(|e| AlertmanagerError::Api(e.to_string()))
    }
}
