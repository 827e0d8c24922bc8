//! A real Mosquitto broker (Debian package `mosquitto`) with citytel's shipped configuration,
//! on loopback, with its own config file, persistence directory and log.
//!
//! [`MosquittoConfig`] builds the configuration: the settings of
//! `deploy/mosquitto/citytel.conf` (what citytel deployments use: in-flight window 1000,
//! unlimited queues, persistence on) with their own persistence directory and the listeners it
//! is given in place of the shipped one. A [`Listener`] is MQTT on a loopback port, plain or TLS
//! ([`ListenerTls`]: `cafile`, `certfile`, `keyfile`, `require_certificate`); each is rendered as
//! a `listener` line followed by its own options. [`Mosquitto::start`] writes the file, starts the broker in a
//! [`ChildGuard`](crate::process::ChildGuard) and returns once it accepts connections.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::net::free_port;
use crate::process::{ChildGuard, ProcessError, SpawnOptions};
use crate::wait::{TimedOut, Wait};

/// Where Debian installs the broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";
/// How to install it.
pub const INSTALL: &str = "apt-get install -y mosquitto (Debian package)";
/// The shipped broker configuration for citytel deployments.
pub const SHIPPED_CONF: &str = include_str!("../../deploy/mosquitto/citytel.conf");
/// The config file Mosquitto is started with, in its directory.
pub const CONF_FILE: &str = "mosquitto.conf";
/// Mosquitto's log (its stdout and stderr), in its directory; restarts append to it.
pub const LOG_FILE: &str = "mosquitto.log";
/// How long Mosquitto may take to accept connections.
const LISTEN_LIMIT: Duration = Duration::from_secs(10);
/// How long a graceful stop may take.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// Settings of the shipped file that [`MosquittoConfig`] replaces.
const REPLACED: [&str; 2] = ["listener", "persistence_location"];

/// What went wrong starting or stopping Mosquitto.
#[derive(Debug, thiserror::Error)]
pub enum MosquittoError {
    /// The broker is not installed.
    #[error("{binary} is missing: install it with `{install}`")]
    Missing {
        /// Where it should be.
        binary: &'static str,
        /// How to install it.
        install: &'static str,
    },
    /// A configuration without a listener.
    #[error("a Mosquitto configuration needs a listener")]
    NoListener,
    /// Writing the configuration or preparing the directory failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was done.
        what: &'static str,
        /// To which file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The process failed to start, exited, or did not stop.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// It did not accept connections in time.
    #[error(transparent)]
    TimedOut(#[from] TimedOut),
}

/// One listener: MQTT on `address:port`, plain or over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    address: IpAddr,
    port: u16,
    tls: Option<ListenerTls>,
}

/// A TLS listener's files (PEM) and whether clients must present a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// CA bundle client certificates are checked against (`cafile`).
    pub cafile: PathBuf,
    /// The broker's certificate (`certfile`).
    pub certfile: PathBuf,
    /// Its key (`keyfile`).
    pub keyfile: PathBuf,
    /// Refuse clients without a certificate from `cafile` (`require_certificate`).
    pub require_certificate: bool,
}

impl Listener {
    /// Plain MQTT on 127.0.0.1:`port`.
    pub fn plain(port: u16) -> Listener {
        Listener {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            tls: None,
        }
    }

    /// MQTT over TLS on 127.0.0.1:`port`.
    pub fn tls(port: u16, tls: ListenerTls) -> Listener {
        Listener {
            tls: Some(tls),
            ..Listener::plain(port)
        }
    }

    /// MQTT over TLS on a loopback port that is free now.
    pub fn free_tls(tls: ListenerTls) -> io::Result<Listener> {
        Ok(Listener::tls(free_port()?, tls))
    }

