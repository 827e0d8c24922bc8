//! Debian's Mosquitto with the repository's tuned configuration, on a free loopback port.
//!
//! The configuration is `deploy/mosquitto/citytel.conf` (what citytel deployments and the
//! interop tests use: in-flight window 1000, unlimited queues, persistence on) with only the
//! listener and the persistence directory replaced, the same way `tests/src/mosquitto.rs` does.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use citytel_testkit::net::{free_port, loopback};
use citytel_testkit::process::ChildGuard;
use citytel_testkit::wait::Wait;

use crate::process;

/// Where Debian installs the broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";
/// The shipped configuration.
const SHIPPED_CONF: &str = include_str!("../../../deploy/mosquitto/citytel.conf");
/// How long Mosquitto may take to listen.
const LISTEN_LIMIT: Duration = Duration::from_secs(10);

/// The shipped configuration listening on `port` and persisting into `dir`.
pub fn config_for(port: u16, dir: &Path) -> String {
    let mut conf = format!(
        "listener {port} 127.0.0.1\npersistence_location {}/\n",
        dir.display()
    );
    for line in SHIPPED_CONF.lines() {
        let key = line.split_whitespace().next().unwrap_or("");
        if !matches!(key, "listener" | "persistence_location") {
            conf.push_str(line);
            conf.push('\n');
        }
    }
    conf
}

/// A running Mosquitto, stopped when dropped.
pub struct Mosquitto {
    /// The process.
    pub guard: ChildGuard,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Mosquitto {
    /// Installs Mosquitto if missing (apt-get, as root) and starts it on a free port with its
    /// config, persistence and log in `dir`.
    pub async fn start(dir: &Path) -> Result<Mosquitto> {
        process::ensure_debian_package(Path::new(MOSQUITTO), "mosquitto")?;
        std::fs::create_dir_all(dir)?;
        let_the_broker_write(dir)?;
        let port = free_port().context("finding a free port")?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, config_for(port, dir))?;
        let mut cmd = Command::new(MOSQUITTO);
        cmd.arg("-c").arg(&conf);
        let mut guard = process::spawn("mosquitto", &mut cmd, &dir.join("mosquitto.log"), false)?;
        let mut wait = Wait::new(format!("mosquitto listening on {port}"), LISTEN_LIMIT)
            .every(Duration::from_millis(20));
        while tokio::net::TcpStream::connect(loopback(port))
            .await
            .is_err()
        {
            guard.check_running()?;
            wait.retry().await?;
        }
        Ok(Mosquitto { guard, port })
    }

    /// `mqtt://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

/// Started as root, Mosquitto drops to the `mosquitto` user before it writes its persistence
/// file: give that user `dir` (the harness's directories above it are world-traversable).
fn let_the_broker_write(dir: &Path) -> Result<()> {
    use nix::unistd::{User, geteuid};
    if !geteuid().is_root() {
        return Ok(());
    }
    if let Ok(Some(user)) = User::from_name("mosquitto") {
        std::os::unix::fs::chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .with_context(|| format!("giving {} to the mosquitto user", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listener_and_the_persistence_dir_change() {
        let conf = config_for(4242, Path::new("/tmp/x"));
        assert!(conf.starts_with("listener 4242 127.0.0.1\npersistence_location /tmp/x/\n"));
        assert_eq!(conf.matches("listener").count(), 1);
        assert!(conf.contains("max_inflight_messages 1000"));
        assert!(conf.contains("max_queued_messages 0"));
        assert!(conf.contains("persistence true"));
    }
}
