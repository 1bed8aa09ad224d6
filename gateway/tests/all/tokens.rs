//! Token keys rotate one at a time and revocations hold across a restart, through the real
//! binary: tokens from `lockergrid token issue`, changes over HTTP, a `kill -9` between.

use crate::process::{Gateway, binary, start_gateway, write_deployment};
use serde_json::{Value, json};
use std::path::Path;
use tokio::process::Command;

/// A token from the command line and the id it reports.
async fn issue(
    config: &Path,
    role: &str,
    subject: &str,
    extra: &[&str],
) -> anyhow::Result<(String, String)> {
    let out = Command::new(binary())
        .args(["token", "issue", "--config"])
        .arg(config)
        .args(["--role", role, "--subject", subject])
        .args(extra)
        .output()
        .await?;
    anyhow::ensure!(out.status.success(), "token issue failed: {out:?}");
    let stderr = String::from_utf8(out.stderr)?;
    let id = stderr
        .strip_prefix("token id ")
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("no token id in {stderr:?}"))?;
    Ok((
        String::from_utf8(out.stdout)?.trim().to_owned(),
        id.to_owned(),
    ))
}

/// Status and body of a request with `token`.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn stations(g: &Gateway, token: &str) -> anyhow::Result<(u16, Value)> {
    let http = reqwest::Client::new();
    call(
        &http,
        reqwest::Method::GET,
        format!("{}/v1/stations/st-0", g.base),
        token,
        None,
    )
    .await
}

#[tokio::test]
async fn keys_rotate_one_at_a_time_and_revocations_hold_across_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_deployment(dir.path(), 1, 4);
    let mut g = start_gateway(&config).await?;
    let http = reqwest::Client::new();
    let (ops, _) = issue(&config, "operator", "ops", &[]).await?;
    let (shop_old, _) = issue(&config, "checkout", "shop", &[]).await?;
    let keys = format!("{}/v1/admin/token-keys", g.base);
    let (status, listed) = call(&http, reqwest::Method::GET, keys.clone(), &ops, None).await?;
    assert_eq!(status, 200, "{listed}");
    let first = listed["keys"][0]["id"].as_str().expect("id").to_owned();

    let (status, rotated) = call(&http, reqwest::Method::POST, keys.clone(), &ops, None).await?;
    assert_eq!(status, 201, "{rotated}");
    let second = rotated["key"].as_str().expect("key").to_owned();
    let (shop_new, _) = issue(&config, "checkout", "shop", &[]).await?;
    assert!(
        shop_new.starts_with(&format!("lgt2.{second}.")),
        "the CLI signs with the new key"
    );
    for token in [&shop_old, &shop_new] {
        assert_eq!(stations(&g, token).await?.0, 200);
    }
    let (status, problem) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{keys}/{second}"),
        &ops,
        None,
    )
    .await?;
    assert_eq!(status, 409, "the signing key stays: {problem}");
    let (status, _) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{keys}/{first}"),
        &ops,
        None,
    )
    .await?;
    assert_eq!(status, 204);
    let (status, problem) = stations(&g, &shop_old).await?;
    assert_eq!(status, 401, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap_or("").contains(&first),
        "{problem}"
    );
    assert_eq!(stations(&g, &shop_new).await?.0, 200);
    // The operator token was signed by the retired key too.
    let (ops, _) = issue(&config, "operator", "ops", &[]).await?;

    let (one, one_id) = issue(&config, "agent", "agent-7", &["--station", "st-0"]).await?;
    let (two, _) = issue(&config, "agent", "agent-7", &["--station", "st-0"]).await?;
    let (other, _) = issue(&config, "agent", "agent-8", &["--station", "st-0"]).await?;
    let revocations = format!("{}/v1/admin/revocations", g.base);
    let revoke = |body: Value| {
        call(
            &http,
            reqwest::Method::POST,
            revocations.clone(),
            &ops,
            Some(body),
        )
    };
    let (status, problem) = revoke(json!({ "token_id": one_id, "subject": "agent-7" })).await?;
    assert_eq!(status, 422, "{problem}");
    let (status, _) = revoke(json!({ "token_id": one_id })).await?;
    assert_eq!(status, 201);
    assert_eq!(stations(&g, &one).await?.0, 401);
    assert_eq!(stations(&g, &two).await?.0, 200);
    let (status, _) = revoke(json!({ "subject": "agent-7" })).await?;
    assert_eq!(status, 201);
    let (later, _) = issue(&config, "agent", "agent-7", &["--station", "st-0"]).await?;
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        revocations.clone(),
        &shop_new,
        Some(json!({ "subject": "ops" })),
    )
    .await?;
    assert_eq!(status, 403, "only an operator revokes");

    g.child.start_kill()?;
    g.child.wait().await?;
    let g = start_gateway(&config).await?;
    for token in [&one, &two, &shop_old] {
        let (status, problem) = stations(&g, token).await?;
        assert_eq!(status, 401, "{problem}");
    }
    for token in [&other, &later, &shop_new, &ops] {
        assert_eq!(stations(&g, token).await?.0, 200);
    }
    let (status, log) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/v1/admin/access-log?limit=1000", g.base),
        &ops,
        None,
    )
    .await?;
    assert_eq!(status, 200);
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("token"))
        .collect();
    assert_eq!(
        actions,
        [
            "token_key_rotated",
            "token_key_retired",
            "tokens_revoked",
            "tokens_revoked"
        ]
    );
    Ok(())
}
