//! Fleet state and availability: GetFleetSummary, ListStateHistory, GetAvailability,
//! ListAvailability, SetMaintenance, DeleteMaintenance, ListMaintenance.
//!
//! Each counts, rolls up and lists only the devices the caller sees ([`Visible`]): a summary
//! counts visible devices, a site's or district's availability is the rollup over its visible
//! devices (a site or district without one is unknown), and an invisible device is NOT_FOUND.
//! Maintenance windows: a caller lists the windows of the devices it sees and of the sites where
//! it sees at least one device; it may set or delete a window on a device it sees, and on a site
//! its scope covers as a whole ([`Visible::covers_site`]); a site where it sees some devices but
//! not necessarily all is PERMISSION_DENIED, a site where it sees none NOT_FOUND.

use std::sync::Arc;

use citytel_availability::{DeviceState, Span, Summary};
use citytel_proto::v1;

use super::convert::{maintenance_to_wire, outage_to_wire, reboot_to_wire, transition_to_wire};
use super::devices::require_device;
use super::error::ApiError;
use super::reads::Deadline;
use crate::db::Database;
use crate::pipeline::PipelineClosed;
use crate::query::{self, Selector, Visible};
use crate::state::State;
use crate::state::access::Scope;
use crate::state::command::{Command, Outcome};
use crate::state::fleet::report::{self, GroupAvailability};
use crate::state::maintenance::{self, MaintenanceWindow, Target};
use crate::state::summary::{self, Counts, FleetCounts};

/// Default number of devices needing attention in a fleet summary.
const DEFAULT_ATTENTION: usize = 50;
/// Default number of outages in an availability answer.
const DEFAULT_OUTAGES: usize = 100;
/// Most windows of one `ListAvailability` request.
pub(crate) const MAX_WINDOWS: usize = 100;

fn count(counts: &mut v1::StateCounts, state: DeviceState) {
    counts.total += 1;
    match state {
        DeviceState::Unknown => counts.unknown += 1,
        DeviceState::Online => counts.online += 1,
        DeviceState::Late => counts.late += 1,
        DeviceState::Offline => counts.offline += 1,
        DeviceState::Unreachable => counts.unreachable += 1,
    }
}

/// Adds a cell's counts (in [`summary::state_index`] order).
fn add(counts: &mut v1::StateCounts, cell: &Counts) {
    let [unknown, online, late, offline, unreachable] = *cell;
    counts.total += unknown + online + late + offline + unreachable;
    counts.unknown += unknown;
    counts.online += online;
    counts.late += late;
    counts.offline += offline;
    counts.unreachable += unreachable;
}

/// Whether a device of this kind and site is selected by the summary's filters.
fn selected(req: &v1::GetFleetSummaryRequest, kind: &str, site: &str) -> bool {
    (req.kind.is_empty() || kind == req.kind) && (req.site.is_empty() || site == req.site)
}

fn attention_limit(req: &v1::GetFleetSummaryRequest) -> usize {
    match req.attention_limit {
        0 => DEFAULT_ATTENTION,
        n => n as usize,
    }
}

/// `GetFleetSummary`: from the fleet counts the state keeps ([`FleetCounts`]: a few thousand
/// cells rather than every device) when the caller's scope decides visibility by kind, site and
/// district; by walking every device ([`summary_walk`]) for a scope that lists device ids, and
/// in the moment after a restore before the counts are rebuilt. Both answers are the same.
pub(crate) fn summary(
    state: &State,
    req: &v1::GetFleetSummaryRequest,
    visible: &Visible,
) -> v1::GetFleetSummaryResponse {
    match state.fleet_counts() {
        Some(counts) if visible.by_cell() => summary_from_counts(state, counts, req, visible),
        _ => summary_walk(state, req, visible),
    }
}

/// The fleet summary from the counts per cell and the attention order.
fn summary_from_counts(
    state: &State,
    counts: &FleetCounts,
    req: &v1::GetFleetSummaryRequest,
    visible: &Visible,
) -> v1::GetFleetSummaryResponse {
    let mut out = v1::GetFleetSummaryResponse::default();
    let mut all = v1::StateCounts::default();
    for (cell, n) in counts.cells() {
        if !selected(req, &cell.kind, &cell.site) || !visible.cell(cell) {
            continue;
        }
        add(&mut all, n);
        add(out.by_kind.entry(cell.kind.to_string()).or_default(), n);
        add(out.by_site.entry(cell.site.to_string()).or_default(), n);
        if let Some(district) = cell.district.as_deref() {
            add(out.by_district.entry(district.to_string()).or_default(), n);
        }
    }
    let registry = state.registry();
    out.attention = counts
        .attention()
        .filter_map(|id| registry.get(id))
        .filter(|d| selected(req, &d.kind, &d.site) && visible.device(d))
        .take(attention_limit(req))
        .map(|d| d.device_id.to_string())
        .collect();
    out.all = Some(all);
    out
}

