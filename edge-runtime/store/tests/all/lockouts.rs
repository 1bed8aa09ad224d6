//! The wrong-code count of a station lives in the store: it survives a reopen, and it travels
//! between a gateway and an edge node so that cutting the uplink never gives a second budget.

use crate::support::{START, open, options, seed, station_id};
use lockergrid_model::{Actor, Decision, ManualClock, SyncLog};
use lockergrid_protocol::lockout::{FIRST_DELAY, FREE_FAILURES};
use lockergrid_store::{ChangeError, CodeAttempt, Store, StoreOptions};
use std::collections::BTreeSet;

fn attempt(event: Option<String>) -> CodeAttempt {
    CodeAttempt {
        station: station_id("st-b"),
        event,
        actor: Actor {
            subject: "locker:st-b".into(),
            role: "device".into(),
        },
    }
}

/// Admits `n` wrong entries at st-b and records each as rejected.
async fn fail(store: &Store, n: u32, events: &str) {
    for i in 0..n {
        let entry = attempt(Some(format!("{events}-{i}")));
        assert!(
            store
                .admit_code_entry(entry.clone())
                .await
                .expect("admitted")
        );
        store.reject_code(entry).await.expect("recorded");
    }
}

#[tokio::test]
async fn a_reopened_store_still_makes_the_station_wait() {
    let gateway = open(vec![seed("st-b", [2, 0, 0, 0])]).await;
    fail(&gateway.store, FREE_FAILURES, "ev").await;
    let path = gateway.dir.path().join("node.redb");
    drop(gateway.store);
    let store = Store::open(&path, options(&gateway.clock)).expect("reopens");
    let refused = store
        .admit_code_entry(attempt(Some("ev-next".into())))
        .await;
    assert!(
        matches!(refused, Err(ChangeError::LockedOut(wait)) if wait == FIRST_DELAY),
        "{refused:?}"
    );
    // Refused once per keypad event: the same event again is a duplicate, not a second refusal.
    let again = store
        .admit_code_entry(attempt(Some("ev-next".into())))
        .await;
    assert!(matches!(again, Ok(false)), "{again:?}");
    gateway.clock.advance(FIRST_DELAY);
    assert!(
        store
            .admit_code_entry(attempt(None))
            .await
            .expect("admitted")
    );
}

#[tokio::test]
async fn an_edge_node_goes_on_from_the_gateways_count_and_hands_its_own_back() {
    let gateway = open(vec![seed("st-b", [2, 0, 0, 0])]).await;
    fail(&gateway.store, 3, "gw").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let edge_options = StoreOptions {
        edge: true,
        ..options(&ManualClock::new(START))
    };
    let edge = Store::open(&dir.path().join("edge.redb"), edge_options).expect("edge store");
    let served: BTreeSet<_> = [station_id("st-b")].into_iter().collect();
    let mut log = SyncLog::new("e1".into(), 8);
    log.advance(gateway.store.mirror_items(&served).expect("mirror"));
    assert!(edge.apply_sync(log.full()).await.expect("synced"));
    // Cut off, the edge node has only what is left of the gateway's budget.
    fail(&edge, FREE_FAILURES - 3, "edge").await;
    let refused = edge
        .admit_code_entry(attempt(Some("edge-more".into())))
        .await;
    assert!(
        matches!(refused, Err(ChangeError::LockedOut(_))),
        "{refused:?}"
    );
    // Its rejections carry its count, and the gateway takes it in.
    let outbox = edge.edge_outbox(100).expect("outbox");
    assert!(matches!(
        outbox.last().map(|d| &d.decision),
        Some(Decision::Recorded { outcome, .. }) if outcome == "locked_out"
    ));
    gateway
        .store
        .apply_decisions("edge-b".into(), outbox)
        .await
        .expect("applied");
    let refused = gateway.store.admit_code_entry(attempt(None)).await;
    assert!(
        matches!(refused, Err(ChangeError::LockedOut(_))),
        "{refused:?}"
    );
    assert_eq!(
        gateway
            .store
            .lockout(&station_id("st-b"))
            .expect("readable"),
        edge.lockout(&station_id("st-b")).expect("readable")
    );
}
