//! Parcels: status and timestamps, and a carrier collecting an expired parcel.

use super::App;
use super::extract::{ApiPath, Caller};
use super::problem::ApiError;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lockergrid_model::Parcel;
use lockergrid_protocol::ParcelId;
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

pub(super) async fn collect(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let parcel = load(&app, &caller, &raw, &[Role::Carrier]).await?;
    let collected = app
        .store
        .collect(parcel.id, caller.actor())
        .await
        .map_err(ApiError::from)?;
    Ok(Json(parcel_json(&collected)))
}

/// A new pickup code for a stored parcel (the customer lost theirs): the old code stops working
/// and the new one goes to the customer in a message of its own; 202, as delivery follows.
pub(super) async fn reissue_code(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Response, ApiError> {
    let parcel = load(&app, &caller, &raw, &[Role::Checkout]).await?;
    let reissued = app
        .store
        .reissue_code(parcel.id, caller.actor())
        .await
        .map_err(ApiError::from)?;
    let p = &reissued.parcel;
    let body = Json(json!({
        "parcel_id": p.id,
        "station_id": p.station_id,
        "status": p.status,
        "pickup_expires_at": p.pickup_expires_at,
        "message_id": p.code_message,
    }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}
