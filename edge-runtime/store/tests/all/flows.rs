//! Reserve, deposit, pickup and their refusals, against the store.

use crate::support::{agent, checkout, open, request, seed, small_parcel, station_id};
use lockergrid_model::{Actor, Parcel, ReservationStatus};
use lockergrid_protocol::{CompartmentState, ParcelSpec, ParcelStatus, PickupCode, Size};
use lockergrid_store::Store;
use lockergrid_store::{
    ChangeError, DoorClosed, DoorClosedEvent, IdempotencyKey, PickupUnlock, ReserveError,
    StoreError, Target,
};
use std::time::Duration;

fn station_actor() -> Actor {
    Actor {
        subject: "locker".into(),
        role: "station".into(),
    }
}

/// A customer at `station` enters `code`; the compartment is unlocked, its door opens and closes
/// again: the pickup.
async fn pick_up(store: &Store, station: &str, code: PickupCode) -> Result<Parcel, ChangeError> {
    let command = store
        .unlock_for_pickup(PickupUnlock {
            station: station_id(station),
            code: code.into(),
            event: None,
            actor: station_actor(),
            decided_by: None,
            valid: Duration::from_secs(60),
        })
        .await?
        .expect("an entry without an event is never a duplicate");
    let closed = DoorClosedEvent {
        station: station_id(station),
        event: format!("closed-{}", command.id),
        compartment: command.compartment_id.clone(),
        unlocked_by: Some(command.id.clone()),
        actor: station_actor(),
    };
    match store.door_closed(closed).await? {
        DoorClosed::PickedUp(pickup) => Ok(pickup.parcel),
        other => panic!("the door closing did not complete the pickup: {other:?}"),
    }
}

#[tokio::test]
async fn reserve_deposit_pickup_returns_the_compartment() {
    let t = open(vec![seed("st-a", [2, 1, 1, 1])]).await;
    let reserved = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .expect("reserved");
    let r = reserved.reservation;
    assert_eq!(r.size, Size::Small);
    let snap = t.store.snapshot();
    let view = snap.station(&station_id("st-a")).expect("station");
    assert_eq!(view.count(Size::Small).free, 1);
    assert_eq!(view.in_state(Size::Small, CompartmentState::Reserved), 1);

    let deposit = t
        .store
        .deposit(r.id.clone(), agent(), None)
        .await
        .expect("deposited");
    assert_eq!(deposit.parcel.status, ParcelStatus::Stored);
    let code = deposit.code;

    let pickup = pick_up(&t.store, "st-a", code.clone())
        .await
        .expect("picked up");
    assert_eq!(pickup.status, ParcelStatus::PickedUp);
    let view = t.store.snapshot();
    let view = view.station(&station_id("st-a")).expect("station");
    assert_eq!(view.count(Size::Small).free, 2);

    let again = pick_up(&t.store, "st-a", code).await;
    assert!(matches!(again, Err(ChangeError::CodeRejected)), "{again:?}");
    let r = t.store.reservation(&r.id).expect("read").expect("exists");
    assert_eq!(r.status, ReservationStatus::Completed);
}

#[tokio::test]
async fn a_code_works_only_at_its_own_station() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0]), seed("st-b", [1, 0, 0, 0])]).await;
    let r = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .expect("reserved");
    let code = t
        .store
        .deposit(r.reservation.id, agent(), None)
        .await
        .expect("deposited")
        .code;
    let elsewhere = pick_up(&t.store, "st-b", code).await;
    assert!(matches!(elsewhere, Err(ChangeError::CodeRejected)));
}

#[tokio::test]
async fn a_wrong_code_is_rejected_and_logged() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let wrong = PickupCode::parse("00000000").expect("valid");
    let result = pick_up(&t.store, "st-a", wrong).await;
    assert!(matches!(result, Err(ChangeError::CodeRejected)));
    let log = t.store.access_log(1, 100).expect("log");
    assert!(
        log.iter()
            .any(|e| e.action == "pickup" && e.outcome == "code_rejected")
    );
}

#[tokio::test]
async fn a_full_station_refuses_and_a_larger_size_is_used_before_that() {
    let t = open(vec![seed("st-a", [1, 0, 1, 0])]).await;
    let first = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .expect("small");
    assert_eq!(first.reservation.size, Size::Small);
    let second = t
        .store
        .reserve(request("st-a", "o-2"))
        .await
        .expect("large");
    assert_eq!(second.reservation.size, Size::Large);
    let third = t.store.reserve(request("st-a", "o-3")).await;
    assert!(
        matches!(third, Err(ReserveError::NoCapacity(Size::Small))),
        "{third:?}"
    );
}

