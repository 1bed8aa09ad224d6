//! Compartments out of service and back: an empty one at once, a held one handing its hold to
//! another compartment, one with a parcel only with a named destination its records follow,
//! and a latch that fails three unlocks in a row taking its compartment to maintenance as soon
//! as it is empty.

use crate::support::{agent, open, request, seed, station_id};
use lockergrid_model::{Actor, CommandEvent};
use lockergrid_protocol::{CompartmentId, CompartmentState};
use lockergrid_store::{
    ChangeError, DOOR_OPENED_UNRELEASED, LATCH_FAILURES, ServiceOrder, SettledEvent,
};
use std::time::Duration;

fn ops() -> Actor {
    Actor {
        subject: "ops".into(),
        role: "operator".into(),
    }
}

fn order(compartment: &CompartmentId, destination: Option<&CompartmentId>) -> ServiceOrder {
    ServiceOrder {
        compartment: compartment.clone(),
        destination: destination.cloned(),
        actor: ops(),
        reason: "door hinge broken".into(),
    }
}

/// The locker of st-a, which reports its doors.
fn locker() -> Actor {
    Actor {
        subject: "locker:st-a".into(),
        role: "device".into(),
    }
}

fn state(t: &crate::support::TestStore, id: &CompartmentId) -> CompartmentState {
    t.store.compartment(id).unwrap().unwrap().state
}

