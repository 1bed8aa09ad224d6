//! Discover, reserve, deposit, pick up, over HTTP.

use lockergrid_gateway::auth::Role;
use lockergrid_tests::{Deployment, small_parcel};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn reserve_deposit_pickup_walks_the_whole_flow() -> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 40)
        .station("st-b", 40)
        .lockers(Duration::from_secs(1))
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("agent-1", Role::Agent, &["st-a"])?;
    let touchscreen = d.token("st-a-screen", Role::Station, &["st-a"])?;

    let (status, list) = d
        .send(
            d.http
                .get(format!(
                    "{}/v1/stations?lat=52.37&lon=4.89&radius_m=5000&size=small",
                    d.base
                ))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["stations"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        list["stations"][0]["id"], "st-a",
        "the nearer of two empty stations first"
    );

    let (status, r) = d.reserve(&checkout, "k-1", "st-a").await?;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "held");
    assert_eq!(r["size"], "small");
    let id = r["id"].as_str().expect("id").to_owned();

    let (status, deposit) = d.deposit(&agent, &id).await?;
    assert_eq!(status, 200, "{deposit}");
    assert_eq!(deposit["status"], "stored", "counted once the door closed");
    assert!(
        deposit.get("pickup_code").is_none(),
        "the courier never learns the code: {deposit}"
    );
    let parcel_id = deposit["parcel_id"].as_str().expect("parcel");
    let code = d.pickup_code(parcel_id).await?;
    assert_eq!(code.len(), 8);

    let (status, station) = d
        .send(
            d.http
                .get(format!("{}/v1/stations/st-a", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(station["sizes"]["small"]["states"]["occupied"], 1);

    let (status, pickup) = d
        .send(
            d.http
                .post(format!("{}/v1/stations/st-a/code-entry", d.base))
                .bearer_auth(&touchscreen)
                .json(&json!({ "code": code })),
        )
        .await?;
    assert_eq!(status, 200, "{pickup}");
    assert_eq!(pickup["status"], "unlocking");
    let parcel = deposit["parcel_id"].as_str().expect("parcel id");
    assert_eq!(pickup["parcel_id"], parcel);
    let url = format!("{}/v1/parcels/{parcel}", d.base);
    let (_, p) = d.send(d.http.get(&url).bearer_auth(&checkout)).await?;
    assert_eq!(
        p["status"], "stored",
        "nothing is spent before the door closes"
    );
    let compartment = pickup["compartment_id"].as_str().expect("compartment");
    d.open_and_close("st-a", compartment).await?;
    let p = d
        .get_until(&url, &checkout, |p| p["status"] == "picked_up")
        .await?;
    assert!(p["stored_at"].is_string() && p["picked_up_at"].is_string());

    let (status, again) = d
        .send(
            d.http
                .post(format!("{}/v1/stations/st-a/code-entry", d.base))
                .bearer_auth(&touchscreen)
                .json(&json!({ "code": code })),
        )
        .await?;
    assert_eq!(status, 422, "a spent code is refused: {again}");
    d.stop().await
}

#[tokio::test]
async fn reserving_near_a_point_picks_the_station_discovery_ranks_first() -> anyhow::Result<()> {
    // Four empty stations 1 km apart; the point is next to st-b, and st-d lies outside the
    // radius.
    let d = Deployment::new()
        .station("st-a", 30)
        .station("st-b", 30)
        .station("st-c", 30)
        .station("st-d", 30)
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let url = format!(
        "{}/v1/stations?lat=52.37&lon=4.905&radius_m=1500&size=small",
        d.base
    );
    let (status, listed) = d.send(d.http.get(url).bearer_auth(&checkout)).await?;
    assert_eq!(status, 200, "{listed}");
    let ranked: Vec<&str> = listed["stations"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ranked.len(), 3, "st-d is outside the radius: {listed}");
    assert_eq!(
        ranked[0], "st-b",
        "the nearest of equally empty stations: {listed}"
    );
    let body = json!({
        "order_id": "o-near",
        "parcel": small_parcel(),
        "tier": "prime",
        "near": { "lat": 52.37, "lon": 4.905, "radius_m": 1500 },
    });
    let (status, r) = d
        .send(
            d.http
                .post(format!("{}/v1/reservations", d.base))
                .bearer_auth(&checkout)
                .header("idempotency-key", "near-1")
                .json(&body),
        )
        .await?;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["station_id"], ranked[0], "{r}");
    d.stop().await
}

#[tokio::test]
async fn idempotency_keys_replay_the_same_answer_and_refuse_a_different_body() -> anyhow::Result<()>
{
    let d = Deployment::new().station("st-a", 30).start().await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let (s1, first) = d.reserve(&checkout, "same-key", "st-a").await?;
    let (s2, second) = d.reserve(&checkout, "same-key", "st-a").await?;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(first, second);
    let other = json!({
        "order_id": "another-order",
        "parcel": small_parcel(),
        "tier": "standard",
        "station_id": "st-a",
    });
    let (status, problem) = d
        .send(
            d.http
                .post(format!("{}/v1/reservations", d.base))
                .bearer_auth(&checkout)
                .header("idempotency-key", "same-key")
                .json(&other),
        )
        .await?;
    assert_eq!(status, 422);
    assert_eq!(
        problem["type"],
        "urn:lockergrid:problem:idempotency-key-reused"
    );
    d.stop().await
}

#[tokio::test]
async fn a_full_station_answers_409_with_the_nearest_stations_that_have_room() -> anyhow::Result<()>
{
    let d = Deployment::new()
        .station("tiny", 1)
        .station("roomy", 30)
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    assert_eq!(d.reserve(&checkout, "a", "tiny").await?.0, 201);
    let (status, problem) = d.reserve(&checkout, "b", "tiny").await?;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "urn:lockergrid:problem:no-capacity");
    assert_eq!(problem["alternatives"][0]["id"], "roomy");
    d.stop().await
}

