//! Child processes that never outlive the test or benchmark that started them.
//!
//! A [`ChildGuard`] owns a spawned process (citytel, Mosquitto, VictoriaMetrics, a load
//! generator) and stops and reaps it when dropped: after a passing test, a failed assertion, an
//! error path or, in the bench, a Ctrl-C (its main drops the run on a signal). By default the
//! drop kills at once; with a grace period it sends SIGTERM first. Explicit stops
//! ([`ChildGuard::stop_with`]) send any signal and wait a bounded time for the exit.
//!
//! A child may get a process group of its own ([`SpawnOptions::own_process_group`]), so that a
//! Ctrl-C in the terminal reaches only a harness that handles it and stops its children in order;
//! the guard then signals the whole group. Tests leave their children in their own group, so a
//! Ctrl-C on `cargo test` ends them too.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::wait::{TimedOut, Wait};

/// How often an exit is polled for.
const EXIT_POLL: Duration = Duration::from_millis(10);
/// How long a killed process may take to be reaped.
const KILL_LIMIT: Duration = Duration::from_secs(30);
/// Lines of the log shown by [`ChildGuard::log_tail`].
const TAIL_LINES: usize = 15;

/// What went wrong with a child process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("starting {name} ({program}): {source}")]
    Spawn {
        /// The child's name.
        name: String,
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// The log file could not be opened.
    #[error("opening {}: {source}", path.display())]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Signalling or reaping failed.
    #[error("{name}: {source}")]
    Io {
        /// The child's name.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// The process exited while it should be running.
    #[error("{name} exited: {status}\n{tail}")]
    Exited {
        /// The child's name.
        name: String,
        /// Its exit status.
        status: ExitStatus,
        /// The end of its log, if it has one.
        tail: String,
    },
    /// The process did not exit in time.
    #[error(transparent)]
    TimedOut(#[from] TimedOut),
    /// The process was already stopped and reaped.
    #[error("{name} was already stopped")]
    Stopped {
        /// The child's name.
        name: String,
    },
}

/// How a child is started.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Append the child's stderr, and its stdout unless piped, to this file (created if missing).
    /// `None`: stdout and stderr as the `Command` says.
    pub log: Option<PathBuf>,
    /// Pipe stdout, to be read through [`ChildGuard::take_stdout`].
    pub pipe_stdout: bool,
    /// Run the child in a process group of its own, and signal the whole group.
    pub own_process_group: bool,
    /// When dropped: SIGTERM, then up to this long to exit before SIGKILL. Zero: SIGKILL at once.
    pub grace: Duration,
}

/// A running child process, stopped and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    pid: u32,
    /// The process until it has been reaped.
    child: Option<Child>,
    /// How it ended, once reaped.
    exited: Option<ExitStatus>,
    log: Option<PathBuf>,
    own_process_group: bool,
    grace: Duration,
}

impl ChildGuard {
    /// Spawns `cmd` as `name` (used in messages) with stdin closed.
    pub fn spawn(
        name: &str,
        cmd: &mut Command,
        options: SpawnOptions,
    ) -> Result<ChildGuard, ProcessError> {
        cmd.stdin(Stdio::null());
        if let Some(path) = &options.log {
            let log_err = |source| ProcessError::Log {
                path: path.clone(),
                source,
            };
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(log_err)?;
            if !options.pipe_stdout {
                cmd.stdout(file.try_clone().map_err(log_err)?);
            }
            cmd.stderr(file);
        }
        if options.pipe_stdout {
            cmd.stdout(Stdio::piped());
        }
        if options.own_process_group {
            cmd.process_group(0);
        }
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            name: name.to_string(),
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        Ok(ChildGuard {
            name: name.to_string(),
            pid: child.id(),
            child: Some(child),
            exited: None,
            log: options.log,
            own_process_group: options.own_process_group,
            grace: options.grace,
        })
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The child, while it has not been stopped.
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Its piped stdout ([`SpawnOptions::pipe_stdout`]), the first time it is asked for.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    /// Its exit status if it has exited (the process is then reaped, and never signalled again:
    /// its pid may belong to another process by now).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, ProcessError> {
        if let Some(status) = self.exited {
            return Ok(Some(status));
        }
        let Some(child) = self.child.as_mut() else {
            return Err(self.stopped());
        };
        let status = child.try_wait().map_err(|source| ProcessError::Io {
            name: self.name.clone(),
            source,
        })?;
        if status.is_some() {
            self.exited = status;
            self.child = None;
        }
        Ok(status)
    }

    fn stopped(&self) -> ProcessError {
        ProcessError::Stopped {
            name: self.name.clone(),
        }
    }