#[tokio::test]
async fn an_operator_takes_compartments_out_of_service_and_their_contents_follow() {
    let t = open(vec![seed("st-a", [3, 0, 0, 0]), seed("st-b", [1, 0, 0, 0])]).await;
    let held = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .unwrap()
        .reservation;
    let stored = t
        .store
        .reserve(request("st-a", "o-2"))
        .await
        .unwrap()
        .reservation;
    let deposit = t
        .store
        .deposit(stored.id.clone(), agent(), None)
        .await
        .unwrap();
    let free = CompartmentId::numbered("st-a", lockergrid_protocol::Size::Small, 3).unwrap();
    let elsewhere = CompartmentId::numbered("st-b", lockergrid_protocol::Size::Small, 1).unwrap();

    // Held: the hold moves to the station's free compartment.
    let out = t
        .store
        .take_out_of_service(order(&held.compartment_id, None))
        .await
        .unwrap();
    assert_eq!(out.compartment.state, CompartmentState::Maintenance);
    assert_eq!(out.moved_to.as_ref(), Some(&free));
    let moved = t.store.reservation(&held.id).unwrap().unwrap();
    assert_eq!(moved.compartment_id, free);
    assert_eq!(state(&t, &free), CompartmentState::Reserved);

    // Occupied: only with a destination, at its station, free; the parcel follows.
    let occupied = &deposit.parcel.compartment_id;
    let missing = t.store.take_out_of_service(order(occupied, None)).await;
    assert!(
        matches!(missing, Err(ChangeError::Invalid(_))),
        "{missing:?}"
    );
    let away = t
        .store
        .take_out_of_service(order(occupied, Some(&elsewhere)))
        .await;
    assert!(matches!(away, Err(ChangeError::Invalid(_))), "{away:?}");
    let busy = t
        .store
        .take_out_of_service(order(occupied, Some(&free)))
        .await;
    assert!(matches!(busy, Err(ChangeError::Invalid(_))), "{busy:?}");
    t.store
        .back_in_service(held.compartment_id.clone(), ops(), "fixed".into())
        .await
        .unwrap();
    let out = t
        .store
        .take_out_of_service(order(occupied, Some(&held.compartment_id)))
        .await
        .unwrap();
    assert_eq!(out.moved_to.as_ref(), Some(&held.compartment_id));
    let parcel = t.store.parcel(&deposit.parcel.id).unwrap().unwrap();
    assert_eq!(parcel.compartment_id, held.compartment_id);
    assert_eq!(state(&t, &held.compartment_id), CompartmentState::Occupied);
    assert_eq!(state(&t, occupied), CompartmentState::Maintenance);
    let code = t
        .store
        .parcel_for_code(
            &crate::support::station_id("st-a"),
            &deposit.code.clone().into(),
        )
        .unwrap()
        .expect("the code still finds the parcel");
    assert_eq!(code.compartment_id, held.compartment_id);

    // Twice is a conflict; back in service it is free again.
    let again = t.store.take_out_of_service(order(occupied, None)).await;
    assert!(
        matches!(again, Err(ChangeError::Conflict { .. })),
        "{again:?}"
    );
    let back = t
        .store
        .back_in_service(occupied.clone(), ops(), "fixed".into())
        .await
        .unwrap();
    assert_eq!(back.state, CompartmentState::Available);
    let log = t.store.access_log(1, 100).unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.action == "compartment_out_of_service")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_latch_that_fails_three_times_in_a_row_takes_its_compartment_out_once_empty() {
    let t = open(vec![seed("st-a", [2, 0, 0, 0])]).await;
    let locker = locker();
    let held = t
        .store
        .reserve(request("st-a", "o-1"))
        .await
        .unwrap()
        .reservation;
    let jammed = held.compartment_id.clone();
    let unlock_and = |event: CommandEvent| {
        let (t, id, locker) = (&t, held.id.clone(), locker.clone());
        async move {
            let unlock = t
                .store
                .unlock_for_deposit(id, agent(), None, Duration::from_secs(60))
                .await
                .unwrap();
            let reason = (event == CommandEvent::Failed).then(|| "latch jammed".to_string());
            t.store
                .settle_command(unlock.id, event, reason, locker)
                .await
                .unwrap();
        }
    };
    // An executed unlock between failures starts the count again.
    unlock_and(CommandEvent::Failed).await;
    unlock_and(CommandEvent::Executed).await;
    assert_eq!(t.store.latch_faults(&jammed).unwrap(), None);
    for _ in 0..LATCH_FAILURES {
        unlock_and(CommandEvent::Failed).await;
    }
    let faults = t.store.latch_faults(&jammed).unwrap().expect("counted");
    assert!(faults.maintenance_due && faults.consecutive == LATCH_FAILURES);
    // The station's day counts every outcome for the detectors.
    let days = t.store.device_days(&station_id("st-a"), 0).unwrap();
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!(
        (days[0].unlocks, days[0].latch_failures, days[0].rtt_n),
        (1, 1 + LATCH_FAILURES, 1)
    );
    // Held, it stays until the hold ends; then it goes to maintenance at once.
    assert_eq!(state(&t, &jammed), CompartmentState::Reserved);
    t.store.release(held.id.clone(), agent()).await.unwrap();
    assert_eq!(state(&t, &jammed), CompartmentState::Maintenance);
    let next = t
        .store
        .reserve(request("st-a", "o-2"))
        .await
        .unwrap()
        .reservation;
    assert_ne!(next.compartment_id, jammed, "nothing reserves it");
    let log = t.store.access_log(1, 100).unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "latch_failing" && e.target == jammed.as_str())
    );
}

#[tokio::test]
async fn a_door_that_opens_with_no_latch_released_counts_towards_its_day_once() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let opened = |event: &str, outcome: &str| SettledEvent {
        station: station_id("st-a"),
        event: event.into(),
        actor: locker(),
        action: "door_opened".into(),
        target: "st-a:S001".into(),
        outcome: outcome.into(),
        decided_by: None,
    };
    for (event, outcome) in [
        ("st-a-1", DOOR_OPENED_UNRELEASED),
        ("st-a-1", DOOR_OPENED_UNRELEASED),
        ("st-a-2", "opened"),
        ("st-a-3", DOOR_OPENED_UNRELEASED),
    ] {
        t.store.settle_event(opened(event, outcome)).await.unwrap();
    }
    let days = t.store.device_days(&station_id("st-a"), 0).unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(
        days[0].stray_doors, 2,
        "the repeated event counts once, a released door not at all"
    );
}

