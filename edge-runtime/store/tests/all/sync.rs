//! An edge node's store as a mirror of the gateway's: numbered batches from the gateway's sync
//! log applied only on the version they name, a full resync replacing everything, and the
//! mirror (with its position and availability) surviving a reopen; the decisions an edge node
//! makes itself, numbered in its outbox, and the gateway applying each once and in order.

use crate::support::{START, agent, open, options, request, seed, station_id};
use lockergrid_model::Actor;
use lockergrid_model::ManualClock;
use lockergrid_model::SyncLog;
use lockergrid_model::{Decision, EdgeDecision, SyncItem};
use lockergrid_protocol::{CompartmentState, ParcelStatus, PickupCode, Size, StationId};
use lockergrid_store::Store;
use lockergrid_store::StoreOptions;
use lockergrid_store::{Applied, DoorClosed, DoorClosedEvent, PickupUnlock};
use std::collections::BTreeSet;
use std::time::Duration;

fn served() -> BTreeSet<StationId> {
    [station_id("st-b")].into_iter().collect()
}

fn edge_store(dir: &std::path::Path) -> Store {
    Store::open(&dir.join("edge.redb"), options(&ManualClock::new(START))).expect("edge store")
}

/// An edge node's store, which also writes its own decisions to its outbox.
fn deciding_edge_store(dir: &std::path::Path) -> Store {
    let options = StoreOptions {
        edge: true,
        ..options(&ManualClock::new(START))
    };
    Store::open(&dir.join("edge.redb"), options).expect("edge store")
}

fn free_small(store: &Store, station: &str) -> Option<u32> {
    store
        .snapshot()
        .stations
        .iter()
        .find(|s| s.record.id.as_str() == station)
        .map(|s| s.sizes[Size::Small.index()].free)
}

fn mirrored(store: &Store) -> Vec<SyncItem> {
    store.mirror_items(&served()).expect("mirror readable")
}

/// The edge store holds exactly the gateway's records for the served station.
fn assert_mirrors(edge: &Store, gateway: &Store) {
    assert_eq!(mirrored(edge), mirrored(gateway));
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
    assert_mirrors(&edge, &gateway.store);
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
        4,
        "the compartment, the code, the stored parcel and its reservation: {delta:?}"
    );
    assert!(edge.apply_sync(delta.clone()).await.unwrap());
    assert!(
        !edge.apply_sync(delta).await.unwrap(),
        "the same delta again changes nothing"
    );
    assert_mirrors(&edge, &gateway.store);
    assert_eq!(edge.mirror_counts().unwrap().codes, 1);
    assert_eq!(free_small(&edge, "st-b"), Some(2));

    // The code is reissued: the old hash is removed from the mirror and the new one added.
    let parcel = deposit.parcel.id.clone();
    gateway
        .store
        .reissue_code(parcel, agent(), None)
        .await
        .unwrap();
    let delta = log
        .advance(gateway.store.mirror_items(&served()).unwrap())
        .cloned()
        .unwrap();
    assert_eq!(
        delta.items.len(),
        3,
        "old code, new code, the parcel: {delta:?}"
    );
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
    assert_mirrors(&edge, &gateway.store);
    assert_eq!(edge.mirror_counts().unwrap().codes, 1);

    // Reopened, the mirror, its position and its availability are what they were.
    drop(edge);
    let edge = edge_store(dir.path());
    assert_eq!(edge.sync_position().unwrap(), Some(log.position()));
    assert_mirrors(&edge, &gateway.store);
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
        .reissue_code(deposit.parcel.id, agent(), None)
        .await
        .unwrap();
    gateway.store.reserve(request("st-b", "o-2")).await.unwrap();
    let mut new = SyncLog::new("epoch-2".into(), 8);
    new.advance(gateway.store.mirror_items(&served()).unwrap());
    let batches = new.catch_up(edge.sync_position().unwrap().as_ref());
    assert_eq!(batches.len(), 1);
    assert!(batches[0].full);
    assert!(edge.apply_sync(batches[0].clone()).await.unwrap());
    assert_mirrors(&edge, &gateway.store);
    let states: Vec<CompartmentState> = mirrored(&edge)
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

