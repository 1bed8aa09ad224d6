//! Webhooks signed as the Standard Webhooks specification says: `webhook-id` (the message's
//! idempotency key), `webhook-timestamp` (Unix seconds) and `webhook-signature`, a
//! space-separated list of `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per secret, so
//! a receiver keeps verifying while secrets rotate. An endpoint that answers 410 Gone is
//! disabled: nothing more is sent to it until the gateway restarts with it configured again.

use super::{SendError, Sent};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use sha2::Sha256;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The prefix of a Standard Webhooks secret.
const SECRET_PREFIX: &str = "whsec_";

/// Signing secrets, the newest first.
#[derive(Clone)]
pub struct Secrets(Vec<Vec<u8>>);

impl Secrets {
    /// Reads `whsec_<base64>` lines from `file`.
    pub fn load(file: &Path) -> anyhow::Result<Secrets> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the webhook secrets {file:?}"))?;
        Secrets::parse(&text).with_context(|| format!("{file:?}"))
    }

    /// Reads `file`, first creating it (readable by the service alone) with one fresh secret if
    /// it does not exist: the deployment's own secret, which its receivers are then given.
    pub fn load_or_create(file: &Path) -> anyhow::Result<Secrets> {
        if !file.exists() {
            let (Some(parent), Some(name)) = (file.parent(), file.file_name()) else {
                anyhow::bail!("{file:?} names no file");
            };
            lockergrid_files::private_dir(parent)
                .with_context(|| format!("cannot create {parent:?}"))?;
            let dir = cap_std::fs::Dir::open_ambient_dir(parent, cap_std::ambient_authority())
                .with_context(|| format!("cannot open {parent:?}"))?;
            let line = format!("{}\n", Secrets::generate());
            lockergrid_files::write_atomic(
                &dir,
                &name.to_string_lossy(),
                line.as_bytes(),
                lockergrid_files::Mode::Private,
            )
            .with_context(|| format!("cannot write {file:?}"))?;
        }
        Secrets::load(file)
    }

    /// Parses `whsec_<base64>` lines; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> anyhow::Result<Secrets> {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let encoded = line
                    .strip_prefix(SECRET_PREFIX)
                    .context("a webhook secret starts with whsec_")?;
                let key = STANDARD
                    .decode(encoded)
                    .context("a webhook secret is base64 after whsec_")?;
                anyhow::ensure!(
                    (24..=64).contains(&key.len()),
                    "a webhook secret has 24 to 64 bytes"
                );
                Ok(key)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!keys.is_empty(), "no webhook secret");
        Ok(Secrets(keys))
    }

    /// The `webhook-signature` header for `body` sent as `id` at `timestamp`.
    pub fn signature(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        self.0
            .iter()
            .map(|key| {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .expect("HMAC-SHA256 accepts a key of any length");
                mac.update(format!("{id}.{timestamp}.").as_bytes());
                mac.update(body);
                format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Secrets {
    /// Whether `header` (a `webhook-signature`) holds a valid signature by one of these secrets
    /// of `body` sent as `id` at `timestamp`.
    pub fn verify(&self, id: &str, timestamp: u64, body: &[u8], header: &str) -> bool {
        let given: Vec<Vec<u8>> = header
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .collect();
        self.0.iter().any(|key| {
            given.iter().any(|signature| {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .expect("HMAC-SHA256 accepts a key of any length");
                mac.update(format!("{id}.{timestamp}.").as_bytes());
                mac.update(body);
                mac.verify_slice(signature).is_ok()
            })
        })
    }

    /// A fresh secret, as a `whsec_` line.
    pub fn generate() -> String {
        let key: [u8; 32] = rand::random();
        format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
    }
}

/// Sends signed webhooks and remembers the endpoints that answered 410.
pub struct Webhooks {
    http: reqwest::Client,
    disabled: Mutex<BTreeSet<String>>,
}

impl Webhooks {
    /// A sender whose requests time out after `timeout`.
    pub fn new(timeout: Duration) -> anyhow::Result<Webhooks> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the webhook client")?;
        Ok(Webhooks {
            http,
            disabled: Mutex::new(BTreeSet::new()),
        })
    }

    fn disabled(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.disabled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// POSTs `body` to `url` as message `id`, signed with `secrets` at `timestamp`.
    pub async fn send(
        &self,
        url: &str,
        secrets: &Secrets,
        (id, timestamp): (&str, u64),
        body: Vec<u8>,
    ) -> Result<Sent, SendError> {
        if self.disabled().contains(url) {
            return Err(SendError::Permanent(
                "the endpoint answered 410 Gone earlier and is disabled".into(),
            ));
        }
        let signature = secrets.signature(id, timestamp, &body);
        let answer = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(e) => return Err(transport_error(&e)),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(Sent::Delivered);
        }
        if status == StatusCode::GONE {
            self.disabled().insert(url.to_owned());
            return Err(SendError::Permanent(
                "the endpoint answered 410 Gone; disabled".into(),
            ));
        }
        Err(http_status(status, retry_after(&response)))
    }
}

/// A failure before any answer: timeouts and connection failures are worth another try.
pub fn transport_error(e: &reqwest::Error) -> SendError {
    let error = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    SendError::Transient { error, after: None }
}

/// Timeouts (408), 429 and 5xx are retried, honouring Retry-After; other answers are final.
pub fn http_status(status: StatusCode, after: Option<Duration>) -> SendError {
    let error = format!("http {}", status.as_u16());
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        SendError::Transient { error, after }
    } else {
        SendError::Permanent(error)
    }
}

/// A Retry-After in seconds (the HTTP-date form is not used by the providers we speak to).
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests;
