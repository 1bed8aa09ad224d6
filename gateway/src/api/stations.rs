//! Discovery (`GET /v1/stations`), one station, and code entry at a locker.

use super::App;
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller, path_id};
use super::problem::ApiError;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockergrid_model::StationView;
use lockergrid_model::UnlockFor;
use lockergrid_model::World;
use lockergrid_model::{Candidate, RankQuery, rank_stations};
use lockergrid_node::{CodeEntry, CodeRefused};
use lockergrid_plugin_host::RankRequest;
use lockergrid_protocol::{
    CompartmentState, GeoPoint, ParcelSpec, Size, StationId, Tier, Timestamp,
};
use lockergrid_store::{Series, Step};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Largest discovery radius, metres.
pub const MAX_RADIUS_M: f64 = 50_000.0;

/// Roles that may look at stations.
const READERS: &[Role] = &[Role::Checkout, Role::Operator, Role::Agent, Role::Carrier];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    lat: f64,
    lon: f64,
    radius_m: f64,
    size: Size,
}

/// Checks a point and radius from a request.
pub(super) fn validate_area(lat: f64, lon: f64, radius_m: f64) -> Result<GeoPoint, ApiError> {
    let at = GeoPoint::new(lat, lon).map_err(|e| ApiError::invalid(e.to_string()))?;
    if !(1.0..=MAX_RADIUS_M).contains(&radius_m) {
        return Err(ApiError::invalid(format!(
            "radius_m must be between 1 and {MAX_RADIUS_M}, got {radius_m}"
        )));
    }
    Ok(at)
}

fn sizes_json(view: &StationView, with_states: bool) -> Value {
    let mut sizes = Map::new();
    for size in Size::ALL {
        let count = view.count(size);
        let mut entry = json!({ "free": count.free, "total": count.total });
        if with_states {
            let states: Map<String, Value> = CompartmentState::ALL
                .iter()
                .map(|s| (s.as_str().to_owned(), json!(view.in_state(size, *s))))
                .collect();
            entry["states"] = Value::Object(states);
        }
        sizes.insert(size.as_str().to_owned(), entry);
    }
    Value::Object(sizes)
}

/// A station as discovery and 409 alternatives show it.
pub(super) fn candidate_json(c: &Candidate) -> Value {
    let r = &c.station.record;
    json!({
        "id": r.id,
        "name": r.name,
        "kind": r.kind,
        "location": r.location,
        "distance_m": c.distance_m.round(),
        "score": (c.score * 1_000.0).round() / 1_000.0,
        "sizes": sizes_json(c.station, false),
    })
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, READERS, None).await?;
    let at = validate_area(q.lat, q.lon, q.radius_m)?;
    let snapshot = app.store.snapshot();
    let query = RankQuery {
        at,
        radius_m: q.radius_m,
        size: q.size,
    };
    let candidates = rank_stations(&snapshot, &query);
    // Discovery knows only the size: the policy ranks for a parcel that fills it.
    let [length_mm, width_mm, height_mm] = q.size.inside_mm();
    let request = RankRequest {
        parcel: ParcelSpec {
            length_mm,
            width_mm,
            height_mm,
            weight_g: 1_000,
        },
        size: q.size,
        tier: Tier::Standard,
    };
    let placement = app
        .plugins
        .place(request, Some(candidates), None, app.store.now())
        .await;
    let stations: Vec<Value> = placement.candidates.iter().map(candidate_json).collect();
    Ok(Json(json!({
        "size": q.size,
        "stations": stations,
        "ranked_by": placement.decider.decided_by(World::ReservationPolicy),
    })))
}

pub(super) async fn get_one(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, READERS, None).await?;
    let id: StationId = path_id(&raw, "station")?;
    let snapshot = app.store.snapshot();
    let view = snapshot
        .station(&id)
        .ok_or_else(|| ApiError::not_found(format!("no station {raw:?}")))?;
    let r = &view.record;
    Ok(Json(json!({
        "id": r.id,
        "name": r.name,
        "kind": r.kind,
        "location": r.location,
        "status": r.status,
        "sizes": sizes_json(view, true),
    })))
}

/// Who may read a station's health: operators, and the station's own agents and carriers.
const HEALTH_READERS: &[Role] = &[Role::Operator, Role::Agent, Role::Carrier];

pub(super) async fn health(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let id: StationId = path_id(&raw, "station")?;
    caller.permit(&app, HEALTH_READERS, Some(&id)).await?;
    let snapshot = app.store.snapshot();
    let view = snapshot
        .station(&id)
        .ok_or_else(|| ApiError::not_found(format!("no station {raw:?}")))?;
    let health = app.devices.health(&id);
    let online = health.online(app.store.now());
    Ok(Json(json!({
        "station": id,
        "status": view.record.status,
        "online": online,
        "last_seen": health.last_seen,
        "telemetry": health.telemetry,
        "alerts": health.alerts,
    })))
}