/// The fleet summary by walking every device: exact for any scope, and the reference the
/// counts are tested against.
pub(crate) fn summary_walk(
    state: &State,
    req: &v1::GetFleetSummaryRequest,
    visible: &Visible,
) -> v1::GetFleetSummaryResponse {
    let mut out = v1::GetFleetSummaryResponse::default();
    let mut all = v1::StateCounts::default();
    let mut attention: Vec<(u8, i64, String)> = Vec::new();
    for d in state.registry().iter_after(None) {
        if !selected(req, &d.kind, &d.site) || !visible.device(d) {
            continue;
        }
        let (s, last) = state
            .fleet()
            .state(&d.device_id)
            .unwrap_or((DeviceState::Unknown, None));
        count(&mut all, s);
        count(out.by_kind.entry(d.kind.to_string()).or_default(), s);
        count(out.by_site.entry(d.site.to_string()).or_default(), s);
        if let Some(district) = d.district.as_deref() {
            count(out.by_district.entry(district.to_string()).or_default(), s);
        }
        let Some(rank) = summary::attention_rank(s) else {
            continue;
        };
        attention.push((
            rank,
            last.map_or(i64::MIN, |t| t.at_ms),
            d.device_id.to_string(),
        ));
    }
    attention.sort();
    out.attention = attention
        .into_iter()
        .take(attention_limit(req))
        .map(|(_, _, id)| id)
        .collect();
    out.all = Some(all);
    out
}

/// `ListStateHistory`.
pub(crate) fn history(
    state: &State,
    req: &v1::ListStateHistoryRequest,
    visible: &Visible,
) -> Result<v1::ListStateHistoryResponse, ApiError> {
    require_device(&req.device_id)?;
    window(req.start_unix_ms, req.end_unix_ms)?;
    if visible.get(state.registry(), &req.device_id).is_none() {
        return Err(ApiError::DeviceNotFound(req.device_id.clone()));
    }
    let all = state.fleet().transitions(&req.device_id);
    let first = all.partition_point(|t| t.at_ms < req.start_unix_ms);
    let last = all.partition_point(|t| t.at_ms < req.end_unix_ms);
    // The transition in force at the start of the window, then those inside it.
    let from = first.saturating_sub(1).min(first);
    let transitions = all[from..last.max(from)]
        .iter()
        .map(|t| transition_to_wire(&req.device_id, t))
        .collect();
    let reboots = state
        .fleet()
        .reboots(&req.device_id)
        .iter()
        .filter(|r| r.at_ms >= req.start_unix_ms && r.at_ms < req.end_unix_ms)
        .map(|r| reboot_to_wire(&req.device_id, r))
        .collect();
    Ok(v1::ListStateHistoryResponse {
        transitions,
        reboots,
    })
}

/// A window `[start, end)`, checked.
fn window(start_ms: i64, end_ms: i64) -> Result<Span, ApiError> {
    if end_ms <= start_ms {
        return Err(ApiError::InvalidArgument(format!(
            "end_unix_ms ({end_ms}) must be greater than start_unix_ms ({start_ms})"
        )));
    }
    Ok(Span::new(start_ms, end_ms))
}

/// `GetAvailability`, with windows ending in the future cut at `now_ms`.
pub(crate) fn availability(
    db: &Database,
    req: &v1::GetAvailabilityRequest,
    scope: &Scope,
    now_ms: i64,
    deadline: &Deadline,
) -> Result<v1::GetAvailabilityResponse, ApiError> {
    let span = window(
        req.start_unix_ms,
        req.end_unix_ms.min(now_ms).max(req.start_unix_ms + 1),
    )?;
    let inputs = {
        let state = db.read();
        let visible = Visible::of(scope, &state);
        let devices = target_devices(&state, req.target.as_ref(), &visible)?;
        state.availability_inputs(&devices, span)
    };
    let group: GroupAvailability = report::group(&inputs, span, || deadline.expired())
        .map_err(|_| ApiError::DeadlineExceeded)?;
    let limit = match req.outage_limit {
        0 => DEFAULT_OUTAGES,
        n => n as usize,
    };
    let mut outages = group.outages;
    outages.sort_by(|a, b| {
        b.1.duration_ms
            .cmp(&a.1.duration_ms)
            .then(a.1.start_ms.cmp(&b.1.start_ms))
    });
    Ok(answer(
        &group.summary,
        outages.iter().take(limit),
        &group.completeness,
    ))
}