    /// Whether it speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Plain MQTT on a loopback port that is free now.
    pub fn free() -> io::Result<Listener> {
        Ok(Listener::plain(free_port()?))
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `listener` line and the listener's own options.
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "listener {} {}", self.port, self.address);
        if let Some(tls) = &self.tls {
            let _ = writeln!(out, "cafile {}", tls.cafile.display());
            let _ = writeln!(out, "certfile {}", tls.certfile.display());
            let _ = writeln!(out, "keyfile {}", tls.keyfile.display());
            let _ = writeln!(out, "require_certificate {}", tls.require_certificate);
        }
    }
}

/// How to run one Mosquitto: its directory (config, persistence, log), its listeners, and how its
/// process is stopped.
#[derive(Debug, Clone)]
pub struct MosquittoConfig {
    dir: PathBuf,
    listeners: Vec<Listener>,
    process: SpawnOptions,
}

impl MosquittoConfig {
    /// The shipped settings, persisting into `dir`, with no listener yet.
    pub fn new(dir: &Path) -> MosquittoConfig {
        MosquittoConfig {
            dir: dir.to_path_buf(),
            listeners: Vec::new(),
            process: SpawnOptions::default(),
        }
    }

    /// Adds a listener (the first one is the broker's [`port`](Mosquitto::port)).
    pub fn listener(mut self, listener: Listener) -> MosquittoConfig {
        self.listeners.push(listener);
        self
    }

    /// Runs the broker in a process group of its own, stopped with SIGTERM and up to `grace`
    /// before SIGKILL when dropped (for a harness that handles Ctrl-C itself); by default it stays
    /// in the caller's group and is killed at once.
    pub fn own_process_group(mut self, grace: Duration) -> MosquittoConfig {
        self.process.own_process_group = true;
        self.process.grace = grace;
        self
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration file's text.
    pub fn render(&self) -> String {
        let mut conf =
            String::from("# Written by citytel's testkit from deploy/mosquitto/citytel.conf.\n");
        for line in SHIPPED_CONF.lines() {
            let key = line.split_whitespace().next().unwrap_or("");
            if !REPLACED.contains(&key) {
                conf.push_str(line);
                conf.push('\n');
            }
        }
        let _ = writeln!(conf, "persistence_location {}/", self.dir.display());
        for listener in &self.listeners {
            conf.push('\n');
            listener.render(&mut conf);
        }
        conf
    }
}

/// A running Mosquitto, stopped when dropped.
#[derive(Debug)]
pub struct Mosquitto {
    guard: ChildGuard,
    port: u16,
    config: MosquittoConfig,
}

impl Mosquitto {
    /// Starts Mosquitto with the shipped settings on a free port, keeping its config,
    /// persistence file and log in `dir`.
    pub async fn start(dir: &Path) -> Result<Mosquitto, MosquittoError> {
        let listener = Listener::free().map_err(|source| MosquittoError::Io {
            what: "finding a free port for",
            path: dir.to_path_buf(),
            source,
        })?;
        Self::launch(&MosquittoConfig::new(dir).listener(listener)).await
    }

    /// Starts Mosquitto as `config` says and waits until its first listener accepts connections.
    pub async fn launch(config: &MosquittoConfig) -> Result<Mosquitto, MosquittoError> {
        if !Path::new(MOSQUITTO).exists() {
            return Err(MosquittoError::Missing {
                binary: MOSQUITTO,
                install: INSTALL,
            });
        }
        let port = config
            .listeners
            .first()
            .map(Listener::port)
            .ok_or(MosquittoError::NoListener)?;
        let dir = config.dir.clone();
        let io_err = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| MosquittoError::Io { what, path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let conf = dir.join(CONF_FILE);
        std::fs::write(&conf, config.render()).map_err(io_err("writing", &conf))?;
        let_the_broker_write(&dir).map_err(io_err("giving the mosquitto user", &dir))?;
        let mut cmd = Command::new(MOSQUITTO);
        cmd.arg("-c").arg(&conf);
        let options = SpawnOptions {
            log: Some(dir.join(LOG_FILE)),
            ..config.process.clone()
        };
        let mut guard = ChildGuard::spawn("mosquitto", &mut cmd, options)?;
        let mut wait = Wait::new(format!("mosquitto listening on {port}"), LISTEN_LIMIT);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            guard.check_running()?;
            wait.retry().await?;
        }
        Ok(Mosquitto {
            guard,
            port,
            config: config.clone(),
        })
    }

