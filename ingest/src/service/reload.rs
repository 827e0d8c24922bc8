//! Reloading without a restart: on SIGHUP every TLS listener rereads its certificate, key,
//! client CA and CRL (new handshakes use them, open connections stay), and the device endpoint
//! rereads its provisioning file; the provisioning file is also reread whenever it changes on
//! disk (checked every [`POLL`]). A reload that fails keeps what was in force and is logged.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::net::tls::ServerTls;
use crate::provisioning::Provisioning;

/// How often the provisioning file's modification time and size are checked.
pub(super) const POLL: Duration = Duration::from_secs(2);

/// What a reload rereads.
#[derive(Debug, Default, Clone)]
pub(super) struct Reloadable {
    /// Every TLS listener.
    pub(super) tls: Vec<Arc<ServerTls>>,
    /// The device endpoint's provisioning file.
    pub(super) provisioning: Option<Arc<Provisioning>>,
}

impl Reloadable {
    /// Rereads everything (SIGHUP).
    pub(super) fn reload_all(&self) {
        for tls in &self.tls {
            match tls.reload() {
                Ok(()) => tracing::info!(
                    listener = tls.name(),
                    fingerprint = %tls.fingerprint(),
                    "TLS certificate reloaded"
                ),
                Err(e) => tracing::error!(
                    listener = tls.name(),
                    error = %e,
                    "TLS reload failed; the previous certificate stays in force"
                ),
            }
        }
        if let Some(provisioning) = &self.provisioning {
            reload_provisioning(provisioning);
        }
    }

    /// Reloads on SIGHUP, and the provisioning file when it changes, until `stop`.
    pub(super) async fn run(self, stop: CancellationToken) {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(hangup) => Some(hangup),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reloads only by file change");
                None
            }
        };
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                Some(()) = async {
                    match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    tracing::info!("SIGHUP: reloading certificates and the provisioning file");
                    self.reload_all();
                }
                _ = poll.tick() => {
                    if let Some(provisioning) = &self.provisioning
                        && provisioning.changed_on_disk()
                    {
                        reload_provisioning(provisioning);
                    }
                }
            }
        }
    }
}

fn reload_provisioning(provisioning: &Provisioning) {
    match provisioning.reload() {
        Ok(devices) => tracing::info!(
            file = %provisioning.path().display(),
            devices,
            "provisioning file reloaded"
        ),
        Err(e) => tracing::error!(
            error = %e,
            "provisioning file not reloaded; the previous one stays in force"
        ),
    }
}
