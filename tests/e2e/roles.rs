//! Roles and station scopes: refusals are 403 problems and land in the access log.

use lockergrid_gateway::auth::Role;
use lockergrid_tests::{Deployment, Running};
use serde_json::{Value, json};

async fn access_log(d: &Running) -> anyhow::Result<Vec<Value>> {
    let operator = d.token("ops", Role::Operator, &[])?;
    let (status, log) = d
        .send(
            d.http
                .get(format!("{}/v1/admin/access-log?limit=1000", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    assert_eq!(status, 200, "{log}");
    Ok(log["entries"].as_array().cloned().unwrap_or_default())
}

async fn reserved(d: &Running, station: &str) -> anyhow::Result<String> {
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let (status, r) = d
        .reserve(&checkout, &format!("k-{station}"), station)
        .await?;
    assert_eq!(status, 201, "{r}");
    Ok(r["id"].as_str().expect("id").to_owned())
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401() -> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 30).start().await?;
    let url = format!("{}/v1/stations/st-a", d.base);
    let (status, problem) = d.send(d.http.get(&url)).await?;
    assert_eq!(status, 401);
    assert_eq!(problem["type"], "urn:lockergrid:problem:unauthorized");
    let (status, _) = d
        .send(d.http.get(&url).bearer_auth("lgt1.forged.token"))
        .await?;
    assert_eq!(status, 401);
    d.stop().await
}

#[tokio::test]
async fn an_agent_cannot_deposit_outside_its_route_and_the_refusal_is_logged() -> anyhow::Result<()>
{
    let d = Deployment::new()
        .station("st-a", 30)
        .station("st-b", 30)
        .start()
        .await?;
    let id = reserved(&d, "st-b").await?;
    let agent = d.token("agent-a-only", Role::Agent, &["st-a"])?;
    let (status, problem) = d
        .send(
            d.http
                .post(format!("{}/v1/reservations/{id}/deposit", d.base))
                .bearer_auth(&agent),
        )
        .await?;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "urn:lockergrid:problem:forbidden");
    let log = access_log(&d).await?;
    assert!(log.iter().any(|e| e["action"] == "denied"
        && e["actor"]["subject"] == "agent-a-only"
        && e["target"].as_str().is_some_and(|t| t.contains("/deposit"))));
    d.stop().await
}

#[tokio::test]
async fn an_operator_can_neither_create_nor_use_pickup_codes() -> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 30).start().await?;
    let id = reserved(&d, "st-a").await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let (status, _) = d
        .send(
            d.http
                .post(format!("{}/v1/reservations/{id}/deposit", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    assert_eq!(status, 403, "an operator cannot create a pickup code");
    let (status, _) = d
        .send(
            d.http
                .post(format!("{}/v1/stations/st-a/code-entry", d.base))
                .bearer_auth(&operator)
                .json(&json!({ "code": "12345678" })),
        )
        .await?;
    assert_eq!(status, 403, "an operator cannot enter codes");
    let (status, r) = d
        .send(
            d.http
                .get(format!("{}/v1/reservations/{id}", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    assert_eq!(status, 200);
    assert!(
        !r.to_string().contains("code"),
        "no code in what an operator sees: {r}"
    );
    d.stop().await
}

#[tokio::test]
async fn a_touchscreen_token_works_only_at_its_own_station() -> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 30)
        .station("st-b", 30)
        .start()
        .await?;
    let screen = d.token("screen-a", Role::Station, &["st-a"])?;
    let (status, _) = d
        .send(
            d.http
                .post(format!("{}/v1/stations/st-b/code-entry", d.base))
                .bearer_auth(&screen)
                .json(&json!({ "code": "12345678" })),
        )
        .await?;
    assert_eq!(status, 403);
    d.stop().await
}

#[tokio::test]
async fn checkout_cannot_read_the_access_log_or_collect_parcels() -> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 30).start().await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let (status, _) = d
        .send(
            d.http
                .get(format!("{}/v1/admin/access-log", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(status, 403);
    let (status, _) = d
        .send(
            d.http
                .post(format!("{}/v1/parcels/pcl_x/collect", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(status, 403);
    d.stop().await
}

#[tokio::test]
async fn a_merchants_records_are_not_found_with_another_merchants_token() -> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 30).start().await?;
    let shop = d.token("shop", Role::Checkout, &[])?;
    let rival = d.token("rival-shop", Role::Checkout, &[])?;
    let (status, r) = d.reserve(&shop, "mine", "st-a").await?;
    assert_eq!(status, 201, "{r}");
    let (reservation, parcel) = (r["id"].as_str().unwrap(), r["parcel_id"].as_str().unwrap());
    let body = json!({
        "order_id": "back-1",
        "station_id": "st-a",
        "parcel": { "length_mm": 200, "width_mm": 150, "height_mm": 100, "weight_g": 800 },
    });
    let url = format!("{}/v1/returns", d.base);
    let (status, ret) = d
        .send(d.http.post(url).bearer_auth(&shop).json(&body))
        .await?;
    assert_eq!(status, 201, "{ret}");
    let ret = ret["id"].as_str().unwrap();
    for path in [
        format!("/v1/reservations/{reservation}"),
        format!("/v1/parcels/{parcel}"),
        format!("/v1/returns/{ret}"),
    ] {
        let url = format!("{}{path}", d.base);
        let (mine, _) = d.send(d.http.get(&url).bearer_auth(&shop)).await?;
        assert_eq!(mine, 200, "{path} for its merchant");
        let (theirs, problem) = d.send(d.http.get(&url).bearer_auth(&rival)).await?;
        assert_eq!(theirs, 404, "{path}: {problem}");
        assert_eq!(problem["type"], "urn:lockergrid:problem:not-found");
    }
    // Nor can the rival change one: re-issuing the parcel's code is 404 too.
    let url = format!("{}/v1/parcels/{parcel}/code", d.base);
    let (status, _) = d
        .send(
            d.http
                .post(url)
                .bearer_auth(&rival)
                .header("idempotency-key", "steal")
                .json(&json!({})),
        )
        .await?;
    assert_eq!(status, 404);
    d.stop().await
}
