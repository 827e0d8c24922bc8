//! Maintenance windows: configured ones (from the configuration file, ids from 1) and ones set
//! over the API (ids from [`API_IDS`], changed only by commands through the WAL), indexed by
//! device and by site so a device's windows are found without scanning them all.

use std::collections::BTreeMap;

use citytel_availability::{Maintenance, Span};

use crate::hash::Map;

/// First id of maintenance windows set over the API.
pub const API_IDS: u64 = 1 << 32;
/// Most maintenance windows that can be set over the API at once.
pub const MAX_API_WINDOWS: usize = 10_000;
/// Longest reason of a window set over the API, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// Longest window that can be set over the API: ten years.
pub const MAX_SPAN_MS: i64 = 10 * 366 * 86_400_000;
/// Earliest start and latest end of a window set over the API: 2000-01-01 and 2200-01-01.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// See [`EARLIEST_MS`].
pub const LATEST_MS: i64 = 7_258_118_400_000;

/// What a maintenance window covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// One device.
    Device(String),
    /// Every device at a site.
    Site(String),
}

/// A maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// Identifier: configured windows are numbered from 1 in file order, windows set over the
    /// API from [`API_IDS`].
    pub id: u64,
    /// What it covers.
    pub target: Target,
    /// When.
    pub span: Span,
    /// Why.
    pub reason: String,
}

/// Why a window cannot be set over the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The end is not after the start.
    #[error("end ({end_ms}) must be greater than start ({start_ms})")]
    Empty {
        /// Start.
        start_ms: i64,
        /// End.
        end_ms: i64,
    },
    /// Outside 2000-01-01 .. 2200-01-01.
    #[error("the window must lie between {EARLIEST_MS} (2000-01-01) and {LATEST_MS} (2200-01-01)")]
    OutOfRange,
    /// Longer than [`MAX_SPAN_MS`].
    #[error("the window is longer than ten years")]
    TooLong,
    /// The reason is longer than [`MAX_REASON_BYTES`].
    #[error("the reason is {0} bytes long; at most {MAX_REASON_BYTES} are kept")]
    ReasonTooLong(usize),
}

/// Checks the bounds of a window to be set over the API (not whether its target exists).
pub fn check(span: Span, reason: &str) -> Result<(), WindowError> {
    if span.end_ms <= span.start_ms {
        return Err(WindowError::Empty {
            start_ms: span.start_ms,
            end_ms: span.end_ms,
        });
    }
    if span.start_ms < EARLIEST_MS || span.end_ms > LATEST_MS {
        return Err(WindowError::OutOfRange);
    }
    if span.end_ms - span.start_ms > MAX_SPAN_MS {
        return Err(WindowError::TooLong);
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(WindowError::ReasonTooLong(reason.len()));
    }
    Ok(())
}

/// Every maintenance window, with indexes by device and site.
#[derive(Debug, Default)]
pub struct Windows {
    configured: Vec<MaintenanceWindow>,
    api: BTreeMap<u64, MaintenanceWindow>,
    by_device: Map<String, Vec<Span>>,
    by_site: Map<String, Vec<Span>>,
}

impl Windows {
    /// The configured windows (ids from 1).
    pub fn new(configured: Vec<MaintenanceWindow>) -> Self {
        let mut windows = Windows {
            configured,
            ..Windows::default()
        };
        windows.reindex();
        windows
    }

    fn reindex(&mut self) {
        self.by_device.clear();
        self.by_site.clear();
        for w in self.configured.iter().chain(self.api.values()) {
            let (index, key) = match &w.target {
                Target::Device(d) => (&mut self.by_device, d),
                Target::Site(s) => (&mut self.by_site, s),
            };
            index.entry(key.clone()).or_default().push(w.span);
        }
    }

    /// Every window, configured ones first, then by id.
    pub fn iter(&self) -> impl Iterator<Item = &MaintenanceWindow> {
        self.configured.iter().chain(self.api.values())
    }

    /// Number of windows set over the API.
    pub fn api_len(&self) -> usize {
        self.api.len()
    }

    /// The windows that apply to `device` at `site`.
    pub fn for_device(&self, device: &str, site: &str) -> Maintenance {
        let own = self.by_device.get(device).into_iter().flatten();
        let site = self.by_site.get(site).into_iter().flatten();
        Maintenance::new(own.chain(site).copied())
    }

    /// The windows that apply to `site` as a whole.
    pub fn for_site(&self, site: &str) -> Maintenance {
        Maintenance::new(self.by_site.get(site).into_iter().flatten().copied())
    }

    /// Adds a window set over the API; the id is the next after every window so far. Refused
    /// at [`MAX_API_WINDOWS`].
    pub(crate) fn add(
        &mut self,
        target: Target,
        span: Span,
        reason: String,
    ) -> Result<MaintenanceWindow, usize> {
        if self.api.len() >= MAX_API_WINDOWS {
            return Err(self.api.len());
        }
        let id = self
            .iter()
            .map(|w| w.id + 1)
            .max()
            .unwrap_or(0)
            .max(API_IDS);
        let window = MaintenanceWindow {
            id,
            target,
            span,
            reason,
        };
        self.api.insert(id, window.clone());
        self.reindex();
        Ok(window)
    }

    /// Removes a window set over the API.
    pub(crate) fn remove(&mut self, id: u64) -> Option<MaintenanceWindow> {
        let removed = self.api.remove(&id)?;
        self.reindex();
        Some(removed)
    }

    /// The windows set over the API, for snapshots.
    pub fn api_windows(&self) -> Vec<MaintenanceWindow> {
        self.api.values().cloned().collect()
    }

    /// Replaces the windows set over the API (from a snapshot).
    pub(crate) fn restore(&mut self, windows: Vec<MaintenanceWindow>) {
        self.api = windows.into_iter().map(|w| (w.id, w)).collect();
        self.reindex();
    }
}
