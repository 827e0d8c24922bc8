//! The phased shutdown, one routine whether a signal asked for it or storage failed:
//!
//! 1. report NOT_SERVING and stop intake: sources stop reading and send the acknowledgements of
//!    what they already handed in;
//! 2. the writer drains its queue, commits and writes the final checkpoint (after a storage
//!    failure it has already stopped, acknowledging nothing more);
//! 3. sinks deliver what the WAL holds for them, and alert receivers the notifications they have
//!    not confirmed, within their own timeouts;
//! 4. the servers end their open streams with UNAVAILABLE and finish in-flight calls; whatever
//!    is still running when `service.shutdown_timeout` has passed since step 4 began is
//!    aborted, so clients that keep connections open cannot hold the process.

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Parts, ServiceError, WriterResult, health};
use crate::pipeline::writer::WriterStats;

/// Tears the service down; `failed` is the writer's result when it already stopped on its own.
pub(super) async fn run(
    parts: Parts,
    failed: Option<Result<WriterResult, oneshot::error::RecvError>>,
) -> Result<WriterStats, ServiceError> {
    let Parts {
        root,
        intake,
        writer_stop,
        serving,
        tasks,
        source,
        servers,
        writer_done,
        health,
        sink,
        notifier,
        shutdown_timeout,
    } = parts;
    health::serving(&health, false).await;
    intake.cancel();
    if tokio::time::timeout(shutdown_timeout, source)
        .await
        .is_err()
    {
        tracing::warn!("the source did not stop within the shutdown timeout");
    }
    // Again, now that nothing following the source or the storage can set it back.
    health::serving(&health, false).await;

    writer_stop.cancel();
    let storage_failed = failed.is_some();
    if let Some(sink) = &sink {
        // The writer must not wait for the sink while it drains.
        sink.gate().release();
    }
    let stats = writer_outcome(match failed {
        Some(result) => result,
        None => writer_done.await,
    });
    let sink = match sink {
        Some(sink) if storage_failed => sink.stop().await,
        Some(sink) => sink.shutdown().await,
        None => Ok(()),
    };
    let notified = match notifier {
        Some(notifier) => notifier.shutdown().await,
        None => Ok(()),
    };

    serving.cancel();
    let deadline = Instant::now() + shutdown_timeout;
    let mut server_error = None;
    for (what, mut server) in servers {
        match tokio::time::timeout_at(deadline, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                server_error.get_or_insert(e);
            }
            Ok(Err(_)) => {
                server_error.get_or_insert(ServiceError::Panicked(what));
            }
            Err(_) => {
                tracing::warn!(
                    server = what,
                    timeout = ?shutdown_timeout,
                    "still busy at the shutdown timeout; closing its connections"
                );
                server.abort();
            }
        }
    }
    root.cancel();
    if tokio::time::timeout_at(deadline, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks still running at the shutdown timeout");
    }

    let stats = stats?;
    if let Some(e) = server_error {
        return Err(e);
    }
    sink?;
    notified?;
    tracing::info!(
        accepted = stats.accepted,
        rejected = stats.rejected,
        readings = stats.readings_stored,
        "stopped"
    );
    Ok(stats)
}

fn writer_outcome(
    result: Result<WriterResult, oneshot::error::RecvError>,
) -> Result<WriterStats, ServiceError> {
    match result {
        Ok(Ok(Ok(stats))) => Ok(stats),
        Ok(Ok(Err(e))) => Err(ServiceError::Failed(e)),
        Ok(Err(_)) | Err(_) => Err(ServiceError::Panicked("writer thread")),
    }
}
