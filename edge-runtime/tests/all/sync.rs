//! An edge node's store as a mirror of the gateway's: numbered batches from the gateway's sync
//! log applied only on the version they name, a full resync replacing everything, and the
//! mirror (with its position and availability) surviving a reopen.

use crate::support::{START, agent, open, options, request, seed, station_id};
use lockergrid_edge_runtime::Store;
use lockergrid_edge_runtime::sync::SyncItem;
use lockergrid_edge_runtime::sync::log::SyncLog;
use lockergrid_edge_runtime::{ManualClock, StoreError};
use lockergrid_protocol::{CompartmentState, Size, StationId};
use std::collections::BTreeSet;

fn served() -> BTreeSet<StationId> {
    [station_id("st-b")].into_iter().collect()
}

fn edge_store(dir: &std::path::Path) -> Store {
    Store::open(&dir.join("edge.redb"), options(&ManualClock::new(START))).expect("edge store")
}

fn free_small(store: &Store, station: &str) -> Option<u32> {
    store
        .snapshot()
        .stations
        .iter()
        .find(|s| s.record.id.as_str() == station)
        .map(|s| s.sizes[Size::Small.index()].free)
}

async fn mirrored(store: &Store) -> Result<Vec<SyncItem>, StoreError> {
    store.mirror_items(&served())
}

#[tokio::test]
async fn an_edge_store_mirrors_exactly_the_served_stations_batch_by_batch() {
    let gateway = open(vec![seed("st-a", [4, 0, 0, 0]), seed("st-b", [3, 1, 0, 0])]).await;
    let dir = tempfile::tempdir().unwrap();
    let edge = edge_store(dir.path());
    let mut log = SyncLog::new("epoch-1".into(), 8);

    let first = log
        .advance(gateway.store.mirror_items(&served()).unwrap())
        .cloned()
        .unwrap();
    assert!(
        !edge.apply_sync(first).await.unwrap(),
        "a delta does not apply on an empty mirror"
    );
    let catch_up = log.catch_up(edge.sync_position().unwrap().as_ref());
    assert_eq!(catch_up.len(), 1);
    assert!(catch_up[0].full);
    assert!(edge.apply_sync(catch_up[0].clone()).await.unwrap());
    assert_eq!(
        mirrored(&edge).await.unwrap(),
        mirrored(&gateway.store).await.unwrap()
    );
    assert_eq!(free_small(&edge, "st-b"), Some(3));
    assert_eq!(free_small(&edge, "st-a"), None, "st-a is not the edge's");

    // A reservation and a deposit at st-b: the compartment and the new code travel as a delta.
    let r = gateway
        .store
        .reserve(request("st-b", "o-1"))
        .await
        .unwrap()
        .reservation;
    let deposit = gateway
        .store
        .deposit(r.id.clone(), agent(), None)
        .await
        .unwrap();
    gateway.store.reserve(request("st-a", "o-2")).await.unwrap();
    let delta = log
        .advance(gateway.store.mirror_items(&served()).unwrap())
        .cloned()
        .unwrap();
    assert_eq!(delta.base, 1);
    assert_eq!(
        delta.items.len(),
        2,
        "one compartment and one code: {delta:?}"
    );
    assert!(edge.apply_sync(delta.clone()).await.unwrap());
    assert!(
        !edge.apply_sync(delta).await.unwrap(),
        "the same delta again changes nothing"
    );
    assert_eq!(
        mirrored(&edge).await.unwrap(),
        mirrored(&gateway.store).await.unwrap()
    );
    assert_eq!(edge.mirror_counts().unwrap().codes, 1);
    assert_eq!(free_small(&edge, "st-b"), Some(2));

    // The code is reissued: the old hash is removed from the mirror and the new one added.
    let parcel = deposit.parcel.id.clone();
    gateway.store.reissue_code(parcel, agent()).await.unwrap();
    let delta = log
        .advance(gateway.store.mirror_items(&served()).unwrap())
        .cloned()
        .unwrap();
    assert_eq!(delta.items.len(), 2, "{delta:?}");
    assert!(
        delta
            .items
            .iter()
            .any(|i| matches!(i, SyncItem::Removed { .. }))
    );
    let mut gap = delta.clone();
    gap.base += 1;
    gap.version += 1;
    assert!(!edge.apply_sync(gap).await.unwrap(), "a gap is refused");
    assert!(edge.apply_sync(delta).await.unwrap());
    assert_eq!(edge.sync_position().unwrap(), Some(log.position()));
    assert_eq!(
        mirrored(&edge).await.unwrap(),
        mirrored(&gateway.store).await.unwrap()
    );
    assert_eq!(edge.mirror_counts().unwrap().codes, 1);

    // Reopened, the mirror, its position and its availability are what they were.
    drop(edge);
    let edge = edge_store(dir.path());
    assert_eq!(edge.sync_position().unwrap(), Some(log.position()));
    assert_eq!(
        mirrored(&edge).await.unwrap(),
        mirrored(&gateway.store).await.unwrap()
    );
    assert_eq!(free_small(&edge, "st-b"), Some(2));
}

#[tokio::test]
async fn a_full_resync_replaces_what_the_mirror_held() {
    let gateway = open(vec![seed("st-b", [2, 0, 0, 0])]).await;
    let dir = tempfile::tempdir().unwrap();
    let edge = edge_store(dir.path());
    let mut old = SyncLog::new("epoch-1".into(), 8);
    old.advance(gateway.store.mirror_items(&served()).unwrap());
    let r = gateway
        .store
        .reserve(request("st-b", "o-1"))
        .await
        .unwrap()
        .reservation;
    let deposit = gateway.store.deposit(r.id, agent(), None).await.unwrap();
    old.advance(gateway.store.mirror_items(&served()).unwrap());
    assert!(edge.apply_sync(old.full()).await.unwrap());
    assert_eq!(edge.mirror_counts().unwrap().codes, 1);

    // The gateway restarts in a new epoch, by which time the code was reissued and the other
    // compartment reserved: the edge node gets the whole set again and keeps nothing stale.
    gateway
        .store
        .reissue_code(deposit.parcel.id, agent())
        .await
        .unwrap();
    gateway.store.reserve(request("st-b", "o-2")).await.unwrap();
    let mut new = SyncLog::new("epoch-2".into(), 8);
    new.advance(gateway.store.mirror_items(&served()).unwrap());
    let batches = new.catch_up(edge.sync_position().unwrap().as_ref());
    assert_eq!(batches.len(), 1);
    assert!(batches[0].full);
    assert!(edge.apply_sync(batches[0].clone()).await.unwrap());
    assert_eq!(
        mirrored(&edge).await.unwrap(),
        mirrored(&gateway.store).await.unwrap()
    );
    let states: Vec<CompartmentState> = mirrored(&edge)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|item| match item {
            SyncItem::Compartment(c) => Some(c.state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![CompartmentState::Occupied, CompartmentState::Reserved]
    );
    assert_eq!(edge.mirror_counts().unwrap().codes, 1);
    assert_eq!(free_small(&edge, "st-b"), Some(0));
}
