//! The scripted edge node (`edge.py` on pysparkplug) and a watcher of a host's STATE topic
//! (`mosquitto_sub`), both child processes killed when dropped.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The driver script, next to this file.
const EDGE_PY: &str = include_str!("edge.py");

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Lines a child prints, read on a thread of their own.
pub fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The edge node: one command per line, each answered with `ok`.
pub struct Edge {
    child: Child,
    stdin: ChildStdin,
    out: mpsc::Receiver<String>,
    ncmds: Vec<Value>,
    states: Vec<Value>,
}

impl Edge {
    /// Starts the driver against the broker on `port` (it connects on the `connect` command).
    pub fn start(port: u16) -> Edge {
        let mut child = Command::new("python3")
            .args(["-c", EDGE_PY, "127.0.0.1", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (pip install pysparkplug)");
        let stdin = child.stdin.take().expect("piped stdin");
        let out = lines(&mut child);
        Edge {
            child,
            stdin,
            out,
            ncmds: Vec::new(),
            states: Vec::new(),
        }
    }

    fn take(&mut self, line: String) -> bool {
        if let Some(json) = line.strip_prefix("state ") {
            self.states
                .push(serde_json::from_str(json).expect("state json"));
            return false;
        }
        match line.strip_prefix("ncmd ") {
            Some(json) => {
                self.ncmds
                    .push(serde_json::from_str(json).expect("ncmd json"));
                false
            }
            None => line == "ok",
        }
    }

    /// Sends `command` and waits for its `ok` (a `kill` gets none: the driver exits).
    pub fn send(&mut self, command: Value) {
        let kill = command["op"] == "kill";
        writeln!(self.stdin, "{command}").expect("driver reads its commands");
        self.stdin.flush().expect("flush");
        if kill {
            let _ = self.child.wait();
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = self
                .out
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("the edge driver did not do {command}"));
            if self.take(line) {
                return;
            }
        }
    }

    /// The rebirth requests (NCMD payloads) received so far.
    pub fn rebirth_requests(&mut self) -> Vec<Value> {
        while let Ok(line) = self.out.try_recv() {
            self.take(line);
        }
        self.ncmds.clone()
    }

    /// Waits until `count` STATE messages (with their `retain` flag) have arrived.
    pub fn wait_states(&mut self, count: usize, within: Duration) -> Vec<Value> {
        self.wait_for("STATE messages", count, within, |d| &d.states)
    }

    /// Waits until `count` rebirth requests have arrived.
    pub fn wait_rebirth_requests(&mut self, count: usize, within: Duration) -> Vec<Value> {
        self.wait_for("rebirth requests", count, within, |d| &d.ncmds)
    }

    /// Reads the node's output until the list `seen` picks holds `count` entries (`what`, for
    /// the failure), within `within`.
    fn wait_for(
        &mut self,
        what: &str,
        count: usize,
        within: Duration,
        seen: fn(&Self) -> &Vec<Value>,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        while seen(self).len() < count {
            match self
                .out
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.take(line);
                }
                Err(_) => panic!(
                    "{} {what} within {within:?}, expected {count}",
                    seen(self).len()
                ),
            }
        }
        seen(self).clone()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_sub` on a host's STATE topic, printing each payload.
pub struct StateWatch {
    child: Child,
    out: mpsc::Receiver<String>,
}

impl StateWatch {
    /// Subscribes to `spBv1.0/STATE/{host_id}` on the broker on `port`.
    pub fn start(port: u16, host_id: &str) -> StateWatch {
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
            .args(["-t", &format!("spBv1.0/STATE/{host_id}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mosquitto_sub runs (Debian mosquitto-clients)");
        let out = lines(&mut child);
        StateWatch { child, out }
    }

    /// The next STATE payload.
    pub fn next(&mut self, within: Duration) -> Value {
        let line = self
            .out
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("no STATE within {within:?}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("STATE {line:?}: {e}"))
    }

    /// The next STATE saying `online`, skipping others (a loaded machine may see citytel's
    /// connection time out and its Will published before it connects again).
    pub fn next_with(&mut self, online: bool, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let state = self.next(deadline.saturating_duration_since(Instant::now()));
            if state["online"] == online {
                return state;
            }
        }
    }
}

impl Drop for StateWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
