//! Holds and pickup windows expire on a clock the test moves: the customer is reminded and told,
//! and a carrier takes the parcel back to its sender through its door.

use lockergrid_gateway::auth::Role;
use lockergrid_model::ManualClock;
use lockergrid_protocol::Timestamp;
use lockergrid_tests::Deployment;
use lockergrid_tests::receiver::{Hook, Receiver};
use std::time::Duration;

const START: Timestamp = Timestamp(1_796_083_200_000);

#[tokio::test]
async fn an_expired_hold_gives_the_compartment_back() -> anyhow::Result<()> {
    let clock = ManualClock::new(START);
    let d = Deployment::new()
        .station("st-a", 1)
        .hold("1h")
        .clock(clock.clone())
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let (status, r) = d.reserve(&checkout, "k-1", "st-a").await?;
    assert_eq!(status, 201, "{r}");
    assert_eq!(d.reserve(&checkout, "k-2", "st-a").await?.0, 409);

    // The reservation policy chose the hold; the compartment comes back when it ends.
    let hold_until: Timestamp = serde_json::from_value(r["hold_until"].clone())?;
    clock.advance(Duration::from_millis(hold_until.millis() - START.millis()));
    let url = format!(
        "{}/v1/reservations/{}",
        d.base,
        r["id"].as_str().expect("id")
    );
    d.get_until(&url, &checkout, |r| r["status"] == "expired")
        .await?;
    assert_eq!(
        d.reserve(&checkout, "k-3", "st-a").await?.0,
        201,
        "room again"
    );
    d.stop().await
}

/// The webhooks `receiver` took for parcel `parcel`, by type, once `done` holds for the types.
async fn heard(
    receiver: &Receiver,
    parcel: &str,
    done: impl Fn(&[String]) -> bool,
) -> anyhow::Result<Vec<Hook>> {
    let ours = |h: &Hook| h.status < 300 && h.body["data"]["parcel_id"] == parcel;
    let types = |hooks: &[Hook]| -> Vec<String> {
        hooks
            .iter()
            .filter(|h| ours(h))
            .filter_map(|h| h.body["type"].as_str().map(str::to_owned))
            .collect()
    };
    let hooks = receiver.until(|hooks| done(&types(hooks))).await?;
    Ok(hooks.into_iter().filter(|h| ours(h)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_parcel_goes_back_to_its_sender_through_its_door_and_everyone_hears()
-> anyhow::Result<()> {
    let clock = ManualClock::new(START);
    let merchant = Receiver::start().await?;
    let d = Deployment::new()
        .station("st-a", 4)
        .station("st-b", 4)
        .clock(clock.clone())
        .lockers(Duration::from_millis(200))
        .integrator("shop", &merchant)
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("agent", Role::Agent, &["st-a"])?;
    let mut parcels = Vec::new();
    for key in ["k-1", "k-2"] {
        let (_, r) = d.reserve(&checkout, key, "st-a").await?;
        let (status, deposit) = d.deposit(&agent, r["id"].as_str().expect("id")).await?;
        assert_eq!(status, 200, "{deposit}");
        parcels.push((
            deposit["parcel_id"].as_str().expect("parcel").to_owned(),
            r["compartment_id"]
                .as_str()
                .expect("compartment")
                .to_owned(),
        ));
    }
    let (parcel, compartment) = parcels[0].clone();
    d.pickup_code(&parcel).await?;
    heard(&merchant, &parcel, |t| {
        t.iter().any(|t| t == "parcel.stored")
    })
    .await?;
    let url = format!("{}/v1/parcels/{parcel}", d.base);
    let (_, stored) = d.send(d.http.get(&url).bearer_auth(&checkout)).await?;
    let expires: Timestamp = serde_json::from_value(stored["pickup_expires_at"].clone())?;

    // 48 and 24 hours before the window closes the customer is reminded; when it closes, told.
    let hour = 3_600_000;
    for (before, kind) in [
        (48, "parcel.reminder"),
        (24, "parcel.expiring"),
        (0, "parcel.expired"),
    ] {
        let at = expires.millis() - before * hour;
        clock.advance(Duration::from_millis(
            at - d.gateway.app.store.now().millis(),
        ));
        heard(&d.app, &parcel, |t| t.iter().any(|t| t == kind)).await?;
    }
    let told = heard(&d.app, &parcel, |t| t.len() >= 4).await?;
    let kinds: Vec<&str> = told
        .iter()
        .filter_map(|h| h.body["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "parcel.stored",
            "parcel.reminder",
            "parcel.expiring",
            "parcel.expired"
        ]
    );

    // Days later: tokens minted now; the locker's next heartbeat has it online again.
    let carrier = d.token("carrier-a", Role::Carrier, &["st-a"])?;
    let elsewhere = d.token("carrier-b", Role::Carrier, &["st-b"])?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let health = format!("{}/v1/stations/st-a/health", d.base);
    d.get_until(&health, &operator, |h| h["online"] == true)
        .await?;
    let waiting = format!("{}/v1/stations/st-a/parcels", d.base);
    let (status, list) = d.send(d.http.get(&waiting).bearer_auth(&carrier)).await?;
    assert_eq!(status, 200, "{list}");
    let listed: Vec<&str> = list["parcels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(listed.len(), 2, "both wait for a carrier: {list}");
    assert!(listed.contains(&parcel.as_str()));

    // A carrier of another station sees nothing there and opens nothing.
    let (status, _) = d.send(d.http.get(&waiting).bearer_auth(&elsewhere)).await?;
    assert_eq!(status, 403);
    let collect = format!("{url}/collect");
    let (status, refused) = d
        .send(d.http.post(&collect).bearer_auth(&elsewhere))
        .await?;
    assert!(status == 403 || status == 404, "{status} {refused}");

    // The station's carrier: the door opens, the parcel comes out, the door closes.
    let request = d.send(d.http.post(&collect).bearer_auth(&carrier));
    let (status, returned) = d.through_door(request, "st-a", &compartment).await?;
    assert_eq!(status, 200, "{returned}");
    assert_eq!(returned["status"], "returned_to_sender");
    let (status, again) = d.send(d.http.post(&collect).bearer_auth(&carrier)).await?;
    assert_eq!(status, 409, "{again}");

    // The merchant's integration heard every step, signed, and never a code.
    let hooks = heard(&merchant, &parcel, |t| {
        t.iter().any(|t| t == "parcel.returned_to_sender")
    })
    .await?;
    let kinds: Vec<&str> = hooks
        .iter()
        .filter_map(|h| h.body["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "parcel.stored",
            "parcel.expired",
            "parcel.returned_to_sender"
        ]
    );
    assert!(hooks.iter().all(|h| h.body["data"].get("code").is_none()));
    assert!(hooks.iter().all(|h| h.path == "merchants/shop"));
    assert_eq!(merchant.bad_signatures(), 0);

    // The other parcel's locker goes dark: its collection is refused with 503, nothing opens.
    let (other, _) = parcels[1].clone();
    d.lockers
        .iter()
        .find(|l| l.station.as_str() == "st-a")
        .expect("st-a's locker")
        .power
        .abort();
    clock.advance(Duration::from_secs(60));
    d.get_until(&health, &operator, |h| h["online"] == false)
        .await?;
    let (status, offline) = d
        .send(
            d.http
                .post(format!("{}/v1/parcels/{other}/collect", d.base))
                .bearer_auth(&carrier),
        )
        .await?;
    assert_eq!(status, 503, "{offline}");
    assert_eq!(offline["type"], "urn:lockergrid:problem:locker-offline");
    d.stop().await
}