#[tokio::test]
async fn an_ineligible_parcel_gets_422_naming_the_limit() -> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 30).start().await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let body = json!({
        "order_id": "heavy",
        "parcel": { "length_mm": 300, "width_mm": 200, "height_mm": 100, "weight_g": 16_000 },
        "tier": "standard",
        "station_id": "st-a",
    });
    let (status, problem) = d
        .send(
            d.http
                .post(format!("{}/v1/reservations", d.base))
                .bearer_auth(&checkout)
                .header("idempotency-key", "heavy")
                .json(&body),
        )
        .await?;
    assert_eq!(status, 422);
    assert_eq!(problem["type"], "urn:lockergrid:problem:ineligible-parcel");
    assert_eq!(problem["limit"], "max_weight");
    d.stop().await
}

#[tokio::test]
async fn five_wrong_codes_lock_the_station_with_429() -> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 30).start().await?;
    let touchscreen = d.token("screen", Role::Station, &["st-a"])?;
    let enter = |code: &str| {
        d.http
            .post(format!("{}/v1/stations/st-a/code-entry", d.base))
            .bearer_auth(&touchscreen)
            .json(&json!({ "code": code }))
    };
    for i in 0..5 {
        let (status, _) = d.send(enter(&format!("{i:08}"))).await?;
        assert_eq!(status, 422, "attempt {i}");
    }
    let response = enter("12345678").send().await?;
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_codes_gets_no_more_checked_than_the_budget() -> anyhow::Result<()> {
    const BURST: usize = 300;
    let d = Deployment::new().station("st-a", 30).start().await?;
    let touchscreen = d.token("screen", Role::Station, &["st-a"])?;
    let mut answers = tokio::task::JoinSet::new();
    for i in 0..BURST {
        let request = d
            .http
            .post(format!("{}/v1/stations/st-a/code-entry", d.base))
            .bearer_auth(&touchscreen)
            .json(&json!({ "code": format!("{:08}", i * 7_919) }));
        answers.spawn(request.send());
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(answer) = answers.join_next().await {
        *statuses.entry(answer??.status().as_u16()).or_default() += 1;
    }
    let checked = statuses.get(&422).copied().unwrap_or(0);
    assert!(
        checked <= lockergrid_protocol::lockout::FREE_FAILURES as usize,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.get(&429).copied().unwrap_or(0),
        BURST - checked,
        "{statuses:?}"
    );
    d.stop().await
}

#[tokio::test]
async fn health_and_metrics_report_the_work_done() -> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 30).start().await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    d.reserve(&checkout, "m-1", "st-a").await?;
    let (status, health) = d.send(d.http.get(format!("{}/healthz", d.base))).await?;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    let metrics = d.metrics().await?;
    for name in [
        "lockergrid_http_requests_total",
        "lockergrid_http_request_duration_seconds_bucket",
        "lockergrid_reservations_total{outcome=\"held\"} 1",
        "lockergrid_writer_batch_size_bucket",
        "lockergrid_snapshot_age_seconds",
        "lockergrid_reservation_conflicts_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    d.stop().await
}
