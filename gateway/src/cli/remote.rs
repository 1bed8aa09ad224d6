//! What the commands that act on a running gateway share: where it is, the operator token, and
//! one call that turns a refusal into the gateway's problem detail.

use crate::config::ConfigError;
use anyhow::Context;
use clap::Args;
use serde_json::Value;

/// The gateway a command talks to.
#[derive(Debug, Args)]
pub struct Gateway {
    /// The gateway, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    gateway: String,
    /// An operator token.
    #[arg(long)]
    token: String,
}

impl Gateway {
    /// The URL of `path` there.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.trim_end_matches('/'))
    }

    /// A request to `url` with the operator token.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, url)
            .bearer_auth(&self.token)
    }
}

/// Calls `path` on the gateway; a refusal is the gateway's problem detail, exit 64 when the
/// request was wrong (4xx).
pub async fn call(
    at: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = at.url(path);
    let mut request = at.request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    answer(&url, response).await
}

/// The JSON of a success, or the gateway's problem detail as the error (exit 64 for a 4xx).
pub async fn answer(url: &str, response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        return Ok(answer);
    }
    let detail = answer["detail"].as_str().unwrap_or("no detail").to_owned();
    if status.is_client_error() {
        return Err(ConfigError::Invalid(format!("{url}: {detail} ({status})")).into());
    }
    anyhow::bail!("{url}: {detail} ({status})")
}
