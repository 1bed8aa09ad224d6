//! `kill -9` of the gateway ten times during a burst of 1,000 notifications: every message is
//! delivered, and a message delivered twice (sent, then the kill before its outcome was
//! recorded) carries the same idempotency key both times.

use crate::process::{issue_token, start_gateway, write_deployment};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use lockergrid_gateway::notifications::webhook::Secrets;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KILLS: usize = 10;
const MESSAGES: usize = 1_000;
/// How long the receiver takes to answer.
const RECEIVER_LATENCY: Duration = Duration::from_millis(50);

/// Per return id, every `webhook-id` that delivered its drop-off code.
type Received = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

async fn receive(
    State((secrets, received)): State<(Arc<Secrets>, Received)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signature)) = (
        header("webhook-id"),
        header("webhook-timestamp").and_then(|t| t.parse().ok()),
        header("webhook-signature"),
    ) else {
        return StatusCode::BAD_REQUEST;
    };
    if !secrets.verify(id, timestamp, &body, signature) {
        return StatusCode::UNAUTHORIZED;
    }
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(ret) = message["data"]["return_id"].as_str() else {
        return StatusCode::BAD_REQUEST;
    };
    received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(ret.to_owned())
        .or_default()
        .push(id.to_owned());
    // A receiver that takes its time to answer, as real ones do: a kill lands after it has the
    // message and before the gateway hears so, and the message comes again after the restart.
    tokio::time::sleep(RECEIVER_LATENCY).await;
    StatusCode::NO_CONTENT
}

/// Authorises return `n` (retried with its key until a gateway answers); its id.
async fn authorize(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    n: usize,
    app: &str,
) -> anyhow::Result<String> {
    let body = json!({
        "order_id": format!("order-{n}"),
        "station_id": "st-0",
        "parcel": { "length_mm": 200, "width_mm": 150, "height_mm": 100, "weight_g": 500 },
        "recipient": { "id": format!("customer-{n}"), "channels": ["push"],
                       "contact": { "app_url": app } },
    });
    let response = http
        .post(format!("{base}/v1/returns"))
        .bearer_auth(token)
        .header("idempotency-key", format!("burst-{n}"))
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer: Value = response.json().await?;
    anyhow::ensure!(status == 201 || status == 200, "{status} {answer}");
    Ok(answer["id"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_notifications_survives_ten_kills_with_each_duplicate_under_its_own_key()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_deployment(dir.path(), 1, 8);
    let secret = Secrets::generate();
    std::fs::write(dir.path().join("app.whsec"), format!("{secret}\n"))?;
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(
        "[notifications]\nretry_base = \"20ms\"\nretry_max = \"200ms\"\nattempts_per_step = 20\n\
         [notifications.push]\nsecret_file = \"app.whsec\"\n",
    );
    std::fs::write(&config, text)?;

    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app = format!("http://{}/app", listener.local_addr()?);
    let router = axum::Router::new()
        .fallback(receive)
        .with_state((Arc::new(Secrets::parse(&secret)?), received.clone()));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let token = issue_token(&config, "checkout", &[]).await?;
    let http = reqwest::Client::new();
    let mut acked = BTreeSet::new();
    let mut gateway = start_gateway(&config).await?;
    let per_round = MESSAGES / KILLS;
    for round in 0..KILLS {
        for n in round * per_round..(round + 1) * per_round {
            acked.insert(authorize(&http, &gateway.base, &token, n, &app).await?);
        }
        // Killed with this round's messages planned, in flight or not yet attempted.
        gateway.child.start_kill()?;
        gateway.child.wait().await?;
        gateway = start_gateway(&config).await?;
    }
    assert_eq!(acked.len(), MESSAGES);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let delivered = loop {
        let delivered = received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if acked.iter().all(|id| delivered.contains_key(id)) {
            break delivered;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} of {MESSAGES} delivered",
            delivered.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut duplicates = 0;
    for (ret, ids) in &delivered {
        assert!(acked.contains(ret), "{ret} was never acknowledged");
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "{ret} arrived under several ids: {ids:?}"
        );
        duplicates += ids.len() - 1;
    }
    println!(
        "{MESSAGES} messages across {KILLS} kills: all delivered, {duplicates} delivered twice \
         (each under its one id)"
    );
    gateway.child.start_kill()?;
    gateway.child.wait().await?;
    Ok(())
}