/// The visible devices of an availability target, ordered by id.
fn target_devices(
    state: &State,
    target: Option<&v1::get_availability_request::Target>,
    visible: &Visible,
) -> Result<Vec<Arc<str>>, ApiError> {
    use v1::get_availability_request::Target as T;
    let registry = state.registry();
    let devices: Vec<Arc<str>> = match target {
        Some(T::DeviceId(id)) => {
            let d = visible
                .get(registry, id)
                .ok_or_else(|| ApiError::DeviceNotFound(id.clone()))?;
            vec![d.device_id.clone()]
        }
        Some(T::Site(site)) => registry
            .iter_after(None)
            .filter(|d| *d.site == **site && visible.device(d))
            .map(|d| d.device_id.clone())
            .collect(),
        Some(T::District(district)) => registry
            .iter_after(None)
            .filter(|d| d.district.as_deref() == Some(district.as_str()) && visible.device(d))
            .map(|d| d.device_id.clone())
            .collect(),
        None => {
            return Err(ApiError::InvalidArgument(
                "set one of device_id, site and district".into(),
            ));
        }
    };
    if devices.is_empty() {
        return Err(ApiError::InvalidArgument(
            "no device matches the target".into(),
        ));
    }
    Ok(devices)
}

fn answer<'a>(
    s: &Summary,
    outages: impl Iterator<Item = &'a (Arc<str>, citytel_availability::Outage)>,
    c: &citytel_availability::Completeness,
) -> v1::GetAvailabilityResponse {
    let t = &s.times;
    v1::GetAvailabilityResponse {
        availability_percent: s.availability_percent(),
        durations: Some(v1::StateDurations {
            online_ms: t.online_ms,
            late_ms: t.late_ms,
            offline_ms: t.offline_ms,
            unreachable_ms: t.unreachable_ms,
            unknown_ms: t.unknown_ms,
            maintenance_ms: t.maintenance_ms,
        }),
        devices: u32::try_from(s.devices).unwrap_or(u32::MAX),
        outages: outages.map(|(d, o)| outage_to_wire(d, o)).collect(),
        outages_started: u32::try_from(s.outages_started).unwrap_or(u32::MAX),
        mttr_ms: s.mttr_ms(),
        mtbf_ms: s.mtbf_ms(),
        completeness_percent: c.percent(),
        readings_received: c.received,
        readings_expected: c.expected,
    }
}

