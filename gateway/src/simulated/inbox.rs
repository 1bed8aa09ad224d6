//! The demo customer's app: a webhook endpoint on loopback that `lockergrid up` starts so the
//! demo's messages are delivered somewhere real. It accepts only requests whose Standard
//! Webhooks signature verifies (within five minutes of its clock) and lists what it received at
//! `GET /messages`, newest last, for the README's walk to read the pickup code from.

use crate::notifications::webhook::Secrets;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// How far a webhook's timestamp may be from this clock, seconds.
const TOLERANCE: u64 = 300;
/// Messages kept, the oldest dropped first.
const KEPT: usize = 1_000;

#[derive(Clone)]
struct Inbox {
    secrets: Arc<Secrets>,
    received: Arc<Mutex<Vec<Value>>>,
}

/// The running inbox; dropping it stops it.
pub struct DemoInbox {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl DemoInbox {
    /// Listens on `addr` for webhooks signed with `secrets`.
    pub async fn start(addr: SocketAddr, secrets: Secrets) -> anyhow::Result<DemoInbox> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inbox = Inbox {
            secrets: Arc::new(secrets),
            received: Arc::default(),
        };
        let app = Router::new()
            .route("/messages", get(list))
            .fallback(receive)
            .with_state(inbox);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "the demo inbox stopped");
            }
        });
        Ok(DemoInbox { addr, stop })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DemoInbox {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signature)) = (
        header("webhook-id"),
        header("webhook-timestamp").and_then(|t| t.parse::<u64>().ok()),
        header("webhook-signature"),
    ) else {
        return StatusCode::BAD_REQUEST;
    };
    if now().abs_diff(timestamp) > TOLERANCE
        || !inbox.secrets.verify(id, timestamp, &body, signature)
    {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut received = inbox
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !received.iter().any(|m| m["id"] == id) {
        received.push(json!({ "id": id, "message": message }));
        if received.len() > KEPT {
            received.remove(0);
        }
    }
    StatusCode::NO_CONTENT
}

async fn list(State(inbox): State<Inbox>) -> Json<Value> {
    let received = inbox
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Json(json!({ "messages": received }))
}