/// A return is dropped off at `st-a` with its code: the door opens and closes again.
async fn drop_off(t: &crate::support::TestStore, order: &str) -> lockergrid_model::ReturnRecord {
    use lockergrid_store::{DoorClosed, DoorClosedEvent, PickupUnlock, ReturnRequest};
    let authorized = t
        .store
        .authorize_return(ReturnRequest {
            order_id: lockergrid_protocol::OrderId::new(order).unwrap(),
            station: station_id("st-a"),
            spec: crate::support::small_parcel(),
            size: lockergrid_protocol::Size::Small,
            valid: Duration::from_secs(86_400),
            actor: crate::support::checkout(),
            recipient: None,
            idempotency: None,
        })
        .await
        .unwrap();
    let code = authorized.code.expect("fresh");
    let (_, would_open) = t
        .store
        .return_for_code(&station_id("st-a"), &code.clone().into())
        .unwrap()
        .expect("a drop-off code");
    let command = t
        .store
        .unlock_for_pickup(PickupUnlock {
            station: station_id("st-a"),
            code: code.into(),
            event: None,
            actor: locker(),
            decided_by: None,
            valid: Duration::from_secs(60),
        })
        .await
        .unwrap()
        .expect("the code opens a compartment");
    assert_eq!(would_open.as_ref(), Some(&command.compartment_id));
    let closed = DoorClosedEvent {
        station: station_id("st-a"),
        event: format!("closed-{}", command.id),
        compartment: command.compartment_id.clone(),
        unlocked_by: Some(command.id.clone()),
        actor: locker(),
    };
    match t.store.door_closed(closed).await.unwrap() {
        DoorClosed::ReturnDroppedOff(record) => record,
        other => panic!("the door closing did not drop the return off: {other:?}"),
    }
}

#[tokio::test]
async fn returns_waiting_at_a_station_follow_their_compartment_and_a_restart() {
    use lockergrid_protocol::Size;
    let t = open(vec![seed("st-a", [3, 0, 0, 0]), seed("st-b", [1, 0, 0, 0])]).await;
    let first = drop_off(&t, "back-1").await;
    t.clock.advance(Duration::from_secs(60));
    let second = drop_off(&t, "back-2").await;
    let small = |n| CompartmentId::numbered("st-a", Size::Small, n).unwrap();
    assert_eq!(first.compartment_id, Some(small(1)), "the first free one");
    assert_eq!(second.compartment_id, Some(small(2)));
    let waiting = |store: &lockergrid_store::Store| -> Vec<(String, Option<CompartmentId>)> {
        store
            .station_returns(&station_id("st-a"))
            .unwrap()
            .into_iter()
            .map(|r| (r.id.to_string(), r.compartment_id))
            .collect()
    };
    assert_eq!(
        waiting(&t.store),
        [
            (first.id.to_string(), Some(small(1))),
            (second.id.to_string(), Some(small(2)))
        ],
        "oldest first"
    );
    assert!(
        t.store
            .station_returns(&station_id("st-b"))
            .unwrap()
            .is_empty()
    );

    // Its compartment out of service, the first return moves and is still listed, in it.
    let out = t
        .store
        .take_out_of_service(order(&small(1), Some(&small(3))))
        .await
        .unwrap();
    assert_eq!(out.compartment.state, CompartmentState::Maintenance);
    let moved = [
        (first.id.to_string(), Some(small(3))),
        (second.id.to_string(), Some(small(2))),
    ];
    assert_eq!(waiting(&t.store), moved);

    // The list is rebuilt from the returns when the store opens again.
    let dir = t.dir;
    drop(t.store);
    let store = lockergrid_store::Store::open(
        &dir.path().join("node.redb"),
        crate::support::options(&t.clock),
    )
    .expect("reopens");
    assert_eq!(waiting(&store), moved);

    // Collected, a return leaves the list.
    let carrier = Actor {
        subject: "carrier-1".into(),
        role: "carrier".into(),
    };
    let command = store
        .unlock_for_collection(
            second.id.clone(),
            carrier.clone(),
            None,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let closed = lockergrid_store::DoorClosedEvent {
        station: station_id("st-a"),
        event: "closed-collection".into(),
        compartment: command.compartment_id.clone(),
        unlocked_by: Some(command.id.clone()),
        actor: carrier,
    };
    let done = store.door_closed(closed).await.unwrap();
    assert!(
        matches!(done, lockergrid_store::DoorClosed::ReturnCollected(_)),
        "{done:?}"
    );
    assert_eq!(waiting(&store), moved[..1]);
}
