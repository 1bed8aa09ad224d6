//! Alerts for operators: the records the site rules raised from lockers' telemetry, newest
//! first, to acknowledge and resolve.

use super::App;
use super::extract::{ApiPath, ApiQuery, Caller};
use super::problem::ApiError;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use lockergrid_model::{AlertEvent, AlertStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Most alerts one answer lists.
const MAX_ALERTS: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertQuery {
    #[serde(default)]
    status: Option<AlertStatus>,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    if q.limit == 0 || q.limit > MAX_ALERTS {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_ALERTS}"
        )));
    }
    let alerts = app.store.alerts(q.status, q.limit)?;
    Ok(Json(json!({ "alerts": alerts })))
}

async fn change(
    app: &App,
    caller: &Caller,
    id: String,
    event: AlertEvent,
) -> Result<Json<Value>, ApiError> {
    caller.permit(app, &[Role::Operator], None).await?;
    let alert = app.store.change_alert(id, event, caller.actor()).await?;
    app.devices.recount_alerts(&app.store);
    Ok(Json(json!(alert)))
}

pub(super) async fn acknowledge(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    change(&app, &caller, id, AlertEvent::Acknowledged).await
}

pub(super) async fn resolve(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    change(&app, &caller, id, AlertEvent::Resolved).await
}