    /// Fails, with the end of its log, if the process has exited.
    pub fn check_running(&mut self) -> Result<(), ProcessError> {
        match self.try_wait()? {
            Some(status) => Err(ProcessError::Exited {
                name: self.name.clone(),
                status,
                tail: self.log_tail(),
            }),
            None => Ok(()),
        }
    }

    /// The last lines of the child's log, for error messages ("" without a log).
    pub fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        format!("(end of {}:)\n{tail}", log.display())
    }

    /// Sends `signal` to the process (to its group, if it has its own); fails once it has been
    /// reaped.
    pub fn signal(&self, signal: Signal) -> Result<(), ProcessError> {
        if self.child.is_none() {
            return Err(self.stopped());
        }
        let pid = Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX));
        let sent = if self.own_process_group {
            killpg(pid, signal)
        } else {
            kill(pid, signal)
        };
        sent.map_err(|errno| ProcessError::Io {
            name: self.name.clone(),
            source: errno.into(),
        })
    }

    /// Sends `signal` and waits up to `limit` for the process to exit; it is reaped either way
    /// (killed if it outlived the limit, and the error says so). Fails if it had already exited.
    pub fn stop_with(
        &mut self,
        signal: Signal,
        limit: Duration,
    ) -> Result<ExitStatus, ProcessError> {
        self.signal(signal)?;
        let waited = self.wait_exit(limit);
        if waited.is_err() {
            self.kill_now();
        }
        waited
    }

    /// Waits up to `limit` for the process to exit on its own and reaps it.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<ExitStatus, ProcessError> {
        let mut wait = Wait::new(format!("{} exiting", self.name), limit).every(EXIT_POLL);
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            wait.retry_blocking()?;
        }
    }

    /// Stops the process as a drop does: SIGTERM and the grace period first if there is one, then
    /// SIGKILL; always reaped. Does nothing once stopped.
    pub fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        if !self.grace.is_zero() {
            match self.stop_with(Signal::SIGTERM, self.grace) {
                Ok(_) | Err(ProcessError::Stopped { .. }) => return,
                Err(e) => eprintln!("{e}: killing {}", self.name),
            }
        }
        self.kill_now();
    }

    /// SIGKILL (to the group, if it has its own) and reap, unless already reaped.
    fn kill_now(&mut self) {
        let _ = self.signal(Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            self.exited = child.wait().ok();
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and returns its exit status.
    pub fn kill(&mut self) -> Result<ExitStatus, ProcessError> {
        self.stop_with(Signal::SIGKILL, KILL_LIMIT)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn sleeper() -> Command {
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        cmd
    }

    #[test]
    fn a_drop_kills_and_reaps() -> Result<(), ProcessError> {
        let guard = ChildGuard::spawn("sleep", &mut sleeper(), SpawnOptions::default())?;
        let pid = Pid::from_raw(guard.pid() as i32);
        drop(guard);
        // Reaped: the pid is no longer ours to signal.
        assert!(kill(pid, None).is_err());
        Ok(())
    }

    #[test]
    fn stop_with_reports_the_signal_and_a_second_stop_is_refused() -> Result<(), ProcessError> {
        let mut guard = ChildGuard::spawn(
            "sleep",
            &mut sleeper(),
            SpawnOptions {
                own_process_group: true,
                ..SpawnOptions::default()
            },
        )?;
        guard.check_running()?;
        let status = guard.stop_with(Signal::SIGTERM, Duration::from_secs(10))?;
        assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
        assert!(matches!(guard.kill(), Err(ProcessError::Stopped { .. })));
        Ok(())
    }

    #[test]
    fn an_exited_child_fails_the_running_check_with_its_log() -> Result<(), ProcessError> {
        let dir = tempfile::tempdir().map_err(|source| ProcessError::Io {
            name: "tempdir".into(),
            source,
        })?;
        let log = dir.path().join("sh.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let mut guard = ChildGuard::spawn(
            "sh",
            &mut cmd,
            SpawnOptions {
                log: Some(log.clone()),
                ..SpawnOptions::default()
            },
        )?;
        let mut wait = Wait::new("sh exiting", Duration::from_secs(10));
        let exited = loop {
            if let Err(e) = guard.check_running() {
                break e;
            }
            wait.retry_blocking()?;
        };
        let message = exited.to_string();
        assert!(
            matches!(exited, ProcessError::Exited { status, .. } if status.code() == Some(3)),
            "{message}"
        );
        assert!(
            message.contains("out") && message.contains("err"),
            "{message}"
        );
        Ok(())
    }
}
