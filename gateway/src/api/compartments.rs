//! Compartments out of service and back, for operators (DESIGN.md §2): one with a parcel or a
//! return inside names the compartment of the same station a technician moves it into.

use super::App;
use super::admin::{ReasonBody, reason};
use super::extract::{ApiJson, ApiPath, Caller, path_id};
use super::problem::ApiError;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use lockergrid_protocol::CompartmentId;
use lockergrid_store::ServiceOrder;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutOfServiceBody {
    reason: String,
    #[serde(default)]
    destination: Option<CompartmentId>,
}

/// Takes a compartment out of service: 200 with it and where its hold or contents went.
pub(super) async fn out_of_service(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<OutOfServiceBody>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: CompartmentId = path_id(&raw, "compartment")?;
    let order = ServiceOrder {
        compartment: id,
        destination: body.destination,
        actor: caller.actor(),
        reason: reason(&body.reason)?.to_owned(),
    };
    let out = app.store.take_out_of_service(order).await?;
    Ok(Json(json!({
        "compartment": out.compartment,
        "moved_to": out.moved_to,
    })))
}

/// Puts a compartment in maintenance back in service.
pub(super) async fn in_service(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: CompartmentId = path_id(&raw, "compartment")?;
    let reason = reason(&body.reason)?.to_owned();
    let compartment = app
        .store
        .back_in_service(id, caller.actor(), reason)
        .await?;
    Ok(Json(json!({ "compartment": compartment })))
}
