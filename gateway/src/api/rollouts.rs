//! Firmware rollouts for operators: start one over the registry's active lockers of an image's
//! model (the whole region, or the stations named) in waves, watch it wave by wave and locker
//! by locker, pause, resume or abort it.

use super::App;
use super::admin::{ReasonBody, reason};
use super::extract::{ApiJson, ApiPath, Caller};
use super::problem::ApiError;
use crate::auth::Role;
use crate::rollouts::{RolloutError, RolloutRequest, default_waves};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockergrid_model::{OnError, RolloutRecord, RolloutTarget, Wave, WaveCount, count_waves};
use lockergrid_protocol::StationId;
use lockergrid_protocol::firmware::FirmwareVersion;
use lockergrid_store::RolloutOrder;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

impl From<RolloutError> for ApiError {
    fn from(e: RolloutError) -> ApiError {
        match e {
            RolloutError::Invalid(_) | RolloutError::NoImage { .. } => {
                ApiError::invalid(e.to_string())
            }
            RolloutError::Firmware(e) => e.into(),
            RolloutError::Store(e) => e.into(),
        }
    }
}

/// A wave as a request gives it; what it leaves out takes the defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WaveBody {
    percent: u8,
    #[serde(default = "default_soak")]
    soak_s: u64,
    #[serde(default = "default_advance")]
    advance_percent: u8,
    #[serde(default)]
    error_percent: u8,
    #[serde(default = "default_min_done")]
    min_done: u32,
    #[serde(default = "default_on_error")]
    on_error: OnError,
}

fn default_soak() -> u64 {
    600
}
fn default_advance() -> u8 {
    100
}
fn default_min_done() -> u32 {
    1
}
fn default_on_error() -> OnError {
    OnError::Pause
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    model: String,
    version: FirmwareVersion,
    #[serde(default)]
    stations: Option<Vec<StationId>>,
    #[serde(default)]
    waves: Option<Vec<WaveBody>>,
    #[serde(default)]
    timeout_s: Option<u64>,
    #[serde(default)]
    max_parallel: Option<u32>,
    #[serde(default)]
    max_per_minute: Option<u32>,
}

/// A rollout as operators see it: its record, and each wave with its counts.
fn view(rollout: &RolloutRecord, targets: &[RolloutTarget]) -> Value {
    let counts = count_waves(rollout.waves.len(), targets);
    let mut totals = WaveCount::default();
    for c in &counts {
        totals.lockers += c.lockers;
        totals.pending += c.pending;
        totals.in_flight += c.in_flight;
        totals.confirmed += c.confirmed;
        totals.failed += c.failed;
        totals.cancelled += c.cancelled;
    }
    let waves: Vec<Value> = rollout
        .waves
        .iter()
        .zip(&counts)
        .map(|(wave, count)| {
            let mut json = json!(wave);
            json["counts"] = json!(count);
            json
        })
        .collect();
    let m = &rollout.manifest.manifest;
    json!({
        "id": rollout.id,
        "status": rollout.status,
        "reason": rollout.reason,
        "image": { "model": m.model, "version": m.version, "sha256": m.sha256, "size": m.size },
        "wave": rollout.wave + 1,
        "soak_since": rollout.soak_since,
        "waves": waves,
        "totals": totals,
        "timeout_s": rollout.timeout_s,
        "max_parallel": rollout.max_parallel,
        "max_per_minute": rollout.per_minute,
        "created_at": rollout.created_at,
        "created_by": rollout.created_by,
        "updated_at": rollout.updated_at,
    })
}

fn found(app: &App, id: &str) -> Result<(RolloutRecord, Vec<RolloutTarget>), ApiError> {
    let rollout = app
        .store
        .rollout(id)?
        .ok_or_else(|| ApiError::not_found(format!("no rollout {id:?}")))?;
    let targets = app.store.rollout_targets(id)?;
    Ok((rollout, targets))
}

/// Starts a rollout: 201 with it.
pub(super) async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let waves = match body.waves {
        Some(waves) => waves
            .into_iter()
            .map(|w| Wave {
                percent: w.percent,
                soak_s: w.soak_s,
                advance_percent: w.advance_percent,
                error_percent: w.error_percent,
                min_done: w.min_done,
                on_error: w.on_error,
            })
            .collect(),
        None => default_waves(),
    };
    let request = RolloutRequest {
        model: body.model,
        version: body.version,
        stations: body.stations,
        waves,
        timeout_s: body.timeout_s.unwrap_or(1800),
        max_parallel: body.max_parallel.unwrap_or(20),
        per_minute: body.max_per_minute,
    };
    let rollout = app.rollouts.create(request, caller.actor()).await?;
    let targets = app.store.rollout_targets(&rollout.id)?;
    Ok((StatusCode::CREATED, Json(view(&rollout, &targets))))
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let mut rollouts = Vec::new();
    for rollout in app.store.rollouts()? {
        let targets = app.store.rollout_targets(&rollout.id)?;
        rollouts.push(view(&rollout, &targets));
    }
    Ok(Json(json!({ "rollouts": rollouts })))
}

/// One rollout with every locker's state.
pub(super) async fn get_one(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let (rollout, targets) = found(&app, &id)?;
    let mut json = view(&rollout, &targets);
    json["lockers"] = json!(targets);
    Ok(Json(json))
}

async fn order(
    app: &App,
    caller: &Caller,
    id: &str,
    order: RolloutOrder,
) -> Result<Json<Value>, ApiError> {
    caller.permit(app, &[Role::Operator], None).await?;
    found(app, id)?;
    let rollout = app
        .store
        .order_rollout(id.to_owned(), order, caller.actor())
        .await?;
    let targets = app.store.rollout_targets(id)?;
    Ok(Json(view(&rollout, &targets)))
}

/// No new offers; lockers already fetching or on trial finish.
pub(super) async fn pause(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let why = reason(&body.reason)?.to_owned();
    order(&app, &caller, &id, RolloutOrder::Pause(why)).await
}

/// Offers again where it stopped.
pub(super) async fn resume(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    order(&app, &caller, &id, RolloutOrder::Resume).await
}

/// Ends it: lockers not yet installed are cancelled, those on trial finish by themselves.
pub(super) async fn abort(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let why = reason(&body.reason)?.to_owned();
    order(&app, &caller, &id, RolloutOrder::Abort(why)).await
}
