//! Holds and pickup windows expire on a clock the test moves; the compartment comes back.

use lockergrid_gateway::auth::Role;
use lockergrid_model::ManualClock;
use lockergrid_protocol::Timestamp;
use lockergrid_tests::Deployment;
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

#[tokio::test]
async fn a_closed_pickup_window_expires_the_parcel_until_a_carrier_collects_it()
-> anyhow::Result<()> {
    let clock = ManualClock::new(START);
    let d = Deployment::new()
        .station("st-a", 1)
        .clock(clock.clone())
        .lockers(Duration::from_millis(200))
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("agent", Role::Agent, &["st-a"])?;
    let carrier = d.token("carrier", Role::Carrier, &["st-a"])?;
    let (_, r) = d.reserve(&checkout, "k-1", "st-a").await?;
    let (status, deposit) = d.deposit(&agent, r["id"].as_str().expect("id")).await?;
    assert_eq!(status, 200, "{deposit}");
    let parcel = deposit["parcel_id"].as_str().expect("parcel").to_owned();

    clock.advance(Duration::from_secs(3 * 86_400));
    let url = format!("{}/v1/parcels/{parcel}", d.base);
    d.get_until(&url, &checkout, |p| p["status"] == "expired")
        .await?;
    assert_eq!(
        d.reserve(&checkout, "k-2", "st-a").await?.0,
        409,
        "still inside"
    );

    let (status, collected) = d
        .send(d.http.post(format!("{url}/collect")).bearer_auth(&carrier))
        .await?;
    assert_eq!(status, 200, "{collected}");
    assert!(collected["collected_at"].is_string());
    // Three days without a heartbeat by the gateway's clock took the station offline for a
    // moment; its locker's next heartbeat brings it back.
    let station = format!("{}/v1/stations/st-a", d.base);
    d.get_until(&station, &checkout, |s| s["status"] == "active")
        .await?;
    assert_eq!(
        d.reserve(&checkout, "k-3", "st-a").await?.0,
        201,
        "room again"
    );
    d.stop().await
}
