//! Child processes the harness starts, and what they need: the binaries next to this executable,
//! Debian packages installed on demand, and citytel's start-up banner.
//!
//! Every server runs inside a testkit [`ChildGuard`], which stops it when dropped: on success, on
//! error and on Ctrl-C alike (main drops the run future on a signal). [`spawn`] gives children
//! their own process group, so a Ctrl-C in the terminal reaches only the harness, which then
//! tears them down in order, each with SIGTERM and a grace period before SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use citytel_testkit::process::{ChildGuard, SpawnOptions};
use citytel_testkit::wait::Wait;

/// How long a child gets to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// Spawns `cmd` as `name` in its own process group with stdin closed, stderr going to `log`, and
/// stdout piped (to read with [`ChildGuard::take_stdout`]) or going to `log` too.
pub fn spawn(name: &str, cmd: &mut Command, log: &Path, pipe_stdout: bool) -> Result<ChildGuard> {
    let options = SpawnOptions {
        log: Some(log.to_path_buf()),
        pipe_stdout,
        own_process_group: true,
        grace: STOP_GRACE,
    };
    Ok(ChildGuard::spawn(name, cmd, options)?)
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
/// the background so the pipe never fills. Fails if citytel exits or `wait` runs out first.
pub async fn citytel_banner(guard: &mut ChildGuard, wait: &mut Wait) -> Result<Vec<String>> {
    let stdout = guard.take_stdout().context("no stdout")?;
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
        wait.retry().await?;
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