#[tokio::test]
async fn an_ineligible_parcel_is_refused_with_its_limit() {
    let t = open(vec![seed("st-a", [1, 1, 1, 1])]).await;
    let mut req = request("st-a", "o-1");
    req.parcel = ParcelSpec {
        weight_g: 16_000,
        ..small_parcel()
    };
    let result = t.store.reserve(req).await;
    assert!(
        matches!(result, Err(ReserveError::Ineligible(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_unknown_station_is_refused() {
    let t = open(vec![seed("st-a", [1, 1, 1, 1])]).await;
    let result = t.store.reserve(request("nowhere", "o-1")).await;
    assert!(matches!(result, Err(ReserveError::UnknownStation(_))));
}

#[tokio::test]
async fn ranked_targets_fall_through_to_the_next_station_with_room() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0]), seed("st-b", [1, 0, 0, 0])]).await;
    let ranked = || Target::Ranked(vec![station_id("st-a"), station_id("st-b")]);
    let mut first = request("st-a", "o-1");
    first.target = ranked();
    let mut second = request("st-a", "o-2");
    second.target = ranked();
    let a = t.store.reserve(first).await.expect("first");
    let b = t.store.reserve(second).await.expect("second");
    assert_eq!(a.reservation.station_id, station_id("st-a"));
    assert_eq!(b.reservation.station_id, station_id("st-b"));
}

#[tokio::test]
async fn the_same_idempotency_key_replays_and_a_different_body_is_refused() {
    let t = open(vec![seed("st-a", [3, 0, 0, 0])]).await;
    let keyed = |order: &str, fingerprint: &str| {
        let mut r = request("st-a", order);
        r.idempotency = Some(IdempotencyKey {
            key: "checkout\nk-1".into(),
            fingerprint: fingerprint.into(),
        });
        r
    };
    let first = t.store.reserve(keyed("o-1", "f1")).await.expect("first");
    let again = t.store.reserve(keyed("o-1", "f1")).await.expect("replay");
    assert!(again.replayed);
    assert_eq!(again.reservation, first.reservation);
    let other = t.store.reserve(keyed("o-2", "f2")).await;
    assert!(matches!(other, Err(ReserveError::IdempotencyMismatch)));
    let snap = t.store.snapshot();
    let view = snap.station(&station_id("st-a")).expect("station");
    assert_eq!(view.count(Size::Small).free, 2, "only one compartment held");
}

#[tokio::test]
async fn release_frees_the_compartment_and_cannot_happen_twice() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let r = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .expect("reserved");
    let id = r.reservation.id;
    t.store
        .release(id.clone(), checkout())
        .await
        .expect("released");
    let twice = t.store.release(id.clone(), checkout()).await;
    assert!(
        matches!(twice, Err(ChangeError::Conflict { .. })),
        "{twice:?}"
    );
    let deposit = t.store.deposit(id, agent(), None).await;
    assert!(matches!(deposit, Err(ChangeError::Conflict { .. })));
    t.store
        .reserve(request("st-a", "o-2"))
        .await
        .expect("room again");
}

#[tokio::test]
async fn committed_state_survives_reopening_and_the_log_chain_verifies() {
    let t = open(vec![seed("st-a", [2, 0, 0, 0])]).await;
    let r = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .expect("reserved");
    let digest = t.store.state_digest().expect("digest");
    let path = t.dir.path().join("node.redb");
    drop(t.store);
    let reopened = Store::open(&path, crate::support::options(&t.clock)).expect("reopens");
    assert_eq!(reopened.state_digest().expect("digest"), digest);
    let again = reopened
        .reservation(&r.reservation.id)
        .expect("read")
        .expect("still there");
    assert_eq!(again, r.reservation);
    let snap = reopened.snapshot();
    let view = snap
        .station(&crate::support::station_id("st-a"))
        .expect("station");
    assert_eq!(view.count(Size::Small).free, 1);
    assert!(reopened.verify_access_log().expect("chain verifies") >= 2);
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let second = Store::open(
        &t.dir.path().join("node.redb"),
        crate::support::options(&t.clock),
    );
    assert!(matches!(second, Err(StoreError::Storage(_))));
}

#[tokio::test]
async fn seeding_again_adds_only_new_stations_and_compartments() {
    let t = open(vec![seed("st-a", [2, 1, 0, 0])]).await;
    let held = t.store.reserve(request("st-a", "o-1")).await.expect("held");
    let report = t
        .store
        .seed(vec![seed("st-a", [3, 1, 1, 0]), seed("st-b", [1, 0, 0, 0])])
        .await
        .expect("seeded");
    assert_eq!(report.stations_added, 1);
    assert_eq!(report.compartments_added, 3);
    let snap = t.store.snapshot();
    let a = snap.station(&station_id("st-a")).expect("station");
    assert_eq!(a.count(Size::Small).total, 3);
    assert_eq!(
        a.count(Size::Small).free,
        2,
        "the held compartment stays held"
    );
    assert_eq!(a.count(Size::Large).total, 1);
    let again = t
        .store
        .seed(vec![seed("st-a", [3, 1, 1, 0])])
        .await
        .expect("seeded");
    assert_eq!(again.compartments_added, 0);
    let r = t
        .store
        .reservation(&held.reservation.id)
        .expect("read")
        .expect("exists");
    assert_eq!(r.status, ReservationStatus::Held);
}
