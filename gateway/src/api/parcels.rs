//! Parcels: status and timestamps, a new code for the customer, and a carrier taking an expired
//! parcel back to its sender through its door.

use super::App;
use super::extract::{ApiPath, Caller, path_id};
use super::problem::ApiError;
use super::reservations::{
    awaiting_door, fingerprint, idempotency_key, not_unlocked, preferred_wait, send_and_wait,
    site_rules,
};
use crate::auth::Role;
use crate::devices::DoorEnd;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use lockergrid_model::{AccessAttempt, AccessMethod, AccessRole, Parcel};
use lockergrid_node::UNLOCK_VALID;
use lockergrid_protocol::{ParcelId, ParcelStatus, StationId};
use lockergrid_store::IdempotencyKey;
use serde_json::{Value, json};
use std::sync::Arc;

fn parcel_json(p: &Parcel) -> Value {
    json!({
        "id": p.id,
        "reservation_id": p.reservation_id,
        "order_id": p.order_id,
        "station_id": p.station_id,
        "compartment_id": p.compartment_id,
        "tier": p.tier,
        "status": p.status,
        "reserved_at": p.reserved_at,
        "stored_at": p.stored_at,
        "pickup_expires_at": p.pickup_expires_at,
        "picked_up_at": p.picked_up_at,
        "expired_at": p.expired_at,
        "collected_at": p.collected_at,
        "cancelled_at": p.cancelled_at,
    })
}

async fn load(app: &App, caller: &Caller, raw: &str, roles: &[Role]) -> Result<Parcel, ApiError> {
    let find = |id: &ParcelId| app.store.parcel(id);
    caller.load(app, raw, "parcel", roles, find).await
}

pub(super) async fn get_one(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let roles = &[Role::Checkout, Role::Operator, Role::Agent, Role::Carrier];
    let parcel = load(&app, &caller, &raw, roles).await?;
    Ok(Json(parcel_json(&parcel)))
}

/// `GET /v1/stations/{id}/parcels`: the expired parcels waiting there for a carrier to take
/// them back to their senders, the longest waiting first.
pub(super) async fn to_collect(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let station: StationId = path_id(&raw, "station")?;
    caller
        .permit(&app, &[Role::Carrier, Role::Operator], Some(&station))
        .await?;
    if app.store.snapshot().station(&station).is_none() {
        return Err(ApiError::not_found(format!("no station {raw:?}")));
    }
    let parcels: Vec<Value> = app
        .store
        .parcels_to_collect(&station)?
        .iter()
        .map(parcel_json)
        .collect();
    Ok(Json(json!({ "station_id": station, "parcels": parcels })))
}

/// A carrier takes an expired parcel back to its sender: the site's rules are asked, its
/// compartment is unlocked, and the parcel is `returned_to_sender` when the door closes again;
/// the request waits for that like a deposit does (200, 202 while the door is open, 503 when
/// the locker is offline or does not unlock).
pub(super) async fn collect(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(raw): ApiPath,
) -> Result<Response, ApiError> {
    let wait = preferred_wait(&headers)?;
    let parcel = load(&app, &caller, &raw, &[Role::Carrier]).await?;
    if parcel.status != ParcelStatus::Expired {
        return Err(ApiError::conflict(format!(
            "parcel {} is {}",
            parcel.id,
            serde_json::to_value(parcel.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )));
    }
    if !app.devices.online(&parcel.station_id, app.store.now()) {
        return Err(super::problem::locker_offline(&parcel.station_id));
    }
    let attempt = AccessAttempt {
        station: parcel.station_id.clone(),
        compartment: parcel.compartment_id.clone(),
        role: AccessRole::Carrier,
        method: AccessMethod::Credential,
        at: app.store.now(),
        local_minute: app.local_minute(),
        climate_controlled: app
            .node
            .climate_controlled(&parcel.station_id, &parcel.compartment_id),
    };
    let decided_by = site_rules(&app, &caller, &attempt, "collect", parcel.id.as_str()).await?;
    let command = app
        .store
        .unlock_for_parcel_collection(
            parcel.id.clone(),
            caller.actor(),
            Some(decided_by),
            UNLOCK_VALID,
        )
        .await
        .map_err(ApiError::from)?;
    let Some(end) = send_and_wait(&app, &command, wait).await else {
        let about = json!({ "parcel_id": parcel.id, "station_id": parcel.station_id });
        return Ok(awaiting_door(&command, about));
    };
    match end {
        DoorEnd::ParcelReturned(returned) => {
            let mut body = parcel_json(&returned);
            body["command_id"] = json!(command.id);
            Ok(Json(body).into_response())
        }
        DoorEnd::NotUnlocked(command) => Err(not_unlocked(command)),
        DoorEnd::Deposited(_) | DoorEnd::Collected(_) => Err(ApiError::conflict(format!(
            "command {} completed something else",
            command.id
        ))),
        DoorEnd::Conflict(reason) => Err(ApiError::conflict(reason)),
    }
}

/// A new pickup code for a stored parcel (the customer lost theirs): the old code stops working
/// and the new one goes to the customer in a message of its own; 202, as delivery follows. A
/// retry under the same `Idempotency-Key` issues nothing more and answers the same message.
pub(super) async fn reissue_code(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(raw): ApiPath,
) -> Result<Response, ApiError> {
    let parcel = load(&app, &caller, &raw, &[Role::Checkout]).await?;
    let idempotency = idempotency_key(&headers, &caller, "code")?.map(|key| IdempotencyKey {
        key,
        fingerprint: fingerprint(&parcel.id),
    });
    let reissued = app
        .store
        .reissue_code(parcel.id, caller.actor(), idempotency)
        .await
        .map_err(ApiError::from)?;
    let p = &reissued.parcel;
    let body = Json(json!({
        "parcel_id": p.id,
        "station_id": p.station_id,
        "status": p.status,
        "pickup_expires_at": p.pickup_expires_at,
        "message_id": reissued.message_id,
    }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}
