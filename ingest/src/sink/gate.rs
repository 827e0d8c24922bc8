//! The backlog gate: closed by a sink whose backlog passed its limit under the backpressure
//! policy. The writer waits at a closed gate before its next commit, so messages stay
//! unacknowledged, the pipeline's in-flight budget fills and the sources stop reading: MQTT
//! backpressure, without losing anything.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A gate the writer waits at while a sink's backlog is over its limit.
#[derive(Debug, Default)]
pub struct BacklogGate {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    closed: bool,
    /// Opened for good (shutdown): closing has no effect any more.
    released: bool,
}

impl BacklogGate {
    /// An open gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Closes the gate (unless released).
    pub fn close(&self) {
        let mut state = self.state.lock();
        if !state.released {
            state.closed = true;
        }
    }

    /// Opens the gate.
    pub fn open(&self) {
        self.state.lock().closed = false;
        self.changed.notify_all();
    }

    /// Opens the gate for good (at shutdown, so the writer can drain).
    pub fn release(&self) {
        let mut state = self.state.lock();
        state.released = true;
        state.closed = false;
        self.changed.notify_all();
    }

    /// Whether the gate is closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Waits up to `timeout` for the gate to be open; returns whether it is.
    pub fn wait_open(&self, timeout: Duration) -> bool {
        let mut state = self.state.lock();
        if state.closed {
            let _ = self.changed.wait_for(&mut state, timeout);
        }
        !state.closed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_closed_gate_holds_until_opened_and_release_is_final() {
        let gate = Arc::new(BacklogGate::new());
        assert!(gate.wait_open(Duration::ZERO));
        gate.close();
        assert!(!gate.wait_open(Duration::from_millis(1)));
        let opener = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.open())
        };
        while !gate.wait_open(Duration::from_millis(50)) {}
        opener.join().unwrap();
        gate.release();
        gate.close();
        assert!(!gate.is_closed());
    }
}
