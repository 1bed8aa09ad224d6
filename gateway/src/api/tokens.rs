//! Operators manage bearer tokens: the token keys (list, rotate a new one in, retire an old one)
//! and revocations (one token by its id, or every token of a subject issued so far). Each change
//! is in the access log.

use super::App;
use super::extract::{ApiJson, ApiPath, Caller, path_id};
use super::problem::ApiError;
use crate::auth::keyring::{Keyring, KeyringError};
use crate::auth::{KeyId, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lockergrid_model::RevokedTokens;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, PoisonError, RwLockWriteGuard};

/// Longest token id or subject a revocation names (a token's subject is at most 128 characters).
const MAX_NAME: usize = 128;

fn keyring(app: &App) -> RwLockWriteGuard<'_, Keyring> {
    app.tokens.write().unwrap_or_else(PoisonError::into_inner)
}

impl From<KeyringError> for ApiError {
    fn from(e: KeyringError) -> ApiError {
        match e {
            KeyringError::RetireActive(_) => ApiError::conflict(e.to_string()),
            KeyringError::Unknown(id) => ApiError::not_found(format!("no token key {id:?}")),
            KeyringError::Secrets(_) | KeyringError::NoActiveKey(_) => ApiError::internal(&e),
        }
    }
}

pub(super) async fn keys(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    Ok(Json(json!({ "keys": keyring(&app).list() })))
}

/// A new key signs every token issued from now on; tokens of the others keep working until
/// those keys are retired.
pub(super) async fn rotate(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let (id, keys) = {
        let mut ring = keyring(&app);
        let id = ring.rotate()?;
        (id, ring.list())
    };
    app.store
        .record(
            caller.actor(),
            "token_key_rotated",
            id.as_str(),
            "signs new tokens",
            None,
        )
        .await?;
    tracing::info!(key = %id, "token key rotated in");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": id, "keys": keys })),
    ))
}

/// Retires a key: every token it signed is refused from now on.
pub(super) async fn retire(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<StatusCode, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let id: KeyId = path_id(&raw, "token key")?;
    keyring(&app).retire(&id)?;
    app.store
        .record(
            caller.actor(),
            "token_key_retired",
            id.as_str(),
            "its tokens are refused",
            None,
        )
        .await?;
    tracing::info!(key = %id, "token key retired");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Revoke {
    #[serde(default)]
    token_id: Option<String>,
    #[serde(default)]
    subject: Option<String>,
}

impl Revoke {
    fn revoked(self) -> Result<RevokedTokens, ApiError> {
        let fits =
            |s: &str| !s.is_empty() && s.len() <= MAX_NAME && !s.chars().any(char::is_control);
        match (self.token_id, self.subject) {
            (Some(id), None) if fits(&id) => Ok(RevokedTokens::Token(id)),
            (None, Some(subject)) if fits(&subject) => Ok(RevokedTokens::Subject(subject)),
            (Some(_), Some(_)) | (None, None) => Err(ApiError::invalid(
                "name exactly one of token_id (one token) and subject (every token of it issued so far)",
            )),
            _ => Err(ApiError::invalid(format!(
                "token_id and subject are 1 to {MAX_NAME} printable characters"
            ))),
        }
    }
}

/// Revokes one token, or every token of a subject issued until now; the gateway refuses them at
/// once, and remembers it until the longest-lived of them would have expired.
pub(super) async fn revoke(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(body): ApiJson<Revoke>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let revoked = body.revoked()?;
    let forget_at = app.store.now().plus(Role::LONGEST_LIFETIME);
    let record = app
        .store
        .revoke_tokens(caller.actor(), revoked, forget_at)
        .await?;
    app.revocations
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .add(&record);
    Ok((StatusCode::CREATED, Json(json!({ "revocation": record }))))
}

pub(super) async fn revocations(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    Ok(Json(json!({ "revocations": app.store.revocations()? })))
}
