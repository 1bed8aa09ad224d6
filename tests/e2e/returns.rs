//! Returns over HTTP and through a simulated locker's doors: a return authorised at checkout,
//! its drop-off code opening a free compartment that fits, the compartment `return_pending`
//! until a carrier of the station collects it with its token, and every refusal on the way.

use lockergrid_gateway::auth::Role;
use lockergrid_tests::{Deployment, Running, files_containing, small_parcel};
use serde_json::{Value, json};
use std::time::Duration;

const STATION: &str = "st-r";

/// Free compartments at the station of each size, as discovery reports them.
async fn free(d: &Running, token: &str) -> anyhow::Result<Value> {
    let url = format!("{}/v1/stations/{STATION}", d.base);
    let (status, body) = d.send(d.http.get(url).bearer_auth(token)).await?;
    anyhow::ensure!(status == 200, "{body}");
    Ok(body["sizes"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_is_dropped_off_with_its_code_and_collected_by_a_carrier_of_its_station()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station(STATION, 8)
        .station("st-other", 4)
        .lockers(Duration::from_millis(500))
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let carrier = d.token("carrier-1", Role::Carrier, &[STATION])?;
    let elsewhere = d.token("carrier-2", Role::Carrier, &["st-other"])?;
    let agent = d.token("courier", Role::Agent, &[STATION])?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let url = format!("{}/v1/returns", d.base);
    let create =
        |token: &str, body: Value| d.send(d.http.post(&url).bearer_auth(token).json(&body));

    // Refusals: a parcel too big, a station that does not exist, a role that may not.
    let big = json!({ "length_mm": 800, "width_mm": 100, "height_mm": 100, "weight_g": 1_000 });
    let customer = d.customer("returner");
    let request = |station: &str, parcel: Value| json!({ "order_id": "order-77", "station_id": station, "parcel": parcel, "recipient": customer });
    let (status, body) = create(&checkout, request(STATION, big)).await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["type"], "urn:lockergrid:problem:ineligible-parcel");
    let (status, body) = create(&checkout, request("st-nowhere", small_parcel())).await?;
    assert_eq!(status, 422, "{body}");
    let (status, body) = create(&agent, request(STATION, small_parcel())).await?;
    assert_eq!(status, 403, "{body}");

    let before = free(&d, &checkout).await?;
    let (status, authorized) = create(&checkout, request(STATION, small_parcel())).await?;
    assert_eq!(status, 201, "{authorized}");
    assert_eq!(authorized["status"], "authorized");
    let id = authorized["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        authorized.get("dropoff_code").is_none(),
        "the code reaches the customer alone: {authorized}"
    );
    let code = d.dropoff_code(&id).await?;
    assert_eq!(code.len(), 8, "{authorized}");
    let one = format!("{}/v1/returns/{id}", d.base);

    // At the locker the code opens a free compartment that fits; closing it drops the return
    // off, and the compartment waits for a carrier.
    let compartment = d.drop_off(STATION, &code).await?;
    let returned = d
        .get_until(&one, &checkout, |r| r["status"] == "dropped_off")
        .await?;
    assert_eq!(returned["compartment_id"], compartment.as_str());
    // The small parcel took a small compartment, which now waits for a carrier.
    let after = free(&d, &checkout).await?;
    let small = |sizes: &Value, what: &str| sizes["small"][what].as_u64().unwrap_or_default();
    assert_eq!(small(&after, "free") + 1, small(&before, "free"), "{after}");
    assert_eq!(after["small"]["states"]["return_pending"], 1, "{after}");
    // The same code again opens nothing.
    assert_eq!(d.locker(STATION, &format!("press {code}#")).await?, "ok");
    let waiting = format!("{}/v1/stations/{STATION}/returns", d.base);
    let (status, body) = d.send(d.http.get(&waiting).bearer_auth(&elsewhere)).await?;
    assert_eq!(status, 403, "another station's carrier: {body}");
    let (status, body) = d.send(d.http.get(&waiting).bearer_auth(&carrier)).await?;
    assert_eq!(status, 200, "{body}");
    let listed = body["returns"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["id"], id.as_str());

    // Only a carrier of its station collects it; its compartment is free again after.
    let collect = format!("{one}/collect");
    let (status, body) = d.send(d.http.post(&collect).bearer_auth(&checkout)).await?;
    assert_eq!(status, 403, "{body}");
    let (status, body) = d
        .send(d.http.post(&collect).bearer_auth(&elsewhere))
        .await?;
    assert_eq!(status, 403, "{body}");
    let request = d.send(d.http.post(&collect).bearer_auth(&carrier));
    let (status, collected) = d.through_door(request, STATION, &compartment).await?;
    assert_eq!(status, 200, "{collected}");
    assert_eq!(collected["status"], "collected");
    assert_eq!(free(&d, &checkout).await?, before);
    let (status, body) = d.send(d.http.post(&collect).bearer_auth(&carrier)).await?;
    assert_eq!(status, 409, "collected once: {body}");
    let (_, body) = d.send(d.http.get(&waiting).bearer_auth(&carrier)).await?;
    assert_eq!(body["returns"], json!([]));

    // The customer heard each step: the code, the drop-off, the collection.
    let heard = d
        .app
        .until(|hooks| {
            hooks
                .iter()
                .filter(|h| h.body["data"]["return_id"] == id.as_str())
                .count()
                >= 3
        })
        .await?;
    let kinds: Vec<&str> = heard
        .iter()
        .filter(|h| h.body["data"]["return_id"] == id.as_str())
        .filter_map(|h| h.body["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "return.authorized",
            "return.dropped_off",
            "return.collected"
        ]
    );

    // The access log tells the whole story once, the code's second use refused.
    let log = d.access_log(&operator).await?;
    let about = |action: &str| {
        log.iter()
            .filter(|e| e["action"] == action && e["target"] == id.as_str())
            .count()
    };
    assert_eq!(about("return_authorized"), 1);
    assert_eq!(about("unlock"), 2, "drop-off and collection");
    assert_eq!(about("return_dropoff"), 1);
    assert_eq!(about("return_collected"), 1);
    let refused = log
        .iter()
        .filter(|e| e["action"] == "pickup" && e["outcome"] == "code_rejected")
        .count();
    assert_eq!(refused, 1, "the spent drop-off code");
    d.stop().await
}

#[tokio::test]
async fn a_returns_recipient_is_checked_and_its_addresses_never_stored_in_clear()
-> anyhow::Result<()> {
    let d = Deployment::new().station(STATION, 10).start().await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let url = format!("{}/v1/returns", d.base);
    let body = |contact: Value| {
        json!({
            "order_id": "order-88", "station_id": STATION, "parcel": small_parcel(),
            "recipient": { "id": "cust-88", "channels": ["email", "sms"], "contact": contact },
        })
    };
    let create = |body: Value| d.send(d.http.post(&url).bearer_auth(&checkout).json(&body));
    let (status, problem) = create(body(json!({ "email": "r@example.com" }))).await?;
    assert_eq!(status, 422, "sms needs a phone: {problem}");
    let (status, problem) = create(body(
        json!({ "email": "r@example", "phone": "+31611223344" }),
    ))
    .await?;
    assert_eq!(status, 422, "{problem}");
    let (status, authorized) = create(body(
        json!({ "email": "returner@example.com", "phone": "+31611223344" }),
    ))
    .await?;
    assert_eq!(status, 201, "{authorized}");
    assert!(authorized.get("recipient").is_none(), "{authorized}");
    let stored = d
        .gateway
        .app
        .store
        .return_record(&authorized["id"].as_str().expect("id").parse()?)?
        .expect("stored");
    let sealed = stored.recipient.and_then(|r| r.contact).expect("sealed");
    assert_eq!(sealed.masked.email.as_deref(), Some("r***@example.com"));
    for secret in ["returner@example.com", "+31611223344"] {
        let found = files_containing(&d.gateway.data_dir, secret.as_bytes());
        assert!(found.is_empty(), "{secret} in clear in {found:?}");
    }
    d.stop().await
}

#[tokio::test]
async fn a_retried_return_with_its_key_is_the_same_return_with_one_code_sent() -> anyhow::Result<()>
{
    let d = Deployment::new().station(STATION, 4).start().await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let url = format!("{}/v1/returns", d.base);
    let body = |order: &str| {
        json!({ "order_id": order, "station_id": STATION, "parcel": small_parcel(),
                "recipient": d.customer("retry") })
    };
    let post = |key: &str, body: Value| {
        d.send(
            d.http
                .post(&url)
                .bearer_auth(&checkout)
                .header("idempotency-key", key)
                .json(&body),
        )
    };
    let (status, first) = post("ret-1", body("order-9")).await?;
    assert_eq!(status, 201, "{first}");
    let (status, again) = post("ret-1", body("order-9")).await?;
    assert_eq!(status, 200, "a replay: {again}");
    assert_eq!(again["id"], first["id"]);
    let (status, reused) = post("ret-1", body("order-10")).await?;
    assert_eq!(status, 422, "{reused}");
    assert_eq!(
        reused["type"],
        "urn:lockergrid:problem:idempotency-key-reused"
    );
    let (status, other) = post("ret-2", body("order-9")).await?;
    assert_eq!(status, 201);
    assert_ne!(other["id"], first["id"], "another key, another return");

    // One message carries the first return's code, and it is delivered once.
    let id = first["id"].as_str().unwrap_or_default();
    d.dropoff_code(id).await?;
    let (_, page) = d
        .send(
            d.http
                .get(format!("{}/v1/admin/notifications", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    let messages: Vec<&Value> = page["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["about"]["return"] == id)
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let delivered = d
        .app
        .hooks()
        .into_iter()
        .filter(|h| h.body["data"]["return_id"] == id)
        .count();
    assert_eq!(delivered, 1);
    d.stop().await
}
