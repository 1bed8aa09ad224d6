//! Health, metrics, the OpenAPI document, and the answers for unknown routes and methods.

use super::App;
use super::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) async fn healthz(State(app): State<Arc<App>>) -> Json<Value> {
    let snapshot = app.store.snapshot();
    Json(json!({
        "status": "ok",
        "stations": snapshot.stations.len(),
        "commits": snapshot.commit_seq,
    }))
}

pub(super) async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut response = app.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub(super) async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
}

pub(super) async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {:?}", uri.path()))
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not accept that method",
    )
}
