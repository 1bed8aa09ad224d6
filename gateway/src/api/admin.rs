//! Operator views and actions: the access log, the notification outbox, a station's status, the
//! edge nodes' sync.

use super::App;
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller, path_id};
use super::problem::ApiError;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use lockergrid_model::{SiteRulesOverride, StationStatus};
use lockergrid_protocol::StationId;
use lockergrid_store::{LockdownChange, StatusChange};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Most entries one page returns.
const MAX_PAGE: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    #[serde(default = "first")]
    from: u64,
    #[serde(default = "page")]
    limit: usize,
}

impl Page {
    fn check(&self) -> Result<(), ApiError> {
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        Ok(())
    }
}

fn first() -> u64 {
    1
}

fn page() -> usize {
    100
}

pub(super) async fn access_log(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    q.check()?;
    let entries = app.store.access_log(q.from, q.limit)?;
    let next = entries.last().map(|e| e.seq + 1);
    Ok(Json(json!({ "entries": entries, "next": next })))
}

pub(super) async fn outbox(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    q.check()?;
    let entries = app.store.outbox(q.from, q.limit)?;
    let next = entries.last().map(|e| e.seq + 1);
    let entries: Vec<Value> = entries
        .iter()
        .map(super::notifications::message_json)
        .collect();
    Ok(Json(json!({ "entries": entries, "next": next })))
}

/// An operator's reason for a change, trimmed: 1 to 512 characters.
pub(super) fn reason(text: &str) -> Result<&str, ApiError> {
    let reason = text.trim();
    if reason.is_empty() || reason.len() > 512 {
        return Err(ApiError::invalid("reason must be 1 to 512 characters"));
    }
    Ok(reason)
}

/// Statuses an operator may set. `offline` is the device plane's to decide.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum OperatorStatus {
    Active,
    Inactive,
    OutOfService,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetStatus {
    status: OperatorStatus,
    reason: String,
}

/// Puts a station in or out of service (e.g. back after a tamper alarm was inspected). A station
/// set active whose locker is silent goes offline again at the next sweep.
pub(super) async fn station_status(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<SetStatus>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: StationId = path_id(&raw, "station")?;
    let reason = reason(&body.reason)?;
    let current = app
        .store
        .snapshot()
        .station(&id)
        .map(|view| view.record.status)
        .ok_or_else(|| ApiError::not_found(format!("no station {raw:?}")))?;
    let to = match body.status {
        OperatorStatus::Active => StationStatus::Active,
        OperatorStatus::Inactive => StationStatus::Inactive,
        OperatorStatus::OutOfService => StationStatus::OutOfService,
    };
    let changed = app
        .store
        .set_station_status(StatusChange {
            station: id.clone(),
            from: vec![current],
            to,
            actor: caller.actor(),
            reason: reason.to_string(),
        })
        .await?;
    Ok(Json(json!({
        "station": id,
        "status": if changed { to } else { current },
        "changed": changed,
    })))
}

/// The longest an override of a station's site rules lasts: a day, renewed by hand if need be.
const MAX_OVERRIDE_MINUTES: u32 = 1_440;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Override {
    reason: String,
    minutes: u32,
}

impl Override {
    /// The operator's bounded leave this asks for, from now.
    fn leave(&self, app: &App, caller: &Caller) -> Result<SiteRulesOverride, ApiError> {
        let reason = reason(&self.reason)?;
        if !(1..=MAX_OVERRIDE_MINUTES).contains(&self.minutes) {
            return Err(ApiError::invalid(format!(
                "minutes must be between 1 and {MAX_OVERRIDE_MINUTES}"
            )));
        }
        Ok(SiteRulesOverride {
            by: caller.claims.sub.clone(),
            reason: reason.to_owned(),
            until: app
                .store
                .now()
                .plus(Duration::from_secs(u64::from(self.minutes) * 60)),
        })
    }
}

/// Lets a station open for `minutes` while its site rules cannot answer (their plugin fails or
/// is out of service), where they would otherwise keep it shut; in the access log, and named in
/// the entry of every door it opens.
pub(super) async fn override_site_rules(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<Override>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: StationId = path_id(&raw, "station")?;
    let leave = body.leave(&app, &caller)?;
    let known = app
        .store
        .override_site_rules(id.clone(), Some(leave.clone()), caller.actor())
        .await?;
    if !known {
        return Err(ApiError::not_found(format!("no station {raw:?}")));
    }
    Ok(Json(json!({ "station": id, "site_rules_override": leave })))
}

/// Ends a station's override: its site rules keep it shut again when they cannot answer.
pub(super) async fn end_site_rules_override(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: StationId = path_id(&raw, "station")?;
    let known = app
        .store
        .override_site_rules(id.clone(), None, caller.actor())
        .await?;
    if !known {
        return Err(ApiError::not_found(format!("no station {raw:?}")));
    }
    Ok(Json(json!({ "station": id, "site_rules_override": null })))
}

/// Lets a technician on site open the doors of a locked-down station for `minutes`: every door
/// opened names the override, its operator and reason in the access log.
pub(super) async fn override_lockdown(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<Override>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: StationId = path_id(&raw, "station")?;
    let leave = body.leave(&app, &caller)?;
    let change = LockdownChange::Technician(Some(leave));
    let station = app
        .store
        .change_lockdown(id, change, caller.actor())
        .await?;
    Ok(Json(
        json!({ "station": station.id, "lockdown": station.lockdown }),
    ))
}

/// Takes a technician's override of a lock-down back: the doors stay shut again.
pub(super) async fn end_lockdown_override(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: StationId = path_id(&raw, "station")?;
    let change = LockdownChange::Technician(None);
    let station = app
        .store
        .change_lockdown(id, change, caller.actor())
        .await?;
    Ok(Json(
        json!({ "station": station.id, "lockdown": station.lockdown }),
    ))
}

/// A body that carries only an operator's reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    pub(super) reason: String,
}

/// Clears a station's lock-down once it was inspected: its doors open again and it is back in
/// service.
pub(super) async fn clear_lockdown(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: StationId = path_id(&raw, "station")?;
    let change = LockdownChange::Clear {
        reason: reason(&body.reason)?.to_owned(),
    };
    let station = app
        .store
        .change_lockdown(id, change, caller.actor())
        .await?;
    Ok(Json(
        json!({ "station": station.id, "status": station.status, "lockdown": null }),
    ))
}

/// Each edge node of the deployment: connected, how far its mirror of its stations has synced,
/// and what it holds.
pub(super) async fn edges(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let edges: Vec<Value> = app
        .devices
        .edges()
        .into_iter()
        .map(|e| {
            let lag = e.lag();
            let mut value = json!(e);
            value["lag"] = json!(lag);
            value
        })
        .collect();
    Ok(Json(json!({ "edges": edges })))
}
