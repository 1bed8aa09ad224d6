//! Edge nodes' leases at the gateway's store: granted up to the pool, never reserved by
//! checkout, shrunk with a new epoch and the compartment taken back held until the edge node
//! confirms it; drop-offs decided at the edge under a lease applied once, one in a compartment
//! revoked at an epoch the edge had not heard of accepted, one under a stale epoch refused.

use crate::support::{START, checkout, open, request, seed, small_parcel, station_id};
use lockergrid_model::{Decision, EdgeDecision};
use lockergrid_model::{LeaseRecord, ReturnRecord, ReturnStatus};
use lockergrid_protocol::{CompartmentId, CompartmentState, OrderId, Size};
use lockergrid_store::Store;
use lockergrid_store::{Applied, LeaseWant, ReserveError, ReturnRequest};
use std::collections::BTreeSet;
use std::time::Duration;

fn want(small: u32, acked: Option<u64>) -> Vec<LeaseWant> {
    vec![LeaseWant {
        station: station_id("st-b"),
        edge: "edge-b".into(),
        pool: [small, 0, 0, 0],
        acked,
    }]
}

fn lease(store: &Store) -> LeaseRecord {
    let stations: BTreeSet<_> = [station_id("st-b")].into_iter().collect();
    store.leases(&stations).unwrap().remove(0)
}

async fn authorize(store: &Store, order: &str) -> ReturnRecord {
    let request = ReturnRequest {
        order_id: OrderId::new(order).unwrap(),
        station: station_id("st-b"),
        spec: small_parcel(),
        size: Size::Small,
        valid: Duration::from_secs(86_400),
        actor: checkout(),
        recipient: None,
        idempotency: None,
    };
    store.authorize_return(request).await.unwrap().record
}

/// The edge node's decision that `r` went into `compartment` under lease epoch `epoch`.
fn dropped(seq: u64, r: &ReturnRecord, compartment: &CompartmentId, epoch: u64) -> EdgeDecision {
    EdgeDecision {
        seq,
        at: START,
        decision: Decision::ReturnDroppedOff {
            station: station_id("st-b"),
            return_id: r.id.clone(),
            compartment: compartment.clone(),
            code_hash: r.code_hash.clone().unwrap(),
            lease_epoch: epoch,
            command: format!("cmd-{seq}"),
            event: format!("ev-{seq}"),
            decided_by: None,
        },
    }
}

fn state(store: &Store, id: &CompartmentId) -> CompartmentState {
    store.compartment(id).unwrap().unwrap().state
}

