//! Notification benchmarks.
//!
//! 11. Delivery throughput: returns authorised over HTTP by concurrent clients, each writing one
//!     message with its drop-off code, until every message is accepted by the receiver — the
//!     real SMTP server (aiosmtpd, STARTTLS, TLS 1.3) or the customer app's webhook receiver
//!     (signatures verified). Latency is per message, from its authorisation's answer to the
//!     receiver taking it (webhooks; the SMTP server's files have no return id to match).
//! 12. Door closing → e-mail accepted: one deposit at a time through a simulated locker's door,
//!     timed from the door's `close` to the moment the SMTP server wrote the message.

use crate::latency::Report;
use lockergrid_gateway::auth::Role;
use lockergrid_tests::Deployment;
use lockergrid_tests::mail::MailServer;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinSet;

/// Which receiver a throughput run delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// The SMTP server.
    Smtp,
    /// The customer app's webhook endpoint.
    Webhook,
}

/// Benchmark 11: `n` messages from `clients` concurrent checkout clients to `receiver`.
pub async fn throughput(n: usize, clients: usize, receiver: Receiver) -> anyhow::Result<Report> {
    let mail = MailServer::start().await?;
    let d = Arc::new(
        Deployment::new()
            .station("bench-a", 100)
            .mail(&mail)
            .start()
            .await?,
    );
    let token = Arc::new(d.token("bench", Role::Checkout, &[])?);
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for worker in 0..clients {
        let (d, token) = (d.clone(), token.clone());
        workers.spawn(async move {
            let mut answered = Vec::new();
            for i in (worker..n).step_by(clients) {
                let recipient = match receiver {
                    Receiver::Webhook => d.customer(&format!("bench-{i}")),
                    Receiver::Smtp => json!({ "id": format!("c-{i}"), "channels": ["email"],
                                              "contact": { "email": format!("c{i}@example.com") } }),
                };
                let body = json!({ "order_id": format!("o-{i}"), "station_id": "bench-a",
                                   "parcel": { "length_mm": 200, "width_mm": 150, "height_mm": 100, "weight_g": 500 },
                                   "recipient": recipient });
                let (status, r) = d
                    .send(
                        d.http
                            .post(format!("{}/v1/returns", d.base))
                            .bearer_auth(token.as_str())
                            .json(&body),
                    )
                    .await?;
                anyhow::ensure!(status == 201, "{status} {r}");
                answered.push((r["id"].as_str().unwrap_or_default().to_owned(), Instant::now()));
            }
            Ok::<_, anyhow::Error>(answered)
        });
    }
    let mut answered = HashMap::new();
    while let Some(done) = workers.join_next().await {
        answered.extend(done??);
    }
    let latencies = match receiver {
        Receiver::Smtp => {
            let deadline = Instant::now() + Duration::from_secs(300);
            while mail.count()? < n {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "{} of {n} e-mails",
                    mail.count()?
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Vec::new()
        }
        Receiver::Webhook => {
            let hooks = d
                .app
                .until(|hooks| hooks.iter().filter(|h| h.status < 300).count() >= n)
                .await?;
            hooks
                .iter()
                .filter_map(|h| {
                    let id = h.body["data"]["return_id"].as_str()?;
                    Some(h.at.saturating_duration_since(*answered.get(id)?))
                })
                .collect()
        }
    };
    let elapsed = started.elapsed();
    let name = match receiver {
        Receiver::Smtp => format!(
            "messages authorised → accepted by the SMTP server (aiosmtpd, STARTTLS), {clients} clients"
        ),
        Receiver::Webhook => format!(
            "messages authorised → accepted by the app's webhook receiver, {clients} clients"
        ),
    };
    let mut report = Report::new(name, latencies, elapsed);
    report.ops = n;
    report.per_second = n as f64 / elapsed.as_secs_f64();
    if let Ok(d) = Arc::try_unwrap(d) {
        d.stop().await?;
    }
    Ok(report)
}

/// Benchmark 12: `n` deposits one after another, each timed from its door closing to its e-mail
/// accepted by the SMTP server.
pub async fn door_to_email(n: usize) -> anyhow::Result<Report> {
    let mail = MailServer::start().await?;
    let d = Deployment::new()
        .station("bench-a", n as u32 + 10)
        .lockers(Duration::from_secs(5))
        .mail(&mail)
        .start()
        .await?;
    let checkout = d.token("bench", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["bench-a"])?;
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let body = json!({ "order_id": format!("o-{i}"), "parcel": { "length_mm": 200, "width_mm": 150, "height_mm": 100, "weight_g": 500 },
                           "tier": "standard", "station_id": "bench-a",
                           "recipient": { "id": format!("c-{i}"), "channels": ["email"],
                                          "contact": { "email": format!("c{i}@example.com") } } });
        let (status, r) = d
            .send(
                d.http
                    .post(format!("{}/v1/reservations", d.base))
                    .bearer_auth(&checkout)
                    .header("idempotency-key", format!("k-{i}"))
                    .json(&body),
            )
            .await?;
        anyhow::ensure!(status == 201, "{status} {r}");
        let compartment = r["compartment_id"].as_str().unwrap_or_default().to_owned();
        let id = r["id"].as_str().unwrap_or_default().to_owned();
        let request = d.send(
            d.http
                .post(format!("{}/v1/reservations/{id}/deposit", d.base))
                .bearer_auth(&agent),
        );
        tokio::pin!(request);
        let door = async {
            d.locker_until("bench-a", |s| {
                s["unlatched"]
                    .as_array()
                    .is_some_and(|u| u.iter().any(|c| c == compartment.as_str()))
            })
            .await?;
            d.locker("bench-a", &format!("open {compartment}")).await?;
            d.locker("bench-a", &format!("close {compartment}")).await?;
            Ok::<_, anyhow::Error>(SystemTime::now())
        };
        let closed = tokio::select! {
            answer = &mut request => anyhow::bail!("deposit answered before its door: {answer:?}"),
            closed = door => closed?,
        };
        let (status, deposit) = request.await?;
        anyhow::ensure!(status == 200, "{status} {deposit}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let accepted = loop {
            if let Some(at) = mail.newest(i + 1)? {
                break at;
            }
            anyhow::ensure!(Instant::now() < deadline, "e-mail {i} never came");
            tokio::time::sleep(Duration::from_micros(500)).await;
        };
        latencies.push(accepted.duration_since(closed).unwrap_or_default());
    }
    let elapsed = started.elapsed();
    d.stop().await?;
    Ok(Report::new(
        "door closed → e-mail accepted by the SMTP server (one deposit at a time)",
        latencies,
        elapsed,
    ))
}