    /// The port of its first listener, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:{port}` (`mqtts://` when the first listener is TLS).
    pub fn url(&self) -> String {
        let tls = self.config.listeners.first().is_some_and(Listener::is_tls);
        let scheme = if tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port of its `i`th listener (in the order they were added).
    pub fn listener_port(&self, i: usize) -> Option<u16> {
        self.config.listeners.get(i).map(Listener::port)
    }

    /// Its directory (config, persistence file, [`LOG_FILE`]).
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// How it was started: to start it again where it was, after [`stop`](Self::stop).
    pub fn config(&self) -> &MosquittoConfig {
        &self.config
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Fails, with the end of its log, if it has exited.
    pub fn check_running(&mut self) -> Result<(), ProcessError> {
        self.guard.check_running()
    }

    /// Stops Mosquitto with SIGTERM, as a service manager would (it saves its persistence file
    /// on the way out), and waits for it to exit.
    pub fn stop(mut self) -> Result<ExitStatus, ProcessError> {
        self.guard.stop_with(Signal::SIGTERM, STOP_LIMIT)
    }
}

/// Started as root, Mosquitto drops to the `mosquitto` user before it writes its persistence
/// file: give that user `dir`, or persistence fails with "Permission denied" (the directories
/// above it must be traversable, as temporary directories are).
fn let_the_broker_write(dir: &Path) -> io::Result<()> {
    use nix::unistd::{User, geteuid};
    if !geteuid().is_root() {
        return Ok(());
    }
    if let Ok(Some(user)) = User::from_name("mosquitto") {
        std::os::unix::fs::chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listener_and_the_persistence_dir_change() {
        let conf = MosquittoConfig::new(Path::new("/tmp/x"))
            .listener(Listener::plain(4242))
            .render();
        let lines: Vec<&str> = conf.lines().collect();
        assert!(lines.contains(&"persistence_location /tmp/x/"));
        assert_eq!(lines.last(), Some(&"listener 4242 127.0.0.1"));
        assert_eq!(conf.matches("listener ").count(), 1);
        assert_eq!(conf.matches("persistence_location").count(), 1);
        for kept in [
            "allow_anonymous true",
            "max_inflight_messages 1000",
            "max_queued_messages 0",
            "persistence true",
        ] {
            assert!(lines.contains(&kept), "{kept}");
        }
    }

    #[test]
    fn a_tls_listener_carries_its_files() {
        let tls = ListenerTls {
            cafile: "/c/ca.pem".into(),
            certfile: "/c/server.pem".into(),
            keyfile: "/c/server.key".into(),
            require_certificate: true,
        };
        let conf = MosquittoConfig::new(Path::new("/tmp/x"))
            .listener(Listener::plain(1))
            .listener(Listener::tls(2, tls))
            .render();
        let tail: Vec<&str> = conf
            .lines()
            .skip_while(|l| *l != "listener 2 127.0.0.1")
            .collect();
        assert_eq!(
            tail,
            [
                "listener 2 127.0.0.1",
                "cafile /c/ca.pem",
                "certfile /c/server.pem",
                "keyfile /c/server.key",
                "require_certificate true",
            ]
        );
    }

    #[test]
    fn every_listener_is_rendered_in_order() {
        let conf = MosquittoConfig::new(Path::new("/tmp/x"))
            .listener(Listener::plain(1))
            .listener(Listener::plain(2))
            .render();
        let listeners: Vec<&str> = conf.lines().filter(|l| l.starts_with("listener")).collect();
        assert_eq!(listeners, ["listener 1 127.0.0.1", "listener 2 127.0.0.1"]);
    }
}