#[tokio::test]
async fn a_lease_is_granted_shrunk_by_epoch_and_a_stale_drop_off_is_refused() {
    let gateway = open(vec![seed("st-b", [10, 0, 0, 0])]).await;
    let store = &gateway.store;
    let apply = |decisions| store.apply_decisions("edge-b".into(), decisions);

    // Granted: three of ten, held for the edge node, at epoch 1; then nothing more to do.
    assert!(store.leases_due(&want(3, None)).unwrap());
    assert!(store.maintain_leases(want(3, None)).await.unwrap());
    assert!(!store.leases_due(&want(3, None)).unwrap());
    let granted = lease(store);
    assert_eq!(granted.epoch, 1);
    let held: Vec<CompartmentId> = granted.compartments.iter().cloned().collect();
    assert_eq!(held.len(), 3);
    assert!(
        held.iter()
            .all(|c| state(store, c) == CompartmentState::Reserved)
    );

    // A drop-off decided at the edge in a leased compartment: applied once.
    let returns = [
        authorize(store, "r-1").await,
        authorize(store, "r-2").await,
        authorize(store, "r-3").await,
    ];
    assert_eq!(
        apply(vec![dropped(1, &returns[0], &held[0], 1)])
            .await
            .unwrap(),
        vec![Applied::Applied]
    );
    assert_eq!(
        apply(vec![dropped(1, &returns[0], &held[0], 1)])
            .await
            .unwrap(),
        vec![Applied::Duplicate]
    );
    assert_eq!(state(store, &held[0]), CompartmentState::ReturnPending);
    let r1 = store.return_record(&returns[0].id).unwrap().unwrap();
    assert_eq!(r1.status, ReturnStatus::DroppedOff);

    // The pool goes down to one: one compartment is taken back at epoch 2 but stays held
    // until the edge node confirms that epoch.
    assert!(store.maintain_leases(want(1, Some(1))).await.unwrap());
    let shrunk = lease(store);
    assert_eq!((shrunk.epoch, shrunk.compartments.len()), (2, 1));
    let (revoked, at) = shrunk
        .revoking
        .iter()
        .next()
        .map(|(c, e)| (c.clone(), *e))
        .unwrap();
    assert_eq!(at, 2);
    assert_eq!(state(store, &revoked), CompartmentState::Reserved);

    // The edge node, not having heard, drops a return off in it under epoch 1: accepted.
    assert_eq!(
        apply(vec![dropped(2, &returns[1], &revoked, 1)])
            .await
            .unwrap(),
        vec![Applied::Applied]
    );
    assert_eq!(state(store, &revoked), CompartmentState::ReturnPending);

    // It confirms epoch 2; a drop-off claiming epoch 1 in a compartment it does not hold is
    // stale and refused, and changes nothing.
    store.maintain_leases(want(1, Some(2))).await.unwrap();
    assert_eq!(lease(store).acked_epoch, 2);
    let snapshot = store.snapshot();
    let free_before = snapshot
        .station(&station_id("st-b"))
        .unwrap()
        .count(Size::Small)
        .free;
    let elsewhere = (1..=10)
        .map(|n| CompartmentId::new(format!("st-b:S{n:03}")).unwrap())
        .find(|c| state(store, c) == CompartmentState::Available)
        .unwrap();
    let refused = apply(vec![dropped(3, &returns[2], &elsewhere, 1)])
        .await
        .unwrap();
    assert!(
        matches!(&refused[..], [Applied::Conflict(why)] if why.contains("stale")),
        "{refused:?}"
    );
    assert_eq!(state(store, &elsewhere), CompartmentState::Available);
    let r3 = store.return_record(&returns[2].id).unwrap().unwrap();
    assert_eq!(r3.status, ReturnStatus::Authorized);
    let snapshot = store.snapshot();
    let free_after = snapshot
        .station(&station_id("st-b"))
        .unwrap()
        .count(Size::Small)
        .free;
    assert_eq!(free_before, free_after);

    // Checkout never gets the leased compartment: the station fills up around it.
    let leased = lease(store).compartments.iter().next().cloned().unwrap();
    let mut reserved = Vec::new();
    for n in 0..free_after {
        let r = store
            .reserve(request("st-b", &format!("o-{n}")))
            .await
            .unwrap();
        reserved.push(r.reservation.compartment_id);
    }
    assert!(!reserved.contains(&leased));
    assert!(matches!(
        store.reserve(request("st-b", "o-full")).await,
        Err(ReserveError::NoCapacity(_))
    ));
    // With nothing free the lease gives its last compartment back (epoch 3), which checkout
    // gets once the edge node confirms that epoch.
    store.maintain_leases(want(1, Some(2))).await.unwrap();
    let emptied = lease(store);
    assert_eq!((emptied.epoch, emptied.compartments.len()), (3, 0));
    assert!(matches!(
        store.reserve(request("st-b", "o-fenced")).await,
        Err(ReserveError::NoCapacity(_))
    ));
    store.maintain_leases(want(1, Some(3))).await.unwrap();
    assert!(lease(store).revoking.is_empty());
    let last = store.reserve(request("st-b", "o-last")).await.unwrap();
    assert_eq!(last.reservation.compartment_id, leased);
    let log = store.access_log(1, 1_000).unwrap();
    assert!(log.iter().filter(|e| e.action == "lease").count() >= 3);
}
