//! Turning Ctrl-C (and SIGTERM) into a graceful shutdown; a second one quits at once.

use tokio_util::sync::CancellationToken;

/// Exit status after a second interrupt: 128 + SIGINT.
const INTERRUPTED: i32 = 130;

/// Watches for interrupts until the run is `done`.
pub(crate) struct Interrupts {
    shutdown: CancellationToken,
}

impl Interrupts {
    /// Cancels `shutdown` on the first interrupt.
    pub(crate) fn new(shutdown: CancellationToken) -> Self {
        Interrupts { shutdown }
    }

    /// The first interrupt cancels the shutdown token; the second exits the process.
    pub(crate) async fn run(self, done: CancellationToken) {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = interrupted() => {}
        }
        eprintln!(
            "stopping: devices send their death and disconnect (interrupt again to quit now)"
        );
        self.shutdown.cancel();
        tokio::select! {
            _ = done.cancelled() => {}
            _ = interrupted() => std::process::exit(INTERRUPTED),
        }
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the run");
                ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}

/// Resolves on Ctrl-C; never, if Ctrl-C cannot be watched.
async fn ctrl_c() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::warn!(%error, "cannot watch Ctrl-C");
        std::future::pending::<()>().await;
    }
}
