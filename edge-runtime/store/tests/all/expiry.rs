//! Holds and pickup windows expire on the clock the test controls.

use crate::support::{agent, checkout, open, request, seed, station_id};
use lockergrid_model::{Actor, ReservationStatus};
use lockergrid_protocol::{ParcelStatus, Size, Tier};
use lockergrid_store::{ChangeError, DoorClosed, DoorClosedEvent, PickupUnlock};
use std::time::Duration;

const VALID: Duration = Duration::from_secs(60);

fn free_small(t: &crate::support::TestStore) -> u32 {
    t.store
        .snapshot()
        .station(&station_id("st-a"))
        .expect("station")
        .count(Size::Small)
        .free
}

#[tokio::test]
async fn an_expired_hold_releases_its_compartment() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let r = t.store.reserve(request("st-a", "o-1")).await.expect("held");
    assert_eq!(free_small(&t), 0);

    t.clock.advance(Duration::from_secs(3_599));
    assert_eq!(t.store.expire_due().await.expect("sweep").holds_expired, 0);
    assert_eq!(free_small(&t), 0);

    t.clock.advance(Duration::from_secs(1));
    assert_eq!(t.store.expire_due().await.expect("sweep").holds_expired, 1);
    assert_eq!(free_small(&t), 1);
    let r = t
        .store
        .reservation(&r.reservation.id)
        .expect("read")
        .expect("exists");
    assert_eq!(r.status, ReservationStatus::Expired);
    let parcel = t.store.parcel(&r.parcel_id).expect("read").expect("exists");
    assert_eq!(parcel.status, ParcelStatus::Cancelled);
}

#[tokio::test]
async fn a_deposit_after_the_hold_ran_out_is_refused_even_before_the_sweep() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let r = t.store.reserve(request("st-a", "o-1")).await.expect("held");
    t.clock.advance(Duration::from_secs(3_600));
    let late = t.store.deposit(r.reservation.id, agent(), None).await;
    assert!(
        matches!(late, Err(ChangeError::Conflict { .. })),
        "{late:?}"
    );
}

#[tokio::test]
async fn a_closed_pickup_window_voids_the_code_and_a_carrier_frees_the_compartment() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let mut req = request("st-a", "o-1");
    req.tier = Tier::Prime;
    let r = t.store.reserve(req).await.expect("held");
    let deposit = t
        .store
        .deposit(r.reservation.id, agent(), None)
        .await
        .expect("stored");

    t.clock.advance(Duration::from_secs(7 * 86_400 - 1));
    t.store.expire_due().await.expect("sweep");
    let parcel = t
        .store
        .parcel(&deposit.parcel.id)
        .expect("read")
        .expect("exists");
    assert_eq!(
        parcel.status,
        ParcelStatus::Stored,
        "prime waits seven days"
    );

    t.clock.advance(Duration::from_secs(1));
    let report = t.store.expire_due().await.expect("sweep");
    assert_eq!(report.parcels_expired, 1);
    let parcel = t
        .store
        .parcel(&deposit.parcel.id)
        .expect("read")
        .expect("exists");
    assert_eq!(parcel.status, ParcelStatus::Expired);
    assert_eq!(free_small(&t), 0, "the parcel is still inside");

    let late = t
        .store
        .unlock_for_pickup(PickupUnlock {
            station: station_id("st-a"),
            code: deposit.code.into(),
            event: None,
            actor: checkout(),
            decided_by: None,
            valid: Duration::from_secs(60),
        })
        .await;
    assert!(
        matches!(late, Err(ChangeError::CodeRejected)),
        "an expired code opens nothing: {late:?}"
    );

    let carrier = Actor {
        subject: "carrier-1".into(),
        role: "carrier".into(),
    };
    let unlock = t
        .store
        .unlock_for_parcel_collection(deposit.parcel.id.clone(), carrier.clone(), None, VALID)
        .await
        .expect("unlocked for the carrier");
    assert_eq!(free_small(&t), 0, "nothing moves until the door closes");
    let closed = t
        .store
        .door_closed(DoorClosedEvent {
            station: station_id("st-a"),
            event: "st-a-collect".into(),
            compartment: deposit.parcel.compartment_id.clone(),
            unlocked_by: Some(unlock.id.clone()),
            actor: carrier.clone(),
        })
        .await
        .expect("door closed");
    let DoorClosed::ParcelCollected(parcel) = closed else {
        panic!("the collection completes: {closed:?}");
    };
    assert_eq!(parcel.status, ParcelStatus::ReturnedToSender);
    assert_eq!(free_small(&t), 1);
    let twice = t
        .store
        .unlock_for_parcel_collection(deposit.parcel.id, carrier, None, VALID)
        .await;
    assert!(matches!(twice, Err(ChangeError::Conflict { .. })));
}

#[tokio::test]
async fn idempotency_keys_are_forgotten_after_a_day() {
    let t = open(vec![seed("st-a", [2, 0, 0, 0])]).await;
    let mut req = request("st-a", "o-1");
    req.hold = Duration::from_secs(10 * 86_400);
    req.idempotency = Some(lockergrid_store::IdempotencyKey {
        key: "c\nk".into(),
        fingerprint: "f".into(),
    });
    t.store.reserve(req.clone()).await.expect("first");
    t.clock.advance(Duration::from_secs(86_400));
    assert_eq!(t.store.expire_due().await.expect("sweep").keys_forgotten, 1);
    let fresh = t.store.reserve(req).await.expect("a new reservation");
    assert!(!fresh.replayed);
}

