//! Notifications for operators — the messages by delivery status (dead letters among them) and
//! re-queueing one — and the SMS provider's status callbacks, which must carry its signature.

use super::App;
use super::extract::{ApiPath, ApiQuery, Caller};
use super::problem::ApiError;
use crate::auth::Role;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use lockergrid_model::{DeliveryStatus, OutboxEntry};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Most entries one page returns.
const MAX_PAGE: usize = 1_000;
/// Most outbox entries one listing reads to fill its page.
const MAX_SCAN: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Listing {
    #[serde(default)]
    status: Option<DeliveryStatus>,
    #[serde(default = "first")]
    from: u64,
    #[serde(default = "page")]
    limit: usize,
}

fn first() -> u64 {
    1
}

fn page() -> usize {
    100
}

/// A message as operators see it: the recipient's addresses masked, whether it carries a code
/// (never the code, sealed or clear).
pub(super) fn message_json(entry: &OutboxEntry) -> Value {
    let mut value = json!(entry);
    if let Some(contact) = &entry.recipient.contact {
        value["recipient"]["contact"] = json!(contact.masked);
    }
    if let Some(object) = value.as_object_mut() {
        object.remove("secret");
    }
    value["carries_code"] = json!(entry.secret.is_some());
    value
}

/// `GET /v1/admin/notifications?status=dead`: messages in outbox order, filtered by status.
pub(super) async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Listing>,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    if q.limit == 0 || q.limit > MAX_PAGE {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let mut found = Vec::new();
    let (mut from, mut scanned) = (q.from, 0);
    let next = loop {
        let page = app.store.outbox(from, MAX_PAGE)?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break None;
        };
        scanned += page.len();
        for entry in page {
            if q.status.is_none_or(|s| s == entry.delivery.status) {
                found.push(message_json(&entry));
                if found.len() == q.limit {
                    break;
                }
            }
            from = entry.seq + 1;
        }
        if found.len() == q.limit || scanned >= MAX_SCAN {
            break Some(from);
        }
        from = last + 1;
    };
    Ok(Json(json!({ "messages": found, "next": next })))
}

/// `POST /v1/admin/notifications/{id}/requeue`: a dead letter goes through its plan again.
pub(super) async fn requeue(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    caller.permit(&app, &[Role::Operator], None).await?;
    let entry = app
        .store
        .requeue_notification(id, caller.actor())
        .await
        .map_err(ApiError::from)?;
    Ok(Json(message_json(&entry)))
}

/// `POST /v1/callbacks/sms`: the provider's status callback, verified by its signature over the
/// callback URL as configured (with the query it was given) and the form's fields.
pub(super) async fn sms_callback(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ApiError::bad_request("a status callback is a form"))?;
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(url) = app.notifications.sms_callback_url(uri.query()) else {
        return Err(ApiError::not_found("no SMS provider is configured"));
    };
    if !app
        .notifications
        .verify_sms_callback(&url, &fields, signature)
    {
        return Err(ApiError::forbidden(
            "the status callback's signature does not verify",
        ));
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(sid), Some(status)) = (field("MessageSid"), field("MessageStatus")) else {
        return Err(ApiError::invalid(
            "a status callback names MessageSid and MessageStatus",
        ));
    };
    let Some(report) = crate::notifications::sms_report(status) else {
        return Ok(StatusCode::NO_CONTENT);
    };
    app.store
        .delivery_report(sid.to_owned(), report)
        .await
        .map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
