//! Firmware images for operators: upload one with its signed manifest (the raw image as the
//! body, the manifest in the `Lockergrid-Manifest` header as base64 of its JSON), and list what
//! the gateway holds.

use super::App;
use super::extract::Caller;
use super::problem::ApiError;
use crate::auth::Role;
use crate::firmware::FirmwareError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use lockergrid_protocol::firmware::SignedManifest;
use serde_json::{Value, json};
use std::sync::Arc;

/// The header that carries the signed manifest.
pub const MANIFEST_HEADER: &str = "lockergrid-manifest";

impl From<FirmwareError> for ApiError {
    fn from(e: FirmwareError) -> ApiError {
        match &e {
            FirmwareError::Refused { refusal } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "firmware-refused",
                "Firmware image refused",
                e.to_string(),
            )
            .with("code", json!(refusal.code())),
            FirmwareError::NoTrustedKey | FirmwareError::BadModel(_) => {
                ApiError::invalid(e.to_string())
            }
            FirmwareError::Conflict(_) => ApiError::conflict(e.to_string()),
            FirmwareError::Io(io) => ApiError::internal(io),
        }
    }
}

pub(super) async fn upload(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    image: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let header = headers
        .get(MANIFEST_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::invalid(format!("the {MANIFEST_HEADER} header is missing")))?;
    let signed: SignedManifest = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "the {MANIFEST_HEADER} header is not base64 of a signed manifest"
            ))
        })?;
    let added = app.firmware.add(&signed, &image)?;
    let outcome = format!(
        "{} {} ({} bytes){}",
        signed.manifest.model,
        signed.manifest.version,
        signed.manifest.size,
        if added { "" } else { "; held already" }
    );
    app.store
        .record(
            caller.actor(),
            "firmware_upload",
            &signed.manifest.sha256,
            &outcome,
            None,
        )
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(signed))))
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    Ok(Json(json!({ "images": app.firmware.list()? })))
}
