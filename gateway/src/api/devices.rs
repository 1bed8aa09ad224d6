//! The device registry for operators: list and read devices, provision a locker controller over
//! the public key it generated (its private key never travels), suspend, resume and
//! decommission it.

use super::App;
use super::admin::{ReasonBody, reason};
use super::extract::{ApiJson, ApiPath, Caller, path_id};
use super::problem::ApiError;
use crate::auth::Role;
use crate::fleet::FleetError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockergrid_model::{DeviceChange, DeviceRecord};
use lockergrid_protocol::{LockerId, StationId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> ApiError {
        match e {
            FleetError::Invalid(why) => ApiError::invalid(why),
            FleetError::Registry(e) => e.into(),
            FleetError::Pki(e) => ApiError::internal(&e),
        }
    }
}

/// A device as operators see it: its registry entry, and whether a node hears it now.
fn device_json(app: &App, device: &DeviceRecord) -> Value {
    let health = app.devices.health(&device.station);
    let mut json = json!(device);
    json["online"] = json!(health.online(app.store.now()));
    if let Some(seen) = health.last_seen.filter(|s| device.last_seen < Some(*s)) {
        json["last_seen"] = json!(seen);
    }
    json
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let devices: Vec<Value> = app
        .fleet
        .devices()?
        .iter()
        .map(|d| device_json(&app, d))
        .collect();
    Ok(Json(json!({ "devices": devices })))
}

pub(super) async fn get_one(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: LockerId = path_id(&raw, "device")?;
    let device = app
        .fleet
        .device(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no device {raw:?}")))?;
    Ok(Json(device_json(&app, &device)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProvisionBody {
    station: StationId,
    model: String,
    public_key_pem: String,
}

/// Provisions a station's controller: 201 with its registry entry, its certificate and the CA's.
/// It connects with them and goes active once its self-test passes.
pub(super) async fn provision(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<ProvisionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    if body.public_key_pem.len() > 4096 {
        return Err(ApiError::invalid(
            "public_key_pem is longer than 4096 bytes",
        ));
    }
    let provisioned = app
        .fleet
        .provision(
            body.station,
            body.model,
            &body.public_key_pem,
            caller.actor(),
        )
        .await?;
    let answer = json!({
        "device": device_json(&app, &provisioned.device),
        "certificate_pem": provisioned.cert_pem,
        "ca_pem": provisioned.ca_pem,
    });
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn order(
    app: &App,
    caller: &Caller,
    raw: &str,
    change: DeviceChange,
    body: &ReasonBody,
) -> Result<Json<Value>, ApiError> {
    caller.permit(app, &[Role::Operator], None).await?;
    let id: LockerId = path_id(raw, "device")?;
    let reason = reason(&body.reason)?.to_owned();
    let device = app.fleet.order(id, change, caller.actor(), reason).await?;
    Ok(Json(device_json(app, &device)))
}

/// Suspends a device: its session is cut at once and it may not connect until resumed.
pub(super) async fn suspend(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    order(&app, &caller, &raw, DeviceChange::Suspended, &body).await
}

/// Resumes a suspended device.
pub(super) async fn resume(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    order(&app, &caller, &raw, DeviceChange::Resumed, &body).await
}

/// Decommissions a device for good: 200 with where each held reservation went and the parcels
/// left in its compartments to collect.
pub(super) async fn decommission(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: LockerId = path_id(&raw, "device")?;
    let reason = reason(&body.reason)?.to_owned();
    let done = app.fleet.decommission(id, caller.actor(), reason).await?;
    let moved: Vec<Value> = done
        .moved
        .iter()
        .map(|r| json!({ "reservation_id": r.id, "station_id": r.station_id, "compartment_id": r.compartment_id }))
        .collect();
    let released: Vec<Value> = done.released.iter().map(|r| json!(r.id)).collect();
    let parcels: Vec<Value> = done
        .parcels
        .iter()
        .map(|p| json!({ "parcel_id": p.id, "compartment_id": p.compartment_id, "status": p.status }))
        .collect();
    Ok(Json(json!({
        "device": device_json(&app, &done.device),
        "moved": moved,
        "released": released,
        "parcels_to_collect": parcels,
    })))
}
