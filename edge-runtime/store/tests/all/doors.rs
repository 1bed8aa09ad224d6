//! The store's side of the physical flows: unlock commands with per-locker counters in the
//! command outbox, door-closed events that complete a deposit or a pickup exactly once, codes
//! checked before an unlock and spent only when the door closes, and all of it across a reopen.

use crate::support::{START, agent, open, options, request, seed, station_id};
use lockergrid_model::{Actor, CommandEvent, CommandStatus, UnlockFor};
use lockergrid_protocol::{CompartmentId, ParcelStatus, PickupCode};
use lockergrid_store::Store;
use lockergrid_store::{
    ChangeError, DOOR_GRACE, DoorClosed, DoorClosedEvent, PickupUnlock, SettledEvent,
};
use std::time::Duration;

const VALID: Duration = Duration::from_secs(60);

fn locker() -> Actor {
    Actor {
        subject: "locker:st-a".into(),
        role: "device".into(),
    }
}

fn closed(event: &str, compartment: &CompartmentId, command: Option<&str>) -> DoorClosedEvent {
    DoorClosedEvent {
        station: station_id("st-a"),
        event: event.into(),
        compartment: compartment.clone(),
        unlocked_by: command.map(String::from),
        actor: locker(),
    }
}

fn keypad(code: PickupCode, event: &str) -> PickupUnlock {
    PickupUnlock {
        station: station_id("st-a"),
        code: code.into(),
        event: Some(event.into()),
        actor: locker(),
        decided_by: None,
        valid: VALID,
    }
}

#[tokio::test]
async fn a_deposit_and_a_pickup_complete_once_when_their_doors_close() {
    let t = open(vec![seed("st-a", [3, 0, 0, 0])]).await;
    let r = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .expect("reserved")
        .reservation;

    let unlock = t
        .store
        .unlock_for_deposit(r.id.clone(), agent(), None, VALID)
        .await
        .expect("unlock issued");
    assert_eq!(unlock.counter, 1);
    assert_eq!(unlock.compartment_id, r.compartment_id);
    assert_eq!(unlock.expires_at, START.plus(VALID));
    let held = t.store.reservation(&r.id).unwrap().unwrap();
    assert_eq!(
        held.hold_until,
        r.hold_until.max(START.plus(VALID + DOOR_GRACE)),
        "the hold outlasts the open door"
    );
    assert_eq!(t.store.pending_commands().unwrap(), vec![unlock.clone()]);

    // The door opening changes nothing; only its closing counts, once.
    let opened = SettledEvent {
        station: station_id("st-a"),
        event: "st-a-1".into(),
        actor: locker(),
        action: "door_opened".into(),
        target: r.compartment_id.to_string(),
        outcome: "opened".into(),
        decided_by: None,
    };
    assert!(t.store.settle_event(opened.clone()).await.unwrap());
    assert!(!t.store.settle_event(opened).await.unwrap(), "a duplicate");
    let parcel = t.store.parcel(&r.parcel_id).unwrap().unwrap();
    assert_eq!(parcel.status, ParcelStatus::Reserved);

    let done = t
        .store
        .door_closed(closed("st-a-2", &r.compartment_id, Some(&unlock.id)))
        .await
        .unwrap();
    let DoorClosed::Deposited(deposit) = done else {
        panic!("expected the deposit, got {done:?}")
    };
    assert_eq!(deposit.parcel.status, ParcelStatus::Stored);
    let digest = t.store.state_digest().unwrap();
    let again = t
        .store
        .door_closed(closed("st-a-2", &r.compartment_id, Some(&unlock.id)))
        .await
        .unwrap();
    assert!(matches!(again, DoorClosed::Duplicate), "{again:?}");
    let reopened = t
        .store
        .door_closed(closed("st-a-3", &r.compartment_id, Some(&unlock.id)))
        .await
        .unwrap();
    assert!(
        matches!(reopened, DoorClosed::Recorded),
        "the command completed already: {reopened:?}"
    );
    assert_eq!(t.store.state_digest().unwrap(), digest, "applied once");

    // The locker's acknowledgement takes the command out of the outbox.
    let settled = t
        .store
        .settle_command(unlock.id.clone(), CommandEvent::Executed, None, locker())
        .await
        .unwrap()
        .expect("was pending");
    assert_eq!(settled.status, CommandStatus::Executed);
    assert!(t.store.pending_commands().unwrap().is_empty());
    assert!(
        t.store
            .settle_command(unlock.id.clone(), CommandEvent::Expired, None, locker())
            .await
            .unwrap()
            .is_none(),
        "settled once"
    );

    // A wrong code opens nothing; the event is applied (it will not be retried).
    let wrong = PickupCode::parse("00000000").unwrap();
    let refused = t
        .store
        .unlock_for_pickup(keypad(wrong.clone(), "st-a-4"))
        .await;
    assert!(
        matches!(refused, Err(ChangeError::CodeRejected)),
        "{refused:?}"
    );
    assert!(
        t.store
            .event_applied(&station_id("st-a"), "st-a-4")
            .unwrap()
    );
    let replayed = t.store.unlock_for_pickup(keypad(wrong, "st-a-4")).await;
    assert!(matches!(replayed, Ok(None)), "{replayed:?}");

    // The right code: an unlock with the next counter; the code still works until the door
    // closes, and then it is spent.
    let pickup = t
        .store
        .unlock_for_pickup(keypad(deposit.code.clone(), "st-a-5"))
        .await
        .unwrap()
        .expect("unlock");
    assert_eq!(pickup.counter, 2);
    assert!(
        matches!(&pickup.unlock_for, UnlockFor::Pickup { parcel_id, .. } if *parcel_id == r.parcel_id)
    );
    let station = station_id("st-a");
    assert!(
        t.store
            .parcel_for_code(&station, &deposit.code.clone().into())
            .unwrap()
            .is_some()
    );
    let done = t
        .store
        .door_closed(closed("st-a-6", &r.compartment_id, Some(&pickup.id)))
        .await
        .unwrap();
    assert!(matches!(done, DoorClosed::PickedUp(_)), "{done:?}");
    assert!(
        t.store
            .parcel_for_code(&station, &deposit.code.clone().into())
            .unwrap()
            .is_none()
    );
    let spent = t
        .store
        .unlock_for_pickup(keypad(deposit.code.clone(), "st-a-7"))
        .await;
    assert!(matches!(spent, Err(ChangeError::CodeRejected)), "{spent:?}");

    // Counters, commands and the inbox survive a reopen.
    let pending = t.store.pending_commands().unwrap();
    assert_eq!(pending, vec![t.store.command(&pickup.id).unwrap().unwrap()]);
    let dir = t.dir;
    drop(t.store);
    let store = Store::open(&dir.path().join("node.redb"), options(&t.clock)).expect("reopens");
    assert_eq!(store.pending_commands().unwrap().len(), 1);
    assert!(store.event_applied(&station, "st-a-6").unwrap());
    let r2 = store
        .reserve(request("st-a", "o-2"))
        .await
        .expect("reserved")
        .reservation;
    let next = store
        .unlock_for_deposit(r2.id, agent(), None, VALID)
        .await
        .unwrap();
    assert_eq!(next.counter, 3, "the counter never repeats");
}