#[tokio::test]
async fn a_drop_off_whose_door_never_closes_gives_its_compartment_back() {
    use lockergrid_model::ReturnStatus;
    use lockergrid_protocol::OrderId;
    use lockergrid_store::{DOOR_GRACE, ReturnRequest};
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let authorized = t
        .store
        .authorize_return(ReturnRequest {
            order_id: OrderId::new("back-1").unwrap(),
            station: station_id("st-a"),
            spec: crate::support::small_parcel(),
            size: Size::Small,
            valid: Duration::from_secs(86_400),
            actor: checkout(),
            recipient: None,
            idempotency: None,
        })
        .await
        .unwrap();
    let drop_off = |event: &str| PickupUnlock {
        station: station_id("st-a"),
        code: authorized.code.clone().expect("fresh").into(),
        event: Some(event.into()),
        actor: Actor {
            subject: "locker:st-a".into(),
            role: "device".into(),
        },
        decided_by: None,
        valid: Duration::from_secs(60),
    };
    let command = t.store.unlock_for_pickup(drop_off("ev-1")).await.unwrap();
    assert!(command.is_some(), "the code opens the free compartment");
    assert_eq!(free_small(&t), 0);
    // The door opens and never reports closing: nothing changes before the deadline...
    t.clock
        .advance(Duration::from_secs(120) + DOOR_GRACE - Duration::from_secs(1));
    assert_eq!(t.store.expire_due().await.unwrap().drop_offs_abandoned, 0);
    assert_eq!(free_small(&t), 0);
    // ...and after it the compartment is free and the code opens one again.
    t.clock.advance(Duration::from_secs(2));
    assert_eq!(t.store.expire_due().await.unwrap().drop_offs_abandoned, 1);
    assert_eq!(free_small(&t), 1);
    let record = t
        .store
        .return_record(&authorized.record.id)
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ReturnStatus::Authorized);
    assert_eq!(record.compartment_id, None);
    let again = t.store.unlock_for_pickup(drop_off("ev-2")).await.unwrap();
    assert!(again.is_some(), "the code works again");
}

#[tokio::test]
async fn a_return_not_dropped_off_in_its_window_expires_and_its_code_is_gone() {
    use lockergrid_model::ReturnStatus;
    use lockergrid_protocol::OrderId;
    use lockergrid_store::{DOOR_GRACE, ReturnRequest};
    let t = open(vec![seed("st-a", [2, 0, 0, 0])]).await;
    let authorize = |order: &str| ReturnRequest {
        order_id: OrderId::new(order).unwrap(),
        station: station_id("st-a"),
        spec: crate::support::small_parcel(),
        size: Size::Small,
        valid: Duration::from_secs(3_600),
        actor: checkout(),
        recipient: None,
        idempotency: None,
    };
    let idle = t.store.authorize_return(authorize("back-1")).await.unwrap();
    let late = t.store.authorize_return(authorize("back-2")).await.unwrap();
    let drop_off = |code: &lockergrid_protocol::PickupCode, event: &str| PickupUnlock {
        station: station_id("st-a"),
        code: code.clone().into(),
        event: Some(event.into()),
        actor: Actor {
            subject: "locker:st-a".into(),
            role: "device".into(),
        },
        decided_by: None,
        valid: Duration::from_secs(60),
    };
    // The second is opened a minute before its window ends, and its door never reports closing.
    t.clock.advance(Duration::from_secs(3_540));
    let opened = t
        .store
        .unlock_for_pickup(drop_off(late.code.as_ref().expect("fresh"), "ev-1"))
        .await
        .unwrap();
    assert!(opened.is_some());
    t.clock.advance(Duration::from_secs(60));
    let report = t.store.expire_due().await.unwrap();
    assert_eq!(
        report.returns_expired, 1,
        "the idle one; the open one waits for its door"
    );
    let status = |id| t.store.return_record(id).unwrap().unwrap();
    let expired = status(&idle.record.id);
    assert_eq!(expired.status, ReturnStatus::Expired);
    assert_eq!(expired.code_hash, None, "no code row is left");
    assert!(
        !matches!(
            t.store
                .unlock_for_pickup(drop_off(idle.code.as_ref().expect("fresh"), "ev-2"))
                .await,
            Ok(Some(_))
        ),
        "the expired code opens nothing"
    );
    assert_eq!(status(&late.record.id).status, ReturnStatus::DroppingOff);
    t.clock.advance(Duration::from_secs(120) + DOOR_GRACE);
    let report = t.store.expire_due().await.unwrap();
    assert_eq!((report.drop_offs_abandoned, report.returns_expired), (1, 1));
    assert_eq!(status(&late.record.id).status, ReturnStatus::Expired);
    assert_eq!(free_small(&t), 2, "both compartments are free");
    let log = t.store.access_log(1, 100).unwrap();
    assert_eq!(
        log.iter().filter(|e| e.action == "return_expired").count(),
        2
    );
}
