//! Operator views: the access log and the notification outbox.

use super::App;
use super::extract::{ApiQuery, Caller};
use super::problem::ApiError;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

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
    Ok(Json(json!({ "entries": entries, "next": next })))
}
