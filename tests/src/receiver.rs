//! A webhook receiver on loopback, as the customer app's backend or an integrator runs one: it
//! verifies every request's Standard Webhooks signature with the specification's own Rust
//! library (`standardwebhooks`), records what verified, counts what did not, and answers what
//! the test scripts (2xx by default; 503, 429 or 410 on request).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One verified delivery.
#[derive(Debug, Clone)]
pub struct Hook {
    /// The path it was posted to.
    pub path: String,
    /// `webhook-id`.
    pub id: String,
    /// The JSON body.
    pub body: Value,
    /// What the receiver answered.
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Seen {
    hooks: Vec<Hook>,
    bad_signatures: usize,
    script: VecDeque<u16>,
}

/// The running receiver.
pub struct Receiver {
    addr: SocketAddr,
    secret: String,
    seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
}

impl Receiver {
    /// Starts a receiver with a fresh signing secret.
    pub async fn start() -> anyhow::Result<Receiver> {
        let key: [u8; 32] = rand::random();
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        let verifier = Arc::new(standardwebhooks::Webhook::new(&secret)?);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .fallback(receive)
            .with_state((verifier, seen.clone()));
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        Ok(Receiver {
            addr,
            secret,
            seen,
            stop,
        })
    }

    /// `http://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Its signing secret, `whsec_…`.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Writes its secret to `dir/name`, as a deployment's secret file; the file's path.
    pub fn secret_file(&self, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, format!("{}\n", self.secret))?;
        Ok(path)
    }

    /// The next requests are answered with `statuses`, one each, before 200s again.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.lock().script.extend(statuses);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every verified delivery so far.
    pub fn hooks(&self) -> Vec<Hook> {
        self.lock().hooks.clone()
    }

    /// Requests whose signature did not verify.
    pub fn bad_signatures(&self) -> usize {
        self.lock().bad_signatures
    }

    /// Waits until `done` holds for the deliveries so far.
    pub async fn until(&self, done: impl Fn(&[Hook]) -> bool) -> anyhow::Result<Vec<Hook>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let hooks = self.hooks();
            if done(&hooks) {
                return Ok(hooks);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the webhooks never got there: {hooks:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

type Shared = (Arc<standardwebhooks::Webhook>, Arc<Mutex<Seen>>);

async fn receive(
    State((verifier, seen)): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if verifier.verify(&body, &headers).is_err() {
        seen.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let status = seen.script.pop_front().unwrap_or(200);
    seen.hooks.push(Hook {
        path: uri.path().trim_start_matches('/').to_owned(),
        id: headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
        at: std::time::Instant::now(),
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
