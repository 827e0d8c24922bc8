//! A real Mosquitto broker (Debian package `mosquitto`) on a free port with its own config.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use citytel_testkit::net::free_port;

/// Where Debian installs the broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// The shipped broker configuration for citytel deployments; tests run Mosquitto with exactly
/// these settings, only with their own port and persistence directory.
pub const SHIPPED_CONF: &str = include_str!("../../deploy/mosquitto/citytel.conf");

/// [`SHIPPED_CONF`] listening on `port` and persisting into `dir`.
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

/// A running Mosquitto, killed on drop.
pub struct Mosquitto {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Mosquitto {
    /// Starts Mosquitto on a free port, keeping its persistence file in `dir`. Panics with a
    /// clear message if Mosquitto is not installed: interop tests never skip silently.
    pub fn start(dir: &Path) -> Mosquitto {
        Self::start_on(dir, free_port().expect("a free port"))
    }

    /// Starts Mosquitto on `port` (e.g. to restart it where it was).
    pub fn start_on(dir: &Path, port: u16) -> Mosquitto {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "interop tests need Mosquitto: install it with `apt-get install -y mosquitto` \
             (Debian package), or run the tests without `--features interop`"
        );
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, config_for(port, dir)).expect("write mosquitto.conf");
        let_the_broker_write(dir);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG_FILE))
            .expect("open mosquitto.log");
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto {
            child: Some(child),
            port,
        }
    }

    /// `mqtt://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Stops Mosquitto with SIGTERM, as a service manager would (it saves its persistence file
    /// on the way out), and waits for it to exit.
    pub fn stop(mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let mut child = self.child.take().expect("running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal mosquitto");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait for mosquitto").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("mosquitto did not stop within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Mosquitto's log (its stderr), in the directory it was started with.
pub const LOG_FILE: &str = "mosquitto.log";

/// Started as root, Mosquitto drops to the `mosquitto` user before it writes its persistence
/// file: give that user `dir`, or persistence fails with "Permission denied".
fn let_the_broker_write(dir: &Path) {
    use nix::unistd::{User, geteuid};
    if !geteuid().is_root() {
        return;
    }
    if let Ok(Some(user)) = User::from_name("mosquitto") {
        std::os::unix::fs::chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .expect("give the persistence directory to the mosquitto user");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
