//! A stored parcel and a closed pickup window ask the notification router; its plans, with the
//! reminders it schedules, land in the outbox. A recipient's addresses are sealed: the data
//! directory never holds them in clear, and operators see them masked.

use lockergrid_gateway::auth::Role;
use lockergrid_model::ManualClock;
use lockergrid_protocol::Timestamp;
use lockergrid_tests::{Deployment, Running, files_containing, small_parcel};
use serde_json::{Value, json};
use std::time::Duration;

/// Midnight UTC, inside the recipient's quiet hours.
const START: Timestamp = Timestamp(1_796_083_200_000);
const HOUR: u64 = 3_600_000;
const EMAIL: &str = "chris.recipient@example.com";
const PHONE: &str = "+31687654321";

async fn outbox_until(
    d: &Running,
    operator: &str,
    done: impl Fn(&[Value]) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, page) = d
            .send(
                d.http
                    .get(format!("{}/v1/admin/outbox?limit=1000", d.base))
                    .bearer_auth(operator),
            )
            .await?;
        anyhow::ensure!(status == 200, "{status} {page}");
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        if done(&entries) {
            return Ok(entries);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "outbox never got there: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn planned<'a>(entries: &'a [Value], event: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|e| e["event"] == event && !e["plan"].is_null())
}

fn channels(entry: &Value) -> Vec<(String, u64)> {
    entry["plan"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["channel"].as_str().unwrap_or_default().to_owned(),
                s["delay_minutes"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_stored_parcel_is_planned_with_quiet_hours_and_reminders_and_its_expiry_too()
-> anyhow::Result<()> {
    let clock = ManualClock::new(START);
    let d = Deployment::new()
        .station("st-a", 10)
        .clock(clock.clone())
        .lockers(Duration::from_secs(1))
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let body = json!({
        "order_id": "order-n1",
        "parcel": small_parcel(),
        "tier": "standard",
        "station_id": "st-a",
        "recipient": {
            "id": "cust-1", "channels": ["sms", "email", "push"], "quiet_hours": [1320, 420],
            "contact": { "email": EMAIL, "phone": PHONE, "app_url": "https://app.example.com/hooks/7" },
        },
    });
    let (status, r) = d
        .send(
            d.http
                .post(format!("{}/v1/reservations", d.base))
                .bearer_auth(&checkout)
                .header("idempotency-key", "n1")
                .json(&body),
        )
        .await?;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_str().expect("id");
    let (status, deposit) = d.deposit(&agent, id).await?;
    assert_eq!(status, 200, "{deposit}");

    let entries = outbox_until(&d, &operator, |e| {
        planned(e, "parcel_stored").is_some() && planned(e, "expiring").is_some()
    })
    .await?;
    let stored = planned(&entries, "parcel_stored").expect("planned");
    assert_eq!(stored["recipient"]["id"], "cust-1");
    assert_eq!(
        stored["recipient"]["contact"],
        json!({ "email": "c***@example.com", "phone": "+31*******21", "app_url": "https://app.example.com/…" }),
        "operators see the addresses masked"
    );
    for secret in [EMAIL, PHONE, "hooks/7"] {
        let found = files_containing(&d.gateway.data_dir, secret.as_bytes());
        assert!(found.is_empty(), "{secret} in clear in {found:?}");
    }
    assert_eq!(stored["decided_by"]["plugin"], "notify-multichannel");
    assert_eq!(
        channels(stored),
        [
            ("email".to_owned(), 0),
            ("push".to_owned(), 7 * 60),
            ("sms".to_owned(), 15)
        ],
        "at midnight, inside quiet hours: e-mail now, push at 07:00, SMS as its fallback"
    );
    let expires: Timestamp = serde_json::from_value(deposit["pickup_expires_at"].clone())?;
    let reminder = planned(&entries, "reminder").expect("48 h reminder");
    let expiring = planned(&entries, "expiring").expect("24 h reminder");
    let due = |e: &Value| -> anyhow::Result<u64> {
        Ok(serde_json::from_value::<Timestamp>(e["due_at"].clone())?.millis())
    };
    assert_eq!(due(reminder)?, expires.millis() - 48 * HOUR);
    assert_eq!(due(expiring)?, expires.millis() - 24 * HOUR);

    clock.advance(Duration::from_millis(expires.millis() - START.millis()));
    // Days later: yesterday's operator token has expired (operators' last a day at most).
    let operator = d.token("ops", Role::Operator, &[])?;
    let entries = outbox_until(&d, &operator, |e| planned(e, "expired").is_some()).await?;
    let expired = planned(&entries, "expired").expect("planned");
    assert_eq!(expired["about"]["parcel"], deposit["parcel_id"]);
    assert!(!channels(expired).is_empty());
    d.stop().await
}

#[tokio::test]
async fn a_recipient_with_no_channel_or_a_bad_quiet_hour_is_refused() -> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 10).start().await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    for (n, recipient) in [
        json!({ "id": "c", "channels": [] }),
        json!({ "id": "c", "channels": ["sms", "sms"] }),
        json!({ "id": "c", "channels": ["sms"], "quiet_hours": [0, 1440], "contact": { "phone": "+31612345678" } }),
        json!({ "id": "", "channels": ["sms"] }),
        json!({ "id": "c", "channels": ["pigeon"] }),
        json!({ "id": "c", "channels": ["sms"] }),
        json!({ "id": "c", "channels": ["sms"], "contact": { "email": "c@example.com" } }),
        json!({ "id": "c", "channels": ["email"], "contact": { "email": "c@example.com\r\nBcc: x@example.com" } }),
        json!({ "id": "c", "channels": ["sms"], "contact": { "phone": "0612345678" } }),
        json!({ "id": "c", "channels": ["push"], "contact": { "app_url": "http://app.example.com/h" } }),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({
            "order_id": "o", "parcel": small_parcel(), "tier": "standard",
            "station_id": "st-a", "recipient": recipient,
        });
        let (status, problem) = d
            .send(
                d.http
                    .post(format!("{}/v1/reservations", d.base))
                    .bearer_auth(&checkout)
                    .header("idempotency-key", format!("bad-{n}"))
                    .json(&body),
            )
            .await?;
        assert!(
            status == 422 || status == 400,
            "{recipient}: {status} {problem}"
        );
        assert!(
            problem["type"]
                .as_str()
                .unwrap_or_default()
                .starts_with("urn:lockergrid:problem:")
        );
    }
    d.stop().await
}
