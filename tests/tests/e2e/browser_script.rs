//! What the browser tests share: where Debian's Chromium and the dashboard's scripts are, the
//! check that they (and Node.js with the dashboard's npm packages) are installed, and a
//! [`BrowserScript`]: one `node dashboards/web/test/<script>.mjs` run, its stdout echoed as
//! `browser> ...` and read line by line, its requests (`ready: ...` lines) answered on its stdin,
//! and its process killed if the test gives up on it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;

/// Chromium from Debian's package, unless `CHROMIUM` names another.
pub(super) fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// The dashboard's directory, where the browser test scripts run.
pub(super) fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/web")
}

/// Where the scripts save their screenshots: `tests/artifacts/`.
pub(super) fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts")
}

/// Fails the test, with the fix, when something the browser test needs is missing.
pub(super) fn check_prerequisites() {
    assert!(
        chromium().exists(),
        "{} is missing: install Debian's chromium (`apt-get install -y chromium`) or set CHROMIUM",
        chromium().display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: install Node.js (`apt-get install -y nodejs npm`)"
    );
    assert!(
        web_dir().join("node_modules/playwright-core").exists(),
        "dashboards/web/node_modules is missing: run `npm ci` in dashboards/web"
    );
}

/// A running browser test script.
pub(super) struct BrowserScript {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
}

impl BrowserScript {
    /// Runs `node test/{script}` in the dashboard's directory with `args` (the artifact directory
    /// is the script's last argument, after them) and `env`, with `CHROMIUM` set.
    pub(super) fn start(script: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new("node")
            .arg(format!("test/{script}"))
            .args(args)
            .arg(artifacts())
            .env("CHROMIUM", chromium())
            .envs(env.iter().copied())
            .current_dir(web_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("browser> {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        BrowserScript {
            child,
            stdin,
            lines,
        }
    }

    /// The script's next request (what follows `ready: `), or `None` once its output ends.
    pub(super) async fn request(&mut self) -> Option<String> {
        while let Some(line) = self.lines.recv().await {
            if let Some(request) = line.strip_prefix("ready: ") {
                return Some(request.to_string());
            }
        }
        None
    }

    /// Answers the script's request with one line.
    pub(super) fn answer(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to the browser test");
    }

    /// Ends the test's conversation with the script: kills it unless the test `finished` within
    /// `limit` (then fails the test, saying so), and returns how the script ended.
    pub(super) fn conclude(mut self, finished: bool, limit: Duration) -> ExitStatus {
        if !finished {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait for node");
        assert!(
            finished,
            "the browser test did not finish within {} s",
            limit.as_secs()
        );
        status
    }
}

impl Drop for BrowserScript {
    /// A test that fails while the script runs does not leave it (and its Chromium) behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
