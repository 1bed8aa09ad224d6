//! Deposit and pickup as physical flows through simulated lockers over TLS 1.3: the deposit
//! counts only when the released door closes again, a code typed on the locker's keypad opens its
//! compartment by signed command and is spent when the door closes, and wrong or spent codes open
//! nothing.

use lockergrid_gateway::auth::Role;
use lockergrid_tests::{Deployment, Running};
use serde_json::Value;
use std::time::Duration;

/// The access-log entries with `action` about `target`.
fn entries<'a>(log: &'a [Value], action: &str, target: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|e| e["action"] == action && e["target"] == target)
        .collect()
}

async fn parcel(d: &Running, token: &str, id: &str) -> anyhow::Result<Value> {
    let (status, p) = d
        .send(
            d.http
                .get(format!("{}/v1/parcels/{id}", d.base))
                .bearer_auth(token),
        )
        .await?;
    anyhow::ensure!(status == 200, "{p}");
    Ok(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_counts_when_the_door_closes_and_a_keypad_code_opens_it_once()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 8)
        .lockers(Duration::from_secs(1))
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let (status, r) = d.reserve(&checkout, "door-1", "st-a").await?;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_str().expect("id");
    let compartment = r["compartment_id"].as_str().expect("compartment");

    // The agent asks; the locker releases the latch; nothing counts while the door is open.
    let (status, waiting) = d
        .send(
            d.http
                .post(format!("{}/v1/reservations/{id}/deposit", d.base))
                .bearer_auth(&agent)
                .header("prefer", "wait=0"),
        )
        .await?;
    assert_eq!(status, 202, "{waiting}");
    assert_eq!(waiting["status"], "awaiting_door");
    assert_eq!(waiting["compartment_id"], compartment);
    let parcel_id = waiting["parcel_id"].as_str().expect("parcel").to_owned();
    d.locker_until("st-a", |s| s["unlatched"][0] == compartment)
        .await?;
    assert_eq!(
        d.locker("st-a", &format!("open {compartment}")).await?,
        "ok"
    );
    assert_eq!(
        parcel(&d, &checkout, &parcel_id).await?["status"],
        "reserved"
    );
    assert_eq!(
        d.locker("st-a", &format!("close {compartment}")).await?,
        "ok"
    );
    let url = format!("{}/v1/parcels/{parcel_id}", d.base);
    d.get_until(&url, &checkout, |p| p["status"] == "stored")
        .await?;
    // The customer lost the first code: the checkout side has a new one sent, the old one
    // stops working.
    // A retry of the resend under its Idempotency-Key issues nothing more.
    let first = d.pickup_code(&parcel_id).await?;
    let resend = || {
        d.send(
            d.http
                .post(format!("{url}/code"))
                .bearer_auth(&checkout)
                .header("idempotency-key", "lost-it"),
        )
    };
    let (status, reissued) = resend().await?;
    assert_eq!(status, 202, "{reissued}");
    assert!(reissued.get("pickup_code").is_none(), "{reissued}");
    let (status, again) = resend().await?;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["message_id"], reissued["message_id"]);
    let (_, page) = d
        .send(
            d.http
                .get(format!("{}/v1/admin/notifications", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    let carrying = page["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["about"]["parcel"] == parcel_id.as_str() && m["event"] == "parcel_stored")
        .count();
    assert_eq!(carrying, 2, "the first code and one resent: {page}");
    let codes = d.codes("parcel_id", &parcel_id, 2).await?;
    let code = codes.last().expect("the new code").clone();
    assert_ne!(code, first);

    // A wrong code at the keypad opens nothing and is logged.
    assert_eq!(d.locker("st-a", "press 00000000#").await?, "ok");
    let log_url = format!("{}/v1/admin/access-log?limit=1000", d.base);
    d.get_until(&log_url, &operator, |page| {
        page["entries"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["outcome"] == "code_rejected"))
    })
    .await?;
    let status = d.locker_until("st-a", |s| s["queued_events"] == 0).await?;
    assert_eq!(status["unlatched"], serde_json::json!([]), "nothing opened");

    // The right code releases the compartment; the code is spent when the door closes.
    assert_eq!(d.locker("st-a", &format!("press {code}#")).await?, "ok");
    d.open_and_close("st-a", compartment).await?;
    d.get_until(&url, &checkout, |p| p["status"] == "picked_up")
        .await?;
    let (_, station) = d
        .send(
            d.http
                .get(format!("{}/v1/stations/st-a", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(station["sizes"]["small"]["states"]["occupied"], 0);

    // The same code again opens nothing.
    assert_eq!(d.locker("st-a", &format!("press {code}#")).await?, "ok");
    d.get_until(&log_url, &operator, |page| {
        page["entries"]
            .as_array()
            .is_some_and(|e| e.iter().filter(|e| e["outcome"] == "code_rejected").count() == 2)
    })
    .await?;
    let status = d.locker_until("st-a", |s| s["queued_events"] == 0).await?;
    assert_eq!(status["unlatched"], serde_json::json!([]));

    let log = d.access_log(&operator).await?;
    assert_eq!(entries(&log, "deposit", &parcel_id).len(), 1);
    assert_eq!(entries(&log, "pickup", &parcel_id).len(), 1);
    let unlocks = entries(&log, "unlock", &parcel_id);
    assert_eq!(unlocks.len(), 1, "one unlock for the pickup");
    assert_eq!(unlocks[0]["actor"]["subject"], "locker:st-a");
    assert_eq!(unlocks[0]["decided_by"]["world"], "site-rules");
    assert!(
        log.iter()
            .any(|e| e["action"] == "command" && e["outcome"] == "executed"),
        "the locker acknowledged its commands"
    );

    // Operators see the device plane at work.
    let metrics = d.metrics().await?;
    let value = |line: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in\n{metrics}"))
    };
    assert_eq!(
        value("lockergrid_device_commands_total{outcome=\"executed\"}"),
        2.0
    );
    assert_eq!(
        value("lockergrid_device_events_total{event=\"door_closed\",result=\"applied\"}"),
        2.0
    );
    assert_eq!(
        value("lockergrid_device_events_total{event=\"code_entered\",result=\"applied\"}"),
        3.0
    );
    assert!(metrics.contains("lockergrid_lockers_online 1"), "{metrics}");
    assert!(
        metrics.contains("lockergrid_device_commands_pending 0"),
        "{metrics}"
    );
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jammed_latch_fails_the_deposit_with_a_problem_and_the_reservation_stays_held()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 4)
        .lockers(Duration::from_secs(1))
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let (_, r) = d.reserve(&checkout, "jam-1", "st-a").await?;
    let id = r["id"].as_str().expect("id");
    let compartment = r["compartment_id"].as_str().expect("compartment");
    assert_eq!(d.locker("st-a", &format!("jam {compartment}")).await?, "ok");
    let (status, problem) = d
        .send(
            d.http
                .post(format!("{}/v1/reservations/{id}/deposit", d.base))
                .bearer_auth(&agent),
        )
        .await?;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        problem["type"],
        "urn:lockergrid:problem:locker-did-not-unlock"
    );
    assert_eq!(problem["command_status"], "failed");
    let (_, r) = d
        .send(
            d.http
                .get(format!("{}/v1/reservations/{id}", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(r["status"], "held");
    d.stop().await
}