/// Most points one telemetry answer holds.
const MAX_POINTS: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TelemetryQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    step: Option<String>,
}

/// A station's telemetry between `from` and `to` (RFC 3339; the last hour by default) at
/// `step`: `raw` (kept a day), `1m` (30 days) or `1h` (a year); by default the finest the span
/// allows in a readable number of points.
pub(super) async fn telemetry(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiQuery(q): ApiQuery<TelemetryQuery>,
) -> Result<Json<Value>, ApiError> {
    let id: StationId = path_id(&raw, "station")?;
    caller.permit(&app, HEALTH_READERS, Some(&id)).await?;
    if app.store.snapshot().station(&id).is_none() {
        return Err(ApiError::not_found(format!("no station {raw:?}")));
    }
    let time = |text: &Option<String>, name: &str, default: Timestamp| match text {
        Some(t) => t
            .parse::<Timestamp>()
            .map_err(|_| ApiError::invalid(format!("{name} must be an RFC 3339 time, not {t:?}"))),
        None => Ok(default),
    };
    let now = app.store.now();
    let to = time(&q.to, "to", now)?;
    let from = time(
        &q.from,
        "from",
        Timestamp(to.millis().saturating_sub(3_600_000)),
    )?;
    if from >= to {
        return Err(ApiError::invalid("from must be before to"));
    }
    let span = to.millis() - from.millis();
    let step = match q.step.as_deref() {
        Some("raw") => Step::Raw,
        Some("1m") => Step::Minute,
        Some("1h") => Step::Hour,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "step must be raw, 1m or 1h, not {other:?}"
            )));
        }
        None if span <= 2 * 3_600_000 => Step::Raw,
        None if span <= 7 * 86_400_000 => Step::Minute,
        None => Step::Hour,
    };
    let step_name = match step {
        Step::Raw => "raw",
        Step::Minute => "1m",
        Step::Hour => "1h",
    };
    let points = match app.store.telemetry(&id, (from, to), step, MAX_POINTS)? {
        Series::Raw(samples) => json!(samples),
        Series::Rollups(rollups) => json!(rollups),
    };
    Ok(Json(json!({
        "station": id,
        "from": from,
        "to": to,
        "step": step_name,
        "points": points,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CodeEntryBody {
    code: String,
}

pub(super) async fn code_entry(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<CodeEntryBody>,
) -> Result<Json<Value>, ApiError> {
    let station: StationId = path_id(&raw, "station")?;
    caller
        .permit(&app, &[Role::Station], Some(&station))
        .await?;
    let entry = CodeEntry {
        locker_online: app.devices.online(&station, app.store.now()),
        station: station.clone(),
        code: lockergrid_node::Entered::Typed(body.code),
        event: None,
        actor: caller.actor(),
    };
    match app.node.enter_code(entry).await {
        Ok(Some(command)) => {
            app.devices.send(command.clone());
            let (parcel, return_id) = match &command.unlock_for {
                UnlockFor::Pickup { parcel_id, .. } => (Some(parcel_id), None),
                UnlockFor::ReturnDropOff { return_id, .. } => (None, Some(return_id)),
                UnlockFor::Deposit { .. }
                | UnlockFor::ReturnCollection { .. }
                | UnlockFor::ParcelCollection { .. } => (None, None),
            };
            Ok(Json(json!({
                "parcel_id": parcel,
                "return_id": return_id,
                "compartment_id": command.compartment_id,
                "command_id": command.id,
                "status": "unlocking",
                "unlock_expires_at": command.expires_at,
            })))
        }
        Ok(None) => Err(ApiError::conflict("this code entry was applied before")),
        Err(CodeRefused::Locked(wait)) => Err(super::problem::too_many_attempts(wait)),
        Err(CodeRefused::Rejected { attempts_left }) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "code-rejected",
            "Code not accepted",
            "the code is not valid at this station",
        )
        .with("attempts_left", json!(attempts_left))),
        Err(CodeRefused::Denied(reason)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "site-rules-denied",
            "The site does not allow this now",
            reason,
        )),
        Err(CodeRefused::LockerOffline) => Err(super::problem::locker_offline(&station)),
        Err(CodeRefused::Conflict(reason)) => Err(ApiError::conflict(reason)),
        Err(CodeRefused::Failed(e)) => Err(e.into()),
    }
}
