//! Child processes the harness starts, and what they need: free loopback ports, the binaries next
//! to this executable, and Debian packages installed on demand.
//!
//! Every server runs inside a [`ChildGuard`], which stops it when dropped: on success, on error and
//! on Ctrl-C alike (main drops the run future on a signal). Children get their own process group,
//! so a Ctrl-C in the terminal reaches only the harness, which then tears them down in order.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A running child process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ChildGuard {
    /// Spawns `cmd` in its own process group with stdin closed, stderr going to `log`, and
    /// stdout piped (to read with [`ChildGuard::child_mut`]) or going to `log` too.
    pub fn spawn(
        name: &str,
        cmd: &mut Command,
        log: &Path,
        pipe_stdout: bool,
    ) -> Result<ChildGuard> {
        let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let stdout = if pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone()?)
        };
        cmd.stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(ChildGuard {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The child, e.g. to take its piped stdout.
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Its exit status if it has exited (the process is then reaped).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => bail!("{} was already stopped", self.name),
        }
    }

    /// Fails, with the end of its log, if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.try_wait()? {
            bail!("{} exited: {status}\n{}", self.name, self.log_tail());
        }
        Ok(())
    }

    /// The last lines of the child's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("(end of {}:)\n{tail}", self.log.display())
    }

    /// Stops the process: SIGTERM, then SIGKILL after a grace period.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{} did not exit within {STOP_GRACE:?} of SIGTERM: killing it",
            self.name
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A binary of this workspace, in the directory of this executable (`target/release`).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the citytel-bench executable")?;
    let dir = exe
        .parent()
        .context("the citytel-bench executable has no directory")?;
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        bail!(
            "{} is missing: build the workspace first with `cargo build --release --workspace`",
            path.display()
        );
    }
    Ok(path)
}

/// Makes sure `binary` exists, installing Debian package `package` with apt-get when it does not
/// (which needs root; otherwise the error says what to run).
pub fn ensure_debian_package(binary: &Path, package: &str) -> Result<()> {
    if binary.exists() {
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "{} is missing and citytel-bench is not root, so it cannot install it: run \
             `sudo apt-get install -y {package}` (or run citytel-bench as root)",
            binary.display()
        );
    }
    eprintln!(
        "{} is missing: installing Debian package {package}...",
        binary.display()
    );
    let install = || -> Result<ExitStatus> {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .context("running apt-get")
    };
    if !install()?.success() {
        eprintln!("apt-get install {package} failed: running apt-get update and trying again...");
        let update = Command::new("apt-get")
            .arg("update")
            .stdin(Stdio::null())
            .status()
            .context("running apt-get update")?;
        if !update.success() || !install()?.success() {
            bail!("`apt-get install -y {package}` failed");
        }
    }
    if !binary.exists() {
        bail!(
            "installed Debian package {package} but {} is still missing",
            binary.display()
        );
    }
    Ok(())
}

/// Reads the start-up banner `citytel serve` (spawned in `guard` with stdout piped) prints, up to
/// and including its `grpc api` line, and returns those lines; the rest of stdout is drained in
/// the background so the pipe never fills. Fails if citytel exits or prints no `grpc api` line
/// within `limit` of `t0`.
pub async fn citytel_banner(
    guard: &mut ChildGuard,
    t0: Instant,
    limit: Duration,
) -> Result<Vec<String>> {
    let stdout = guard
        .child_mut()
        .and_then(|c| c.stdout.take())
        .context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(line) => {
                let done = line.split_whitespace().take(2).eq(["grpc", "api"]);
                banner.push(line);
                if done {
                    return Ok(banner);
                }
                continue;
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                guard.check_running()?;
                bail!("citytel serve closed its stdout without printing `grpc api`");
            }
        }
        guard.check_running()?;
        if t0.elapsed() > limit {
            bail!("citytel serve printed no `grpc api` line within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The value after the two-word label `label` (e.g. `grpc api`) in a banner from
/// [`citytel_banner`].
pub fn banner_value<'a>(banner: &'a [String], label: [&str; 2]) -> Option<&'a str> {
    banner.iter().find_map(|line| {
        let mut words = line.split_whitespace();
        let first = [words.next()?, words.next()?];
        (first == label).then(|| words.next()).flatten()
    })
}

#[cfg(test)]
mod banner_tests {
    use super::banner_value;

    #[test]
    fn banner_values_are_found_by_their_label() {
        let banner: Vec<String> = [
            "citytel is running",
            "  dashboard       http://127.0.0.1:40001/",
            "  mqtt endpoint   mqtt://127.0.0.1:40002",
            "  grpc api        127.0.0.1:40003",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            banner_value(&banner, ["grpc", "api"]),
            Some("127.0.0.1:40003")
        );
        assert_eq!(
            banner_value(&banner, ["mqtt", "endpoint"]),
            Some("mqtt://127.0.0.1:40002")
        );
        assert_eq!(banner_value(&banner, ["data", "directory"]), None);
    }
}