#[tokio::test]
async fn a_door_closing_too_late_is_recorded_as_a_conflict_and_a_reissued_code_replaces_the_old() {
    let t = open(vec![seed("st-a", [2, 0, 0, 0])]).await;
    let r = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .unwrap()
        .reservation;
    let unlock = t
        .store
        .unlock_for_deposit(r.id.clone(), agent(), None, VALID)
        .await
        .unwrap();
    t.store.release(r.id.clone(), agent()).await.unwrap();
    let done = t
        .store
        .door_closed(closed("e-1", &r.compartment_id, Some(&unlock.id)))
        .await
        .unwrap();
    assert!(matches!(done, DoorClosed::Conflict(_)), "{done:?}");
    let log = t.store.access_log(1, 100).unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "door_closed" && e.outcome.contains(&unlock.id)),
        "{log:?}"
    );

    let r = t
        .store
        .reserve(request("st-a", "o-2"))
        .await
        .unwrap()
        .reservation;
    let deposit = t.store.deposit(r.id, agent(), None).await.unwrap();
    let fresh = t
        .store
        .reissue_code(deposit.parcel.id.clone(), agent(), None)
        .await
        .unwrap();
    let fresh_code = fresh.code.clone().expect("a new code");
    let station = station_id("st-a");
    assert!(
        t.store
            .parcel_for_code(&station, &deposit.code.clone().into())
            .unwrap()
            .is_none()
    );
    assert!(
        t.store
            .parcel_for_code(&station, &fresh_code.clone().into())
            .unwrap()
            .is_some()
    );
    // An unlock for the new code; even if the old hash were named, the door closing spends the
    // parcel's current code.
    let pickup = t
        .store
        .unlock_for_pickup(keypad(fresh_code.clone(), "e-2"))
        .await
        .unwrap()
        .unwrap();
    let done = t
        .store
        .door_closed(closed(
            "e-3",
            &deposit.parcel.compartment_id,
            Some(&pickup.id),
        ))
        .await
        .unwrap();
    assert!(matches!(done, DoorClosed::PickedUp(_)), "{done:?}");
    assert!(
        t.store
            .parcel_for_code(&station, &fresh_code.clone().into())
            .unwrap()
            .is_none()
    );
    let again = t.store.reissue_code(deposit.parcel.id, agent(), None).await;
    assert!(
        matches!(again, Err(ChangeError::Conflict { .. })),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_code_cache_update_waits_for_a_command_still_on_its_way_to_the_locker() {
    let t = open(vec![seed("st-a", [2, 0, 0, 0]), seed("st-b", [1, 0, 0, 0])]).await;
    let r = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .expect("reserved")
        .reservation;
    let unlock = t
        .store
        .unlock_for_deposit(r.id.clone(), agent(), None, VALID)
        .await
        .expect("unlock issued");
    // The unlock has counter 1 and is not answered yet: an update taking counter 2 now could
    // reach the locker first and make it refuse the unlock as a replay.
    assert_eq!(
        t.store.cache_counter(station_id("st-a")).await.unwrap(),
        None
    );
    assert_eq!(
        t.store.cache_counter(station_id("st-b")).await.unwrap(),
        Some(1),
        "another locker is not held up"
    );
    t.store
        .settle_command(unlock.id.clone(), CommandEvent::Executed, None, locker())
        .await
        .expect("settled");
    assert_eq!(
        t.store.cache_counter(station_id("st-a")).await.unwrap(),
        Some(unlock.counter + 1)
    );
}
