//! Returns (DESIGN.md §1 flow 5): the checkout service authorises a return at a station and gets
//! its drop-off code; the code entered at that station's locker opens a free compartment that
//! fits (see `devices/pickup.rs`); a carrier of the station lists the returns waiting there and
//! collects each with its token, which unlocks its compartment.

use super::App;
use super::extract::{ApiJson, ApiPath, Caller, path_id};
use super::problem::ApiError;
use super::reservations::{
    RecipientBody, awaiting_door, fingerprint, idempotency_key, ineligible_parcel, not_unlocked,
    preferred_wait, sealed_recipient, send_and_wait, site_rules,
};
use crate::auth::Role;
use crate::devices::DoorEnd;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use lockergrid_model::{AccessAttempt, AccessMethod, AccessRole};
use lockergrid_model::{ReturnRecord, ReturnStatus};
use lockergrid_node::UNLOCK_VALID;
use lockergrid_protocol::{OrderId, ParcelSpec, ReturnId, StationId, Timestamp};
use lockergrid_store::{ChangeError, IdempotencyKey, ReturnRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long a drop-off code is valid.
pub const RETURN_VALID: Duration = Duration::from_secs(14 * 86_400);

fn return_json(r: &ReturnRecord, now: Timestamp) -> Value {
    // An authorisation past its date is shown as what it is; its code opens nothing.
    let status = match r.status {
        ReturnStatus::Authorized if r.expires_at <= now => ReturnStatus::Expired,
        status => status,
    };
    json!({
        "id": r.id,
        "order_id": r.order_id,
        "station_id": r.station_id,
        "size": r.size,
        "status": status.as_str(),
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "compartment_id": r.compartment_id,
        "dropped_off_at": r.dropped_off_at,
        "collected_at": r.collected_at,
    })
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateReturn {
    order_id: OrderId,
    station_id: StationId,
    parcel: ParcelSpec,
    #[serde(default)]
    recipient: Option<RecipientBody>,
}

/// Authorises a return; an `Idempotency-Key` sent again with the same body answers the same
/// return (200) and sends no second code.
pub(super) async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateReturn>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.permit(&app, &[Role::Checkout], None).await?;
    let idempotency = idempotency_key(&headers, &caller, "return")?.map(|key| IdempotencyKey {
        key,
        fingerprint: fingerprint(&body),
    });
    let size = body.parcel.smallest_size().map_err(ineligible_parcel)?;
    let recipient = body
        .recipient
        .as_ref()
        .map(|r| sealed_recipient(&body.order_id, r, &app.contacts))
        .transpose()?;
    let request = ReturnRequest {
        order_id: body.order_id,
        station: body.station_id,
        spec: body.parcel,
        size,
        valid: RETURN_VALID,
        actor: caller.actor(),
        recipient,
        idempotency,
    };
    let authorized = app
        .store
        .authorize_return(request)
        .await
        .map_err(|e| match e {
            ChangeError::NotFound { kind, id } => {
                ApiError::invalid(format!("unknown {kind} {id:?}"))
            }
            other => ApiError::from(other),
        })?;
    let status = match authorized.code {
        Some(_) => StatusCode::CREATED,
        None => StatusCode::OK,
    };
    Ok((
        status,
        Json(return_json(&authorized.record, app.store.now())),
    ))
}

/// Loads a return for a caller; a carrier sees only its stations' returns.
async fn load(
    app: &App,
    caller: &Caller,
    raw: &str,
    roles: &[Role],
) -> Result<ReturnRecord, ApiError> {
    let find = |id: &ReturnId| app.store.return_record(id);
    caller.load(app, raw, "return", roles, find).await
}

pub(super) async fn get_one(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let roles = &[Role::Checkout, Role::Operator, Role::Carrier];
    let record = load(&app, &caller, &raw, roles).await?;
    Ok(Json(return_json(&record, app.store.now())))
}

/// The returns waiting at a station for a carrier.
pub(super) async fn at_station(
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
    let now = app.store.now();
    let returns: Vec<Value> = app
        .store
        .station_returns(&station)?
        .iter()
        .map(|r| return_json(r, now))
        .collect();
    Ok(Json(json!({ "station_id": station, "returns": returns })))
}

/// A carrier collects a return: the site's rules are asked, its compartment is unlocked, and it
/// is collected when the door closes again; the request waits for that like a deposit does.
pub(super) async fn collect(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(raw): ApiPath,
) -> Result<Response, ApiError> {
    let wait = preferred_wait(&headers)?;
    let record = load(&app, &caller, &raw, &[Role::Carrier]).await?;
    let Some(compartment) = record
        .compartment_id
        .clone()
        .filter(|_| record.status == ReturnStatus::DroppedOff)
    else {
        return Err(ApiError::conflict(format!(
            "return {} is {}",
            record.id,
            record.status.as_str()
        )));
    };
    if !app.devices.online(&record.station_id, app.store.now()) {
        return Err(super::problem::locker_offline(&record.station_id));
    }
    let attempt = AccessAttempt {
        station: record.station_id.clone(),
        climate_controlled: app
            .node
            .climate_controlled(&record.station_id, &compartment),
        compartment,
        role: AccessRole::Carrier,
        method: AccessMethod::Credential,
        at: app.store.now(),
        local_minute: app.local_minute(),
    };
    let decided_by = site_rules(
        &app,
        &caller,
        &attempt,
        "return_collect",
        record.id.as_str(),
    )
    .await?;
    let command = app
        .store
        .unlock_for_collection(
            record.id.clone(),
            caller.actor(),
            Some(decided_by),
            UNLOCK_VALID,
        )
        .await
        .map_err(ApiError::from)?;
    let Some(end) = send_and_wait(&app, &command, wait).await else {
        let about = json!({ "return_id": record.id, "station_id": record.station_id });
        return Ok(awaiting_door(&command, about));
    };
    match end {
        DoorEnd::Collected(collected) => {
            let mut body = return_json(&collected, app.store.now());
            body["command_id"] = json!(command.id);
            Ok(Json(body).into_response())
        }
        DoorEnd::NotUnlocked(command) => Err(not_unlocked(command)),
        DoorEnd::Deposited(_) | DoorEnd::ParcelReturned(_) => Err(ApiError::conflict(format!(
            "command {} completed something else",
            command.id
        ))),
        DoorEnd::Conflict(reason) => Err(ApiError::conflict(reason)),
    }
}
