//! The `citytel` binary as a child process on free ports and a temporary data directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_testkit::health;
use citytel_testkit::process::{ChildGuard, SpawnOptions};
use citytel_testkit::wait::Wait;
use nix::sys::signal::Signal;
use tonic::transport::{Channel, Endpoint};

/// How long citytel may take to accept gRPC connections once it printed its addresses.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// How long citytel may take to report SERVING.
const SERVING_LIMIT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// Path of the `citytel-e2e` binary (the `citytel` command line built by this package): next to
/// the test executable's `deps` directory, or `CITYTEL_E2E_BIN` if set.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CITYTEL_E2E_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable in target/<profile>/deps");
    let bin = dir.join(format!("citytel-e2e{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p citytel-tests`",
        bin.display()
    );
    bin
}

/// A running `citytel serve`.
pub struct Citytel {
    child: ChildGuard,
    /// Address of the MQTT device endpoint, if it runs.
    pub mqtt: Option<SocketAddr>,
    /// Address of its `mqtts` (TLS) listener, if it runs.
    pub mqtts: Option<SocketAddr>,
    /// Address of the gRPC API.
    pub grpc: SocketAddr,
    /// URL of the web dashboard (`http://127.0.0.1:PORT/`), if it runs.
    pub dashboard: Option<String>,
    /// URL of the Prometheus metrics endpoint (`http://127.0.0.1:PORT/metrics`), if it runs.
    pub metrics: Option<String>,
    output: mpsc::Receiver<String>,
}

impl Citytel {
    /// Starts `citytel serve` on `data_dir` with free ports plus `extra` arguments, and waits
    /// until it prints its addresses.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Citytel {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables (e.g. debug options).
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Citytel {
        Self::launch(Command::new(binary()), data_dir, extra, env)
    }

    /// Like [`start`](Self::start), with the open-file limit (soft and hard) set to `nofile`
    /// for the process (through `prlimit`, from util-linux).
    pub fn start_with_open_files(data_dir: &Path, extra: &[&str], nofile: u64) -> Citytel {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}:{nofile}"))
            .arg("--")
            .arg(binary());
        Self::launch(cmd, data_dir, extra, &[])
    }

    fn launch(mut cmd: Command, data_dir: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Citytel {
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--mqtt-listen",
                "127.0.0.1:0",
                "--grpc-listen",
                "127.0.0.1:0",
                "--set",
                "http.listen=127.0.0.1:0",
                "--set",
                "metrics.listen=127.0.0.1:0",
                // The tests of ingest ask without keys; the API's own tests turn keys on.
                "--set",
                "api.authentication=false",
                // Likewise devices: the tests of device identity turn it on.
                "--set",
                "endpoint.authentication=false",
                "--set",
                "endpoint.tls.listen=127.0.0.1:0",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit());
        let options = SpawnOptions {
            pipe_stdout: true,
            ..SpawnOptions::default()
        };
        let mut child = ChildGuard::spawn("citytel", &mut cmd, options).expect("start citytel");
        let stdout = child.take_stdout().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut mqtt = None;
        let mut mqtts = None;
        let mut grpc = None;
        let mut dashboard = None;
        let mut metrics = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while grpc.is_none() || !lines_done(mqtt.or(mqtts), extra) {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("citytel did not report its addresses within 60 s"));
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["mqtt", "endpoint", url] => {
                    mqtt = url.strip_prefix("mqtt://").and_then(|a| a.parse().ok());
                }
                ["mqtts", "endpoint", url] => {
                    mqtts = url.strip_prefix("mqtts://").and_then(|a| a.parse().ok());
                }
                ["grpc", "api", addr, ..] => grpc = addr.parse().ok(),
                ["dashboard", url] => dashboard = Some(url.to_string()),
                ["metrics", url] => metrics = Some(url.to_string()),
                _ => {}
            }
        }
        Citytel {
            child,
            mqtt,
            mqtts,
            grpc: grpc.expect("grpc address"),
            dashboard,
            metrics,
            output: rx,
        }
    }

    /// The address of the dashboard's HTTP server (which also answers gRPC-Web).
    pub fn dashboard_addr(&self) -> SocketAddr {
        self.dashboard
            .as_deref()
            .and_then(|url| {
                url.strip_prefix("http://")
                    .or_else(|| url.strip_prefix("https://"))
            })
            .and_then(|rest| rest.trim_end_matches('/').parse().ok())
            .expect("the dashboard runs at http://HOST:PORT/")
    }

    /// The MQTT endpoint as `(host, port)`.
    pub fn mqtt_host_port(&self) -> (String, u16) {
        let addr = self.mqtt.expect("the device endpoint runs");
        (addr.ip().to_string(), addr.port())
    }

    /// A gRPC client of the query service.
    pub async fn client(&self) -> QueryServiceClient<Channel> {
        let url = format!("http://{}", self.grpc);
        let mut wait = Wait::new(
            format!("connecting to citytel's gRPC API at {url}"),
            CONNECT_LIMIT,
        )
        .every(Duration::from_millis(50));
        loop {
            match QueryServiceClient::connect(url.clone()).await {
                Ok(client) => return client,
                Err(e) => {
                    if let Err(timed_out) = wait.retry().await {
                        panic!("{timed_out}: {e}");
                    }
                }
            }
        }
    }

    /// Waits until the gRPC health check reports the query service as serving (with a broker
    /// source: connected and subscribed).
    pub async fn wait_serving(&self) {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.grpc)).expect("valid url");
        if let Err(e) = health::wait_serving(&endpoint, SERVING_LIMIT).await {
            panic!("citytel not serving: {e}");
        }
    }

    /// Resident memory of the process, in bytes (from `/proc/{pid}/status`).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/{pid}/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS in /proc/{pid}/status")
            * 1024
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Fails the test, with what it exited with, if the process has exited.
    pub fn assert_running(&mut self) {
        if let Err(e) = self.child.check_running() {
            panic!("citytel is not running: {e}");
        }
    }

    /// Open file descriptors of the process (entries of `/proc/{pid}/fd`).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Sends SIGTERM and waits for a graceful exit.
    pub fn stop(mut self) -> ExitStatus {
        self.child
            .stop_with(Signal::SIGTERM, STOP_LIMIT)
            .unwrap_or_else(|e| panic!("stopping citytel: {e}"))
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(mut self) -> ExitStatus {
        self.child
            .kill()
            .unwrap_or_else(|e| panic!("killing citytel: {e}"))
    }

    /// Lines citytel printed on stdout since start-up.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.output.try_iter().collect()
    }
}

fn lines_done(mqtt: Option<SocketAddr>, extra: &[&str]) -> bool {
    mqtt.is_some() || extra.contains(&"--broker-url")
}
