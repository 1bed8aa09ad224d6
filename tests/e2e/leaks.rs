//! Nobody but the customer ever learns a code: after a deposit, a resent code and a return, every
//! documented route, called with every method it has by every role, answers without a pickup or
//! drop-off code, and neither does the data directory hold one.

use lockergrid_gateway::auth::Role;
use lockergrid_tests::{Deployment, files_containing, small_parcel};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_answers_any_role_with_a_code() -> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 8)
        .lockers(Duration::from_secs(1))
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let tokens = [
        checkout.clone(),
        agent.clone(),
        d.token("carrier", Role::Carrier, &["st-a"])?,
        d.token("ops", Role::Operator, &[])?,
        d.token("screen", Role::Station, &["st-a"])?,
    ];
    let mut answers = Vec::new();

    let (status, r) = d.reserve(&checkout, "leak-1", "st-a").await?;
    assert_eq!(status, 201, "{r}");
    let reservation = r["id"].as_str().unwrap_or_default().to_owned();
    let (status, deposit) = d.deposit(&agent, &reservation).await?;
    assert_eq!(status, 200, "{deposit}");
    answers.push(deposit.to_string());
    let parcel = deposit["parcel_id"].as_str().unwrap_or_default().to_owned();
    d.pickup_code(&parcel).await?;
    let (status, resent) = d
        .send(
            d.http
                .post(format!("{}/v1/parcels/{parcel}/code", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(status, 202, "{resent}");
    answers.push(resent.to_string());
    let body = json!({ "order_id": "leak-r", "station_id": "st-a", "parcel": small_parcel(),
                       "recipient": d.customer("leak-r") });
    let (status, authorized) = d
        .send(
            d.http
                .post(format!("{}/v1/returns", d.base))
                .bearer_auth(&checkout)
                .json(&body),
        )
        .await?;
    assert_eq!(status, 201, "{authorized}");
    answers.push(authorized.to_string());
    let ret = authorized["id"].as_str().unwrap_or_default().to_owned();
    d.dropoff_code(&ret).await?;
    d.codes("parcel_id", &parcel, 2).await?;
    let message = d.app.hooks()[0]
        .id
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned();

    let (_, doc) = d
        .send(d.http.get(format!("{}/openapi.json", d.base)))
        .await?;
    let paths = doc["paths"].as_object().expect("paths").clone();
    for (path, item) in &paths {
        let id = if path.starts_with("/v1/reservations") {
            reservation.as_str()
        } else if path.starts_with("/v1/parcels") {
            parcel.as_str()
        } else if path.starts_with("/v1/returns") {
            ret.as_str()
        } else if path.starts_with("/v1/admin/notifications") {
            message.as_str()
        } else {
            "st-a"
        };
        let mut url = format!("{}{}", d.base, path.replace("{id}", id));
        if path == "/v1/stations" {
            url.push_str("?lat=52.37&lon=4.89&radius_m=5000&size=small");
        }
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            for token in &tokens {
                let m = Method::from_bytes(method.to_uppercase().as_bytes())?;
                let response = d
                    .http
                    .request(m, &url)
                    .bearer_auth(token)
                    .json(&json!({}))
                    .send()
                    .await?;
                answers.push(format!("{method} {path}: {}", response.text().await?));
            }
        }
    }
    let codes: Vec<String> = d
        .app
        .hooks()
        .iter()
        .filter_map(|h| h.body["data"]["code"].as_str().map(str::to_owned))
        .collect();
    assert!(
        codes.len() >= 3,
        "a pickup code, a resent one and a drop-off code: {codes:?}"
    );
    for code in &codes {
        for answer in &answers {
            assert!(!answer.contains(code.as_str()), "{code} in {answer}");
        }
        let found = files_containing(&d.gateway.data_dir, code.as_bytes());
        assert!(found.is_empty(), "{code} in {found:?}");
    }
    d.stop().await
}