/// `ListAvailability`.
pub(crate) fn list_availability(
    db: &Database,
    req: v1::ListAvailabilityRequest,
    scope: &Scope,
    now_ms: i64,
    deadline: &Deadline,
) -> Result<v1::ListAvailabilityResponse, ApiError> {
    if req.windows.is_empty() {
        return Err(ApiError::InvalidArgument("give at least one window".into()));
    }
    if req.windows.len() > MAX_WINDOWS {
        return Err(ApiError::InvalidArgument(format!(
            "{} windows asked for; at most {MAX_WINDOWS} per request",
            req.windows.len()
        )));
    }
    let spans = req
        .windows
        .iter()
        .map(|w| {
            window(
                w.start_unix_ms,
                w.end_unix_ms.min(now_ms).max(w.start_unix_ms + 1),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let range = Span::new(
        spans.iter().map(|s| s.start_ms).min().unwrap_or(0),
        spans.iter().map(|s| s.end_ms).max().unwrap_or(0),
    );
    let selector: Selector = req.devices.unwrap_or_default().into();
    let inputs = {
        let state = db.read();
        let visible = Visible::of(scope, &state);
        let devices = query::select(state.registry(), &selector, &visible)?;
        state.availability_inputs(&devices, range)
    };
    let mut devices = Vec::with_capacity(inputs.len());
    for d in &inputs {
        deadline.check()?;
        devices.push(v1::DeviceAvailability {
            device_id: d.device.to_string(),
            availability_percent: spans
                .iter()
                .map(|span| {
                    d.availability(*span)
                        .summary
                        .availability_percent()
                        .unwrap_or(f64::NAN)
                })
                .collect(),
        });
    }
    Ok(v1::ListAvailabilityResponse { devices })
}

/// The command of a `SetMaintenance` request: the window is checked against the bounds in
/// [`maintenance`], and its device or site must be known and the caller's to change.
pub(crate) fn set_maintenance_command(
    state: &State,
    req: v1::SetMaintenanceRequest,
    visible: &Visible,
) -> Result<Command, ApiError> {
    let w = req
        .window
        .ok_or_else(|| ApiError::InvalidArgument("window is required".into()))?;
    use v1::maintenance_window::Target as T;
    let target = match w.target {
        Some(T::DeviceId(d)) if !d.is_empty() => Target::Device(d),
        Some(T::Site(s)) if !s.is_empty() => Target::Site(s),
        _ => {
            return Err(ApiError::InvalidArgument(
                "set one of device_id and site".into(),
            ));
        }
    };
    may_change(state, &target, visible)?;
    let span = Span::new(w.start_unix_ms, w.end_unix_ms);
    maintenance::check(span, &w.reason).map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    Ok(Command::SetMaintenance {
        target,
        span,
        reason: w.reason,
    })
}

/// Whether the caller may set or delete a window on `target`: a device it sees, or a site its
/// scope covers as a whole. A device or site it does not see is NOT_FOUND, as if unknown.
fn may_change(state: &State, target: &Target, visible: &Visible) -> Result<(), ApiError> {
    match target {
        Target::Device(d) => {
            if visible.get(state.registry(), d).is_none() {
                return Err(ApiError::DeviceNotFound(d.clone()));
            }
        }
        Target::Site(s) => {
            if !visible.site(state.registry(), s) {
                return Err(ApiError::NotFound(format!("site {s:?} not found")));
            }
            if !visible.covers_site(s) {
                return Err(ApiError::PermissionDenied(format!(
                    "the key's scope does not cover every device at site {s:?} (it selects by \
                     kind or device); set windows on its devices instead"
                )));
            }
        }
    }
    Ok(())
}

/// Whether the caller sees a window: one of a device it sees, or of a site where it sees at
/// least one device.
fn sees_window(state: &State, target: &Target, visible: &Visible) -> bool {
    match target {
        Target::Device(d) => visible.get(state.registry(), d).is_some(),
        Target::Site(s) => visible.site(state.registry(), s),
    }
}

/// The command of a `DeleteMaintenance` request. A window the caller does not see is NOT_FOUND
/// like one that does not exist; one it sees but may not change is PERMISSION_DENIED.
pub(crate) fn delete_maintenance_command(
    state: &State,
    req: &v1::DeleteMaintenanceRequest,
    visible: &Visible,
) -> Result<Command, ApiError> {
    if req.id < maintenance::API_IDS {
        return Err(ApiError::InvalidArgument(format!(
            "window {} comes from the configuration file; remove it there",
            req.id
        )));
    }
    if !visible.is_everything() {
        let not_found =
            || ApiError::NotFound(format!("no maintenance window {} set over the API", req.id));
        let window = state
            .maintenance()
            .iter()
            .find(|w| w.id == req.id)
            .ok_or_else(not_found)?;
        if !sees_window(state, &window.target, visible) {
            return Err(not_found());
        }
        may_change(state, &window.target, visible)?;
    }
    Ok(Command::DeleteMaintenance { id: req.id })
}

/// The window a maintenance command set or deleted, or why it did not.
pub(crate) fn maintenance_outcome(
    outcome: Result<Outcome, PipelineClosed>,
) -> Result<MaintenanceWindow, ApiError> {
    use crate::state::command::Refusal;
    match outcome {
        Ok(Outcome::MaintenanceSet(w) | Outcome::MaintenanceDeleted(w)) => Ok(w),
        Ok(
            other @ (Outcome::OrganisationCreated(_)
            | Outcome::KeyCreated(_)
            | Outcome::KeyRevoked(_)
            | Outcome::AlertAcknowledged(_)
            | Outcome::SilenceCreated(_)
            | Outcome::SilenceExpired(_)
            | Outcome::AlertRulesSet { .. }),
        ) => Err(ApiError::FailedPrecondition(format!(
            "unexpected outcome of a maintenance command: {other:?}"
        ))),
        Ok(Outcome::Refused(Refusal::NoSuchWindow(id))) => Err(ApiError::NotFound(format!(
            "no maintenance window {id} set over the API"
        ))),
        Ok(Outcome::Refused(refusal)) => Err(ApiError::FailedPrecondition(refusal.to_string())),
        Err(PipelineClosed) => Err(ApiError::Unavailable(
            "citytel is not accepting changes (shutting down, or storage failed)".into(),
        )),
    }
}

/// `ListMaintenance`: the windows the caller sees.
pub(crate) fn list_maintenance(state: &State, visible: &Visible) -> v1::ListMaintenanceResponse {
    let mut windows: Vec<v1::MaintenanceWindow> = state
        .maintenance()
        .iter()
        .filter(|w| visible.is_everything() || sees_window(state, &w.target, visible))
        .map(maintenance_to_wire)
        .collect();
    windows.sort_by_key(|w| (w.start_unix_ms, w.id));
    v1::ListMaintenanceResponse { windows }
}
