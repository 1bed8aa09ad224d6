//! Operator plugin management: what runs where (`GET /v1/admin/plugins`), a signed new version
//! (`POST /v1/admin/plugins`), putting a plugin taken out of service back
//! (`POST /v1/admin/plugins/restore`), and one more signing key to trust
//! (`POST /v1/admin/plugins/trusted-keys`).

use super::App;
use super::extract::{ApiJson, Caller, Operator};
use super::problem::ApiError;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use lockergrid_model::{Binding, BindingLimits, PolicyError, PolicyFile, Scope, TrustedKey, World};
use lockergrid_plugin_host::{Decider, PluginError, PluginInfo};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest plugin name accepted.
const MAX_NAME: usize = 64;

fn info_json(p: &PluginInfo) -> Value {
    json!({
        "name": p.name,
        "version": p.version,
        "digest": p.digest,
        "signed_by": p.signed_by,
    })
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let slots: Vec<Value> = app
        .plugins
        .report()
        .iter()
        .map(|r| {
            let state = match (&r.serving, &r.quarantined) {
                (Some(_), _) => "serving",
                (None, Some(_)) => "out_of_service",
                (None, None) => "built_in",
            };
            let calls = r.stats.calls.max(1) as f64;
            json!({
                "world": r.world,
                "scope": r.scope,
                "state": state,
                "plugin": r.serving.as_deref().map(info_json),
                "out_of_service": r.quarantined.as_ref().map(|(p, why)| {
                    json!({ "plugin": info_json(p), "reason": why })
                }),
                "calls": r.stats.calls,
                "failures": r.stats.failures,
                "consecutive_failures": r.stats.consecutive_failures,
                "latency_us": {
                    "mean": (r.stats.latency_sum.as_secs_f64() * 1e6 / calls).round(),
                    "p50_under": r.stats.quantile_us(0.50),
                    "p99_under": r.stats.quantile_us(0.99),
                },
            })
        })
        .collect();
    Ok(Json(json!({ "slots": slots })))
}

/// A signed plugin version and the binding it should serve.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Push {
    world: World,
    scope: Scope,
    name: String,
    version: String,
    /// SHA-256 of the component as the operator's policy pins it.
    sha256: String,
    /// `ed25519 <public key hex> <signature hex>` over the binding: world, scope, name, version,
    /// sha256, settings and limits (`lockergrid plugin sign`).
    #[serde(default)]
    signature: Option<String>,
    /// The component, base64.
    component: String,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
    #[serde(default)]
    limits: BindingLimits,
}

fn check_label(what: &str, text: &str) -> Result<(), ApiError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_NAME
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{what} must be 1 to {MAX_NAME} of [A-Za-z0-9._+-]"
        )))
    }
}

fn refused(e: PluginError) -> ApiError {
    let reason = match &e {
        PluginError::Untrusted { source, .. } => match source {
            PolicyError::Unsigned => "unsigned",
            PolicyError::UntrustedKey(_) => "untrusted-key",
            PolicyError::BadSignature | PolicyError::MalformedSignature(_) => "bad-signature",
            PolicyError::DigestMismatch { .. } => "digest-mismatch",
            _ => "invalid-policy",
        },
        PluginError::Refused { reason, .. } if reason.contains("failed its fixtures") => {
            "failed-fixtures"
        }
        PluginError::Refused { reason, .. } if reason.contains("not a ") => "wrong-world",
        _ => "not-loadable",
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "plugin-refused",
        "Plugin refused",
        e.to_string(),
    )
    .with("reason", json!(reason))
}

pub(super) async fn push(
    State(app): State<Arc<App>>,
    Operator(caller): Operator,
    ApiJson(body): ApiJson<Push>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_label("name", &body.name)?;
    check_label("version", &body.version)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.component.as_bytes())
        .map_err(|e| ApiError::invalid(format!("component is not base64: {e}")))?;
    let binding = Binding {
        world: body.world,
        scope: body.scope,
        name: body.name,
        version: body.version,
        file: None,
        sha256: Some(body.sha256),
        settings: body.settings,
        limits: body.limits,
        signature: body.signature,
    };
    let _one_at_a_time = app.push_lock.lock().await;
    let installed = app
        .plugins
        .install(binding.clone(), bytes.clone().into())
        .await;
    let target = format!("{} at {}", binding.world, binding.scope);
    let info = match installed {
        Ok(info) => info,
        Err(e) => {
            let outcome = format!("refused: {e}");
            app.store
                .record(caller.actor(), "plugin_push", &target, &outcome, None)
                .await?;
            return Err(refused(e));
        }
    };
    // The new version serves; make it survive a restart. The component goes in first, under a
    // name of its own, so the policy never names a file that is not there.
    let file = app
        .plugin_store
        .write_component(&binding.name, &binding.version, &bytes)
        .map_err(|e| ApiError::internal(&e))?;
    app.plugin_store
        .bind(Binding {
            file: Some(file),
            ..binding
        })
        .map_err(|e| ApiError::internal(&e))?;
    let decided_by = Decider::Plugin(info.clone()).decided_by(info.world);
    app.store
        .record(
            caller.actor(),
            "plugin_push",
            &target,
            "ok",
            Some(decided_by),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "world": info.world,
            "scope": info.scope,
            "plugin": info_json(&info),
        })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Restore {
    world: World,
    scope: Scope,
}

pub(super) async fn restore(
    State(app): State<Arc<App>>,
    Operator(caller): Operator,
    ApiJson(body): ApiJson<Restore>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("{} at {}", body.world, body.scope);
    let info = app
        .plugins
        .restore(body.world, &body.scope)
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    app.store
        .record(caller.actor(), "plugin_restore", &target, "ok", None)
        .await?;
    Ok(Json(json!({
        "world": info.world,
        "scope": info.scope,
        "plugin": info_json(&info),
    })))
}

pub(super) async fn trust_key(
    State(app): State<Arc<App>>,
    Operator(caller): Operator,
    ApiJson(key): ApiJson<TrustedKey>,
) -> Result<Json<Value>, ApiError> {
    check_label("name", &key.name)?;
    let trust = PolicyFile {
        version: 1,
        trusted_keys: vec![key.clone()],
        ..PolicyFile::default()
    };
    trust.trust().map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-key",
            "Not a trusted key",
            e.to_string(),
        )
    })?;
    let _one_at_a_time = app.push_lock.lock().await;
    let target = key.name.clone();
    let policy = app
        .plugin_store
        .trust_key(key)
        .map_err(|e| ApiError::internal(&e))?;
    app.plugins
        .set_trust(policy.trust().map_err(|e| ApiError::internal(&e))?);
    app.store
        .record(caller.actor(), "plugin_trust", &target, "ok", None)
        .await?;
    Ok(Json(json!({ "trusted_keys": policy.trusted_keys })))
}