#[tokio::test]
async fn an_edge_stores_decisions_in_order_and_the_gateway_applies_each_once() {
    let gateway = open(vec![seed("st-b", [3, 0, 0, 0])]).await;
    let mut deposits = Vec::new();
    for n in 0..2 {
        let r = gateway
            .store
            .reserve(request("st-b", &format!("o-{n}")))
            .await
            .unwrap()
            .reservation;
        deposits.push(gateway.store.deposit(r.id, agent(), None).await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let mut edge = deciding_edge_store(dir.path());
    let mut log = SyncLog::new("e1".into(), 8);
    log.advance(gateway.store.mirror_items(&served()).unwrap());
    assert!(edge.apply_sync(log.full()).await.unwrap());

    // A wrong code, then the first parcel's code and its door: three decisions, numbered.
    let locker = Actor {
        subject: "locker:st-b".into(),
        role: "device".into(),
    };
    let unlock = |code: PickupCode, event: &str| PickupUnlock {
        station: station_id("st-b"),
        code: code.into(),
        event: Some(event.into()),
        actor: locker.clone(),
        decided_by: None,
        valid: Duration::from_secs(60),
    };
    let wrong = PickupCode::parse("00000000").unwrap();
    assert!(edge.unlock_for_pickup(unlock(wrong, "ev-1")).await.is_err());
    let command = edge
        .unlock_for_pickup(unlock(deposits[0].code.clone(), "ev-2"))
        .await
        .unwrap()
        .expect("unlocked with the mirrored station key");
    let closed = DoorClosedEvent {
        station: station_id("st-b"),
        event: "ev-3".into(),
        compartment: command.compartment_id.clone(),
        unlocked_by: Some(command.id.clone()),
        actor: locker.clone(),
    };
    assert!(matches!(
        edge.door_closed(closed).await.unwrap(),
        DoorClosed::PickedUp(_)
    ));
    let outbox = edge.edge_outbox(10).unwrap();
    assert_eq!(outbox.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert!(matches!(outbox[0].decision, Decision::CodeRejected { .. }));
    assert!(matches!(outbox[1].decision, Decision::PickedUp { .. }));

    // While decisions wait, the gateway's records would undo them: sync waits.
    gateway.store.reserve(request("st-b", "o-3")).await.unwrap();
    let delta = log
        .advance(gateway.store.mirror_items(&served()).unwrap())
        .cloned()
        .unwrap();
    assert!(!edge.apply_sync(delta.clone()).await.unwrap());

    // The gateway applies in order, once: a gap waits, a repeat changes nothing.
    let edge_id = "edge-b".to_string();
    let apply =
        |decisions: Vec<EdgeDecision>| gateway.store.apply_decisions(edge_id.clone(), decisions);
    assert_eq!(
        apply(vec![outbox[1].clone()]).await.unwrap(),
        vec![Applied::OutOfOrder { expected: 1 }]
    );
    assert_eq!(
        apply(outbox.clone()).await.unwrap(),
        vec![Applied::Applied, Applied::Applied]
    );
    assert_eq!(
        apply(vec![outbox[1].clone()]).await.unwrap(),
        vec![Applied::Duplicate]
    );
    let parcel = gateway
        .store
        .parcel(&deposits[0].parcel.id)
        .unwrap()
        .unwrap();
    assert_eq!(parcel.status, ParcelStatus::PickedUp);
    assert_eq!(gateway.store.decisions_applied("edge-b").unwrap(), 2);

    // A pickup of a parcel the gateway no longer has stored changes nothing and says why.
    let mut again = outbox[1].clone();
    again.seq = 3;
    let applied = apply(vec![again]).await.unwrap().remove(0);
    assert!(
        matches!(applied, Applied::Conflict(ref why) if why.contains("PickedUp")),
        "{applied:?}"
    );
    let log = gateway.store.access_log(1, 1_000).unwrap();
    let reports = log
        .iter()
        .filter(|e| e.action == "pickup" && e.target == deposits[0].parcel.id.as_str())
        .count();
    assert_eq!(reports, 2, "the pickup, and the conflicting report of it");

    // An edge node whose clock runs an hour ahead: its decision is applied in its turn, and the
    // drift is on record.
    let ahead = EdgeDecision {
        seq: 4,
        at: lockergrid_protocol::Timestamp(START.millis() + 3_600_000),
        decision: Decision::Recorded {
            station: station_id("st-b"),
            event: "ev-9".into(),
            action: "door_opened".into(),
            target: "st-b:S001".into(),
            outcome: "opened".into(),
            decided_by: None,
        },
    };
    assert_eq!(apply(vec![ahead]).await.unwrap(), vec![Applied::Applied]);
    let log = gateway.store.access_log(1, 1_000).unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "edge_clock" && e.outcome.contains("3600000 ms ahead")),
        "{log:?}"
    );
    assert!(log.iter().any(|e| e.action == "door_opened"));

    // Confirmed, the outbox empties, sync resumes, and numbering goes on after a reopen.
    edge.drained(2).await.unwrap();
    assert_eq!(edge.edge_outbox_depth().unwrap(), 0);
    assert!(edge.apply_sync(delta).await.unwrap());
    drop(edge);
    edge = deciding_edge_store(dir.path());
    let wrong = PickupCode::parse("11111111").unwrap();
    assert!(edge.unlock_for_pickup(unlock(wrong, "ev-4")).await.is_err());
    assert_eq!(edge.edge_outbox(10).unwrap()[0].seq, 3);
}

/// The station's code key as the gateway sends it, hex.
fn sent_key(gateway: &Store) -> String {
    mirrored(gateway)
        .into_iter()
        .find_map(|item| match item {
            SyncItem::StationKey { key, .. } => Some(key),
            _ => None,
        })
        .expect("a station key in the sync")
}

#[tokio::test]
async fn station_keys_live_in_their_own_file_never_in_the_edge_store() {
    use std::os::unix::fs::PermissionsExt;
    let gateway = open(vec![seed("st-b", [2, 0, 0, 0])]).await;
    let deposit = {
        let r = gateway.store.reserve(request("st-b", "o-1")).await.unwrap();
        gateway
            .store
            .deposit(r.reservation.id, agent(), None)
            .await
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let edge = deciding_edge_store(dir.path());
    let mut log = SyncLog::new("e1".into(), 8);
    log.advance(gateway.store.mirror_items(&served()).unwrap());
    assert!(edge.apply_sync(log.full()).await.unwrap());
    // It checks codes with the key...
    let found = edge.parcel_for_code(&station_id("st-b"), &deposit.code.clone().into());
    assert!(
        found.unwrap().is_some(),
        "the edge node verifies with the sent key"
    );
    drop(edge);
    // ...which is in edge.keys (0600), and nowhere in edge.redb.
    let key = sent_key(&gateway.store);
    let keys = dir.path().join("edge.keys");
    assert!(std::fs::read_to_string(&keys).unwrap().contains(&key));
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let store = std::fs::read(dir.path().join("edge.redb")).unwrap();
    let raw = lockergrid_protocol::from_hex::<32>(&key).unwrap();
    assert!(!store.windows(key.len()).any(|w| w == key.as_bytes()));
    assert!(!store.windows(32).any(|w| w == raw));
    // Reopened, it still verifies.
    let edge = deciding_edge_store(dir.path());
    let found = edge.parcel_for_code(&station_id("st-b"), &deposit.code.clone().into());
    assert!(found.unwrap().is_some());
}

#[tokio::test]
async fn keys_an_older_edge_store_kept_move_to_the_key_file_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let key = "ab".repeat(32);
    {
        let db = redb::Database::create(dir.path().join("edge.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def = redb::TableDefinition::<&str, &[u8]>::new("station_keys_v1");
            let mut table = txn.open_table(def).unwrap();
            let json = serde_json::to_vec(&key).unwrap();
            table.insert("st-b", json.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let edge = deciding_edge_store(dir.path());
    drop(edge);
    let keys = std::fs::read_to_string(dir.path().join("edge.keys")).unwrap();
    assert!(keys.contains(&key), "{keys}");
    let db = redb::Database::create(dir.path().join("edge.redb")).unwrap();
    let rx = redb::ReadableDatabase::begin_read(&db).unwrap();
    let def = redb::TableDefinition::<&str, &[u8]>::new("station_keys_v1");
    let table = rx.open_table(def).unwrap();
    assert_eq!(redb::ReadableTableMetadata::len(&table).unwrap(), 0);
}

#[tokio::test]
async fn a_store_from_before_the_station_index_builds_it_when_it_opens() {
    use redb::ReadableDatabase;
    let gateway = open(vec![seed("st-a", [2, 0, 0, 0]), seed("st-b", [3, 0, 0, 0])]).await;
    let r = gateway
        .store
        .reserve(request("st-b", "o-1"))
        .await
        .unwrap()
        .reservation;
    gateway.store.deposit(r.id, agent(), None).await.unwrap();
    gateway.store.reserve(request("st-a", "o-2")).await.unwrap();
    let before = mirrored(&gateway.store);
    let count = |items: &[SyncItem], kind: &str| {
        items
            .iter()
            .filter(|i| i.key().starts_with(&format!("{kind}/")))
            .count()
    };
    assert_eq!(
        [
            count(&before, "compartment"),
            count(&before, "code"),
            count(&before, "parcel")
        ],
        [3, 1, 1],
        "{before:?}"
    );
    let path = gateway.dir.path().join("node.redb");
    drop(gateway.store);

    // Written by a version without the index: the table is not there.
    {
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        let index: redb::TableDefinition<&str, &[u8]> =
            redb::TableDefinition::new("station_records_v1");
        assert!(tx.delete_table(index).unwrap(), "the index was there");
        tx.commit().unwrap();
        let rx = db.begin_read().unwrap();
        assert!(rx.open_table(index).is_err(), "and is gone");
    }
    let reopened = Store::open(&path, options(&gateway.clock)).expect("reopens");
    assert_eq!(mirrored(&reopened), before);
    let (_, cached) = reopened.locker_codes(&station_id("st-b")).unwrap();
    assert_eq!(cached.len(), 1);
}
